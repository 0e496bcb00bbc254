//! Web addresses: the one percent-encoding of values put into query strings.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// What a query string value keeps as it is: RFC 3986's unreserved characters, and `/` so
/// that paths passed in `next` stay readable.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// Percent-encodes a value for a query string.
pub fn encode_query_value(value: &str) -> String {
    utf8_percent_encode(value, QUERY_VALUE).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            encode_query_value("/enrolments/1?x=a b&c"),
            "/enrolments/1%3Fx%3Da%20b%26c"
        );
        assert_eq!(encode_query_value("é"), "%C3%A9");
    }
}
