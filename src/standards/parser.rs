//! Parser for the plain-text format in which UK National Occupational Standards are published.
//!
//! The format, in order: an optional title line, an `Overview` heading with paragraphs, a
//! `Performance criteria` heading with an optional lead-in line ("You must be able to:") and a
//! numbered list, a `Knowledge and understanding` heading with its lead-in and numbered list,
//! the title line (when it did not open the file), and a block of `key<TAB>value` metadata lines.
//!
//! The parser is a pure function so every quirk of real files (CRLF, stray blank lines,
//! trailing spaces, `1.` or `1)` numbering, lettered sub-items, wrapped lines) is unit-tested
//! here, and a malformed file is rejected with the line number and what was expected there.

use std::fmt;

use super::model::CriterionKind;

/// A standard as read from its published text, before it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedStandard {
    pub urn: String,
    pub version: String,
    pub title: String,
    /// Overview paragraphs; lines wrapped inside a paragraph are joined with a space.
    pub overview: Vec<String>,
    /// Performance criteria first, then knowledge items, each in published order.
    pub criteria: Vec<ParsedCriterion>,
    /// Every metadata line, in published order.
    pub metadata: Vec<(String, String)>,
}

/// One numbered item of a criteria list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedCriterion {
    pub kind: CriterionKind,
    /// 1-based number as published.
    pub position: i32,
    /// The item's text; lettered sub-items follow on their own lines.
    pub text: String,
}

impl ParsedCriterion {
    /// The code people use for the criterion: `PC3`, `K12`.
    pub fn code(&self) -> String {
        format!("{}{}", self.kind.code_prefix(), self.position)
    }
}

impl ParsedStandard {
    /// The value of a metadata field, matched without regard to case.
    pub fn metadata_value(&self, key: &str) -> Option<&str> {
        self.metadata
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a text is not a standard: the 1-based line where parsing stopped and what it expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub expected: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: expected {}", self.line, self.expected)
    }
}

impl std::error::Error for ParseError {}

const OVERVIEW: &str = "Overview";
const PERFORMANCE_HEADING: &str = "Performance criteria";
const KNOWLEDGE_HEADING: &str = "Knowledge and understanding";
const URN_KEYS: [&str; 2] = ["Original URN", "URN"];
const VERSION_KEYS: [&str; 2] = ["Version Number", "Version"];

/// Parses a standard published in the NOS plain-text format.
///
/// # Errors
/// A [`ParseError`] naming the first line that does not fit the format.
pub fn parse(input: &str) -> Result<ParsedStandard, ParseError> {
    let lines: Vec<Line<'_>> = input
        .trim_start_matches('\u{feff}')
        .lines()
        .enumerate()
        .map(|(i, raw)| Line::new(i + 1, raw))
        .collect();
    let mut cursor = Cursor {
        lines: &lines,
        at: 0,
    };

    let top_title = cursor.title_before_overview()?;
    let overview = cursor.overview()?;
    let performance = cursor.numbered_list(CriterionKind::Performance, Some(KNOWLEDGE_HEADING))?;
    let knowledge = cursor.numbered_list(CriterionKind::Knowledge, None)?;
    let title = match top_title {
        Some(title) => title,
        None => cursor.closing_title()?,
    };
    let metadata = cursor.metadata()?;

    let end_line = lines.len() + 1;
    let required = |keys: [&str; 2]| {
        metadata
            .iter()
            .find(|(k, _)| keys.iter().any(|key| k.eq_ignore_ascii_case(key)))
            .map(|(_, v)| v.clone())
            .ok_or_else(|| ParseError {
                line: end_line,
                expected: format!("a metadata line \"{}<TAB>…\"", keys[0]),
            })
    };
    let urn = required(URN_KEYS)?;
    let version = required(VERSION_KEYS)?;

    Ok(ParsedStandard {
        urn,
        version,
        title,
        overview,
        criteria: performance.into_iter().chain(knowledge).collect(),
        metadata,
    })
}

/// A line with its number, its trailing white space and line ending removed.
#[derive(Debug, Clone, Copy)]
struct Line<'a> {
    number: usize,
    text: &'a str,
}

impl<'a> Line<'a> {
    fn new(number: usize, raw: &'a str) -> Self {
        Self {
            number,
            text: raw.trim_end(),
        }
    }

    fn is_blank(&self) -> bool {
        self.text.trim().is_empty()
    }

    fn trimmed(&self) -> &'a str {
        self.text.trim()
    }

    fn is_heading(&self, heading: &str) -> bool {
        self.trimmed().eq_ignore_ascii_case(heading)
    }
}

struct Cursor<'l, 'a> {
    lines: &'l [Line<'a>],
    at: usize,
}

impl<'a> Cursor<'_, 'a> {
    fn peek(&self) -> Option<Line<'a>> {
        self.lines.get(self.at).copied()
    }

    fn skip_blank(&mut self) {
        while self.peek().is_some_and(|l| l.is_blank()) {
            self.at += 1;
        }
    }

    /// The line number to blame when the text ended too early.
    fn end_line(&self) -> usize {
        self.lines.len() + 1
    }

    fn error_here(&self, expected: impl Into<String>) -> ParseError {
        ParseError {
            line: self.peek().map_or_else(|| self.end_line(), |l| l.number),
            expected: expected.into(),
        }
    }

    /// Some publications open with the title; the rest put it after the knowledge list.
    fn title_before_overview(&mut self) -> Result<Option<String>, ParseError> {
        self.skip_blank();
        let line = self
            .peek()
            .ok_or_else(|| self.error_here(format!("the \"{OVERVIEW}\" heading")))?;
        if line.is_heading(OVERVIEW) {
            return Ok(None);
        }
        self.at += 1;
        self.skip_blank();
        match self.peek() {
            Some(next) if next.is_heading(OVERVIEW) => Ok(Some(line.trimmed().to_owned())),
            _ => Err(self.error_here(format!("the \"{OVERVIEW}\" heading"))),
        }
    }

    fn overview(&mut self) -> Result<Vec<String>, ParseError> {
        // Positioned on the heading by `title_before_overview`.
        self.at += 1;
        let mut paragraphs: Vec<String> = Vec::new();
        let mut in_paragraph = false;
        loop {
            let Some(line) = self.peek() else {
                return Err(self.error_here(format!("the \"{PERFORMANCE_HEADING}\" heading")));
            };
            if line.is_heading(PERFORMANCE_HEADING) {
                break;
            }
            self.at += 1;
            if line.is_blank() {
                in_paragraph = false;
            } else if in_paragraph {
                let paragraph = paragraphs.last_mut().expect("in a paragraph");
                paragraph.push(' ');
                paragraph.push_str(line.trimmed());
            } else {
                paragraphs.push(line.trimmed().to_owned());
                in_paragraph = true;
            }
        }
        if paragraphs.is_empty() {
            return Err(self.error_here("at least one overview paragraph before this heading"));
        }
        Ok(paragraphs)
    }

    /// Reads a criteria list from its heading to the line after its last item.
    ///
    /// `next_heading` is the heading that must follow the list; `None` for the last list, which
    /// is followed by the title or the metadata.
    fn numbered_list(
        &mut self,
        kind: CriterionKind,
        next_heading: Option<&str>,
    ) -> Result<Vec<ParsedCriterion>, ParseError> {
        let heading = kind.published_heading();
        self.skip_blank();
        match self.peek() {
            Some(line) if line.is_heading(heading) => self.at += 1,
            _ => return Err(self.error_here(format!("the \"{heading}\" heading"))),
        }
        self.skip_blank();
        // The lead-in sentence ("You must be able to:") is part of the format, not a criterion.
        if self
            .peek()
            .is_some_and(|l| l.trimmed().ends_with(':') && item_number(l.trimmed()).is_none())
        {
            self.at += 1;
        }

        let mut items: Vec<ParsedCriterion> = Vec::new();
        let mut after_blank = true;
        while let Some(line) = self.peek() {
            if line.is_blank() {
                after_blank = true;
                self.at += 1;
                continue;
            }
            let text = line.trimmed();
            if let Some((number, rest)) = item_number(text) {
                let expected = items.len() + 1;
                if number != expected || rest.is_empty() {
                    return Err(self.error_here(format!(
                        "item {expected} of the {} list, numbered \"{expected}.\"",
                        kind.label()
                    )));
                }
                items.push(ParsedCriterion {
                    kind,
                    position: i32::try_from(number)
                        .map_err(|_| self.error_here("a smaller item number"))?,
                    text: rest.to_owned(),
                });
            } else if let Some(item) = items.last_mut().filter(|_| is_sub_item(text)) {
                item.text.push('\n');
                item.text.push_str(text);
            } else if let Some(item) = items.last_mut().filter(|_| !after_blank) {
                // A long item wrapped onto the next line.
                item.text.push(' ');
                item.text.push_str(text);
            } else {
                break;
            }
            after_blank = false;
            self.at += 1;
        }

        if items.is_empty() {
            return Err(self.error_here(format!(
                "item 1 of the {} list, numbered \"1.\"",
                kind.label()
            )));
        }
        if let Some(heading) = next_heading {
            self.skip_blank();
            if !self.peek().is_some_and(|l| l.is_heading(heading)) {
                return Err(self.error_here(format!(
                    "item {} of the {} list or the \"{heading}\" heading",
                    items.len() + 1,
                    kind.label()
                )));
            }
        }
        Ok(items)
    }

    fn closing_title(&mut self) -> Result<String, ParseError> {
        self.skip_blank();
        match self.peek() {
            Some(line) if !line.text.contains('\t') => {
                self.at += 1;
                Ok(line.trimmed().to_owned())
            }
            _ => Err(self.error_here("the standard's title on a line of its own")),
        }
    }

    fn metadata(&mut self) -> Result<Vec<(String, String)>, ParseError> {
        let mut fields: Vec<(String, String)> = Vec::new();
        while let Some(line) = self.peek() {
            if !line.is_blank() {
                match line.trimmed().split_once('\t') {
                    Some((key, value)) if !key.trim().is_empty() => {
                        fields.push((key.trim().to_owned(), value.trim().to_owned()));
                    }
                    // A long value (occupations, keywords) wrapped onto the next line.
                    None if !fields.is_empty() => {
                        let value = &mut fields.last_mut().expect("not empty").1;
                        value.push(' ');
                        value.push_str(line.trimmed());
                    }
                    _ => return Err(self.error_here("a metadata line \"key<TAB>value\"")),
                }
            }
            self.at += 1;
        }
        if fields.is_empty() {
            return Err(self.error_here("the metadata block of \"key<TAB>value\" lines"));
        }
        Ok(fields)
    }
}

/// `"3. text"`, `"3) text"` or `"3 ) text"` → `(3, "text")`.
fn item_number(text: &str) -> Option<(usize, &str)> {
    let digits_end = text.find(|c: char| !c.is_ascii_digit())?;
    if digits_end == 0 {
        return None;
    }
    let number = text[..digits_end].parse().ok()?;
    let rest = text[digits_end..].trim_start();
    let rest = rest.strip_prefix('.').or_else(|| rest.strip_prefix(')'))?;
    // "1.5 metres" is not an item: the marker must be followed by white space or nothing.
    if !(rest.is_empty() || rest.starts_with(char::is_whitespace)) {
        return None;
    }
    Some((number, rest.trim()))
}

/// Lettered or roman sub-items (`a.`, `b)`, `(c)`, `iv.`) and bullets belong to the item above.
fn is_sub_item(text: &str) -> bool {
    if let Some(rest) = text.strip_prefix(['-', '•', '*', '–']) {
        return rest.starts_with(char::is_whitespace);
    }
    let body = text.strip_prefix('(').unwrap_or(text);
    let marker_end = body
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(body.len());
    let marker = &body[..marker_end];
    let is_marker = marker.len() == 1 && marker.chars().all(|c| c.is_ascii_lowercase())
        || !marker.is_empty() && marker.chars().all(|c| "ivxlc".contains(c));
    let rest = &body[marker_end..];
    is_marker && (rest.starts_with(". ") || rest.starts_with(") ") || rest == "." || rest == ")")
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUNDLED: &str = include_str!("TECIT50761.txt");

    fn texts(parsed: &ParsedStandard, kind: CriterionKind) -> Vec<&str> {
        parsed
            .criteria
            .iter()
            .filter(|c| c.kind == kind)
            .map(|c| c.text.as_str())
            .collect()
    }

    /// A small standard in the published layout, to be varied by each test.
    fn sample(pcs: usize) -> String {
        let mut text = String::from(
            "\nOverview\n\nFirst paragraph.\n\nPerformance criteria\n\nYou must be able to:\n\n",
        );
        for n in 1..=pcs {
            text.push_str(&format!("{n}. do thing {n}\n"));
        }
        text.push_str("\nKnowledge and understanding\n\nYou need to know and understand:\n\n1. fact one\n2. fact two\n\nA small standard\n\n");
        text.push_str("Developed by\tSomeone\nVersion Number\t2\nOriginal URN\tABC123\n");
        text
    }

    #[test]
    fn the_bundled_standard_has_nine_performance_criteria_and_twelve_knowledge_items() {
        let parsed = parse(BUNDLED).expect("bundled standard parses");
        assert_eq!(parsed.urn, "TECIT50761");
        assert_eq!(parsed.version, "1");
        assert_eq!(parsed.title, "Lead DevOps activities");
        let pcs = texts(&parsed, CriterionKind::Performance);
        let ks = texts(&parsed, CriterionKind::Knowledge);
        assert_eq!(pcs.len(), 9);
        assert_eq!(ks.len(), 12);
        assert_eq!(
            pcs[0],
            "direct all aspects of rapid digital delivery activities using DevOps to ensure consistent, reliable and secure operations"
        );
        assert_eq!(
            pcs[8],
            "champion a culture of continuous improvement in DevOps activities to support changing business requirements"
        );
        assert_eq!(
            ks[0],
            "the DevOps strategies that are required to meet organisational needs"
        );
        assert_eq!(
            ks[11],
            "how to apply continuous improvement to DevOps activities"
        );
        let codes: Vec<String> = parsed.criteria.iter().map(ParsedCriterion::code).collect();
        assert_eq!(codes.first().map(String::as_str), Some("PC1"));
        assert_eq!(codes.get(9).map(String::as_str), Some("K1"));
        assert_eq!(codes.last().map(String::as_str), Some("K12"));
    }

    #[test]
    fn every_criterion_text_of_the_bundled_standard_is_a_published_line_word_for_word() {
        let parsed = parse(BUNDLED).expect("bundled standard parses");
        for criterion in &parsed.criteria {
            let published = format!("{}. {}", criterion.position, criterion.text);
            assert!(
                BUNDLED.lines().any(|line| line == published),
                "{} is not a line of the published file",
                criterion.code()
            );
        }
    }

    #[test]
    fn the_bundled_overview_has_its_three_paragraphs() {
        let parsed = parse(BUNDLED).expect("bundled standard parses");
        assert_eq!(parsed.overview.len(), 3);
        assert!(parsed.overview[0].starts_with("DevOps covers the competencies"));
        assert!(parsed.overview[2].ends_with("delivery capability using DevOps."));
    }

    #[test]
    fn every_metadata_field_of_the_bundled_standard_is_read() {
        let parsed = parse(BUNDLED).expect("bundled standard parses");
        let expected = [
            ("Developed by", "e-skills"),
            ("Version Number", "1"),
            ("Date Approved", "March 2016"),
            ("Indicative Review Date", "April 2019"),
            ("Validity", "Current"),
            ("Status", "Original"),
            ("Originating Organisation", "The Tech Partnership"),
            ("Original URN", "TECIT50761"),
            (
                "Relevant Occupations",
                "Information and Communication Technology; Information and Communication Technology Officer; Information and Communication Technology Professionals",
            ),
            ("Suite", "IT and Telecoms"),
            ("Keywords", "DevOps, digital delivery"),
        ];
        let actual: Vec<(&str, &str)> = parsed
            .metadata
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(actual, expected);
    }

    #[test]
    fn crlf_line_endings_and_trailing_spaces_parse_the_same() {
        let lf = parse(BUNDLED).expect("LF parses");
        let crlf_text = BUNDLED.replace('\n', "  \r\n");
        let crlf = parse(&crlf_text).expect("CRLF parses");
        assert_eq!(lf, crlf);
    }

    #[test]
    fn any_number_of_criteria_is_read() {
        let parsed = parse(&sample(14)).expect("parses");
        assert_eq!(texts(&parsed, CriterionKind::Performance).len(), 14);
        assert_eq!(parsed.criteria[13].code(), "PC14");
        assert_eq!(parsed.criteria[13].text, "do thing 14");
        assert_eq!(texts(&parsed, CriterionKind::Knowledge).len(), 2);
        assert_eq!(parsed.urn, "ABC123");
        assert_eq!(parsed.version, "2");
        assert_eq!(parsed.title, "A small standard");
    }

    #[test]
    fn parenthesis_numbering_and_stray_blank_lines_are_accepted() {
        let text = sample(3)
            .replace("1. do", "1) do")
            .replace("2. do thing 2\n", "\n\n2) do thing 2\n\n");
        let parsed = parse(&text).expect("parses");
        assert_eq!(
            texts(&parsed, CriterionKind::Performance),
            ["do thing 1", "do thing 2", "do thing 3"]
        );
    }

    #[test]
    fn lettered_sub_items_stay_inside_their_item() {
        let text = sample(3).replace(
            "2. do thing 2\n",
            "2. do thing 2, including:\n   a. the first part\n   b) the second part\n   (c) the third part\n",
        );
        let parsed = parse(&text).expect("parses");
        let pcs = texts(&parsed, CriterionKind::Performance);
        assert_eq!(pcs.len(), 3);
        assert_eq!(
            pcs[1],
            "do thing 2, including:\na. the first part\nb) the second part\n(c) the third part"
        );
        assert_eq!(pcs[2], "do thing 3");
    }

    #[test]
    fn a_wrapped_item_line_is_joined_to_its_item() {
        let text = sample(2).replace("1. do thing 1\n", "1. do thing 1 over\n   two lines\n");
        let parsed = parse(&text).expect("parses");
        assert_eq!(parsed.criteria[0].text, "do thing 1 over two lines");
    }

    #[test]
    fn non_ascii_text_is_kept_as_written() {
        let text = sample(2).replace("do thing 1", "gérer les risques — «sécurité» 安全");
        let parsed = parse(&text).expect("parses");
        assert_eq!(
            parsed.criteria[0].text,
            "gérer les risques — «sécurité» 安全"
        );
    }

    #[test]
    fn a_title_at_the_top_is_accepted() {
        let text = sample(2).replace("\nA small standard\n", "");
        let text = format!("A small standard\n{text}");
        let parsed = parse(&text).expect("parses");
        assert_eq!(parsed.title, "A small standard");
        assert_eq!(parsed.metadata.len(), 3);
    }

    #[test]
    fn a_missing_knowledge_section_names_its_line() {
        let text =
            "Overview\n\nText.\n\nPerformance criteria\n\n1. do\n\nTitle\n\nOriginal URN\tX\n";
        let error = parse(text).expect_err("must fail");
        assert_eq!(error.line, 9);
        assert!(
            error.expected.contains("Knowledge and understanding"),
            "{error}"
        );
    }

    #[test]
    fn a_missing_overview_names_the_end_of_the_text() {
        let error = parse("").expect_err("must fail");
        assert_eq!(
            error,
            ParseError {
                line: 1,
                expected: "the \"Overview\" heading".into()
            }
        );
        let error = parse("Title\nSomething else\nOverview\n").expect_err("must fail");
        assert_eq!(error.line, 2);
    }

    #[test]
    fn a_missing_performance_list_is_reported() {
        let text = "Overview\n\nText.\n\nPerformance criteria\n\nYou must be able to:\n\nKnowledge and understanding\n";
        let error = parse(text).expect_err("must fail");
        assert_eq!(error.line, 9);
        assert!(
            error
                .expected
                .contains("item 1 of the performance criteria"),
            "{error}"
        );
    }

    #[test]
    fn a_gap_in_the_numbering_names_the_item_expected() {
        let text = sample(4).replace("3. do thing 3\n", "");
        let error = parse(&text).expect_err("must fail");
        assert_eq!(error.line, 12);
        assert_eq!(
            error.expected,
            "item 3 of the performance criteria list, numbered \"3.\""
        );
    }

    #[test]
    fn missing_metadata_and_missing_urn_are_reported() {
        let text = sample(2);
        let cut = text.find("Developed by").expect("metadata present");
        let error = parse(&text[..cut]).expect_err("must fail");
        assert!(error.expected.contains("metadata block"), "{error}");

        let without_urn = text.replace("Original URN\tABC123\n", "");
        let error = parse(&without_urn).expect_err("must fail");
        assert_eq!(error.line, without_urn.lines().count() + 1);
        assert_eq!(error.expected, "a metadata line \"Original URN<TAB>…\"");
    }

    #[test]
    fn an_error_reads_as_line_and_expectation() {
        let error = ParseError {
            line: 7,
            expected: "the \"Overview\" heading".into(),
        };
        assert_eq!(
            error.to_string(),
            "line 7: expected the \"Overview\" heading"
        );
    }

    #[test]
    fn item_numbers_need_a_marker_and_a_space() {
        assert_eq!(item_number("12. text"), Some((12, "text")));
        assert_eq!(item_number("3) text"), Some((3, "text")));
        assert_eq!(item_number("1.5 metres of cable"), None);
        assert_eq!(item_number("2019 was a year"), None);
        assert_eq!(item_number("a. text"), None);
    }

    #[test]
    fn sub_item_markers_are_recognised() {
        for marker in ["a. x", "b) x", "(c) x", "iv. x", "- x", "• x"] {
            assert!(is_sub_item(marker), "{marker}");
        }
        for text in ["and more", "Lead DevOps activities", "ab. x", "-x"] {
            assert!(!is_sub_item(text), "{text}");
        }
    }
}
