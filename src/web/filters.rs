//! What people type into the filters of lists (caseloads, cohort reports): a part of a name,
//! and "waiting at least so many days".

/// The longest name filter read; anything longer matches nobody anyway.
const NAME_MAX_CHARS: usize = 100;

/// A part of a candidate's name as lists match it: spaces collapsed, lower case, at most 100
/// characters (empty when nothing was typed).
pub fn name_part(typed: &str) -> String {
    typed
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
        .chars()
        .take(NAME_MAX_CHARS)
        .collect()
}

/// The days of a "waiting at least" filter: a whole number from 0 to 3,650 (`None` when
/// nothing was typed), or its problem.
pub fn waiting_days(typed: &str) -> Result<Option<i64>, &'static str> {
    match typed.trim() {
        "" => Ok(None),
        text => text
            .parse::<i64>()
            .ok()
            .filter(|d| (0..=3650).contains(d))
            .map(Some)
            .ok_or("Enter the days as a whole number, such as 7"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_part_is_matched_as_lists_sort_names() {
        assert_eq!(name_part("  Ada   LOVELACE "), "ada lovelace");
        assert_eq!(name_part(&"x".repeat(300)).len(), 100);
    }

    #[test]
    fn waiting_days_are_a_whole_number_or_nothing() {
        assert_eq!(waiting_days(" "), Ok(None));
        assert_eq!(waiting_days("14"), Ok(Some(14)));
        assert!(waiting_days("two weeks").is_err());
        assert!(waiting_days("-1").is_err());
        assert!(waiting_days("99999").is_err());
    }
}
