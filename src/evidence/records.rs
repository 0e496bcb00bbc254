//! Records the assessor makes of an observation, a professional discussion or a questioning
//! session: the assessor writes them on the candidate's portfolio (see the evidence form), and
//! the candidate confirms that each is accurate, which submits it for assessment.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::actions::{self, Confirmation};
use super::db;
use super::views::EvidenceShowPage;
use crate::audit::Actor;
use crate::auth::csrf::CsrfForm;
use crate::error::{AppError, AppResult};
use crate::forms::FormErrors;
use crate::identity::CurrentUser;
use crate::ids::EvidenceId;
use crate::standards::cache::Standards;
use crate::state::AppState;
use crate::web::client_ip::ClientIp;
use crate::web::flash;
use crate::web::layout::Layout;

#[derive(Debug, Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    declaration: Option<String>,
    /// The digest of the record as the page showed it.
    #[serde(default)]
    seen: String,
}

/// `POST /evidence/{id}/confirm`: the candidate confirms the record is accurate.
pub async fn confirm(
    State(state): State<AppState>,
    standards: Standards,
    ClientIp(ip): ClientIp,
    user: CurrentUser,
    layout: Layout,
    Path(id): Path<EvidenceId>,
    CsrfForm(form): CsrfForm<ConfirmForm>,
) -> AppResult<Response> {
    let mut tx = state.pool.begin().await?;
    let locked = db::lock_sent_record(&mut tx, id, user.id).await?;
    let record = db::find_visible(&mut tx, id, user.viewer()).await?;
    let record = match (locked, record) {
        (Some(_), Some(record)) => record,
        // Confirmed already (a second click): say so; anything else is not theirs to confirm.
        (None, Some(e)) if e.is_record() && !e.is_draft() && e.candidate_id == user.id => {
            return Ok(flash::redirect(
                &format!("/evidence/{id}"),
                "You confirmed this record already.",
            ));
        }
        _ => return Err(AppError::NotFound),
    };
    let mut errors = FormErrors::default();
    if form.declaration.as_deref() != Some("yes") {
        errors.add(
            "declaration",
            "Tick the box to confirm the record is accurate, or say what is wrong in the conversation",
        );
    } else {
        let by = Actor::user(&user, ip);
        match actions::confirm_record(&mut tx, &by, &record, &form.seen, &state.clock).await? {
            Confirmation::Confirmed => {}
            Confirmation::Changed => errors.add(
                "declaration",
                "Your assessor changed this record while you were reading it. Read it again, then confirm.",
            ),
            Confirmation::Incomplete => errors.add(
                "declaration",
                "This record is not complete yet: your assessor needs to finish it before you can confirm it.",
            ),
        }
    }
    if !errors.is_empty() {
        tx.rollback().await?;
        let mut page = EvidenceShowPage::build(&state, &standards, &user, layout, id, None).await?;
        page.confirm_errors = errors;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    tx.commit().await?;
    Ok(flash::redirect(
        &format!("/evidence/{id}"),
        "Record confirmed. Your assessor can now assess it.",
    ))
}
