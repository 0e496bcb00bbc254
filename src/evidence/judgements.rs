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

/// Reads the judging form: `decision-{criterion}` (met / not_met / later), `feedback-{criterion}`
/// and `check-{criterion}` (once per VACSR check ticked), for every claimed criterion. Met is
/// one choice that records all five checks; not met needs feedback and records the checks
/// ticked; a claim left for later gets no judgement now (`met` is `None`), so some claims can be
/// judged and the rest later. At least one decision is needed.
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
        let ticked: Vec<&str> = value("check").collect();
        input.feedback = value("feedback")
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        for (i, (name, _)) in VACSR.iter().enumerate() {
            // Met means every check passed; not met records the ones ticked.
            input.checks[i] = input.met == Some(true) || ticked.contains(name);
        }
        if input.met == Some(false) && input.feedback.is_empty() {
            errors.add(
                format!("feedback-{code}"),
                format!("{code}: write feedback saying what is missing"),
            );
        }
        if input.feedback.chars().count() > 5_000 {
            errors.add(
                format!("feedback-{code}"),
                format!("{code}: keep the feedback under 5,000 characters"),
            );
        }
        inputs.push(input);
    }
    if inputs.iter().all(|i| i.met.is_none())
        && let Some(first) = inputs.first()
    {
        errors.add(
            format!("decision-{}", first.code),
            "Choose met or not met for at least one criterion; leave the others for later",
        );
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
    fn met_records_all_five_checks_and_not_met_needs_feedback() {
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(2);
        let claims = [(a, "PC1".to_owned()), (b, "K2".to_owned())];
        let form = pairs(&[
            (&format!("decision-{a}"), "met"),
            (&format!("decision-{b}"), "not_met"),
            (&format!("check-{b}"), "valid"),
        ]);
        let (_, errors) = parse(&claims, &form);
        let fields: Vec<&str> = errors.items.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["feedback-K2"]);

        let mut complete = form;
        complete.push((
            format!("feedback-{b}"),
            "Show the risk register.".to_owned(),
        ));
        let (inputs, errors) = parse(&claims, &complete);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(inputs[0].met, Some(true));
        assert_eq!(
            inputs[0].checks, [true; 5],
            "one choice records every check"
        );
        assert_eq!(inputs[1].met, Some(false));
        assert_eq!(inputs[1].checks, [true, false, false, false, false]);
        assert_eq!(inputs[1].feedback, "Show the risk register.");
    }

    #[test]
    fn claims_left_for_later_are_not_judged_but_one_decision_is_needed() {
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(2);
        let claims = [(a, "PC1".to_owned()), (b, "K2".to_owned())];
        let (inputs, errors) = parse(
            &claims,
            &pairs(&[
                (&format!("decision-{a}"), "later"),
                (&format!("decision-{b}"), "met"),
            ]),
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            inputs.iter().map(|i| i.met).collect::<Vec<_>>(),
            [None, Some(true)]
        );
        let (_, errors) = parse(&claims, &pairs(&[(&format!("decision-{a}"), "later")]));
        assert_eq!(
            errors.get("decision-PC1"),
            Some("Choose met or not met for at least one criterion; leave the others for later")
        );
    }
}
