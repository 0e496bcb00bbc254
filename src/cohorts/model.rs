//! Pure rules of cohorts: the cohort form and the roster CSV.

use time::Date;

use crate::accounts::model::{DisplayName, Email};
use crate::forms::{FormErrors, parse_date};

/// A validated new cohort.
#[derive(Debug, Clone)]
pub struct NewCohort {
    pub name: String,
    pub starts_on: Date,
    pub ends_on: Date,
}

impl NewCohort {
    pub fn parse(name: &str, starts_on: &str, ends_on: &str) -> Result<Self, FormErrors> {
        let mut errors = FormErrors::default();
        let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
        if name.is_empty() {
            errors.add("name", "Enter a name for the cohort");
        } else if name.chars().count() > 200 {
            errors.add("name", "Enter a name of at most 200 characters");
        }
        let starts = parse_date(starts_on);
        let ends = parse_date(ends_on);
        if starts.is_none() {
            errors.add(
                "starts_on",
                "Enter the start date as a date, like 2026-09-01",
            );
        }
        if ends.is_none() {
            errors.add("ends_on", "Enter the end date as a date, like 2027-07-31");
        }
        match (starts, ends) {
            (Some(starts_on), Some(ends_on)) if errors.is_empty() => {
                if ends_on < starts_on {
                    errors.add("ends_on", "The end date must be on or after the start date");
                    Err(errors)
                } else {
                    Ok(Self {
                        name,
                        starts_on,
                        ends_on,
                    })
                }
            }
            _ => Err(errors),
        }
    }
}

/// One person of a roster file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterRow {
    /// The line of the file, for messages.
    pub line: u64,
    pub name: DisplayName,
    pub email: Email,
}

/// A problem with one line of a roster file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterError {
    pub line: u64,
    pub message: String,
}

impl RosterError {
    /// The row's email address belongs to an account that is not an active candidate.
    pub fn not_an_active_candidate(row: &RosterRow) -> Self {
        Self {
            line: row.line,
            message: format!(
                "{} has an account that is not an active candidate",
                row.email.as_str()
            ),
        }
    }

    /// Someone else made an account for the row's email address while the file was applied.
    pub fn account_made_meanwhile(row: &RosterRow) -> Self {
        Self {
            line: row.line,
            message: format!(
                "{} was given an account by someone else just now; upload the file again",
                row.email.as_str()
            ),
        }
    }

    /// The row's candidate is enrolled in the cohort already.
    pub fn already_enrolled(row: &RosterRow) -> Self {
        Self {
            line: row.line,
            message: format!("{} is already enrolled in this cohort", row.email.as_str()),
        }
    }
}

/// Reads a roster of `name,email` lines (a header line `name,email` is optional). Every bad
/// line is reported; one bad line means none of the file is used.
pub fn parse_roster(bytes: &[u8]) -> Result<Vec<RosterRow>, Vec<RosterError>> {
    let mut errors = Vec::new();
    let mut rows: Vec<RosterRow> = Vec::new();
    let Ok(text) = std::str::from_utf8(bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes)) else {
        return Err(vec![RosterError {
            line: 1,
            message: "The file is not UTF-8 text; save it as CSV UTF-8".into(),
        }]);
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    for (index, record) in reader.records().enumerate() {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                let line = e.position().map_or(index as u64 + 1, csv::Position::line);
                errors.push(RosterError {
                    line,
                    message: "This line is not valid CSV".into(),
                });
                continue;
            }
        };
        let line = record
            .position()
            .map_or(index as u64 + 1, csv::Position::line);
        if record.iter().all(str::is_empty) {
            continue;
        }
        if index == 0
            && record.len() == 2
            && record[0].eq_ignore_ascii_case("name")
            && record[1].eq_ignore_ascii_case("email")
        {
            continue;
        }
        if record.len() != 2 {
            errors.push(RosterError {
                line,
                message: format!("Expected 2 values (name,email), found {}", record.len()),
            });
            continue;
        }
        let name = DisplayName::parse(&record[0]);
        let email = Email::parse(&record[1]);
        match (name, email) {
            (Ok(name), Ok(email)) => {
                if let Some(earlier) = rows.iter().find(|r| r.email.key() == email.key()) {
                    errors.push(RosterError {
                        line,
                        message: format!(
                            "{} appears already on line {}",
                            email.as_str(),
                            earlier.line
                        ),
                    });
                } else {
                    rows.push(RosterRow { line, name, email });
                }
            }
            (Err(message), _) | (_, Err(message)) => errors.push(RosterError {
                line,
                message: message.to_owned(),
            }),
        }
    }
    if rows.is_empty() && errors.is_empty() {
        errors.push(RosterError {
            line: 1,
            message: "The file has no names and email addresses".into(),
        });
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_roster_with_or_without_a_header_is_read() {
        let rows =
            parse_roster(b"name,email\nAnn Lee,ann@example.org\n\"Bo, Jr\",bo@example.org\n")
                .expect("valid");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].name.as_str(), "Bo, Jr");
        assert_eq!(rows[1].line, 3);
        let rows = parse_roster("Zoë Zimmer , zoe@example.org\r\n".as_bytes()).expect("valid");
        assert_eq!(rows[0].name.as_str(), "Zoë Zimmer");
    }

    #[test]
    fn every_bad_line_is_named() {
        let errors = parse_roster(
            b"name,email\nAnn,ann@example.org\nBob,not-an-email\nCy\nAnn Again,ANN@example.org\n",
        )
        .expect_err("invalid");
        let lines: Vec<u64> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [3, 4, 5]);
        assert_eq!(errors[1].message, "Expected 2 values (name,email), found 1");
        assert!(errors[2].message.contains("already on line 2"));
    }

    #[test]
    fn an_empty_file_is_refused() {
        assert!(parse_roster(b"name,email\n").is_err());
        assert!(parse_roster(b"\xff\xfe").is_err());
    }

    #[test]
    fn row_problems_name_the_line_and_the_address() {
        let rows = parse_roster(b"Ann Lee,ann@example.org\n").expect("valid");
        let error = RosterError::already_enrolled(&rows[0]);
        assert_eq!(error.line, 1);
        assert_eq!(
            error.message,
            "ann@example.org is already enrolled in this cohort"
        );
    }

    #[test]
    fn cohort_dates_must_be_in_order() {
        let errors = NewCohort::parse("Autumn", "2026-09-01", "2026-08-01").expect_err("invalid");
        assert_eq!(
            errors.get("ends_on"),
            Some("The end date must be on or after the start date")
        );
        assert!(NewCohort::parse("Autumn", "2026-09-01", "2027-07-31").is_ok());
        assert!(
            NewCohort::parse(" ", "x", "")
                .expect_err("invalid")
                .items
                .len()
                == 3
        );
    }
}
