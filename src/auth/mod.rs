//! Who is asking and what they may do: sign-in and sessions, passwords, single-use links,
//! throttling, the second factor, cross-site request defence and the access policy.

pub mod challenge;
pub mod csrf;
pub mod db;
mod handlers;
pub mod links;
pub mod second_factor;
pub mod session;
pub mod submissions;
pub mod throttle;
pub mod views;

use crate::identity::{Access, UserId};
use serde::Deserialize;
use sqlx::PgConnection;

use crate::accounts::model::check_new_password;
use crate::forms::FormErrors;

use crate::state::AppState;
use crate::web::routes::Routes;

pub use handlers::too_many;

/// A form with nothing but its token: buttons such as "Sign out".
#[derive(Debug, Deserialize)]
pub struct EmptyForm {}

pub fn routes() -> Routes<AppState> {
    Routes::new()
        .get("/login", Access::Public, handlers::login_form)
        .post("/login", Access::Public, handlers::login)
        .get(
            "/login/second-factor",
            Access::Public,
            challenge::second_factor_form,
        )
        .post(
            "/login/second-factor",
            Access::Public,
            challenge::answer_second_factor,
        )
        .post("/logout", Access::SignedIn, handlers::logout)
        .get("/setup/{token}", Access::Public, handlers::setup_form)
        .post("/setup/{token}", Access::Public, handlers::setup)
        .get(
            "/invitations/{token}",
            Access::Public,
            handlers::invitation_form,
        )
        .post(
            "/invitations/{token}",
            Access::Public,
            handlers::accept_invitation,
        )
        .get(
            "/password-reset/{token}",
            Access::Public,
            handlers::reset_form,
        )
        .post(
            "/password-reset/{token}",
            Access::Public,
            handlers::reset_password,
        )
}

/// Checks a new password and its confirmation, marking the form's fields.
pub fn check_password_fields(
    errors: &mut FormErrors,
    password: &str,
    confirm: &str,
    email: &str,
    name: &str,
) {
    if password.is_empty() {
        errors.add("password", "Enter a password");
    } else if let Err(message) = check_new_password(password, email, name) {
        errors.add("password", message);
    } else if password != confirm {
        errors.add("confirm_password", "The two passwords are not the same");
    }
}

/// A `next` path to return to after sign-in: only a path on this site, never another host.
pub fn safe_next(next: &str) -> &str {
    let is_local_path = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && next.bytes().all(|b| b.is_ascii_graphic());
    if is_local_path { next } else { "/" }
}

/// A new password for `user`: stores its hash, makes every unused invitation or reset link
/// of theirs worthless (one could otherwise overwrite the new password), clears the failed
/// sign-ins counted against the account, and ends their sessions except `keep`. Returns how
/// many sessions ended.
pub async fn replace_password(
    conn: &mut PgConnection,
    user: UserId,
    email: &str,
    hash: &str,
    now: time::OffsetDateTime,
    keep: Option<&[u8; 32]>,
) -> sqlx::Result<u64> {
    crate::accounts::db::set_password_hash(&mut *conn, user, hash, now).await?;
    links::retire_for_user(&mut *conn, user, now).await?;
    // A new password lifts any wait on the account.
    throttle::clear(&mut *conn, &email.to_lowercase(), now).await?;
    session::end_all_for_user(conn, user, keep).await
}

/// Removes `user`'s authenticator and recovery codes (lost, or suspected stolen): they set a
/// new one up at their next sign-in if their role needs one. Ends their sessions and
/// unanswered sign-ins, forgets their browsers, and lifts any wait on the account. Returns
/// whether they had one.
pub async fn reset_second_factor(
    conn: &mut PgConnection,
    user: UserId,
    email: &str,
    now: time::OffsetDateTime,
) -> sqlx::Result<bool> {
    let had = db::delete_second_factor(&mut *conn, user).await?;
    // A phone suspected stolen: no half-finished sign-in and no remembered browser survives.
    db::forget_sign_in_state(&mut *conn, user).await?;
    throttle::clear(&mut *conn, &email.to_lowercase(), now).await?;
    session::end_all_for_user(conn, user, None).await?;
    Ok(had)
}

/// One line in the audit trail when the failure just settled brought a count to a threshold
/// (instead of a line for every failure).
pub async fn record_if_slowed(
    conn: &mut PgConnection,
    attempt: throttle::Attempt<'_>,
    now: time::OffsetDateTime,
    actor: &crate::audit::Actor,
    entity: (&'static str, String),
) -> sqlx::Result<()> {
    let Some((scope, failures)) = throttle::tripped(&mut *conn, attempt, now).await? else {
        return Ok(());
    };
    crate::audit::record(
        conn,
        crate::audit::NewAuditEvent {
            actor,
            action: "auth.sign_in_slowed",
            entity_type: entity.0,
            entity_id: entity.1,
            detail: serde_json::json!({
                "scope": scope,
                "failures": failures,
                "checked": attempt.kind.as_str(),
            }),
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(
            safe_next("/enrolments/1?tab=evidence"),
            "/enrolments/1?tab=evidence"
        );
        for hostile in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "evil",
            "",
            "/x\r\nSet-Cookie: a=b",
            "/\u{1}",
            "/a b",
        ] {
            assert_eq!(safe_next(hostile), "/", "{hostile}");
        }
    }
}
