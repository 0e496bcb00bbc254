//! The conversation on a piece of evidence: its candidate, assessor and IQA write comments on
//! any submitted version; every version's page shows the whole conversation, and so does the
//! form revising it. Admins read it; they do not take part.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use sqlx::PgConnection;

use super::db::{self, Evidence};
use super::views::EvidenceShowPage;
use crate::audit::{self, Actor, NewAuditEvent};
use crate::auth::csrf::CsrfForm;
use crate::auth::submissions;
use crate::cohorts::db as cohorts_db;
use crate::error::{AppError, AppResult};
use crate::forms::FormErrors;
use crate::identity::{CurrentUser, Viewer};
use crate::ids::EvidenceId;
use crate::standards::cache::Standards;
use crate::state::AppState;
use crate::web::client_ip::ClientIp;
use crate::web::flash;
use crate::web::layout::Layout;

/// The longest comment kept.
pub const COMMENT_MAX_CHARS: usize = 5_000;

/// The problem with a comment's text, if it has one, under `field`.
pub fn check(body: &str, field: &str) -> FormErrors {
    let mut errors = FormErrors::default();
    if body.trim().is_empty() {
        errors.add(field, "Write the comment before sending it");
    } else if body.trim().chars().count() > COMMENT_MAX_CHARS {
        errors.add(field, "Keep the comment under 5,000 characters");
    }
    errors
}

/// Adds `body` to the conversation on version `id` as `who`, in the caller's transaction, with
/// its audit event; or returns its problems (nothing written). Not found unless `who` is the
/// enrolment's candidate, assessor or IQA and the version is submitted.
pub async fn add_comment(
    conn: &mut PgConnection,
    who: Viewer<'_>,
    by: &Actor,
    id: EvidenceId,
    body: &str,
) -> AppResult<Result<(), FormErrors>> {
    let evidence = db::find_visible(&mut *conn, id, who)
        .await?
        .filter(Evidence::in_conversation)
        .ok_or(AppError::NotFound)?;
    let enrolment = cohorts_db::find_visible(&mut *conn, evidence.enrolment_id, who)
        .await?
        .ok_or(AppError::NotFound)?;
    if enrolment.is_withdrawn() {
        return Err(AppError::Conflict(
            "This enrolment is withdrawn: its records are kept as they are.".into(),
        ));
    }
    let part = if enrolment.is_candidate(who.id) {
        "candidate"
    } else if enrolment.assessed_by(who) {
        "assessor"
    } else if enrolment.quality_assured_by(who) {
        "iqa"
    } else {
        return Err(AppError::NotFound);
    };
    let errors = check(body, "comment");
    if !errors.is_empty() {
        return Ok(Err(errors));
    }
    let body = body.trim();
    db::insert_comment(&mut *conn, evidence.item_id, id, who.id, part, body).await?;
    audit::record(
        conn,
        NewAuditEvent {
            actor: by,
            action: "evidence.commented",
            entity_type: "evidence",
            entity_id: id.to_string(),
            detail: json!({ "enrolment_id": enrolment.id, "part": part, "body": body }),
        },
    )
    .await?;
    Ok(Ok(()))
}

#[derive(Debug, Deserialize)]
pub struct CommentForm {
    #[serde(default)]
    comment: String,
    #[serde(default)]
    submission_key: String,
}

/// `POST /evidence/{id}/comments`.
pub async fn post(
    State(state): State<AppState>,
    standards: Standards,
    ClientIp(ip): ClientIp,
    user: CurrentUser,
    layout: Layout,
    Path(id): Path<EvidenceId>,
    CsrfForm(form): CsrfForm<CommentForm>,
) -> AppResult<Response> {
    let mut tx = state.pool.begin().await?;
    let by = Actor::user(&user, ip);
    let claimed = submissions::claim_form(
        &mut tx,
        &form.submission_key,
        user.id,
        state.clock.now(),
        "This comment was sent already.",
    );
    let submission = match claimed.await? {
        Ok(first) => first,
        Err(repeat) => return Ok(repeat),
    };
    match add_comment(&mut tx, user.viewer(), &by, id, &form.comment).await? {
        Ok(()) => {
            let to = format!("/evidence/{id}#conversation");
            submission.led_to(&mut tx, &to).await?;
            tx.commit().await?;
            Ok(flash::redirect(&to, "Comment added."))
        }
        Err(errors) => {
            drop(tx);
            let mut page =
                EvidenceShowPage::build(&state, &standards, &user, layout, id, None).await?;
            page.comment_errors = errors;
            page.comment_typed = form.comment;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}
