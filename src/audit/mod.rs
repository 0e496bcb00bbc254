//! The audit trail: an append-only, hash-chained record of every change, written in the same
//! transaction as the change itself so that one never exists without the other.
//!
//! Each event stores the hash of the event before it and its own
//! `hash = SHA-256(prev_hash || canonical JSON of the event)`. Appends take a transaction-scoped
//! advisory lock before reading the head, so concurrent requests queue for the head and the
//! chain never forks. [`verify`] recomputes the chain and names the first event that does not
//! fit: a changed event fails its own hash, a removed one breaks the link of the next.

mod db;
pub mod pages;

use crate::identity::ADMIN;
use std::net::IpAddr;

use futures_util::TryStreamExt;
use serde_json::{Value, json};
use sqlx::PgConnection;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::crypto::sha256;
use crate::state::AppState;
use crate::web::routes::Routes;
use db::StoredEvent;

pub fn routes() -> Routes<AppState> {
    Routes::new().get("/admin/audit", ADMIN, pages::index).get(
        "/admin/audit.csv",
        ADMIN,
        pages::export,
    )
}

/// The advisory lock key that serialises appends to the chain.
const CHAIN_LOCK: i64 = 0x0A77_E57A;
/// The `prev_hash` of the first event.
pub const GENESIS: [u8; 32] = [0; 32];

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
    /// A signed-in person acting through the portal from `ip`.
    pub fn user(user: &crate::identity::CurrentUser, ip: Option<IpAddr>) -> Self {
        Self::person(user.id, &user.email, ip)
    }

    /// The person with account `id` and address `email`, acting from `ip` (if known).
    pub fn person(id: crate::identity::UserId, email: &str, ip: Option<IpAddr>) -> Self {
        Self {
            user_id: Some(id.0),
            label: email.to_owned(),
            ip,
        }
    }

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

/// The fields the hash covers, as stored.
struct EventFields<'a> {
    occurred_at: OffsetDateTime,
    actor_user_id: Option<Uuid>,
    actor: &'a str,
    action: &'a str,
    entity_type: &'a str,
    entity_id: &'a str,
    client_ip: Option<&'a str>,
    detail: &'a Value,
}

impl EventFields<'_> {
    /// The event as canonical JSON: keys sorted, no white space, times in RFC 3339 UTC.
    fn canonical(&self) -> String {
        json!({
            "occurred_at": self.occurred_at.format(&Rfc3339).unwrap_or_default(),
            "actor_user_id": self.actor_user_id,
            "actor": self.actor,
            "action": self.action,
            "entity_type": self.entity_type,
            "entity_id": self.entity_id,
            "client_ip": self.client_ip,
            "detail": self.detail,
        })
        .to_string()
    }

    fn hash(&self, prev_hash: &[u8]) -> [u8; 32] {
        let mut input = prev_hash.to_vec();
        input.extend_from_slice(self.canonical().as_bytes());
        sha256(&input)
    }
}

impl StoredEvent {
    /// PostgreSQL and Rust spell some IPv6 addresses differently: hash Rust's spelling, the
    /// one written when the event was recorded.
    fn normalised(mut self) -> Self {
        self.client_ip = self
            .client_ip
            .map(|ip| ip.parse::<IpAddr>().map_or(ip, |parsed| parsed.to_string()));
        self
    }

    fn fields(&self) -> EventFields<'_> {
        EventFields {
            occurred_at: self.occurred_at,
            actor_user_id: self.actor_user_id,
            actor: &self.actor,
            action: &self.action,
            entity_type: &self.entity_type,
            entity_id: &self.entity_id,
            client_ip: self.client_ip.as_deref(),
            detail: &self.detail,
        }
    }
}

/// The current time at the precision PostgreSQL stores, so the hashed time is the stored time.
fn now_micros() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap_or(now)
}

/// The hash of the newest event, waiting for and then holding the chain's lock until the
/// transaction ends.
async fn lock_head(conn: &mut PgConnection) -> sqlx::Result<Vec<u8>> {
    db::advisory_xact_lock(conn, CHAIN_LOCK).await?;
    match db::newest_hash(conn).await? {
        None => Ok(GENESIS.to_vec()),
        Some(Some(hash)) => Ok(hash),
        // Never start a second chain: older events are sealed when the database is opened.
        Some(None) => Err(sqlx::Error::Protocol(
            "the newest audit event has no hash; it must be sealed first".into(),
        )),
    }
}

/// The hash of the newest event: what a report or export was made against.
pub async fn head(conn: &mut PgConnection) -> sqlx::Result<[u8; 32]> {
    let head = db::newest_hash(conn).await?.flatten();
    Ok(head.as_deref().map_or(GENESIS, to_array))
}

/// Appends an event. Call it with the transaction that makes the change.
pub async fn record(conn: &mut PgConnection, event: NewAuditEvent<'_>) -> sqlx::Result<()> {
    let prev_hash = lock_head(conn).await?;
    let client_ip = event.actor.ip.map(|ip| ip.to_string());
    let fields = EventFields {
        occurred_at: now_micros(),
        actor_user_id: event.actor.user_id,
        actor: &event.actor.label,
        action: event.action,
        entity_type: event.entity_type,
        entity_id: &event.entity_id,
        client_ip: client_ip.as_deref(),
        detail: &event.detail,
    };
    let hash = fields.hash(&prev_hash);
    db::insert_event(conn, &fields, &prev_hash, &hash).await
}

/// Gives events written before the chain existed their place in it, oldest first.
pub async fn seal_legacy_events(conn: &mut PgConnection) -> sqlx::Result<u64> {
    if db::count_unsealed(conn).await? == 0 {
        return Ok(0);
    }
    db::advisory_xact_lock(conn, CHAIN_LOCK).await?;
    let rows: Vec<StoredEvent> = db::stored_events(conn).try_collect().await?;
    let mut prev = GENESIS.to_vec();
    let mut sealed = 0;
    for row in rows.into_iter().map(StoredEvent::normalised) {
        if let Some(hash) = row.hash {
            prev = hash;
            continue;
        }
        let hash = row.fields().hash(&prev);
        db::seal_event(conn, row.audit_event_id, &prev, &hash).await?;
        prev = hash.to_vec();
        sealed += 1;
    }
    Ok(sealed)
}

/// What verifying the chain found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub events: u64,
    /// The hash of the newest event (the genesis value for an empty trail).
    pub head: [u8; 32],
    /// The first event that does not fit, with why.
    pub broken: Option<(i64, String)>,
}

/// Recomputes the whole chain from the stored events, oldest first, one row at a time.
pub async fn verify(conn: &mut PgConnection) -> sqlx::Result<Verification> {
    let mut rows = db::stored_events(conn);
    let mut prev: Vec<u8> = GENESIS.to_vec();
    let mut previous_id: Option<i64> = None;
    let mut events = 0;
    while let Some(row) = rows.try_next().await?.map(StoredEvent::normalised) {
        events += 1;
        let id = row.audit_event_id;
        let (Some(prev_hash), Some(hash)) = (&row.prev_hash, &row.hash) else {
            return Ok(Verification {
                events,
                head: to_array(&prev),
                broken: Some((id, "it has no hash".into())),
            });
        };
        if *prev_hash != prev {
            let reason = match previous_id {
                Some(before) => format!(
                    "it does not follow event {before}: an event between them was removed, or event {before} was changed"
                ),
                None => "it is the oldest event left but does not start the chain: older events were removed".into(),
            };
            return Ok(Verification {
                events,
                head: to_array(&prev),
                broken: Some((id, reason)),
            });
        }
        let expected = row.fields().hash(prev_hash);
        if expected[..] != hash[..] {
            return Ok(Verification {
                events,
                head: to_array(&prev),
                broken: Some((
                    id,
                    "its content does not match its hash: it was changed".into(),
                )),
            });
        }
        prev.clone_from(hash);
        previous_id = Some(id);
    }
    Ok(Verification {
        events,
        head: to_array(&prev),
        broken: None,
    })
}

fn to_array(bytes: &[u8]) -> [u8; 32] {
    bytes.try_into().unwrap_or(GENESIS)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn fields(detail: &Value) -> EventFields<'_> {
        EventFields {
            occurred_at: datetime!(2026-11-26 09:30:00.123456 UTC),
            actor_user_id: None,
            actor: "cli",
            action: "standard.imported",
            entity_type: "standard",
            entity_id: "x",
            client_ip: Some("192.0.2.1"),
            detail,
        }
    }

    #[test]
    fn the_canonical_form_sorts_keys_and_keeps_microseconds() {
        let detail = json!({ "b": 1, "a": "two" });
        let canonical = fields(&detail).canonical();
        assert_eq!(
            canonical,
            r#"{"action":"standard.imported","actor":"cli","actor_user_id":null,"client_ip":"192.0.2.1","detail":{"a":"two","b":1},"entity_id":"x","entity_type":"standard","occurred_at":"2026-11-26T09:30:00.123456Z"}"#
        );
    }

    #[test]
    fn the_hash_covers_the_previous_hash_and_every_field() {
        let detail = json!({ "a": 1 });
        let base = fields(&detail).hash(&GENESIS);
        assert_ne!(base, fields(&detail).hash(&[1; 32]));
        let other = json!({ "a": 2 });
        assert_ne!(base, fields(&other).hash(&GENESIS));
    }
}
