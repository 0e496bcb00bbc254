//! Judging evidence: for each criterion a submitted version claims, the enrolment's assessor
//! records met or not met, with feedback (required when not met) and the five VACSR checks
//! (all required for met). One submit writes all judgements of the version in one transaction;
//! judgements are appended, the latest of a claim counts.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::audit::{self, Actor, NewAuditEvent};
use crate::auth::csrf::CsrfForm;
use crate::cohorts::db::{self as cohorts_db, Enrolment};
use crate::error::{AppError, AppResult};
use crate::evidence::comments;
use crate::evidence::db as evidence_db;
use crate::evidence::judgements::{JudgementInput, VACSR, parse};
use crate::evidence::views::EvidenceShowPage;
use crate::forms::FormErrors;
use crate::identity::{CurrentUser, Viewer};
use crate::ids::{EnrolmentId, EvidenceId};
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
    Path(id): Path<EvidenceId>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> AppResult<Response> {
    let mut tx = state.pool.begin().await?;
    let by = Actor::user(&user, ip);
    let read = |claims: &[(Uuid, String)]| parse(claims, &pairs);
    let field = |wanted: &str| {
        pairs
            .iter()
            .find(|(name, _)| name == wanted)
            .map(|(_, value)| value.as_str())
    };
    let seen = field(SEEN_FIELD).and_then(|value| value.parse().ok());
    let overall = field(OVERALL_FIELD).unwrap_or_default().to_owned();
    let judging = judge_version(&mut tx, user.viewer(), &by, id, seen, &overall, read).await?;
    let inputs = match judging {
        Judging::Saved(inputs) => inputs,
        Judging::Refused(inputs, errors) => {
            // End the transaction, and its lock on the enrolment, before the page reads.
            drop(tx);
            let typed = (inputs, errors);
            let refused = (typed, overall);
            return judgements_refused(&state, &standards, &user, layout, id, refused).await;
        }
        Judging::AlreadyJudged => {
            return Ok(flash::redirect(
                &format!("/evidence/{id}"),
                "These judgements were saved already: the form was sent twice, or from a page drawn before the last judging. Nothing was saved again.",
            ));
        }
    };
    tx.commit().await?;
    Ok(flash::redirect(
        &format!("/evidence/{id}"),
        &saved_summary(&inputs),
    ))
}

/// What the assessor is told once judgements are stored: each decision, by criterion.
fn saved_summary(saved: &[JudgementInput]) -> String {
    let decisions: Vec<String> = saved
        .iter()
        .map(|i| {
            let decision = if i.met == Some(true) {
                "met"
            } else {
                "not met"
            };
            format!("{} {decision}", i.code)
        })
        .collect();
    format!("Saved: {}.", decisions.join(", "))
}

/// The judging form's hidden field: how many judgements the version had when the form was
/// drawn.
pub const SEEN_FIELD: &str = "judgements_seen";

/// The judging form's overall feedback on the piece: added to its conversation.
pub const OVERALL_FIELD: &str = "overall";

/// What judging a version came to.
#[derive(Debug)]
pub enum Judging {
    /// Stored, with the enrolment's status and the audit event: the decisions made (claims
    /// left for later are not among them).
    Saved(Vec<JudgementInput>),
    /// Refused: the judgements as typed, with their problems. Nothing written.
    Refused(Vec<JudgementInput>, FormErrors),
    /// The version was judged after the form was drawn: the same submission sent twice, or a
    /// form from an older page. Nothing written.
    AlreadyJudged,
}

/// Judges evidence version `id` as `who`, its enrolment's assessor, in the caller's
/// transaction: `read` makes one judgement of each claim (criterion id, code) of the version,
/// with the problems found. Stores them with the enrolment's status and the audit event, or
/// returns them with their problems (nothing written). `seen`, when given, is how many
/// judgements the version had when the form was drawn: if it has more now, nothing is written.
/// `overall`, when not blank, is feedback on the whole piece, added to its conversation.
pub async fn judge_version(
    conn: &mut PgConnection,
    who: Viewer<'_>,
    by: &Actor,
    id: EvidenceId,
    seen: Option<i64>,
    overall: &str,
    read: impl FnOnce(&[(Uuid, String)]) -> (Vec<JudgementInput>, FormErrors),
) -> AppResult<Judging> {
    let enrolment = enrolment_as_assessor(&mut *conn, id, who).await?;
    let evidence = lock_current_version(&mut *conn, id, who, &enrolment).await?;
    if let Some(seen) = seen
        && evidence_db::count_judgements(&mut *conn, id).await? != seen
    {
        return Ok(Judging::AlreadyJudged);
    }
    let claims = evidence_db::list_claims(&mut *conn, id).await?;
    let claim_ids: Vec<(Uuid, String)> = claims
        .into_iter()
        .map(|c| (c.criterion_id, c.code))
        .collect();
    let (inputs, mut errors) = read(&claim_ids);
    let overall = overall.trim();
    if !overall.is_empty() {
        errors.extend(comments::check(overall, OVERALL_FIELD));
    }
    if !errors.is_empty() {
        return Ok(Judging::Refused(inputs, errors));
    }
    let decided: Vec<JudgementInput> = inputs.into_iter().filter(|i| i.met.is_some()).collect();
    evidence_db::insert_judgements(&mut *conn, id, who.id, &decided).await?;
    if !overall.is_empty() {
        let item = evidence.item_id;
        evidence_db::insert_comment(&mut *conn, item, id, who.id, "assessor", overall).await?;
    }
    crate::status::db::refresh(&mut *conn, enrolment.id).await?;
    audit_judgements(conn, by, id, enrolment.id, &decided, overall).await?;
    Ok(Judging::Saved(decided))
}

/// The enrolment of evidence version `id` if `user` is its assessor; otherwise not found, as
/// for a version that does not exist.
pub(super) async fn enrolment_as_assessor(
    conn: &mut PgConnection,
    id: EvidenceId,
    user: Viewer<'_>,
) -> AppResult<Enrolment> {
    let evidence = evidence_db::find_visible(conn, id, user)
        .await?
        .ok_or(AppError::NotFound)?;
    let enrolment = cohorts_db::find_visible(conn, evidence.enrolment_id, user)
        .await?
        .ok_or(AppError::NotFound)?;
    // Only the enrolment's own assessor, and never on their own evidence.
    if enrolment.assessor_id != Some(user.id) || enrolment.is_candidate(user.id) {
        return Err(AppError::NotFound);
    }
    Ok(enrolment)
}

/// Takes the enrolment's assessment and status locks (held until the transaction ends) and,
/// under them, refuses unless version `id` is still a current submitted version of an
/// enrolment that is not withdrawn. Returns the version as read under the locks.
async fn lock_current_version(
    conn: &mut PgConnection,
    id: EvidenceId,
    user: Viewer<'_>,
    enrolment: &Enrolment,
) -> AppResult<evidence_db::Evidence> {
    // Shares the lock a sign-off takes exclusively. Then the status lock, which a submission
    // holds until it commits: a version read as current under it stays current until this
    // transaction ends, and two submissions of one judging form take turns here, the second
    // seeing the first's judgements.
    cohorts_db::lock_for_assessment(&mut *conn, enrolment.id).await?;
    crate::status::db::lock(&mut *conn, enrolment.id).await?;
    let evidence = evidence_db::find_visible(conn, id, user)
        .await?
        .ok_or(AppError::NotFound)?;
    if evidence.is_draft() || evidence.superseded || enrolment.is_withdrawn() {
        return Err(AppError::Conflict(
            "This version can no longer be judged: a newer version was submitted, or the enrolment was withdrawn.".into(),
        ));
    }
    Ok(evidence)
}

/// The evidence page of version `id` again with 422, showing the judgements and the overall
/// feedback as typed, and their problems.
async fn judgements_refused(
    state: &AppState,
    standards: &Standards,
    user: &CurrentUser,
    layout: Layout,
    id: EvidenceId,
    (typed, overall): ((Vec<JudgementInput>, FormErrors), String),
) -> AppResult<Response> {
    let mut page = EvidenceShowPage::build(state, standards, user, layout, id, Some(typed)).await?;
    if let Some(form) = page.judging.as_mut() {
        form.overall = overall;
    }
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

/// Records the judgements of evidence version `evidence`, of enrolment `enrolment_id`, and the
/// overall feedback added to its conversation (if any), in the audit chain.
async fn audit_judgements(
    conn: &mut PgConnection,
    actor: &Actor,
    evidence: EvidenceId,
    enrolment_id: EnrolmentId,
    inputs: &[JudgementInput],
    overall: &str,
) -> sqlx::Result<()> {
    audit::record(
        conn,
        NewAuditEvent {
            actor,
            action: "evidence.judged",
            entity_type: "evidence",
            entity_id: evidence.to_string(),
            detail: json!({
                "enrolment_id": enrolment_id,
                "judgements": inputs.iter().map(judgement_detail).collect::<Vec<_>>(),
                "overall_feedback": overall,
            }),
        },
    )
    .await
}

/// One judgement as its audit event records it: the criterion's code, the decision, the
/// feedback and the names of the VACSR checks ticked.
fn judgement_detail(input: &JudgementInput) -> serde_json::Value {
    let checks: Vec<&str> = VACSR
        .iter()
        .zip(input.checks)
        .filter(|(_, ticked)| *ticked)
        .map(|((name, _), _)| *name)
        .collect();
    json!({
        "criterion": input.code,
        "met": input.met,
        "feedback": input.feedback,
        "checks": checks,
    })
}
