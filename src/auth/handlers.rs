//! Signing in and out, first-admin setup, and setting a password through a single-use link.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use serde_json::json;

use super::links::{self, Purpose};
use super::lockout::{self, Outcome, Refusal};
use super::password::Verified;
use super::session::{self, CurrentUser};
use super::views::{LinkUnusablePage, LoginPage, SetPasswordPage, SetupPage};
use super::{check_password_fields, csrf::CsrfForm, safe_next};
use crate::audit::{self, Actor, NewAuditEvent};
use crate::error::AppResult;
use crate::state::AppState;
use crate::users::db as users_db;
use crate::users::model::{DisplayName, Email, Role, UserId};
use crate::web::client_ip::ClientIp;
use crate::web::flash;
use crate::web::layout::Layout;

/// The one answer for a wrong email, a wrong password, an account without a password and a
/// deactivated account: nothing tells them apart.
const WRONG_CREDENTIALS: &str = "The email address or password is not right.";

#[derive(Debug, Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    next: String,
}

/// `GET /login`.
pub async fn login_form(layout: Layout, Query(query): Query<NextQuery>) -> Response {
    if layout.user.is_some() {
        return Redirect::to(safe_next(&query.next)).into_response();
    }
    LoginPage::new(layout, String::new(), safe_next(&query.next).to_owned()).into_response()
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

/// `POST /login`.
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    layout: Layout,
    jar: CookieJar,
    CsrfForm(form): CsrfForm<LoginForm>,
) -> AppResult<Response> {
    let next = safe_next(&form.next).to_owned();
    let email_key = form.email.trim().to_lowercase();
    let mut page = LoginPage::new(layout.clone(), form.email.trim().to_owned(), next.clone());
    if email_key.is_empty() {
        page.errors.add("email", "Enter your email address");
    }
    if form.password.is_empty() {
        page.errors.add("password", "Enter your password");
    }
    if !page.errors.is_empty() {
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }

    let now = state.clock.now();
    // Only a well-formed email is written to the audit trail: people do type passwords there.
    let typed =
        Email::parse(&email_key).map_or_else(|_| "(not an email address)".to_owned(), |e| e.key());
    let mut tx = state.pool.begin().await?;
    let attempt = match lockout::begin(&mut tx, &email_key, ip, now).await? {
        Ok(attempt) => attempt,
        Err(refusal) => {
            audit::record(
                &mut tx,
                NewAuditEvent {
                    actor: &Actor {
                        user_id: None,
                        label: typed.clone(),
                        ip,
                    },
                    action: "auth.login_refused",
                    entity_type: "login",
                    entity_id: typed,
                    detail: json!({ "reason": refusal_reason(refusal) }),
                },
            )
            .await?;
            tx.commit().await?;
            page.notice = Some(refusal_message(refusal));
            return Ok((StatusCode::TOO_MANY_REQUESTS, page).into_response());
        }
    };
    tx.commit().await?;

    let credentials =
        users_db::find_credentials(&mut *state.pool.acquire().await?, &email_key).await?;
    let attempt_actor = Actor {
        user_id: credentials.as_ref().map(|c| c.id.0),
        label: typed.clone(),
        ip,
    };
    // No connection is held while hashing: a queue of sign-ins must not drain the pool.
    let usable = credentials.as_ref().filter(|c| c.is_active);
    let verified = state
        .passwords
        .verify(
            &form.password,
            usable.and_then(|c| c.password_hash.as_deref()),
        )
        .await?;

    let Verified::Yes { needs_rehash } = verified else {
        let mut tx = state.pool.begin().await?;
        lockout::settle(&mut tx, attempt, Outcome::Failed).await?;
        audit::record(
            &mut tx,
            NewAuditEvent {
                actor: &attempt_actor,
                action: "auth.login_failed",
                entity_type: "login",
                entity_id: typed.clone(),
                detail: json!({}),
            },
        )
        .await?;
        if let Some(Refusal::Account { until }) =
            lockout::check(&mut tx, &email_key, None, now).await?
        {
            audit::record(
                &mut tx,
                NewAuditEvent {
                    actor: &attempt_actor,
                    action: "auth.locked_out",
                    entity_type: "login",
                    entity_id: typed,
                    detail: json!({ "until": until.unix_timestamp() }),
                },
            )
            .await?;
        }
        tx.commit().await?;
        page.errors.add("email", WRONG_CREDENTIALS);
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    };
    let user = usable.expect("a verified password belongs to an active account");

    let upgraded_hash = if needs_rehash {
        Some(state.passwords.hash(&form.password).await?)
    } else {
        None
    };
    let mut tx = state.pool.begin().await?;
    if let Some(hash) = &upgraded_hash {
        users_db::set_password_hash(&mut tx, user.id, hash, now).await?;
    }
    // A new session id at every sign-in: whatever id the browser had before is worthless.
    if let Some(previous) = &layout.user {
        session::end(&mut tx, &previous.session_id_hash).await?;
    }
    let cookie = session::start(&mut tx, &state.settings, user.id, now).await?;
    lockout::settle(&mut tx, attempt, Outcome::Succeeded).await?;
    audit::record(
        &mut tx,
        NewAuditEvent {
            actor: &Actor {
                user_id: Some(user.id.0),
                label: user.email.clone(),
                ip,
            },
            action: "auth.login_succeeded",
            entity_type: "user",
            entity_id: user.id.to_string(),
            detail: json!({ "password_hash_upgraded": upgraded_hash.is_some() }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok((jar.add(cookie), Redirect::to(&next)).into_response())
}

fn refusal_reason(refusal: Refusal) -> &'static str {
    match refusal {
        Refusal::Account { .. } => "account_locked",
        Refusal::Address => "address_limited",
    }
}

fn refusal_message(refusal: Refusal) -> String {
    match refusal {
        Refusal::Account { until } => format!(
            "There have been too many failed attempts to sign in to this account, so signing in to it is paused \
             for 15 minutes to protect it. Try again after {:02}:{:02} UTC.",
            until.hour(),
            until.minute()
        ),
        Refusal::Address => {
            "There have been too many failed attempts to sign in from your network. \
                             Wait 10 minutes and try again."
                .to_owned()
        }
    }
}

/// `POST /logout`.
pub async fn logout(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    user: CurrentUser,
    jar: CookieJar,
    CsrfForm(_): CsrfForm<super::EmptyForm>,
) -> AppResult<Response> {
    let mut tx = state.pool.begin().await?;
    session::end(&mut tx, &user.session_id_hash).await?;
    audit::record(
        &mut tx,
        NewAuditEvent {
            actor: &Actor::user(&user, ip),
            action: "auth.logout",
            entity_type: "user",
            entity_id: user.id.to_string(),
            detail: json!({}),
        },
    )
    .await?;
    tx.commit().await?;
    let jar = jar.add(session::removal(
        &state.settings,
        session::session_cookie_name(&state.settings),
    ));
    Ok((jar, flash::redirect("/login", "You have signed out.")).into_response())
}

/// `GET /setup/{token}`: the form that creates the first admin.
pub async fn setup_form(
    State(state): State<AppState>,
    layout: Layout,
    Path(token): Path<String>,
) -> AppResult<Response> {
    let mut conn = state.pool.acquire().await?;
    let now = state.clock.now();
    if users_db::any_active_admin(&mut conn).await?
        || links::find_valid(&mut conn, Purpose::Setup, &token, now, false)
            .await?
            .is_none()
    {
        return Ok((StatusCode::NOT_FOUND, LinkUnusablePage::setup(layout)).into_response());
    }
    Ok(SetupPage::new(layout).into_response())
}

#[derive(Debug, Deserialize)]
pub struct SetupForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm_password: String,
}

/// `POST /setup/{token}`: creates the first admin and signs them in.
pub async fn setup(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    layout: Layout,
    jar: CookieJar,
    Path(token): Path<String>,
    CsrfForm(form): CsrfForm<SetupForm>,
) -> AppResult<Response> {
    let mut page = SetupPage::new(layout.clone());
    page.name.clone_from(&form.name);
    page.email.clone_from(&form.email);
    let name = page.errors.check("name", DisplayName::parse(&form.name));
    let email = page.errors.check("email", Email::parse(&form.email));
    check_password_fields(
        &mut page.errors,
        &form.password,
        &form.confirm_password,
        &form.email,
        &form.name,
    );
    let (Some(name), Some(email)) = (name, email) else {
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    };
    if !page.errors.is_empty() {
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }

    let hash = state.passwords.hash(&form.password).await?;
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let Some(link) = links::find_valid(&mut tx, Purpose::Setup, &token, now, true).await? else {
        return Ok((StatusCode::NOT_FOUND, LinkUnusablePage::setup(layout)).into_response());
    };
    if users_db::any_active_admin(&mut tx).await? {
        return Ok((StatusCode::NOT_FOUND, LinkUnusablePage::setup(layout)).into_response());
    }
    let id = match users_db::insert(&mut tx, &email, &name, &[Role::Admin], Some(&hash)).await {
        Ok(id) => id,
        Err(users_db::InsertError::EmailTaken) => {
            page.errors
                .add("email", "An account with this email address already exists");
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
        Err(users_db::InsertError::Database(e)) => return Err(e.into()),
    };
    links::mark_used(&mut tx, &link.token_hash, now).await?;
    audit::record(
        &mut tx,
        NewAuditEvent {
            actor: &Actor { user_id: Some(id.0), label: email.as_str().to_owned(), ip },
            action: "user.created",
            entity_type: "user",
            entity_id: id.to_string(),
            detail: json!({ "email": email.as_str(), "name": name.as_str(), "roles": ["admin"], "via": "setup" }),
        },
    )
    .await?;
    if let Some(previous) = &layout.user {
        session::end(&mut tx, &previous.session_id_hash).await?;
    }
    let cookie = session::start(&mut tx, &state.settings, id, now).await?;
    tx.commit().await?;
    Ok((
        jar.add(cookie),
        flash::redirect("/", "Your admin account is ready."),
    )
        .into_response())
}

/// `GET /invitations/{token}`.
pub async fn invitation_form(
    state: State<AppState>,
    layout: Layout,
    token: Path<String>,
) -> AppResult<Response> {
    password_link_form(state, layout, token, Purpose::Invitation).await
}

/// `POST /invitations/{token}`.
pub async fn accept_invitation(
    state: State<AppState>,
    ip: ClientIp,
    layout: Layout,
    jar: CookieJar,
    token: Path<String>,
    form: CsrfForm<PasswordForm>,
) -> AppResult<Response> {
    use_password_link(state, ip, layout, jar, token, form, Purpose::Invitation).await
}

/// `GET /password-reset/{token}`.
pub async fn reset_form(
    state: State<AppState>,
    layout: Layout,
    token: Path<String>,
) -> AppResult<Response> {
    password_link_form(state, layout, token, Purpose::PasswordReset).await
}

/// `POST /password-reset/{token}`.
pub async fn reset_password(
    state: State<AppState>,
    ip: ClientIp,
    layout: Layout,
    jar: CookieJar,
    token: Path<String>,
    form: CsrfForm<PasswordForm>,
) -> AppResult<Response> {
    use_password_link(state, ip, layout, jar, token, form, Purpose::PasswordReset).await
}

async fn password_link_form(
    State(state): State<AppState>,
    layout: Layout,
    Path(token): Path<String>,
    purpose: Purpose,
) -> AppResult<Response> {
    let mut conn = state.pool.acquire().await?;
    let user = match links::find_valid(&mut conn, purpose, &token, state.clock.now(), false).await?
    {
        Some(links::ValidLink {
            user: Some(user), ..
        }) => users_db::find(&mut conn, user).await?,
        _ => None,
    };
    match user.filter(|u| u.is_active) {
        Some(user) => {
            Ok(SetPasswordPage::new(layout, purpose, user.name, user.email).into_response())
        }
        None => Ok((StatusCode::NOT_FOUND, LinkUnusablePage::password(layout)).into_response()),
    }
}

#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm_password: String,
}

async fn use_password_link(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    layout: Layout,
    jar: CookieJar,
    Path(token): Path<String>,
    CsrfForm(form): CsrfForm<PasswordForm>,
    purpose: Purpose,
) -> AppResult<Response> {
    let now = state.clock.now();
    let user = {
        let mut conn = state.pool.acquire().await?;
        match links::find_valid(&mut conn, purpose, &token, now, false).await? {
            Some(links::ValidLink {
                user: Some(user), ..
            }) => users_db::find(&mut conn, user).await?,
            _ => None,
        }
    };
    let Some(user) = user.filter(|u| u.is_active) else {
        return Ok((StatusCode::NOT_FOUND, LinkUnusablePage::password(layout)).into_response());
    };
    let mut page = SetPasswordPage::new(
        layout.clone(),
        purpose,
        user.name.clone(),
        user.email.clone(),
    );
    check_password_fields(
        &mut page.errors,
        &form.password,
        &form.confirm_password,
        &user.email,
        &user.name,
    );
    if !page.errors.is_empty() {
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }

    let hash = state.passwords.hash(&form.password).await?;
    let mut tx = state.pool.begin().await?;
    // Locked and checked again: of two requests racing with one link, only one gets here.
    let Some(link) = links::find_valid(&mut tx, purpose, &token, now, true).await? else {
        return Ok((StatusCode::NOT_FOUND, LinkUnusablePage::password(layout)).into_response());
    };
    links::mark_used(&mut tx, &link.token_hash, now).await?;
    crate::users::replace_password(&mut tx, user.id, &hash, now, None).await?;
    audit::record(
        &mut tx,
        NewAuditEvent {
            actor: &Actor {
                user_id: Some(user.id.0),
                label: user.email.clone(),
                ip,
            },
            action: "user.password_changed",
            entity_type: "user",
            entity_id: user.id.to_string(),
            detail: json!({ "via": purpose }),
        },
    )
    .await?;
    if let Some(previous) = &layout.user {
        session::end(&mut tx, &previous.session_id_hash).await?;
    }
    let cookie = session::start(&mut tx, &state.settings, UserId(user.id.0), now).await?;
    tx.commit().await?;
    let message = match purpose {
        Purpose::Invitation => "Your password is set and you are signed in. Welcome to Attest.",
        _ => "Your new password is set and you are signed in. Any other sessions have been ended.",
    };
    Ok((jar.add(cookie), flash::redirect("/", message)).into_response())
}
