//! Forms that submit once: every form carries a one-time key beside its CSRF token (see the
//! `csrf` macro of the templates). A handler that creates something claims the key in its
//! transaction; the same form sent again is answered with where the first one led.

use time::OffsetDateTime;
use uuid::Uuid;

use super::db;
use crate::error::{AppError, AppResult};
use crate::identity::UserId;

/// The name of the key's field in every form.
pub const FIELD: &str = "submission_key";

/// How long keys are kept: a resend comes within seconds, a reload of an old page within hours.
pub const KEPT_FOR: time::Duration = time::Duration::days(1);

/// What claiming a form's key came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submission {
    /// The first time this form is sent: go ahead, then call [`led_to`].
    First(Option<Uuid>),
    /// Sent before: where the first one led.
    Again(String),
}

/// Claims `key` for `user` in the caller's transaction. A form without a key (an older page,
/// a script) is always a first submission.
pub async fn claim(
    conn: &mut sqlx::PgConnection,
    key: Option<Uuid>,
    user: UserId,
    now: OffsetDateTime,
) -> AppResult<Submission> {
    let Some(key) = key else {
        return Ok(Submission::First(None));
    };
    if db::claim_submission(&mut *conn, key, user, now).await? {
        return Ok(Submission::First(Some(key)));
    }
    match db::submission_result(conn, key, user).await? {
        Some(result) if !result.is_empty() => Ok(Submission::Again(result)),
        // Another person's key, or one whose first use led nowhere to go back to.
        _ => Err(AppError::Conflict(
            "This form was sent already. Open the page again to send it anew.".into(),
        )),
    }
}

/// Claims the key sent in a form's field as `key_text` (see [`claim`]). A form sent again is
/// answered at once, as `Err`: a redirect to where its first sending led, saying `repeated`.
pub async fn claim_form(
    conn: &mut sqlx::PgConnection,
    key_text: &str,
    user: UserId,
    now: OffsetDateTime,
    repeated: &str,
) -> AppResult<Result<Submission, axum::response::Response>> {
    Ok(match claim(conn, parse_key(key_text), user, now).await? {
        Submission::Again(to) => Err(crate::web::flash::redirect(&to, repeated)),
        first => Ok(first),
    })
}

impl Submission {
    /// Records, in the caller's transaction, where the first submission led.
    pub async fn led_to(&self, conn: &mut sqlx::PgConnection, location: &str) -> AppResult<()> {
        if let Self::First(Some(key)) = self {
            db::record_submission_result(conn, *key, location).await?;
        }
        Ok(())
    }
}

/// A key as sent in a form: absent or not a UUID is no key.
pub fn parse_key(text: &str) -> Option<Uuid> {
    Uuid::parse_str(text.trim()).ok()
}
