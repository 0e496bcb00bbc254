//! What people type into forms: the messages per field when it is refused (shown in an error
//! summary at the top of the form and beside each field), and the reading of typed dates.
//! Rules in `model.rs` files use these; nothing here knows about HTTP.

use time::Date;

/// One field's problem.
#[derive(Debug, Clone)]
pub struct FieldError {
    /// The field's `id` in the page, for the summary's link.
    pub field: String,
    pub message: String,
}

/// Every problem of one submitted form, in the order of the fields.
#[derive(Debug, Clone, Default)]
pub struct FormErrors {
    pub items: Vec<FieldError>,
}

impl FormErrors {
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.items.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    /// The message for `field`, if it has one.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.items
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.message.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Adds the problems of another check of the same form, after these.
    pub fn extend(&mut self, other: FormErrors) {
        self.items.extend(other.items);
    }

    /// Records the result of a field's check.
    pub fn check<T>(
        &mut self,
        field: &'static str,
        result: Result<T, impl Into<String>>,
    ) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(message) => {
                self.add(field, message);
                None
            }
        }
    }
}

/// Reads an ISO date typed into a date field.
pub fn parse_date(text: &str) -> Option<Date> {
    Date::parse(
        text.trim(),
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()
    // Dates people mean, and that PostgreSQL can hold.
    .filter(|d| (1..=9999).contains(&d.year()))
}
