//! One's own account: see it, and change one's password.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use super::views::{AccountPage, SecondFactorStatus};
use crate::audit::{self, Actor, NewAuditEvent};
use crate::auth::challenge::{self, Account};
use crate::auth::csrf::CsrfForm;
use crate::auth::db as auth_db;
use crate::auth::second_factor::{self, Accept};
use crate::auth::throttle::{self, Attempt, AttemptKind, Outcome};
use crate::auth::views::{RecoveryCodesPage, SecondFactorPage};
use crate::changes::Change;
use crate::config::SecondFactorPolicy;
use crate::error::AppResult;
use crate::forms::FormErrors;
use crate::identity::CurrentUser;
use crate::passwords::Verified;
use crate::state::AppState;
use crate::web::client_ip::ClientIp;
use crate::web::flash;
use crate::web::layout::{Layout, Section};

/// `GET /account`.
pub async fn show(
    State(state): State<AppState>,
    user: CurrentUser,
    layout: Layout,
) -> AppResult<AccountPage> {
    account_page(&state, layout, &user).await
}

/// The account page of `user`, with their second step of sign-in when the portal offers one.
async fn account_page(
    state: &AppState,
    layout: Layout,
    user: &CurrentUser,
) -> AppResult<AccountPage> {
    let mut page = AccountPage::new(layout.section(Section::Account), user);
    let policy = state.settings.second_factor;
    if policy != SecondFactorPolicy::Off {
        let mut conn = state.pool.acquire().await?;
        let on = auth_db::has_second_factor(&mut conn, user.id).await?;
        page.second_factor = Some(SecondFactorStatus {
            on,
            recovery_codes_left: auth_db::recovery_codes_left(&mut conn, user.id).await?,
            required: policy.requires(&user.roles),
        });
    }
    Ok(page)
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
    let mut status = StatusCode::UNPROCESSABLE_ENTITY;
    if form.current_password.is_empty() {
        errors.add("current_password", "Enter your current password");
    } else if let Err((refused_with, message)) =
        check_current_password(&state, &user, ip, &form.current_password).await?
    {
        errors.add("current_password", message);
        status = refused_with;
    }
    crate::auth::check_password_fields(
        &mut errors,
        &form.password,
        &form.confirm_password,
        &user.email,
        &user.name,
    );
    if !errors.is_empty() {
        let mut page = account_page(&state, layout, &user).await?;
        page.errors = errors;
        return Ok((status, page).into_response());
    }

    let hash = state.passwords.hash(&form.password).await?;
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let ended = crate::auth::replace_password(
        &mut tx,
        user.id,
        &user.email,
        &hash,
        now,
        Some(&user.session_id_hash),
    )
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

/// Checks the current password under the same throttle as sign-in: a stolen session cannot
/// guess it quickly. `Err` holds the status and what to say when it is wrong or must wait.
async fn check_current_password(
    state: &AppState,
    user: &CurrentUser,
    ip: Option<std::net::IpAddr>,
    typed: &str,
) -> AppResult<Result<(), (StatusCode, String)>> {
    let now = state.clock.now();
    let email = user.email.to_lowercase();
    let attempt = Attempt {
        kind: AttemptKind::Password,
        email: &email,
        ip,
        known_device: None,
    };
    let begun = match throttle::begin_alone(&state.pool, attempt, false, now).await? {
        Ok(begun) => begun,
        Err(refusal) => return Ok(Err(crate::auth::too_many(refusal))),
    };
    let stored =
        crate::accounts::db::find_password_hash(&mut *state.pool.acquire().await?, user.id).await?;
    let right = state.passwords.verify(typed, stored.as_deref()).await? != Verified::No;
    let outcome = if right {
        Outcome::Succeeded
    } else {
        Outcome::Failed
    };
    let mut tx = state.pool.begin().await?;
    throttle::settle(&mut tx, begun.id, outcome).await?;
    if !right {
        let actor = Actor::user(user, ip);
        let entity = ("user", user.id.to_string());
        crate::auth::record_if_slowed(&mut tx, attempt, now, &actor, entity).await?;
    }
    tx.commit().await?;
    Ok(if right {
        Ok(())
    } else {
        Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            "Your current password is not right".to_owned(),
        ))
    })
}

#[derive(Debug, Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
    /// Asked when setting an authenticator up.
    #[serde(default)]
    current_password: String,
}

/// `GET /account/second-factor`: an authenticator to set up, for someone who has none (and
/// only where the portal offers one).
pub async fn second_factor_form(
    State(state): State<AppState>,
    user: CurrentUser,
    layout: Layout,
) -> AppResult<Response> {
    let page = setup_page(&state, layout, &user).await?;
    Ok(page.map_or_else(
        || Redirect::to("/account").into_response(),
        IntoResponse::into_response,
    ))
}

/// The setup page of `user`'s authenticator; `None` when they have one already. 404 where the
/// portal offers none.
async fn setup_page(
    state: &AppState,
    layout: Layout,
    user: &CurrentUser,
) -> AppResult<Option<SecondFactorPage>> {
    if state.settings.second_factor == SecondFactorPolicy::Off {
        return Err(crate::error::AppError::NotFound);
    }
    let key = &state.settings.secret_key;
    let email = user.email.to_lowercase();
    let mut conn = state.pool.acquire().await?;
    let setup =
        second_factor::begin_setup(&mut conn, key, user.id, &email, state.clock.now()).await?;
    let layout = layout.section(Section::Account);
    Ok(setup.map(|setup| SecondFactorPage::for_account(layout, &setup)))
}

/// `POST /account/second-factor`: turns the authenticator being set up on with its first code,
/// and shows the recovery codes once.
pub async fn set_up_second_factor(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    user: CurrentUser,
    layout: Layout,
    CsrfForm(form): CsrfForm<CodeForm>,
) -> AppResult<Response> {
    let Some(mut page) = setup_page(&state, layout.clone(), &user).await? else {
        return Ok(Redirect::to("/account").into_response());
    };
    let account = Account {
        id: user.id,
        email: &user.email,
    };
    // Whoever holds the session must also know the password: a session left open must not
    // let someone else tie the account to their phone.
    if form.current_password.is_empty() {
        page.errors
            .add("current_password", "Enter your current password");
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    if let Err((status, problem)) =
        check_current_password(&state, &user, ip, &form.current_password).await?
    {
        page.errors.add("current_password", problem);
        return Ok((status, page).into_response());
    }
    match challenge::check_code(&state, account, ip, &form.code, Accept::Setup).await? {
        Ok((tx, _)) => {
            new_recovery_codes(tx, account, ip, "auth.second_factor_set_up", layout).await
        }
        Err((status, problem)) => {
            page.errors.add("code", problem);
            Ok((status, page).into_response())
        }
    }
}

/// `POST /account/second-factor/recovery-codes`: new recovery codes in place of the old, for a
/// right code from the authenticator.
pub async fn renew_recovery_codes(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    user: CurrentUser,
    layout: Layout,
    CsrfForm(form): CsrfForm<CodeForm>,
) -> AppResult<Response> {
    let account = Account {
        id: user.id,
        email: &user.email,
    };
    // A code from the app, never a recovery code: one would be used up to renew them all (and
    // none is accepted before an authenticator is on).
    match challenge::check_code(&state, account, ip, &form.code, Accept::AppCode).await? {
        Ok((tx, _)) => {
            new_recovery_codes(tx, account, ip, "auth.recovery_codes_renewed", layout).await
        }
        Err((status, problem)) => {
            let mut page = account_page(&state, layout, &user).await?;
            page.code_errors.add("code", problem);
            Ok((status, page).into_response())
        }
    }
}

/// Ten new recovery codes for `account` in place of any old ones, recorded as `action` in the
/// transaction the code that allowed it was accepted in, on the page that shows them once.
async fn new_recovery_codes(
    mut tx: sqlx::Transaction<'static, sqlx::Postgres>,
    account: Account<'_>,
    ip: Option<std::net::IpAddr>,
    action: &'static str,
    layout: Layout,
) -> AppResult<Response> {
    let codes = second_factor::renew_recovery_codes(&mut tx, account.id).await?;
    challenge::record(&mut tx, account, ip, action, json!({})).await?;
    tx.commit().await?;
    Ok(RecoveryCodesPage {
        layout: layout.section(Section::Account),
        codes,
        next: "/account".to_owned(),
    }
    .into_response())
}
