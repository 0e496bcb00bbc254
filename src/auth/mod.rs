//! Who is asking and what they may do: sign-in and sessions, passwords, single-use links,
//! lockout, cross-site request defence and the access policy.

pub mod csrf;
pub mod db;
mod handlers;
pub mod links;
pub mod lockout;
pub mod session;
pub mod submissions;
mod views;

use crate::identity::{Access, UserId};
use serde::Deserialize;
use sqlx::PgConnection;

use crate::accounts::model::check_new_password;
use crate::forms::FormErrors;

use crate::state::AppState;
use crate::web::routes::Routes;

/// A form with nothing but its token: buttons such as "Sign out".
#[derive(Debug, Deserialize)]
pub struct EmptyForm {}

pub fn routes() -> Routes<AppState> {
    Routes::new()
        .get("/login", Access::Public, handlers::login_form)
        .post("/login", Access::Public, handlers::login)
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
/// of theirs worthless (one could otherwise overwrite the new password), and ends their
/// sessions except `keep`. Returns how many sessions ended.
pub async fn replace_password(
    conn: &mut PgConnection,
    user: UserId,
    hash: &str,
    now: time::OffsetDateTime,
    keep: Option<&[u8; 32]>,
) -> sqlx::Result<u64> {
    crate::accounts::db::set_password_hash(&mut *conn, user, hash, now).await?;
    links::retire_for_user(&mut *conn, user, now).await?;
    session::end_all_for_user(conn, user, keep).await
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
