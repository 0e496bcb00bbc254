//! Server-side sessions in PostgreSQL, so any number of `attest serve` processes share them.
//!
//! The cookie holds a random 256-bit token; the table holds only its SHA-256. A session is
//! written only when someone signs in, ends after 30 idle minutes or 12 hours (configurable),
//! gets a new id when its user's roles change, and is deleted at sign-out, deactivation and
//! password change.
//!
//! A process keeps the sessions it has looked up in memory for up to a minute (until the next
//! `last_seen_at` write), and forgets one as soon as it hears that it ended or its user changed
//! (`crate::changes`): most requests then cost no round trip to the database for the session.

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::http::header::SET_COOKIE;
use axum::middleware::Next;
use axum::response::Response;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use sqlx::PgConnection;
use time::OffsetDateTime;

use super::db::{self, StoredSession};
use crate::changes::{Cache, OfUser};
use crate::config::Settings;
use crate::crypto::{random_token, sha256};
use crate::identity::{CsrfToken, CurrentUser, SessionUnknown, UserId};
use crate::state::AppState;

/// How stale `last_seen_at` may get before a request refreshes it: one write a minute per
/// active session instead of one per request.
const LAST_SEEN_GRANULARITY: time::Duration = time::Duration::minutes(1);

/// The most sessions one process keeps in memory.
const SESSIONS_KEPT: usize = 50_000;

/// What the session middleware works with: the portal's state and the sessions kept.
#[derive(Clone)]
pub struct Sessions {
    state: AppState,
    kept: Cache<StoredSession>,
}

impl Sessions {
    pub fn new(state: AppState) -> Self {
        let kept = state.changes.cache(SESSIONS_KEPT);
        Self { state, kept }
    }
}

impl OfUser for StoredSession {
    fn belongs_to(&self, user: UserId) -> bool {
        self.user_id == user
    }
}

/// Under https, a cookie's name carries the `__Host-` prefix: the browser then accepts it only
/// from this host, over https, for every path.
fn host_only(settings: &Settings, prefixed: &'static str, plain: &'static str) -> &'static str {
    if settings.is_https() { prefixed } else { plain }
}

/// The cookie that carries the session token.
pub fn session_cookie_name(settings: &Settings) -> &'static str {
    host_only(settings, "__Host-attest_session", "attest_session")
}

/// The cookie that carries the form token of visitors who are not signed in.
pub fn csrf_cookie_name(settings: &Settings) -> &'static str {
    host_only(settings, "__Host-attest_csrf", "attest_csrf")
}

/// The cookie that marks a browser as one an account has signed in from.
pub fn device_cookie_name(settings: &Settings) -> &'static str {
    host_only(settings, "__Host-attest_device", "attest_device")
}

/// The cookie that carries a sign-in waiting for its second factor.
pub fn challenge_cookie_name(settings: &Settings) -> &'static str {
    host_only(settings, "__Host-attest_challenge", "attest_challenge")
}

/// The device cookie with `token`: kept for a year, so an attack on the account from
/// elsewhere does not slow this browser's sign-in.
pub fn device_cookie(settings: &Settings, token: String) -> Cookie<'static> {
    let mut device = cookie(settings, device_cookie_name(settings), token, SameSite::Lax);
    device.set_max_age(time::Duration::days(365));
    device
}

/// The cookie of a sign-in waiting for its second factor.
pub fn challenge_cookie(settings: &Settings, token: String) -> Cookie<'static> {
    cookie(
        settings,
        challenge_cookie_name(settings),
        token,
        SameSite::Lax,
    )
}

fn cookie(
    settings: &Settings,
    name: &'static str,
    value: String,
    same_site: SameSite,
) -> Cookie<'static> {
    Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .secure(settings.is_https())
        .same_site(same_site)
        .build()
}

/// A new session for `user`; returns the cookie to send.
pub async fn start(
    conn: &mut PgConnection,
    settings: &Settings,
    user: UserId,
    now: OffsetDateTime,
) -> sqlx::Result<Cookie<'static>> {
    let token = random_token(32);
    db::insert_session(
        conn,
        &sha256(token.as_bytes()),
        user,
        &random_token(32),
        now,
    )
    .await?;
    Ok(cookie(
        settings,
        session_cookie_name(settings),
        token,
        SameSite::Lax,
    ))
}

/// Ends one session.
pub async fn end(conn: &mut PgConnection, session_id_hash: &[u8; 32]) -> sqlx::Result<()> {
    db::delete_session(conn, session_id_hash).await
}

/// Ends every session of `user` but `except`.
pub async fn end_all_for_user(
    conn: &mut PgConnection,
    user: UserId,
    except: Option<&[u8; 32]>,
) -> sqlx::Result<u64> {
    db::delete_sessions_of_user(conn, user, except).await
}

/// Gives every session of `user` a new id at its next request (after a change of roles).
pub async fn rotate_all_for_user(conn: &mut PgConnection, user: UserId) -> sqlx::Result<()> {
    db::mark_sessions_of_user_for_rotation(conn, user).await
}

/// Deletes sessions that have timed out. Runs in the background of `attest serve`.
pub async fn delete_expired(
    conn: &mut PgConnection,
    settings: &Settings,
    now: OffsetDateTime,
) -> sqlx::Result<u64> {
    db::delete_sessions_seen_or_created_before(
        conn,
        now - settings.session_idle_timeout,
        now - settings.session_absolute_timeout,
    )
    .await
}

/// A cookie that removes `name` from the browser.
pub fn removal(settings: &Settings, name: &'static str) -> Cookie<'static> {
    let mut removal = cookie(settings, name, String::new(), SameSite::Lax);
    removal.make_removal();
    removal
}

/// Middleware: finds the session of the request's cookie, enforces its timeouts and rotation,
/// and puts the [`CurrentUser`] and [`CsrfToken`] in the request's extensions.
pub async fn load(
    State(sessions): State<Sessions>,
    jar: CookieJar,
    mut request: Request,
    next: Next,
) -> Response {
    let settings = &sessions.state.settings;
    let session = look_up_session(&sessions, &jar).await;
    if session.unknown {
        request.extensions_mut().insert(SessionUnknown);
    }
    let (csrf, visitor_cookie) = match session.user {
        Some((current, csrf)) => {
            request.extensions_mut().insert(current);
            (csrf, None)
        }
        None => visitor_csrf_token(settings, &jar),
    };
    request.extensions_mut().insert(CsrfToken(csrf));

    let mut response = next.run(request).await;
    // A handler that set the session cookie itself (a sign-in) started a new session: the
    // removal or rotation of the one the request came with must not cancel it.
    let session_cookie = session
        .cookie
        .as_ref()
        .filter(|_| !sets_cookie(&response, session_cookie_name(settings)));
    set_cookies(&mut response, session_cookie, visitor_cookie.as_ref());
    response
}

/// Whether `response` already sets the cookie `name`.
fn sets_cookie(response: &Response, name: &str) -> bool {
    response.headers().get_all(SET_COOKIE).iter().any(|value| {
        value
            .as_bytes()
            .strip_prefix(name.as_bytes())
            .is_some_and(|rest| rest.starts_with(b"="))
    })
}

/// What the session cookie of a request comes to.
#[derive(Default)]
struct SessionLookup {
    /// The signed-in user and their session's form token; `None` for a visitor.
    user: Option<(CurrentUser, String)>,
    /// The session cookie to send back: a new id after rotation, or a removal of a session
    /// that is gone.
    cookie: Option<Cookie<'static>>,
    /// The request has a session cookie, but the database could not be asked about it.
    unknown: bool,
}

/// Looks up the session of the request's cookie, if it has one.
async fn look_up_session(sessions: &Sessions, jar: &CookieJar) -> SessionLookup {
    let settings = &sessions.state.settings;
    let Some(session_cookie) = jar.get(session_cookie_name(settings)) else {
        return SessionLookup::default();
    };
    match resolve(sessions, session_cookie.value()).await {
        Ok(Resolved::Valid {
            user,
            rotated_cookie,
        }) => SessionLookup {
            user: Some(*user),
            cookie: rotated_cookie,
            unknown: false,
        },
        Ok(Resolved::Invalid) => SessionLookup {
            user: None,
            cookie: Some(removal(settings, session_cookie_name(settings))),
            unknown: false,
        },
        // The database is out of reach: public pages are served as to a visitor, pages that
        // need a user answer 503, and the cookie is kept for when it is back. (Any other
        // failure is a fault, and the request goes on as a visitor's.)
        Err(error) => {
            tracing::warn!(error = %error, "session lookup failed");
            crate::metrics::metrics().database_failed(&error);
            SessionLookup {
                unknown: crate::error::is_unavailable(&error),
                ..SessionLookup::default()
            }
        }
    }
}

/// The form token of a visitor who is not signed in: the one their cookie carries when it
/// has the right length, else a new one with the cookie that will carry it.
fn visitor_csrf_token(settings: &Settings, jar: &CookieJar) -> (String, Option<Cookie<'static>>) {
    match jar.get(csrf_cookie_name(settings)) {
        Some(c) if c.value().len() == 64 => (c.value().to_owned(), None),
        _ => {
            let token = random_token(32);
            let new_cookie = cookie(
                settings,
                csrf_cookie_name(settings),
                token.clone(),
                SameSite::Strict,
            );
            (token, Some(new_cookie))
        }
    }
}

/// Adds a `Set-Cookie` header to `response` for the session cookie, and for the visitor's
/// form-token cookie only when the response is an HTML page.
fn set_cookies(
    response: &mut Response,
    session_cookie: Option<&Cookie<'static>>,
    visitor_cookie: Option<&Cookie<'static>>,
) {
    // Only pages carry forms; a visitor token on an asset would also reach shared caches.
    let is_page = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(b"text/html"));
    let visitor_cookie = visitor_cookie.filter(|_| is_page);
    for cookie in session_cookie.into_iter().chain(visitor_cookie) {
        if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
            response.headers_mut().append(SET_COOKIE, value);
        }
    }
}

enum Resolved {
    Valid {
        user: Box<(CurrentUser, String)>,
        rotated_cookie: Option<Cookie<'static>>,
    },
    Invalid,
}

async fn resolve(sessions: &Sessions, token: &str) -> sqlx::Result<Resolved> {
    let state = &sessions.state;
    let settings = &state.settings;
    let now = state.clock.now();
    let hash = sha256(token.as_bytes());
    if let Some(kept) = sessions.kept.get(&hash)
        && is_fresh(&kept, settings, now)
    {
        return Ok(valid(kept, hash, None));
    }
    let mark = sessions.kept.mark();
    let mut conn = state.pool.acquire().await?;
    let Some(mut row) = db::find_session_of_active_user(&mut conn, &hash).await? else {
        return Ok(Resolved::Invalid);
    };

    if row.last_seen_at + settings.session_idle_timeout <= now
        || row.created_at + settings.session_absolute_timeout <= now
    {
        end(&mut conn, &hash).await?;
        return Ok(Resolved::Invalid);
    }

    if row.must_rotate {
        let new_token = random_token(32);
        let new_hash = sha256(new_token.as_bytes());
        db::replace_session_id(&mut conn, &hash, &new_hash, now).await?;
        let rotated_cookie = cookie(
            settings,
            session_cookie_name(settings),
            new_token,
            SameSite::Lax,
        );
        return Ok(valid(row, new_hash, Some(rotated_cookie)));
    }
    if now - row.last_seen_at >= LAST_SEEN_GRANULARITY {
        db::set_session_last_seen(&mut conn, &hash, now).await?;
        row.last_seen_at = now;
    }
    sessions.kept.put(mark, hash, row.clone());
    Ok(valid(row, hash, None))
}

/// A kept session may serve without asking the database until its `last_seen_at` is due to
/// be written again: by then another process may have seen it later, so the idle timeout is
/// judged on what the database holds. (A session due to rotate is never kept.)
fn is_fresh(session: &StoredSession, settings: &Settings, now: OffsetDateTime) -> bool {
    now - session.last_seen_at < LAST_SEEN_GRANULARITY
        && session.last_seen_at + settings.session_idle_timeout > now
        && session.created_at + settings.session_absolute_timeout > now
}

fn valid(
    session: StoredSession,
    session_id_hash: [u8; 32],
    rotated_cookie: Option<Cookie<'static>>,
) -> Resolved {
    let user = CurrentUser {
        id: session.user_id,
        email: session.email,
        name: session.display_name,
        roles: session.roles,
        session_id_hash,
    };
    Resolved::Valid {
        user: Box::new((user, session.csrf_token)),
        rotated_cookie,
    }
}
