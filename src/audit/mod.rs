//! The audit trail: an append-only record of every change, written in the same transaction
//! as the change itself so that one never exists without the other.

use std::net::IpAddr;

use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

/// Who caused a change.
#[derive(Debug, Clone)]
pub struct Actor {
    /// The signed-in user, when a person acted through the portal.
    pub user_id: Option<Uuid>,
    /// The actor in words as they were at the time: an email, `cli` or `system`.
    pub label: String,
    pub ip: Option<IpAddr>,
}

impl Actor {
    /// A change made by an operator through the `attest` command line.
    pub fn cli() -> Self {
        Self {
            user_id: None,
            label: "cli".into(),
            ip: None,
        }
    }

    /// A change the portal makes by itself, such as loading the bundled standard.
    pub fn system() -> Self {
        Self {
            user_id: None,
            label: "system".into(),
            ip: None,
        }
    }
}

/// One change to record.
#[derive(Debug, Clone)]
pub struct NewAuditEvent<'a> {
    pub actor: &'a Actor,
    /// Dotted verb: `standard.imported`.
    pub action: &'static str,
    pub entity_type: &'static str,
    pub entity_id: String,
    /// What changed. Never a password, token or cookie.
    pub detail: Value,
}

/// Appends an event. Call it with the transaction that makes the change.
pub async fn record(conn: &mut PgConnection, event: NewAuditEvent<'_>) -> sqlx::Result<()> {
    sqlx::query!(
        r#"
        insert into audit_event (actor_user_id, actor, action, entity_type, entity_id, client_ip, detail)
        values ($1, $2, $3, $4, $5, $6::text::inet, $7)
        "#,
        event.actor.user_id,
        event.actor.label,
        event.action,
        event.entity_type,
        event.entity_id,
        event.actor.ip.map(|ip| ip.to_string()),
        event.detail,
    )
    .execute(conn)
    .await?;
    Ok(())
}
