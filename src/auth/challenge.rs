//! The second step of sign-in: after a right password, the browser holds a short-lived
//! challenge (never a session) until the person gives a code from their authenticator or a
//! recovery code, or sets an authenticator up when their role requires one.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar};
use serde::Deserialize;
use serde_json::json;
use sqlx::PgConnection;
use time::{Duration, OffsetDateTime};

use super::csrf::CsrfForm;
use super::db::{self, Challenge};
use super::handlers::{complete_sign_in, device_token};
use super::second_factor::{self, Accept, Answer};
use super::session;
use super::throttle::{self, Attempt, AttemptKind, Outcome};
use super::views::{RecoveryCodesPage, SecondFactorPage};
use crate::audit::{self, Actor, NewAuditEvent};
use crate::config::Settings;
use crate::crypto::{random_token, sha256};
use crate::error::AppResult;
use crate::state::AppState;
use crate::web::client_ip::ClientIp;
use crate::web::flash;
use crate::web::layout::Layout;

/// Where the second step is answered.
pub const PATH: &str = "/login/second-factor";
/// How long a password stays good for the second step.
const CHALLENGE_LIFETIME: Duration = Duration::minutes(10);

/// Starts the second step for `user`, who is going to `next`; returns the cookie to send.
pub async fn start(
    conn: &mut PgConnection,
    settings: &Settings,
    user: crate::identity::UserId,
    next: &str,
    now: OffsetDateTime,
) -> sqlx::Result<Cookie<'static>> {
    let token = random_token(32);
    db::insert_challenge(
        conn,
        &sha256(token.as_bytes()),
        user,
        next,
        now,
        now + CHALLENGE_LIFETIME,
    )
    .await?;
    Ok(session::challenge_cookie(settings, token))
}

/// The challenge of the browser's cookie, while it lasts.
async fn find(
    conn: &mut PgConnection,
    settings: &Settings,
    jar: &CookieJar,
    now: OffsetDateTime,
) -> sqlx::Result<Option<([u8; 32], Challenge)>> {
    let Some(cookie) = jar.get(session::challenge_cookie_name(settings)) else {
        return Ok(None);
    };
    let hash = sha256(cookie.value().as_bytes());
    Ok(db::find_challenge(conn, &hash, now)
        .await?
        .map(|challenge| (hash, challenge)))
}

/// Back to the sign-in form when the challenge has expired or was never there.
fn expired() -> Response {
    flash::redirect(
        "/login",
        "Your sign-in took too long to finish. Sign in again.",
    )
}

/// `GET /login/second-factor`: the code form, or the authenticator to set up.
pub async fn second_factor_form(
    State(state): State<AppState>,
    layout: Layout,
    jar: CookieJar,
) -> AppResult<Response> {
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let Some((_, challenge)) = find(&mut tx, &state.settings, &jar, now).await? else {
        return Ok(expired());
    };
    let page = page_for(&mut tx, &state, layout, &challenge, now).await?;
    tx.commit().await?;
    Ok(page.into_response())
}

/// The form for `challenge`: a code from the authenticator, or one to set up first.
async fn page_for(
    conn: &mut PgConnection,
    state: &AppState,
    layout: Layout,
    challenge: &Challenge,
    now: OffsetDateTime,
) -> sqlx::Result<SecondFactorPage> {
    let key = &state.settings.secret_key;
    let email = challenge.email.to_lowercase();
    let setup = if db::has_second_factor(conn, challenge.user_id).await? {
        None
    } else {
        second_factor::begin_setup(conn, key, challenge.user_id, &email, now).await?
    };
    Ok(SecondFactorPage::new(layout, setup.as_ref()))
}

#[derive(Debug, Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
}

/// `POST /login/second-factor`: checks the code (or recovery code) and completes the sign-in;
/// after setting up an authenticator, shows the recovery codes once.
pub async fn answer_second_factor(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    layout: Layout,
    jar: CookieJar,
    CsrfForm(form): CsrfForm<CodeForm>,
) -> AppResult<Response> {
    let now = state.clock.now();
    let settings = &state.settings;
    let challenge = {
        let mut conn = state.pool.acquire().await?;
        find(&mut conn, settings, &jar, now).await?
    };
    let Some((challenge_hash, challenge)) = challenge else {
        return Ok(expired());
    };
    let account = Account {
        id: challenge.user_id,
        email: &challenge.email,
    };
    let was_set_up = {
        let mut conn = state.pool.acquire().await?;
        db::has_second_factor(&mut conn, challenge.user_id).await?
    };
    let accept = if was_set_up {
        Accept::SignIn
    } else {
        Accept::Setup
    };
    let (mut tx, answer) = match check_code(&state, account, ip, &form.code, accept).await? {
        Ok(accepted) => accepted,
        Err((status, problem)) => {
            let mut conn = state.pool.acquire().await?;
            let mut page = page_for(&mut conn, &state, layout, &challenge, now).await?;
            match status {
                StatusCode::TOO_MANY_REQUESTS => page.notice = Some(problem),
                _ => page.errors.add("code", problem),
            }
            return Ok((status, page).into_response());
        }
    };

    db::delete_challenge(&mut tx, &challenge_hash).await?;
    let device = device_token(settings, &jar);
    let previous = layout.user.as_ref();
    let signed_in = complete_sign_in(
        &mut tx,
        &state,
        previous,
        device.as_deref(),
        challenge.user_id,
        now,
    )
    .await?;
    let recovery_codes = if was_set_up {
        None
    } else {
        record(&mut tx, account, ip, "auth.second_factor_set_up", json!({})).await?;
        Some(second_factor::renew_recovery_codes(&mut tx, challenge.user_id).await?)
    };
    let left = if answer == Answer::RecoveryCode {
        Some(db::recovery_codes_left(&mut tx, challenge.user_id).await?)
    } else {
        None
    };
    record(
        &mut tx,
        account,
        ip,
        "auth.login_succeeded",
        json!({ "second_factor": answer.as_str(), "recovery_codes_left": left }),
    )
    .await?;
    tx.commit().await?;
    if let Some(previous) = previous {
        state
            .changes
            .forget(&crate::changes::Change::Session(previous.session_id_hash));
    }

    let jar = jar
        .add(signed_in.session)
        .add(signed_in.device)
        .add(session::removal(
            settings,
            session::challenge_cookie_name(settings),
        ));
    let next = super::safe_next(&challenge.next_path).to_owned();
    if let Some(codes) = recovery_codes {
        // Shown once, on the answer itself: they are never stored readable.
        let page = RecoveryCodesPage {
            layout,
            codes,
            next,
        };
        return Ok((jar, page).into_response());
    }
    let message = match left {
        Some(n) => format!(
            "You signed in with a recovery code. You have {n} left: set up your authenticator again or get new codes from your account page."
        ),
        None => String::new(),
    };
    if message.is_empty() {
        Ok((jar, Redirect::to(&next)).into_response())
    } else {
        Ok((jar, flash::redirect(&next, &message)).into_response())
    }
}

/// The account a code is checked for.
#[derive(Debug, Clone, Copy)]
pub struct Account<'a> {
    pub id: crate::identity::UserId,
    pub email: &'a str,
}

/// A right answer, with the transaction it was recorded in, still open: the caller completes
/// what the answer was for (a session, new recovery codes, their audit events) in it, so a
/// code is never used up without what it was given for.
pub type Accepted = (sqlx::Transaction<'static, sqlx::Postgres>, Answer);

/// Checks a second-factor code (or recovery code) typed for `account`, as `accept` allows,
/// under the throttle of codes: one short transaction begins the attempt, another checks and
/// settles it (committed here when the code is not right). `Err` holds the status and what to
/// say when it is not right or must wait.
pub async fn check_code(
    state: &AppState,
    account: Account<'_>,
    ip: Option<std::net::IpAddr>,
    typed: &str,
    accept: Accept,
) -> AppResult<Result<Accepted, (StatusCode, String)>> {
    let now = state.clock.now();
    let email = account.email.to_lowercase();
    let attempt = Attempt {
        kind: AttemptKind::SecondFactor,
        email: &email,
        ip,
        known_device: None,
    };
    let begun = match throttle::begin_alone(&state.pool, attempt, false, now).await? {
        Ok(begun) => begun,
        Err(refusal) => return Ok(Err(super::handlers::too_many(refusal))),
    };
    let key = &state.settings.secret_key;
    let mut tx = state.pool.begin().await?;
    let answer = second_factor::check(&mut tx, key, account.id, &email, typed, now, accept).await?;
    if let Some(answer) = answer {
        throttle::settle(&mut tx, begun.id, Outcome::Succeeded).await?;
        return Ok(Ok((tx, answer)));
    }
    throttle::settle(&mut tx, begun.id, Outcome::Failed).await?;
    let actor = Actor::person(account.id, account.email, ip);
    let entity = ("user", account.id.to_string());
    super::record_if_slowed(&mut tx, attempt, now, &actor, entity).await?;
    tx.commit().await?;
    let problem = if typed.trim().is_empty() {
        "Enter the code from your authenticator app"
    } else {
        "That code is not right. Check the time on your phone and try the newest code."
    };
    Ok(Err((StatusCode::UNPROCESSABLE_ENTITY, problem.to_owned())))
}

/// Writes an event about `account` to the audit trail.
pub async fn record(
    conn: &mut PgConnection,
    account: Account<'_>,
    ip: Option<std::net::IpAddr>,
    action: &'static str,
    detail: serde_json::Value,
) -> sqlx::Result<()> {
    audit::record(
        conn,
        NewAuditEvent {
            actor: &Actor::person(account.id, account.email, ip),
            action,
            entity_type: "user",
            entity_id: account.id.to_string(),
            detail,
        },
    )
    .await
}
