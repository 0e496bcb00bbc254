//! One's own account: see it, and change one's password.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::views::AccountPage;
use crate::audit::{self, Actor, NewAuditEvent};
use crate::auth::csrf::CsrfForm;
use crate::changes::Change;
use crate::error::AppResult;
use crate::forms::FormErrors;
use crate::identity::CurrentUser;
use crate::passwords::Verified;
use crate::state::AppState;
use crate::web::client_ip::ClientIp;
use crate::web::flash;
use crate::web::layout::{Layout, Section};

/// `GET /account`.
pub async fn show(user: CurrentUser, layout: Layout) -> AccountPage {
    AccountPage::new(layout.section(Section::Account), &user)
}

#[derive(Debug, Deserialize)]
pub struct ChangePasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm_password: String,
}

/// `POST /account/password`: needs the current password; ends every other session.
pub async fn change_password(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    user: CurrentUser,
    layout: Layout,
    CsrfForm(form): CsrfForm<ChangePasswordForm>,
) -> AppResult<Response> {
    let mut errors = FormErrors::default();
    if form.current_password.is_empty() {
        errors.add("current_password", "Enter your current password");
    } else {
        let stored =
            crate::accounts::db::find_password_hash(&mut *state.pool.acquire().await?, user.id)
                .await?;
        if state
            .passwords
            .verify(&form.current_password, stored.as_deref())
            .await?
            == Verified::No
        {
            errors.add("current_password", "Your current password is not right");
        }
    }
    crate::auth::check_password_fields(
        &mut errors,
        &form.password,
        &form.confirm_password,
        &user.email,
        &user.name,
    );
    if !errors.is_empty() {
        let mut page = AccountPage::new(layout.section(Section::Account), &user);
        page.errors = errors;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }

    let hash = state.passwords.hash(&form.password).await?;
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let ended =
        crate::auth::replace_password(&mut tx, user.id, &hash, now, Some(&user.session_id_hash))
            .await?;
    audit::record(
        &mut tx,
        NewAuditEvent {
            actor: &Actor::user(&user, ip),
            action: "user.password_changed",
            entity_type: "user",
            entity_id: user.id.to_string(),
            detail: json!({ "via": "account", "other_sessions_ended": ended }),
        },
    )
    .await?;
    tx.commit().await?;
    state.changes.forget(&Change::User(user.id));
    Ok(flash::redirect(
        "/account",
        "Your password has been changed. Any other sessions have been signed out.",
    ))
}
