//! Judgements of evidence as an assessor types them: the five checks (VACSR), one judgement
//! per claimed criterion, and the reading of the judging form. Pure rules; the judging itself
//! is `assessments::judging`.

use uuid::Uuid;

use crate::forms::FormErrors;

/// The five checks an assessor makes of evidence.
pub const VACSR: [(&str, &str); 5] = [
    ("valid", "Valid"),
    ("authentic", "Authentic"),
    ("current", "Current"),
    ("sufficient", "Sufficient"),
    ("reliable", "Reliable"),
];

/// One judgement as typed, for one claimed criterion.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JudgementInput {
    pub criterion_id: Uuid,
    pub code: String,
    /// `None` until a decision is chosen.
    pub met: Option<bool>,
    pub feedback: String,
    /// The VACSR checks ticked, in the order of [`VACSR`].
    pub checks: [bool; 5],
}

/// Reads the judging form: `decision-{criterion}` (met / not_met), `feedback-{criterion}` and
/// `check-{criterion}` (once per VACSR check ticked), for every claimed criterion.
pub fn parse(
    claims: &[(Uuid, String)],
    pairs: &[(String, String)],
) -> (Vec<JudgementInput>, FormErrors) {
    let mut errors = FormErrors::default();
    let mut inputs = Vec::with_capacity(claims.len());
    for (criterion_id, code) in claims {
        let value = |prefix: &str| {
            let key = format!("{prefix}-{criterion_id}");
            pairs
                .iter()
                .filter(move |(k, _)| *k == key)
                .map(|(_, v)| v.as_str())
        };
        let mut input = JudgementInput {
            criterion_id: *criterion_id,
            code: code.clone(),
            ..JudgementInput::default()
        };
        input.met = match value("decision").next() {
            Some("met") => Some(true),
            Some("not_met") => Some(false),
            _ => None,
        };
        input.feedback = value("feedback")
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        for ticked in value("check") {
            if let Some(i) = VACSR.iter().position(|(name, _)| *name == ticked) {
                input.checks[i] = true;
            }
        }
        match input.met {
            None => errors.add(format!("decision-{code}"), format!("{code}: choose met or not met")),
            Some(true) if !input.checks.iter().all(|c| *c) => errors.add(
                format!("checks-{code}"),
                format!("{code}: met needs all five checks: valid, authentic, current, sufficient and reliable"),
            ),
            Some(false) if input.feedback.is_empty() => {
                errors.add(format!("feedback-{code}"), format!("{code}: write feedback saying what is missing"));
            }
            _ => {}
        }
        if input.feedback.chars().count() > 5_000 {
            errors.add(
                format!("feedback-{code}"),
                format!("{code}: keep the feedback under 5,000 characters"),
            );
        }
        inputs.push(input);
    }
    (inputs, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn met_needs_all_five_checks_and_not_met_needs_feedback() {
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(2);
        let claims = [(a, "PC1".to_owned()), (b, "K2".to_owned())];
        let form = pairs(&[
            (&format!("decision-{a}"), "met"),
            (&format!("check-{a}"), "valid"),
            (&format!("decision-{b}"), "not_met"),
        ]);
        let (_, errors) = parse(&claims, &form);
        let fields: Vec<&str> = errors.items.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["checks-PC1", "feedback-K2"]);

        let mut complete = form;
        for (name, _) in VACSR {
            complete.push((format!("check-{a}"), name.to_owned()));
        }
        complete.push((
            format!("feedback-{b}"),
            "Show the risk register.".to_owned(),
        ));
        let (inputs, errors) = parse(&claims, &complete);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(inputs[0].met, Some(true));
        assert_eq!(inputs[1].feedback, "Show the risk register.");
    }

    #[test]
    fn every_claim_needs_a_decision() {
        let a = Uuid::from_u128(1);
        let (_, errors) = parse(&[(a, "PC1".to_owned())], &[]);
        assert_eq!(
            errors.get("decision-PC1"),
            Some("PC1: choose met or not met")
        );
    }
}
