//! Reversing a met that was kept: when a candidate revises evidence, what the earlier version
//! met stays met. The enrolment's assessor can reverse that decision, giving the reason; the
//! reversal is a judgement like any other (not met, the reason as its feedback) on the
//! earlier version's claim, and the criterion's status follows the rule again.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use super::judging::enrolment_as_assessor;
use crate::audit::{self, Actor, NewAuditEvent};
use crate::auth::csrf::CsrfForm;
use crate::cohorts::db::{self as cohorts_db, Enrolment};
use crate::error::{AppError, AppResult};
use crate::evidence::db::{self as evidence_db, Claim, Evidence, LatestJudgement};
use crate::forms::FormErrors;
use crate::identity::{CurrentUser, Viewer};
use crate::ids::EvidenceId;
use crate::state::AppState;
use crate::web::client_ip::ClientIp;
use crate::web::flash;
use crate::web::layout::Layout;

/// The longest reason kept.
const REASON_MAX_CHARS: usize = 4000;

#[derive(Template, WebTemplate)]
#[template(path = "assessments/reverse.html")]
pub struct ReversePage {
    pub layout: Layout,
    pub enrolment: Enrolment,
    pub evidence: Evidence,
    pub claim: Claim,
    pub judgement: LatestJudgement,
    pub reason: String,
    pub errors: FormErrors,
}

/// A met decision the assessor may reverse: of a superseded version, still met.
struct Reversible {
    enrolment: Enrolment,
    evidence: Evidence,
    claim: Claim,
    judgement: LatestJudgement,
}

/// Why a decision cannot be reversed, in the words the assessor is shown.
const NOT_REVERSIBLE: &str = "Only a met decision on an earlier version, kept after a revision, is reversed here. \
     This one is not met now, or its version is the current one: judge the current version on its own page.";

/// The kept met of criterion `criterion` on version `id` of `enrolment`, which `who` assesses
/// ([`enrolment_as_assessor`]); `Ok(None)` when it cannot be reversed (not met now, current
/// version, withdrawn enrolment).
async fn reversible(
    conn: &mut PgConnection,
    who: Viewer<'_>,
    enrolment: Enrolment,
    id: EvidenceId,
    criterion: Uuid,
) -> AppResult<Option<Reversible>> {
    let evidence = evidence_db::find_visible(&mut *conn, id, who)
        .await?
        .ok_or(AppError::NotFound)?;
    let claim = evidence_db::list_claims(&mut *conn, id)
        .await?
        .into_iter()
        .find(|c| c.criterion_id == criterion)
        .ok_or(AppError::NotFound)?;
    let judgement = evidence_db::latest_judgements(&mut *conn, id)
        .await?
        .into_iter()
        .find(|j| j.criterion_id == criterion);
    Ok(match judgement {
        Some(judgement)
            if judgement.met
                && evidence.superseded
                && !evidence.is_draft()
                && !enrolment.is_withdrawn() =>
        {
            Some(Reversible {
                enrolment,
                evidence,
                claim,
                judgement,
            })
        }
        _ => None,
    })
}

/// What reversing came to.
#[derive(Debug)]
pub enum Reversal {
    /// Stored, with the enrolment's status and the audit event.
    Saved,
    /// Refused for the reason's problems. Nothing written.
    Refused(FormErrors),
}

/// Reverses, as `who` (the enrolment's assessor), the met kept on superseded version `id` for
/// `criterion`, in the caller's transaction, with `reason`. Conflict when there is no such met
/// now.
pub async fn reverse_kept(
    conn: &mut PgConnection,
    who: Viewer<'_>,
    by: &Actor,
    id: EvidenceId,
    criterion: Uuid,
    reason: &str,
) -> AppResult<Reversal> {
    let reason = reason.trim();
    let mut errors = FormErrors::default();
    if reason.is_empty() {
        errors.add("reason", "Give the reason for reversing this decision");
    } else if reason.chars().count() > REASON_MAX_CHARS {
        errors.add(
            "reason",
            format!("Keep the reason to {REASON_MAX_CHARS} characters or fewer"),
        );
    }
    // Found (or not) before the lock, so a stranger learns nothing from the problems above.
    let enrolment = enrolment_as_assessor(&mut *conn, id, who).await?;
    if !errors.is_empty() {
        return Ok(Reversal::Refused(errors));
    }
    // The lock a judgement or sign-off takes: the decision is read and reversed as one.
    cohorts_db::lock_for_assessment(&mut *conn, enrolment.id).await?;
    crate::status::db::lock(&mut *conn, enrolment.id).await?;
    let Some(found) = reversible(&mut *conn, who, enrolment.clone(), id, criterion).await? else {
        return Err(AppError::Conflict(NOT_REVERSIBLE.into()));
    };
    if super::db::standing_sign_off(&mut *conn, enrolment.id)
        .await?
        .is_some()
    {
        return Err(AppError::Conflict(
            "The candidate is signed off on this decision: it cannot be reversed while the sign-off stands.".into(),
        ));
    }
    evidence_db::insert_reversal(&mut *conn, id, criterion, who.id, reason).await?;
    crate::status::db::refresh(&mut *conn, enrolment.id).await?;
    audit::record(
        conn,
        NewAuditEvent {
            actor: by,
            action: "evidence.kept_met_reversed",
            entity_type: "evidence",
            entity_id: id.to_string(),
            detail: json!({
                "enrolment_id": enrolment.id,
                "version": found.evidence.version,
                "criterion": found.claim.code,
                "reason": reason,
            }),
        },
    )
    .await?;
    Ok(Reversal::Saved)
}

/// `GET /evidence/{id}/criteria/{criterion}/reverse`.
pub async fn show(
    State(state): State<AppState>,
    user: CurrentUser,
    layout: Layout,
    Path((id, criterion)): Path<(EvidenceId, Uuid)>,
) -> AppResult<Response> {
    page(
        &state,
        &user,
        layout,
        id,
        criterion,
        String::new(),
        FormErrors::default(),
    )
    .await
}

/// The reversal page, or back to the evidence when there is nothing to reverse now.
async fn page(
    state: &AppState,
    user: &CurrentUser,
    layout: Layout,
    id: EvidenceId,
    criterion: Uuid,
    reason: String,
    errors: FormErrors,
) -> AppResult<Response> {
    let mut conn = state.pool.acquire().await?;
    let enrolment = enrolment_as_assessor(&mut conn, id, user.viewer()).await?;
    let Some(found) = reversible(&mut conn, user.viewer(), enrolment, id, criterion).await? else {
        return Ok(flash::redirect(&format!("/evidence/{id}"), NOT_REVERSIBLE));
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let page = ReversePage {
        layout,
        enrolment: found.enrolment,
        evidence: found.evidence,
        claim: found.claim,
        judgement: found.judgement,
        reason,
        errors,
    };
    Ok((status, page).into_response())
}

#[derive(Debug, Deserialize)]
pub struct ReverseForm {
    #[serde(default)]
    reason: String,
}

/// `POST /evidence/{id}/criteria/{criterion}/reverse`.
pub async fn reverse(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    user: CurrentUser,
    layout: Layout,
    Path((id, criterion)): Path<(EvidenceId, Uuid)>,
    CsrfForm(form): CsrfForm<ReverseForm>,
) -> AppResult<Response> {
    let mut tx = state.pool.begin().await?;
    let by = Actor::user(&user, ip);
    match reverse_kept(&mut tx, user.viewer(), &by, id, criterion, &form.reason).await? {
        Reversal::Saved => {
            tx.commit().await?;
            Ok(flash::redirect(
                &format!("/evidence/{id}"),
                "Decision reversed: the criterion no longer counts as met on this version, and the reason is recorded.",
            ))
        }
        Reversal::Refused(errors) => {
            drop(tx);
            page(&state, &user, layout, id, criterion, form.reason, errors).await
        }
    }
}
