//! Judging evidence: for each criterion a submitted version claims, the enrolment's assessor
//! records met or not met, with feedback (required when not met) and the five VACSR checks
//! (all required for met). One submit writes all judgements of the version in one transaction;
//! judgements are appended, the latest of a claim counts.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use uuid::Uuid;

use crate::audit::{self, Actor, NewAuditEvent};
use crate::auth::csrf::CsrfForm;
use crate::cohorts::db as cohorts_db;
use crate::error::{AppError, AppResult};
use crate::evidence::db as evidence_db;
use crate::evidence::judgements::{VACSR, parse};
use crate::identity::CurrentUser;
use crate::standards::cache::Standards;
use crate::state::AppState;
use crate::web::client_ip::ClientIp;
use crate::web::flash;
use crate::web::layout::Layout;

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
    evidence_db::insert_judgements(&mut tx, id, user.id.0, &inputs).await?;
    crate::status::db::refresh(&mut tx, enrolment.id).await?;
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
