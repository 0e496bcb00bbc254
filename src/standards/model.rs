//! Types of the standards domain and the pure rules about them.

use serde::Serialize;
use time::{Date, Month};

crate::ids::id_type!(
    /// Identifies one stored version of a standard.
    StandardId
);
crate::ids::id_type!(
    /// Identifies one criterion of one stored standard.
    CriterionId
);

/// What a criterion asks of a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, sqlx::Type)]
#[sqlx(type_name = "criterion_kind", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum CriterionKind {
    Performance,
    Knowledge,
}

impl CriterionKind {
    /// The prefix of the criterion codes of this kind: `PC` or `K`.
    pub fn code_prefix(self) -> &'static str {
        match self {
            Self::Performance => "PC",
            Self::Knowledge => "K",
        }
    }

    /// The section heading a published standard uses for this kind.
    pub fn published_heading(self) -> &'static str {
        match self {
            Self::Performance => "Performance criteria",
            Self::Knowledge => "Knowledge and understanding",
        }
    }

    /// The name of the list in running text.
    pub fn label(self) -> &'static str {
        match self {
            Self::Performance => "performance criteria",
            Self::Knowledge => "knowledge and understanding",
        }
    }
}

/// A standard as stored, without its criteria.
#[derive(Debug, Clone)]
pub struct Standard {
    pub id: StandardId,
    pub urn: String,
    pub version: String,
    pub title: String,
    pub overview: Vec<String>,
    pub metadata: Vec<(String, String)>,
    pub review_due_on: Option<Date>,
}

impl Standard {
    /// True once the indicative review date has passed: the standard may be out of date.
    pub fn is_overdue_for_review(&self, today: Date) -> bool {
        self.review_due_on.is_some_and(|due| due < today)
    }
}

/// One criterion as stored.
#[derive(Debug, Clone)]
pub struct Criterion {
    pub id: CriterionId,
    pub kind: CriterionKind,
    pub code: String,
    pub position: i32,
    pub text: String,
}

/// Which end of a month a month-only date stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MonthEnd {
    First,
    Last,
}

/// Reads the dates standards are published with: `March 2016`, `Mar 2016`, `31/03/2016`,
/// `2016-03-31`. A date given to the month becomes that month's first or last day.
pub fn parse_published_date(text: &str, month_end: MonthEnd) -> Option<Date> {
    let text = text.trim();
    if let Ok(date) = Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    ) {
        return Some(date);
    }
    if let Ok(date) = Date::parse(
        text,
        time::macros::format_description!("[day]/[month]/[year]"),
    ) {
        return Some(date);
    }
    let (month_name, year) = text.split_once(char::is_whitespace)?;
    let year: i32 = year.trim().parse().ok()?;
    let month = month_from_name(month_name)?;
    let first = Date::from_calendar_date(year, month, 1).ok()?;
    Some(match month_end {
        MonthEnd::First => first,
        MonthEnd::Last => first.replace_day(month.length(year)).ok()?,
    })
}

fn month_from_name(name: &str) -> Option<Month> {
    let name = name.to_ascii_lowercase();
    let months = [
        Month::January,
        Month::February,
        Month::March,
        Month::April,
        Month::May,
        Month::June,
        Month::July,
        Month::August,
        Month::September,
        Month::October,
        Month::November,
        Month::December,
    ];
    months.into_iter().find(|m| {
        let full = m.to_string().to_ascii_lowercase();
        name == full || (name.len() >= 3 && full.starts_with(&name))
    })
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    #[test]
    fn a_month_and_year_becomes_the_first_or_last_day_of_that_month() {
        assert_eq!(
            parse_published_date("March 2016", MonthEnd::First),
            Some(date!(2016 - 03 - 01))
        );
        assert_eq!(
            parse_published_date("April 2019", MonthEnd::Last),
            Some(date!(2019 - 04 - 30))
        );
        assert_eq!(
            parse_published_date("feb 2024", MonthEnd::Last),
            Some(date!(2024 - 02 - 29))
        );
    }

    #[test]
    fn full_dates_are_read_in_iso_and_british_order() {
        assert_eq!(
            parse_published_date("2016-03-31", MonthEnd::First),
            Some(date!(2016 - 03 - 31))
        );
        assert_eq!(
            parse_published_date("31/03/2016", MonthEnd::Last),
            Some(date!(2016 - 03 - 31))
        );
    }

    #[test]
    fn text_that_is_not_a_date_gives_none() {
        for text in ["", "Current", "Spring 2016", "March", "Ma 2016"] {
            assert_eq!(parse_published_date(text, MonthEnd::First), None, "{text}");
        }
    }

    #[test]
    fn a_standard_is_overdue_only_after_its_review_date() {
        let mut standard = Standard {
            id: StandardId(uuid::Uuid::nil()),
            urn: "X".into(),
            version: "1".into(),
            title: "T".into(),
            overview: vec![],
            metadata: vec![],
            review_due_on: Some(date!(2019 - 04 - 30)),
        };
        assert!(!standard.is_overdue_for_review(date!(2019 - 04 - 30)));
        assert!(standard.is_overdue_for_review(date!(2019 - 05 - 01)));
        standard.review_due_on = None;
        assert!(!standard.is_overdue_for_review(date!(2030 - 01 - 01)));
    }
}
