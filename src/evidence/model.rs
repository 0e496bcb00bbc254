//! Evidence: its methods and states, the rules a submission must meet, file names, and the
//! digest the candidate's declaration covers.

use serde::Serialize;
use serde_json::json;
use time::Date;
use uuid::Uuid;

use crate::forms::FormErrors;
use crate::forms::parse_date;
use crate::ids::ItemId;

/// How the evidence was produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, sqlx::Type)]
#[sqlx(type_name = "assessment_method", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum AssessmentMethod {
    Observation,
    Product,
    ProfessionalDiscussion,
    QuestionAndAnswer,
    WitnessTestimony,
    ReflectiveAccount,
    RecognitionOfPriorLearning,
}

impl AssessmentMethod {
    pub const ALL: [Self; 7] = [
        Self::Observation,
        Self::Product,
        Self::ProfessionalDiscussion,
        Self::QuestionAndAnswer,
        Self::WitnessTestimony,
        Self::ReflectiveAccount,
        Self::RecognitionOfPriorLearning,
    ];

    /// The methods of records an assessor makes.
    pub const RECORDED: [Self; 3] = [
        Self::Observation,
        Self::ProfessionalDiscussion,
        Self::QuestionAndAnswer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Observation => "observation",
            Self::Product => "product",
            Self::ProfessionalDiscussion => "professional_discussion",
            Self::QuestionAndAnswer => "question_and_answer",
            Self::WitnessTestimony => "witness_testimony",
            Self::ReflectiveAccount => "reflective_account",
            Self::RecognitionOfPriorLearning => "recognition_of_prior_learning",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Observation => "Observation",
            Self::Product => "Product (work output)",
            Self::ProfessionalDiscussion => "Professional discussion",
            Self::QuestionAndAnswer => "Question and answer",
            Self::WitnessTestimony => "Witness testimony",
            Self::ReflectiveAccount => "Reflective account",
            Self::RecognitionOfPriorLearning => "Recognition of prior learning",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == text)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::Type)]
#[sqlx(type_name = "evidence_state", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum EvidenceState {
    Draft,
    Submitted,
}

/// The longest title and statement accepted.
pub const TITLE_MAX_CHARS: usize = 200;
pub const STATEMENT_MAX_BYTES: usize = 100_000;

/// The text fields of the evidence form as typed.
#[derive(Debug, Clone, Default)]
pub struct EvidenceFields {
    pub title: String,
    pub statement: String,
    pub method: String,
    pub activity_on: String,
    /// Criterion ids ticked, with the "where in the evidence" note of each.
    pub claims: Vec<(Uuid, String)>,
    pub declaration: bool,
}

impl EvidenceFields {
    /// Nothing typed, chosen or ticked (the declaration aside): a form sent as it was drawn.
    pub fn is_blank(&self) -> bool {
        [
            &self.title,
            &self.statement,
            &self.method,
            &self.activity_on,
        ]
        .iter()
        .all(|f| f.trim().is_empty())
            && self.claims.is_empty()
    }

    /// Clears a method chosen that assessors do not record, and says so.
    pub fn refuse_unrecorded_method(&mut self) -> FormErrors {
        let mut errors = FormErrors::default();
        let recorded = AssessmentMethod::parse(&self.method)
            .is_some_and(|m| AssessmentMethod::RECORDED.contains(&m));
        if !self.method.is_empty() && !recorded {
            self.method.clear();
            errors.add(
                "method",
                "Choose observation, professional discussion or question and answer",
            );
        }
        errors
    }

    /// Everything that stops these fields, with no files, from being submitted.
    pub fn submission_problems(&self, today: Date) -> FormErrors {
        let (content, mut errors) = self.draft(today);
        content.check_submission(self.claims.len(), 0, self.declaration, &mut errors);
        errors
    }
}

/// What a draft stores: whatever of the form is well-formed. Problems are returned beside it
/// so the form can show them while nothing typed or uploaded is lost.
#[derive(Debug, Clone)]
pub struct DraftContent {
    pub title: String,
    pub statement: String,
    pub method: Option<AssessmentMethod>,
    pub activity_on: Option<Date>,
}

impl EvidenceFields {
    /// The draft to store, and the problems of the fields that could not be stored as typed.
    pub fn draft(&self, today: Date) -> (DraftContent, FormErrors) {
        let mut errors = FormErrors::default();
        let title = self.title.split_whitespace().collect::<Vec<_>>().join(" ");
        let title = if title.chars().count() > TITLE_MAX_CHARS {
            errors.add(
                "title",
                format!("Use at most {TITLE_MAX_CHARS} characters for the title"),
            );
            title.chars().take(TITLE_MAX_CHARS).collect()
        } else {
            title
        };
        let method = match self.method.as_str() {
            "" => None,
            text => {
                let method = AssessmentMethod::parse(text);
                if method.is_none() {
                    errors.add("method", "Choose one of the assessment methods");
                }
                method
            }
        };
        let activity_on = match self.activity_on.trim() {
            "" => None,
            text => match parse_date(text) {
                Some(date) if date > today => {
                    errors.add("activity_on", "The activity date cannot be in the future");
                    None
                }
                Some(date) => Some(date),
                None => {
                    errors.add(
                        "activity_on",
                        "Enter the activity date as a date, like 2026-03-14",
                    );
                    None
                }
            },
        };
        let statement = self.statement.replace("\r\n", "\n");
        (
            DraftContent {
                title,
                statement,
                method,
                activity_on,
            },
            errors,
        )
    }
}

impl DraftContent {
    /// The further checks a submission must pass, given its number of claims and files.
    pub fn check_submission(
        &self,
        claims: usize,
        files: usize,
        declaration: bool,
        errors: &mut FormErrors,
    ) {
        if self.title.is_empty() {
            errors.add("title", "Enter a title for the evidence");
        }
        if self.method.is_none() && errors.get("method").is_none() {
            errors.add("method", "Choose how the evidence was produced");
        }
        if self.activity_on.is_none() && errors.get("activity_on").is_none() {
            errors.add("activity_on", "Enter the date of the activity");
        }
        if self.statement.trim().is_empty() && files == 0 {
            errors.add("statement", "Write a statement or attach at least one file");
        }
        if claims == 0 {
            errors.add("claims", "Tick at least one criterion this evidence covers");
        }
        if !declaration {
            errors.add("declaration", "Confirm that this evidence is your own work");
        }
    }
}

/// A file name fit to show and to offer in a download: no path, no control or direction
/// characters, at most 200 characters. Storage never uses it.
pub fn clean_file_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control() && !is_direction_mark(*c))
        .collect::<String>()
        .trim_matches(|c: char| c.is_whitespace() || c == '.')
        .chars()
        .take(200)
        .collect();
    if cleaned.is_empty() {
        "file".to_owned()
    } else {
        cleaned
    }
}

fn is_direction_mark(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{061c}')
}

/// What the candidate declares as their own work, bound to the exact content: SHA-256 over
/// the canonical JSON of the version's text, claims and the hashes of its files.
pub struct DeclaredContent<'a> {
    pub item_id: ItemId,
    pub version: i32,
    pub content: &'a DraftContent,
    /// (criterion code, note), in criterion order.
    pub claims: &'a [(String, String)],
    /// (file SHA-256 hex, file name), in upload order.
    pub files: &'a [(String, String)],
}

impl DeclaredContent<'_> {
    pub fn sha256(&self) -> [u8; 32] {
        let canonical = json!({
            "item_id": self.item_id,
            "version": self.version,
            "title": self.content.title,
            "statement": self.content.statement,
            "method": self.content.method,
            "activity_on": self.content.activity_on.map(|d| d.to_string()),
            "claims": self.claims,
            "files": self.files,
        });
        crate::crypto::canonical_sha256(&canonical)
    }
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    const TODAY: Date = date!(2026 - 11 - 26);

    #[test]
    fn file_names_lose_their_path_and_hidden_characters() {
        assert_eq!(clean_file_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_file_name("C:\\Users\\ann\\report.pdf"), "report.pdf");
        assert_eq!(clean_file_name("invoice\u{202e}fdp.exe"), "invoicefdp.exe");
        assert_eq!(clean_file_name("line\nbreak\t.txt"), "linebreak.txt");
        assert_eq!(clean_file_name(".."), "file");
        assert_eq!(clean_file_name("Évaluation été.pdf"), "Évaluation été.pdf");
    }

    #[test]
    fn a_draft_keeps_what_is_well_formed_and_names_the_rest() {
        let fields = EvidenceFields {
            title: "  Release   pipeline ".into(),
            statement: "Line one\r\nLine two".into(),
            method: "observation".into(),
            activity_on: "2099-01-01".into(),
            ..EvidenceFields::default()
        };
        let (draft, errors) = fields.draft(TODAY);
        assert_eq!(draft.title, "Release pipeline");
        assert_eq!(draft.statement, "Line one\nLine two");
        assert_eq!(draft.method, Some(AssessmentMethod::Observation));
        assert_eq!(draft.activity_on, None);
        assert_eq!(
            errors.get("activity_on"),
            Some("The activity date cannot be in the future")
        );
    }

    #[test]
    fn a_submission_needs_title_method_date_a_claim_content_and_the_declaration() {
        let (draft, mut errors) = EvidenceFields::default().draft(TODAY);
        draft.check_submission(0, 0, false, &mut errors);
        let fields: Vec<&str> = errors.items.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "title",
                "method",
                "activity_on",
                "statement",
                "claims",
                "declaration"
            ]
        );

        let fields = EvidenceFields {
            title: "Pipeline".into(),
            method: "product".into(),
            activity_on: "2026-11-26".into(),
            ..EvidenceFields::default()
        };
        let (draft, mut errors) = fields.draft(TODAY);
        draft.check_submission(1, 1, true, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn the_declaration_digest_changes_with_any_part_of_the_content() {
        let (content, _) = EvidenceFields {
            title: "A".into(),
            ..EvidenceFields::default()
        }
        .draft(TODAY);
        let claims = [("PC1".to_owned(), String::new())];
        let files = [("ab".to_owned(), "x.pdf".to_owned())];
        let declared = |content: &DraftContent, files: &[(String, String)]| {
            DeclaredContent {
                item_id: ItemId(Uuid::nil()),
                version: 1,
                content,
                claims: &claims,
                files,
            }
            .sha256()
        };
        let base = declared(&content, &files);
        assert_eq!(base, declared(&content, &files));
        let other_file = [("cd".to_owned(), "x.pdf".to_owned())];
        assert_ne!(base, declared(&content, &other_file));
        let (changed, _) = EvidenceFields {
            title: "B".into(),
            ..EvidenceFields::default()
        }
        .draft(TODAY);
        assert_ne!(base, declared(&changed, &files));
    }

    #[test]
    fn the_declaration_digest_is_over_rfc_8785_json() {
        let content = DraftContent {
            title: "Runbook".into(),
            statement: "I wrote it.".into(),
            method: None,
            activity_on: Some(time::macros::date!(2026 - 11 - 02)),
        };
        let claims = [("PC1".to_owned(), "Ran the incident review".to_owned())];
        let files = [("ab12".to_owned(), "runbook.pdf".to_owned())];
        let declared = DeclaredContent {
            item_id: ItemId(Uuid::nil()),
            version: 1,
            content: &content,
            claims: &claims,
            files: &files,
        };
        // `sha256sum` of {"activity_on":"2026-11-02","claims":[["PC1","Ran the incident
        // review"]],"files":[["ab12","runbook.pdf"]],"item_id":"00000000-…","method":null,
        // "statement":"I wrote it.","title":"Runbook","version":1}
        assert_eq!(
            crate::crypto::hex(&declared.sha256()),
            "572fc44a1c7acd4534727269daab608cbb1f667799dce868338a128700f9ab70"
        );
    }
}
