//! Accounts: who people are, their roles, and how admins manage them.

mod account;
mod admin;
pub mod db;
pub mod model;
mod views;

use crate::identity::{ADMIN, Access};
use serde_json::json;
use sqlx::PgConnection;

use crate::audit::{self, Actor, NewAuditEvent};
use crate::identity::{Role, UserId};
use crate::state::AppState;
use crate::web::routes::Routes;
use db::InsertError;
use model::{DisplayName, Email};

pub fn routes() -> Routes<AppState> {
    Routes::new()
        .get("/account", Access::SignedIn, account::show)
        .post(
            "/account/password",
            Access::SignedIn,
            account::change_password,
        )
        .get("/admin/users", ADMIN, admin::index)
        .post("/admin/users", ADMIN, admin::create)
        .get("/admin/users/new", ADMIN, admin::new)
        .get("/admin/users/{id}", ADMIN, admin::show)
        .post("/admin/users/{id}", ADMIN, admin::update)
        .post("/admin/users/{id}/deactivate", ADMIN, admin::deactivate)
        .post("/admin/users/{id}/reactivate", ADMIN, admin::reactivate)
        .post(
            "/admin/users/{id}/access-link",
            ADMIN,
            admin::issue_access_link,
        )
}

/// Creates an account from the command line (`via` names the command) and records it in the
/// audit trail, in the caller's transaction.
pub async fn create_from_command(
    conn: &mut PgConnection,
    email: &Email,
    name: &DisplayName,
    roles: &[Role],
    password_hash: Option<&str>,
    via: &str,
) -> Result<UserId, InsertError> {
    let id = db::insert(&mut *conn, email, name, roles, password_hash).await?;
    audit::record(
        conn,
        NewAuditEvent {
            actor: &Actor::cli(),
            action: "user.created",
            entity_type: "user",
            entity_id: id.to_string(),
            detail: json!({ "email": email.as_str(), "name": name.as_str(), "roles": roles, "via": via }),
        },
    )
    .await?;
    Ok(id)
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
    db::set_password_hash(&mut *conn, user, hash, now).await?;
    crate::auth::links::retire_for_user(&mut *conn, user, now).await?;
    crate::auth::session::end_all_for_user(conn, user, keep).await
}
