//! Signing in and out, first-admin setup, and setting a password through a single-use link.

use std::net::IpAddr;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar};
use serde::Deserialize;
use serde_json::json;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::links::{self, Purpose};
use super::second_factor;
use super::session::{self};
use super::throttle::{self, Attempt, AttemptKind, Begun, Outcome, Refusal};
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
    /// A code from the authenticator, offered while the account is waiting.
    #[serde(default)]
    code: String,
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
    check_login_fields(&mut page.errors, &email_key, &form.password);
    if !page.errors.is_empty() {
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }

    let device = device_token(&state.settings, &jar);
    let sign_in = SignIn {
        code: form.code.trim(),
        device: device.as_deref(),
        next: &next,
        ..SignIn::new(&state, &email_key, &form.password, ip, layout.user.as_ref())
    };
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
    /// What was typed as a second-factor code (empty when none).
    code: &'a str,
    /// The browser's device token, if it has one.
    device: Option<&'a str>,
    /// Where to go once signed in.
    next: &'a str,
}

/// How a sign-in attempt ended.
enum LoginOutcome {
    /// Sign-in is paused for this account or address; the password was not checked.
    Refused(Refusal),
    /// A wrong email or password, an account without a password, or a deactivated account.
    WrongCredentials,
    /// Signed in; the cookies of the new session and of the known device.
    SignedIn(SignedIn),
    /// The password was right; the second factor is to come (or to be set up), behind the
    /// challenge this cookie carries.
    SecondFactorDue(Cookie<'static>),
}

/// The cookies of a completed sign-in.
pub(super) struct SignedIn {
    pub session: Cookie<'static>,
    pub device: Cookie<'static>,
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
            code: "",
            device: None,
            next: "/",
        }
    }

    /// The attempt as the throttle judges it, with the browser's device hash when it has
    /// signed in to this account before.
    fn attempt<'b>(&'b self, known_device: Option<&'b [u8; 32]>) -> Attempt<'b> {
        Attempt {
            kind: AttemptKind::Password,
            email: self.email_key,
            ip: self.ip,
            known_device,
        }
    }

    /// Runs the attempt: begins it with the throttle, checks the password (and the code, when
    /// the account is waiting), then records the failure, asks for the second factor, or signs
    /// the account in.
    async fn run(&self) -> AppResult<LoginOutcome> {
        let known_device = self.known_device().await?;
        let attempt = self.attempt(known_device.as_ref());
        let begun = match self.begin(attempt).await? {
            Ok(begun) => begun,
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
            self.record_failure(attempt, begun, user_id).await?;
            return Ok(match begun.waiting_for {
                Some(refusal) => LoginOutcome::Refused(refusal),
                None => LoginOutcome::WrongCredentials,
            });
        };
        let user = usable.expect("a verified password belongs to an active account");
        // Made before any transaction begins, so no connection waits on the hashing.
        let upgraded_hash = if needs_rehash {
            Some(self.state.passwords.hash(self.password).await?)
        } else {
            None
        };
        // A code typed on the sign-in form (offered while the account waits) is checked with
        // the password. While the account waits, only a right code gets through, and anything
        // less is answered as the wait; otherwise a wrong one leads to the second step.
        if let Some((tx, answer)) = self.code_on_the_form(user, begun).await? {
            let signed_in = self
                .sign_in_as(tx, user, begun, upgraded_hash.as_deref(), Some(answer))
                .await?;
            return Ok(LoginOutcome::SignedIn(signed_in));
        }
        if let Some(refusal) = begun.waiting_for {
            // Answered as a wrong password is: the same wait, the same counts.
            let settled = Begun {
                past_the_wait: None,
                ..begun
            };
            self.record_failure(attempt, settled, Some(user.id.0))
                .await?;
            return Ok(LoginOutcome::Refused(refusal));
        }
        let mut tx = self.state.pool.begin().await?;
        if second_factor_due(&mut tx, &self.state.settings, user.id, &user.roles).await? {
            self.store_upgraded_hash(&mut tx, user, upgraded_hash.as_deref())
                .await?;
            throttle::settle(&mut tx, begun.id, Outcome::Succeeded).await?;
            let settings = &self.state.settings;
            let cookie =
                super::challenge::start(&mut tx, settings, user.id, self.next, self.now).await?;
            tx.commit().await?;
            return Ok(LoginOutcome::SecondFactorDue(cookie));
        }
        let signed_in = self
            .sign_in_as(tx, user, begun, upgraded_hash.as_deref(), None)
            .await?;
        Ok(LoginOutcome::SignedIn(signed_in))
    }

    /// Stores the new hash of the right password, when one was made (and records that it was).
    async fn store_upgraded_hash(
        &self,
        conn: &mut PgConnection,
        user: &users_db::Credentials,
        hash: Option<&str>,
    ) -> sqlx::Result<()> {
        let Some(hash) = hash else {
            return Ok(());
        };
        users_db::set_password_hash(&mut *conn, user.id, hash, self.now).await?;
        audit::record(
            conn,
            NewAuditEvent {
                actor: &Actor::person(user.id, &user.email, self.ip),
                action: "user.password_hash_upgraded",
                entity_type: "user",
                entity_id: user.id.to_string(),
                detail: json!({}),
            },
        )
        .await
    }

    /// The browser's device hash, when it has fully signed in to this account before.
    async fn known_device(&self) -> sqlx::Result<Option<[u8; 32]>> {
        let Some(token) = self.device else {
            return Ok(None);
        };
        let hash = crate::crypto::sha256(token.as_bytes());
        let mut conn = self.state.pool.acquire().await?;
        let known = super::db::is_known_device(&mut conn, &hash, self.email_key).await?;
        Ok(known.then_some(hash))
    }

    /// Begins the attempt with the throttle, in a short transaction of its own that is
    /// committed before the password is checked.
    async fn begin(&self, attempt: Attempt<'_>) -> AppResult<Result<Begun, Refusal>> {
        let with_code = !self.code.is_empty();
        Ok(throttle::begin_alone(&self.state.pool, attempt, with_code, self.now).await?)
    }

    /// The code typed with a right password on the sign-in form, when it is right, with the
    /// transaction it was accepted in: past the account's wait, in the attempt begun for that;
    /// otherwise under the count of codes.
    async fn code_on_the_form(
        &self,
        user: &users_db::Credentials,
        begun: Begun,
    ) -> AppResult<Option<super::challenge::Accepted>> {
        if let Some(past_the_wait) = begun.past_the_wait {
            return self.code_past_the_wait(user, past_the_wait).await;
        }
        if self.code.is_empty() {
            return Ok(None);
        }
        let account = super::challenge::Account {
            id: user.id,
            email: &user.email,
        };
        let accept = second_factor::Accept::SignIn;
        let checked =
            super::challenge::check_code(self.state, account, self.ip, self.code, accept).await?;
        Ok(checked.ok())
    }

    /// Checks the code sent with a right password past the account's wait, and settles that
    /// attempt: a success never clears the count past the wait (the attack may go on).
    async fn code_past_the_wait(
        &self,
        user: &users_db::Credentials,
        past_the_wait: i64,
    ) -> AppResult<Option<super::challenge::Accepted>> {
        let email = user.email.to_lowercase();
        let key = &self.state.settings.secret_key;
        let accept = second_factor::Accept::SignIn;
        let mut tx = self.state.pool.begin().await?;
        let answer =
            second_factor::check(&mut tx, key, user.id, &email, self.code, self.now, accept)
                .await?;
        if let Some(answer) = answer {
            throttle::settle(&mut tx, past_the_wait, Outcome::SucceededWhileWaiting).await?;
            return Ok(Some((tx, answer)));
        }
        throttle::settle(&mut tx, past_the_wait, Outcome::Failed).await?;
        tx.commit().await?;
        Ok(None)
    }

    /// Settles the attempt (and the attempt past the wait begun with it) as failed, and
    /// records in the audit trail when a failure brought a count to a threshold. `user_id` is
    /// the account the email belongs to, if any.
    async fn record_failure(
        &self,
        attempt: Attempt<'_>,
        begun: Begun,
        user_id: Option<Uuid>,
    ) -> AppResult<()> {
        let mut tx = self.state.pool.begin().await?;
        let actor = Actor {
            user_id,
            label: self.typed.clone(),
            ip: self.ip,
        };
        let entity = || ("login", self.typed.clone());
        throttle::settle(&mut tx, begun.id, Outcome::Failed).await?;
        super::record_if_slowed(&mut tx, attempt, self.now, &actor, entity()).await?;
        if let Some(past_the_wait) = begun.past_the_wait {
            throttle::settle(&mut tx, past_the_wait, Outcome::Failed).await?;
            let past = Attempt {
                kind: AttemptKind::PasswordWithCode,
                known_device: None,
                ..attempt
            };
            super::record_if_slowed(&mut tx, past, self.now, &actor, entity()).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Signs `user` in after the right password (and code, when one was asked), in `tx`: the
    /// transaction the code was accepted in, if one was. Stores a new hash of the password when
    /// the old one is weaker than today's, replaces the browser's session, settles the attempt
    /// as succeeded and records the success.
    async fn sign_in_as(
        &self,
        mut tx: sqlx::Transaction<'static, sqlx::Postgres>,
        user: &users_db::Credentials,
        attempt: Begun,
        upgraded_hash: Option<&str>,
        second_factor: Option<second_factor::Answer>,
    ) -> AppResult<SignedIn> {
        self.store_upgraded_hash(&mut tx, user, upgraded_hash)
            .await?;
        // In past a wait with a code, the owner does not lift the wait for everyone else.
        let outcome = if attempt.waiting_for.is_some() {
            Outcome::SucceededWhileWaiting
        } else {
            Outcome::Succeeded
        };
        throttle::settle(&mut tx, attempt.id, outcome).await?;
        let signed_in = complete_sign_in(
            &mut tx,
            self.state,
            self.previous_session,
            self.device,
            user.id,
            self.now,
        )
        .await?;
        audit::record(
            &mut tx,
            NewAuditEvent {
                actor: &Actor::person(user.id, &user.email, self.ip),
                action: "auth.login_succeeded",
                entity_type: "user",
                entity_id: user.id.to_string(),
                detail: json!({
                    "second_factor": second_factor.map(second_factor::Answer::as_str),
                }),
            },
        )
        .await?;
        tx.commit().await?;
        forget_previous(self.state, self.previous_session);
        Ok(signed_in)
    }
}

/// The answer to a sign-in attempt: on to `next` with the new session's cookie, or the form
/// again saying why not.
fn render_login(outcome: LoginOutcome, mut page: LoginPage, jar: CookieJar) -> Response {
    match outcome {
        LoginOutcome::Refused(refusal) => {
            page.notice = Some(refusal_message(refusal));
            page.offer_code = matches!(refusal, Refusal::Account { .. });
            (StatusCode::TOO_MANY_REQUESTS, page).into_response()
        }
        LoginOutcome::WrongCredentials => {
            page.errors.add("email", WRONG_CREDENTIALS);
            (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
        }
        LoginOutcome::SignedIn(signed_in) => (
            jar.add(signed_in.session).add(signed_in.device),
            Redirect::to(&page.next),
        )
            .into_response(),
        LoginOutcome::SecondFactorDue(challenge) => {
            (jar.add(challenge), Redirect::to(super::challenge::PATH)).into_response()
        }
    }
}

/// A refusal as a form answers it: 429, and why and until when.
pub fn too_many(refusal: Refusal) -> (StatusCode, String) {
    (StatusCode::TOO_MANY_REQUESTS, refusal_message(refusal))
}

/// Why sign-in must wait and until when, as the sign-in page says it.
fn refusal_message(refusal: Refusal) -> String {
    let until = refusal.until();
    let at = format!(
        "{:02}:{:02}:{:02} UTC",
        until.hour(),
        until.minute(),
        until.second()
    );
    match refusal {
        Refusal::Account { .. } => format!(
            "There have been many failed attempts to sign in to this account, so it is being slowed down to \
             protect it. Try again after {at}, sign in from a device you have used here before, or enter a \
             code from your authenticator app with your password."
        ),
        Refusal::Address { .. } => format!(
            "There have been many failed attempts to sign in from your network. Try again after {at}."
        ),
        Refusal::SecondFactor { .. } => {
            format!("There have been too many wrong codes for this account. Try again after {at}.")
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
    if state.settings.second_factor.requires(&[Role::Admin]) {
        let challenge = super::challenge::start(&mut tx, &state.settings, id, "/", now).await?;
        tx.commit().await?;
        return Ok((
            jar.add(challenge),
            flash::redirect(
                super::challenge::PATH,
                "Your admin account is ready. Set up your authenticator to finish.",
            ),
        )
            .into_response());
    }
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
    crate::auth::replace_password(&mut tx, user.id, &user.email, &hash, now, None).await?;
    record_password_changed(&mut tx, &user, ip, purpose).await?;
    // A link stands in for the password, never for the second factor.
    if second_factor_due(&mut tx, &state.settings, user.id, &user.roles).await? {
        let challenge =
            super::challenge::start(&mut tx, &state.settings, user.id, "/", now).await?;
        tx.commit().await?;
        state.changes.forget(&Change::User(user.id));
        return Ok((
            jar.add(challenge),
            flash::redirect(super::challenge::PATH, password_set_message(purpose)),
        )
            .into_response());
    }
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

/// Whether `user` (holding `roles`) must answer a second factor to sign in: they have set
/// one up, or the policy requires one of their roles (they then set it up first).
pub(super) async fn second_factor_due(
    conn: &mut PgConnection,
    settings: &Settings,
    user: UserId,
    roles: &[Role],
) -> sqlx::Result<bool> {
    let policy = settings.second_factor;
    if policy == crate::config::SecondFactorPolicy::Off {
        return Ok(false);
    }
    if policy.requires(roles) {
        return Ok(true);
    }
    super::db::has_second_factor(conn, user).await
}

/// The browser's device token, from its cookie.
pub(super) fn device_token(settings: &Settings, jar: &CookieJar) -> Option<String> {
    jar.get(session::device_cookie_name(settings))
        .map(|c| c.value().to_owned())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Completes a sign-in: a new session in place of the browser's, and the browser remembered
/// as a device this account signs in from (keeping its device token if it has one).
pub(super) async fn complete_sign_in(
    conn: &mut PgConnection,
    state: &AppState,
    previous_session: Option<&CurrentUser>,
    device: Option<&str>,
    user: UserId,
    now: OffsetDateTime,
) -> sqlx::Result<SignedIn> {
    let settings = &state.settings;
    let session = replace_session(&mut *conn, settings, previous_session, user, now).await?;
    let device = device.map_or_else(|| crate::crypto::random_token(32), str::to_owned);
    let hash = crate::crypto::sha256(device.as_bytes());
    super::db::remember_device(&mut *conn, &hash, user, now).await?;
    Ok(SignedIn {
        session,
        device: session::device_cookie(settings, device),
    })
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
