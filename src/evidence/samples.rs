//! Interim sampling: the enrolment's IQA samples a judged evidence version at any time and
//! agrees with its judgements or disagrees, with actions its assessor answers on the same page
//! (see `iqa_actions`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::views::EvidenceShowPage;
use crate::audit::Actor;
use crate::auth::csrf::CsrfForm;
use crate::auth::submissions;
use crate::error::AppResult;
use crate::identity::CurrentUser;
use crate::ids::EvidenceId;
use crate::iqa_actions::{self, SampleForm};
use crate::standards::cache::Standards;
use crate::state::AppState;
use crate::web::client_ip::ClientIp;
use crate::web::flash;
use crate::web::layout::Layout;

/// `POST /evidence/{id}/samples`: the IQA's sample of this version's judgements.
pub async fn post(
    State(state): State<AppState>,
    standards: Standards,
    ClientIp(ip): ClientIp,
    user: CurrentUser,
    layout: Layout,
    Path(id): Path<EvidenceId>,
    CsrfForm(form): CsrfForm<SampleForm>,
) -> AppResult<Response> {
    let mut tx = state.pool.begin().await?;
    let by = Actor::user(&user, ip);
    let now = state.clock.now();
    let claimed = submissions::claim_form(
        &mut tx,
        &form.submission_key,
        user.id,
        now,
        "This sample was recorded already.",
    );
    let submission = match claimed.await? {
        Ok(first) => first,
        Err(repeat) => return Ok(repeat),
    };
    match iqa_actions::record_sample(&mut tx, user.viewer(), &by, id, &form, now).await? {
        Ok(()) => {
            submission
                .led_to(&mut tx, &format!("/evidence/{id}#samples"))
                .await?;
            tx.commit().await?;
            let message = if form.decision == "agree" {
                "Sample recorded: you agree with these judgements."
            } else {
                "Sample recorded. The assessor answers each of your actions before signing the candidate off."
            };
            Ok(flash::redirect(&format!("/evidence/{id}#samples"), message))
        }
        Err(errors) => {
            drop(tx);
            let mut page =
                EvidenceShowPage::build(&state, &standards, &user, layout, id, None).await?;
            page.sample_errors = errors;
            page.sample_typed = form;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}
