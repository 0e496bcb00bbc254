//! Signing in and out, first-admin setup, and setting a password through a single-use link.

use std::net::IpAddr;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::links::{self, Purpose};
use super::lockout::{self, Outcome, Refusal};
use super::session::{self};
use super::views::{LinkUnusablePage, LoginPage, SetPasswordPage, SetupPage};
use super::{check_password_fields, csrf::CsrfForm, safe_next};
use crate::accounts::db as users_db;
use crate::accounts::model::{DisplayName, Email};
use crate::audit::{self, Actor, NewAuditEvent};
use crate::changes::Change;
use crate::config::Settings;
use crate::error::AppResult;
use crate::forms::FormErrors;
use crate::identity::CurrentUser;
use crate::identity::{Role, UserId};
use crate::passwords::Verified;
use crate::state::AppState;
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
    let mut page = LoginPage::new(layout.clone(), form.email.trim().to_owned(), next);
    check_login_fields(&mut page.errors, &email_key, &form.password);
    if !page.errors.is_empty() {
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }

    let sign_in = SignIn::new(&state, &email_key, &form.password, ip, layout.user.as_ref());
    let outcome = sign_in.run().await?;
    Ok(render_login(outcome, page, jar))
}

/// Marks an empty email or password on the sign-in form.
fn check_login_fields(errors: &mut FormErrors, email_key: &str, password: &str) {
    if email_key.is_empty() {
        errors.add("email", "Enter your email address");
    }
    if password.is_empty() {
        errors.add("password", "Enter your password");
    }
}

/// One sign-in attempt with a filled-in form, from the lockout check to the new session.
struct SignIn<'a> {
    state: &'a AppState,
    /// The email as typed, trimmed and lower-cased: what the lockout and the lookup go by.
    email_key: &'a str,
    password: &'a str,
    ip: Option<IpAddr>,
    /// Read once, so every step of the attempt works with the same time.
    now: OffsetDateTime,
    /// The typed email as the audit trail names the attempt: the email, or a placeholder
    /// when it is not one.
    typed: String,
    /// The session the browser came with, if any.
    previous_session: Option<&'a CurrentUser>,
}

/// How a sign-in attempt ended.
enum LoginOutcome {
    /// Sign-in is paused for this account or address; the password was not checked.
    Refused(Refusal),
    /// A wrong email or password, an account without a password, or a deactivated account.
    WrongCredentials,
    /// Signed in; the cookie of the new session.
    SignedIn(Cookie<'static>),
}

impl<'a> SignIn<'a> {
    /// Reads the clock and works out what the audit trail may call the attempt.
    fn new(
        state: &'a AppState,
        email_key: &'a str,
        password: &'a str,
        ip: Option<IpAddr>,
        previous_session: Option<&'a CurrentUser>,
    ) -> Self {
        let now = state.clock.now();
        // Only a well-formed email is written to the audit trail: people do type passwords there.
        let typed = Email::parse(email_key)
            .map_or_else(|_| "(not an email address)".to_owned(), |e| e.key());
        Self {
            state,
            email_key,
            password,
            ip,
            now,
            typed,
            previous_session,
        }
    }

    /// Runs the attempt: begins it with the lockout, checks the password, then records the
    /// failure or signs the account in.
    async fn run(&self) -> AppResult<LoginOutcome> {
        let attempt = match self.begin().await? {
            Ok(attempt) => attempt,
            Err(refusal) => return Ok(LoginOutcome::Refused(refusal)),
        };

        let credentials =
            users_db::find_credentials(&mut *self.state.pool.acquire().await?, self.email_key)
                .await?;
        // No connection is held while hashing: a queue of sign-ins must not drain the pool.
        let usable = credentials.as_ref().filter(|c| c.is_active);
        let verified = self
            .state
            .passwords
            .verify(
                self.password,
                usable.and_then(|c| c.password_hash.as_deref()),
            )
            .await?;

        let Verified::Yes { needs_rehash } = verified else {
            let user_id = credentials.as_ref().map(|c| c.id.0);
            self.record_failure(attempt, user_id).await?;
            return Ok(LoginOutcome::WrongCredentials);
        };
        let user = usable.expect("a verified password belongs to an active account");
        let cookie = self.sign_in_as(user, attempt, needs_rehash).await?;
        Ok(LoginOutcome::SignedIn(cookie))
    }

    /// Begins the attempt with the lockout, in a short transaction of its own that is
    /// committed before the password is checked; a refusal goes to the audit trail with it.
    async fn begin(&self) -> AppResult<Result<i64, Refusal>> {
        let mut tx = self.state.pool.begin().await?;
        let begun = lockout::begin(&mut tx, self.email_key, self.ip, self.now).await?;
        if let Err(refusal) = begun {
            let detail = json!({ "reason": refusal_reason(refusal) });
            self.record_event(&mut tx, None, "auth.login_refused", detail)
                .await?;
        }
        tx.commit().await?;
        Ok(begun)
    }

    /// Settles the attempt as failed and records it, and records the lock when this failure
    /// locked the account. `user_id` is the account the email belongs to, if any.
    async fn record_failure(&self, attempt: i64, user_id: Option<Uuid>) -> AppResult<()> {
        let mut tx = self.state.pool.begin().await?;
        lockout::settle(&mut tx, attempt, Outcome::Failed).await?;
        self.record_event(&mut tx, user_id, "auth.login_failed", json!({}))
            .await?;
        if let Some(Refusal::Account { until }) =
            lockout::check(&mut tx, self.email_key, None, self.now).await?
        {
            let detail = json!({ "until": until.unix_timestamp() });
            self.record_event(&mut tx, user_id, "auth.locked_out", detail)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Signs `user` in after the right password: stores a new hash of it when the old one is
    /// weaker than today's, replaces the browser's session, settles the attempt as succeeded
    /// and records the success. Returns the new session's cookie.
    async fn sign_in_as(
        &self,
        user: &users_db::Credentials,
        attempt: i64,
        needs_rehash: bool,
    ) -> AppResult<Cookie<'static>> {
        let upgraded_hash = if needs_rehash {
            Some(self.state.passwords.hash(self.password).await?)
        } else {
            None
        };
        let mut tx = self.state.pool.begin().await?;
        if let Some(hash) = &upgraded_hash {
            users_db::set_password_hash(&mut tx, user.id, hash, self.now).await?;
        }
        let settings = &self.state.settings;
        let cookie =
            replace_session(&mut tx, settings, self.previous_session, user.id, self.now).await?;
        lockout::settle(&mut tx, attempt, Outcome::Succeeded).await?;
        audit::record(
            &mut tx,
            NewAuditEvent {
                actor: &Actor::person(user.id, &user.email, self.ip),
                action: "auth.login_succeeded",
                entity_type: "user",
                entity_id: user.id.to_string(),
                detail: json!({ "password_hash_upgraded": upgraded_hash.is_some() }),
            },
        )
        .await?;
        tx.commit().await?;
        forget_previous(self.state, self.previous_session);
        Ok(cookie)
    }

    /// Writes an event about the attempt to the audit trail, under what was typed as the
    /// email. `user_id` is the account it belongs to, if known.
    async fn record_event(
        &self,
        conn: &mut PgConnection,
        user_id: Option<Uuid>,
        action: &'static str,
        detail: Value,
    ) -> sqlx::Result<()> {
        audit::record(
            conn,
            NewAuditEvent {
                actor: &Actor {
                    user_id,
                    label: self.typed.clone(),
                    ip: self.ip,
                },
                action,
                entity_type: "login",
                entity_id: self.typed.clone(),
                detail,
            },
        )
        .await
    }
}

/// The answer to a sign-in attempt: on to `next` with the new session's cookie, or the form
/// again saying why not.
fn render_login(outcome: LoginOutcome, mut page: LoginPage, jar: CookieJar) -> Response {
    match outcome {
        LoginOutcome::Refused(refusal) => {
            page.notice = Some(refusal_message(refusal));
            (StatusCode::TOO_MANY_REQUESTS, page).into_response()
        }
        LoginOutcome::WrongCredentials => {
            page.errors.add("email", WRONG_CREDENTIALS);
            (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
        }
        LoginOutcome::SignedIn(cookie) => {
            (jar.add(cookie), Redirect::to(&page.next)).into_response()
        }
    }
}

/// The reason of a refusal, as the audit trail records it.
fn refusal_reason(refusal: Refusal) -> &'static str {
    match refusal {
        Refusal::Account { .. } => "account_locked",
        Refusal::Address => "address_limited",
    }
}

/// Why sign-in is paused and until when, as the sign-in page says it.
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
    state.changes.forget(&Change::Session(user.session_id_hash));
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
    let Some((name, email)) = check_setup_form(&mut page, &form) else {
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    };

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
    record_first_admin_created(&mut tx, id, &email, &name, ip).await?;
    let cookie = replace_session(&mut tx, &state.settings, layout.user.as_ref(), id, now).await?;
    tx.commit().await?;
    Ok((
        jar.add(cookie),
        flash::redirect("/", "Your admin account is ready."),
    )
        .into_response())
}

/// Fills the setup form back in and checks it. Returns the admin's name and email when the
/// whole form is right, and `None` when it must be shown again with its errors.
fn check_setup_form(page: &mut SetupPage, form: &SetupForm) -> Option<(DisplayName, Email)> {
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
    match (name, email) {
        (Some(name), Some(email)) if page.errors.is_empty() => Some((name, email)),
        _ => None,
    }
}

/// Records the creation of the first admin, who is the actor of their own creation.
async fn record_first_admin_created(
    conn: &mut PgConnection,
    id: UserId,
    email: &Email,
    name: &DisplayName,
    ip: Option<IpAddr>,
) -> sqlx::Result<()> {
    audit::record(
        conn,
        NewAuditEvent {
            actor: &Actor::person(id, email.as_str(), ip),
            action: "user.created",
            entity_type: "user",
            entity_id: id.to_string(),
            detail: json!({
                "email": email.as_str(),
                "name": name.as_str(),
                "roles": ["admin"],
                "via": "setup"
            }),
        },
    )
    .await
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

/// The form of an invitation or password-reset link, or 404 when the link cannot be used.
async fn password_link_form(
    State(state): State<AppState>,
    layout: Layout,
    Path(token): Path<String>,
    purpose: Purpose,
) -> AppResult<Response> {
    let mut conn = state.pool.acquire().await?;
    let user = active_user_of_link(&mut conn, purpose, &token, state.clock.now()).await?;
    match user {
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

/// Sets a password through an invitation or password-reset link, uses the link up and signs
/// its account in.
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
        active_user_of_link(&mut conn, purpose, &token, now).await?
    };
    let Some(user) = user else {
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
    crate::auth::replace_password(&mut tx, user.id, &hash, now, None).await?;
    record_password_changed(&mut tx, &user, ip, purpose).await?;
    let cookie =
        replace_session(&mut tx, &state.settings, layout.user.as_ref(), user.id, now).await?;
    tx.commit().await?;
    state.changes.forget(&Change::User(user.id));
    forget_previous(&state, layout.user.as_ref());
    Ok((
        jar.add(cookie),
        flash::redirect("/", password_set_message(purpose)),
    )
        .into_response())
}

/// The active account a password link is for, while the link can still be used. The link is
/// only read here, not locked.
async fn active_user_of_link(
    conn: &mut PgConnection,
    purpose: Purpose,
    token: &str,
    now: OffsetDateTime,
) -> sqlx::Result<Option<users_db::User>> {
    let user = match links::find_valid(conn, purpose, token, now, false).await? {
        Some(links::ValidLink {
            user: Some(user), ..
        }) => users_db::find(conn, user).await?,
        _ => None,
    };
    Ok(user.filter(|u| u.is_active))
}

/// Records that `user` set their password through a link of `purpose`.
async fn record_password_changed(
    conn: &mut PgConnection,
    user: &users_db::User,
    ip: Option<IpAddr>,
    purpose: Purpose,
) -> sqlx::Result<()> {
    audit::record(
        conn,
        NewAuditEvent {
            actor: &Actor::person(user.id, &user.email, ip),
            action: "user.password_changed",
            entity_type: "user",
            entity_id: user.id.to_string(),
            detail: json!({ "via": purpose }),
        },
    )
    .await
}

/// The flash message after a password is set through a link of `purpose`.
fn password_set_message(purpose: Purpose) -> &'static str {
    match purpose {
        Purpose::Invitation => "Your password is set and you are signed in. Welcome to Attest.",
        _ => "Your new password is set and you are signed in. Any other sessions have been ended.",
    }
}

/// Tells this process's caches that the session the browser came with has ended, once the
/// transaction that ended it has committed.
fn forget_previous(state: &AppState, previous_session: Option<&CurrentUser>) {
    if let Some(previous) = previous_session {
        state
            .changes
            .forget(&Change::Session(previous.session_id_hash));
    }
}

/// Ends the session the browser came with, if any, and starts a new one for `user`; returns
/// the new session's cookie.
async fn replace_session(
    conn: &mut PgConnection,
    settings: &Settings,
    previous_session: Option<&CurrentUser>,
    user: UserId,
    now: OffsetDateTime,
) -> sqlx::Result<Cookie<'static>> {
    // A new session id at every sign-in: whatever id the browser had before is worthless.
    if let Some(previous) = previous_session {
        session::end(conn, &previous.session_id_hash).await?;
    }
    session::start(conn, settings, user, now).await
}
