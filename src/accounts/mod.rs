//! Accounts: the records of the people who use the portal (their emails, names, roles and
//! password hashes) and the rules for what may be typed into them. Signing in (`auth`) and
//! managing users (`users`) both stand on these.

pub mod db;
pub mod model;

use serde_json::json;
use sqlx::PgConnection;

use crate::audit::{self, Actor, NewAuditEvent};
use crate::identity::{Role, UserId};
use db::InsertError;
use model::{DisplayName, Email};

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
