//! Judging evidence: for each criterion a submitted version claims, the enrolment's assessor
//! records met or not met, with feedback (required when not met) and the five VACSR checks
//! (all required for met). One submit writes all judgements of the version in one transaction;
//! judgements are appended, the latest of a claim counts.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::audit::{self, Actor, NewAuditEvent};
use crate::auth::csrf::CsrfForm;
use crate::cohorts::db as cohorts_db;
use crate::error::{AppError, AppResult};
use crate::evidence::db as evidence_db;
use crate::forms::FormErrors;
use crate::identity::CurrentUser;
use crate::standards::cache::Standards;
use crate::state::AppState;
use crate::web::client_ip::ClientIp;
use crate::web::flash;
use crate::web::layout::Layout;

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

/// The latest judgement of a claim.
#[derive(Debug, Clone)]
pub struct LatestJudgement {
    pub criterion_id: Uuid,
    pub met: bool,
    pub feedback: String,
    pub checks: [bool; 5],
    pub assessor_name: String,
    pub created_at: OffsetDateTime,
    /// How many judgements this claim has had.
    pub count: i64,
}

/// `POST /evidence/{id}/judgements`: the enrolment's assessor judges every claim at once.
pub async fn judge(
    State(state): State<AppState>,
    standards: Standards,
    ClientIp(ip): ClientIp,
    user: CurrentUser,
    layout: Layout,
    Path(id): Path<Uuid>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> AppResult<Response> {
    let mut tx = state.pool.begin().await?;
    let evidence = evidence_db::find_visible(&mut tx, id, user.viewer())
        .await?
        .ok_or(AppError::NotFound)?;
    let enrolment = cohorts_db::find_visible(&mut tx, evidence.enrolment_id, user.viewer())
        .await?
        .ok_or(AppError::NotFound)?;
    // Only the enrolment's own assessor, and never on their own evidence.
    if enrolment.assessor_id != Some(user.id.0) || enrolment.is_candidate(user.id) {
        return Err(AppError::NotFound);
    }
    // Shares the lock a sign-off takes, and a submission too: no new version can slip in
    // between reading this one as current and writing its judgements.
    crate::cohorts::db::lock_for_assessment(&mut tx, enrolment.id).await?;
    let evidence = evidence_db::find_visible(&mut tx, id, user.viewer())
        .await?
        .ok_or(AppError::NotFound)?;
    if evidence.is_draft() || evidence.superseded || enrolment.is_withdrawn() {
        return Err(AppError::Conflict(
            "This version can no longer be judged: a newer version was submitted, or the enrolment was withdrawn.".into(),
        ));
    }
    let claims = evidence_db::list_claims(&mut tx, id).await?;
    let claim_ids: Vec<(Uuid, String)> = claims
        .iter()
        .map(|c| (c.criterion_id, c.code.clone()))
        .collect();
    let (inputs, errors) = parse(&claim_ids, &pairs);
    if !errors.is_empty() {
        drop(tx);
        let page = crate::evidence::views::EvidenceShowPage::build(
            &state,
            &standards,
            &user,
            layout,
            id,
            Some((inputs, errors)),
        )
        .await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    super::db::insert_judgements(&mut tx, id, user.id.0, &inputs).await?;
    super::db::refresh(&mut tx, enrolment.id).await?;
    audit::record(
        &mut tx,
        NewAuditEvent {
            actor: &Actor::user(&user, ip),
            action: "evidence.judged",
            entity_type: "evidence",
            entity_id: id.to_string(),
            detail: json!({
                "enrolment_id": enrolment.id,
                "judgements": inputs.iter().map(|i| json!({
                    "criterion": i.code,
                    "met": i.met,
                    "feedback": i.feedback,
                    "checks": VACSR.iter().zip(i.checks).filter(|(_, c)| *c).map(|((name, _), _)| *name).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            }),
        },
    )
    .await?;
    tx.commit().await?;
    let met = inputs.iter().filter(|i| i.met == Some(true)).count();
    Ok(flash::redirect(
        &format!("/evidence/{id}"),
        &format!("Judgements saved: {met} of {} claims met.", inputs.len()),
    ))
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
