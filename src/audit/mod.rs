//! The audit trail: an append-only, hash-chained record of every change, written in the same
//! transaction as the change itself so that one never exists without the other.
//!
//! A change inserts its event unsealed, taking no lock, so writers never queue behind each
//! other for the trail. [`seal_pending`] then links the events that have become visible into
//! the chain, one sealer at a time (a transaction-scoped advisory lock): each sealed event
//! stores its place (`chain_seq`), the hash of the event before it and its own
//! `hash = SHA-256(prev_hash || canonical JSON of the event as stored)`, in the JSON form the
//! event records (`digest_version`: RFC 8785 since it was introduced). `attest serve` seals
//! every few milliseconds and when it stops; every command seals when it opens the database.
//! [`verify`] recomputes the chain and names the first event that does not fit: a changed
//! event fails its own hash, a removed one breaks the link of the next.

pub mod checkpoint;
mod db;
pub mod pages;

use crate::identity::ADMIN;
use std::net::IpAddr;

use futures_util::TryStreamExt;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::crypto::{JsonDigest, sha256};
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

/// The advisory lock key that lets one sealer at a time extend the chain.
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

    /// A witness with no account, answering through their link from `ip`, as they signed.
    pub fn witness(signed_name: &str, ip: Option<IpAddr>) -> Self {
        Self {
            user_id: None,
            label: format!("witness: {signed_name}"),
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
    /// The event as JSON: times in RFC 3339 UTC with microseconds.
    fn json(&self) -> Value {
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
    }

    fn hash(&self, prev_hash: &[u8], form: JsonDigest) -> [u8; 32] {
        let mut input = prev_hash.to_vec();
        input.extend_from_slice(&form.canonical(&self.json()));
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

    /// The form the event is hashed in (the column allows no other than those known).
    fn form(&self) -> JsonDigest {
        JsonDigest::from_stored(self.digest_version).unwrap_or(JsonDigest::CURRENT)
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

/// The hash of the newest sealed event: what a report or export was made against.
pub async fn head(conn: &mut PgConnection) -> sqlx::Result<[u8; 32]> {
    let head = db::newest_sealed(conn).await?;
    Ok(head.map_or(GENESIS, |(hash, _)| to_array(&hash)))
}

/// Appends an event, unsealed. Call it with the transaction that makes the change: the event
/// exists exactly when the change does.
pub async fn record(conn: &mut PgConnection, event: NewAuditEvent<'_>) -> sqlx::Result<()> {
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
    let started = std::time::Instant::now();
    db::insert_event(conn, &fields).await?;
    crate::metrics::metrics().audit_appended(started.elapsed());
    Ok(())
}

/// Appends many events, unsealed, in one statement: for changes made to many records at once
/// (a roster, an enrolment of many), in the transaction that makes them.
pub async fn record_many(
    conn: &mut PgConnection,
    events: &[NewAuditEvent<'_>],
) -> sqlx::Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let occurred_at = now_micros();
    let mut rows = db::EventRows::default();
    for event in events {
        rows.push(&EventFields {
            occurred_at,
            actor_user_id: event.actor.user_id,
            actor: &event.actor.label,
            action: event.action,
            entity_type: event.entity_type,
            entity_id: &event.entity_id,
            client_ip: event.actor.ip.map(|ip| ip.to_string()).as_deref(),
            detail: &event.detail,
        });
    }
    let started = std::time::Instant::now();
    db::insert_events(conn, &rows).await?;
    crate::metrics::metrics().audit_appended(started.elapsed());
    Ok(())
}

/// How many events one sealing transaction links at most.
const SEAL_BATCH: i64 = 1_000;

/// Links every event that waits into the chain, in the order the events were written, and
/// returns how many. Events are hashed as stored, so the hash is what [`verify`] recomputes.
/// Runs its own transactions; while another sealer works, it waits for it.
pub async fn seal_pending(conn: &mut PgConnection) -> sqlx::Result<u64> {
    let mut sealed = 0;
    while db::any_unsealed(conn).await? {
        let mut tx = conn.begin().await?;
        crate::db::advisory_xact_lock(&mut tx, CHAIN_LOCK).await?;
        let (mut prev, mut seq) = db::newest_sealed(&mut tx)
            .await?
            .unwrap_or((GENESIS.to_vec(), 0));
        let events = db::unsealed_events(&mut tx, SEAL_BATCH).await?;
        let mut ids = Vec::with_capacity(events.len());
        let mut seqs = Vec::with_capacity(events.len());
        let mut prev_hashes = Vec::with_capacity(events.len());
        let mut hashes = Vec::with_capacity(events.len());
        for event in events.into_iter().map(StoredEvent::normalised) {
            let hash = event.fields().hash(&prev, event.form()).to_vec();
            seq += 1;
            ids.push(event.audit_event_id);
            seqs.push(seq);
            prev_hashes.push(std::mem::replace(&mut prev, hash.clone()));
            hashes.push(hash);
        }
        db::seal_events(&mut tx, &ids, &seqs, &prev_hashes, &hashes).await?;
        tx.commit().await?;
        sealed += ids.len() as u64;
    }
    Ok(sealed)
}

/// What verifying the chain found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// The sealed events checked.
    pub events: u64,
    /// Events written but not sealed yet: not part of the chain, so not checked.
    pub pending: u64,
    /// The hash of the newest event (the genesis value for an empty trail).
    pub head: [u8; 32],
    /// The first event that does not fit, with why.
    pub broken: Option<(i64, String)>,
    /// The checkpoints checked against the chain.
    pub checkpoints: u64,
    /// The first checkpoint the chain no longer agrees with, with why: its end was cut off or
    /// rewritten.
    pub checkpoint_problem: Option<String>,
}

impl Verification {
    pub fn is_intact(&self) -> bool {
        self.broken.is_none() && self.checkpoint_problem.is_none()
    }
}

/// Recomputes the whole chain from the sealed events, in chain order, one row at a time, then
/// checks that every signed checkpoint is still a prefix of it.
pub async fn verify(conn: &mut PgConnection) -> sqlx::Result<Verification> {
    let pending = u64::try_from(db::count_unsealed(conn).await?).unwrap_or(0);
    let mut rows = db::stored_events(conn);
    let mut prev: Vec<u8> = GENESIS.to_vec();
    let mut previous_id: Option<i64> = None;
    let mut events = 0;
    while let Some(row) = rows.try_next().await?.map(StoredEvent::normalised) {
        events += 1;
        let id = row.audit_event_id;
        let (Some(prev_hash), Some(hash)) = (&row.prev_hash, &row.hash) else {
            return Ok(Verification::broken(
                events,
                pending,
                &prev,
                id,
                "it has no hash".into(),
            ));
        };
        if *prev_hash != prev {
            let reason = match previous_id {
                Some(before) => format!(
                    "it does not follow event {before}: an event between them was removed, or event {before} was changed"
                ),
                None => "it is the oldest event left but does not start the chain: older events were removed".into(),
            };
            return Ok(Verification::broken(events, pending, &prev, id, reason));
        }
        let expected = row.fields().hash(prev_hash, row.form());
        if expected[..] != hash[..] {
            let reason = "its content does not match its hash: it was changed".into();
            return Ok(Verification::broken(events, pending, &prev, id, reason));
        }
        prev.clone_from(hash);
        previous_id = Some(id);
    }
    drop(rows);
    let (checkpoints, checkpoint_problem) = checkpoint::check_all(conn).await?;
    Ok(Verification {
        events,
        pending,
        head: to_array(&prev),
        broken: None,
        checkpoints,
        checkpoint_problem,
    })
}

impl Verification {
    fn broken(events: u64, pending: u64, prev: &[u8], id: i64, reason: String) -> Self {
        Self {
            events,
            pending,
            head: to_array(prev),
            broken: Some((id, reason)),
            checkpoints: 0,
            checkpoint_problem: None,
        }
    }
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
        let expected = r#"{"action":"standard.imported","actor":"cli","actor_user_id":null,"client_ip":"192.0.2.1","detail":{"a":"two","b":1},"entity_id":"x","entity_type":"standard","occurred_at":"2026-11-26T09:30:00.123456Z"}"#;
        for form in [JsonDigest::SortedKeys, JsonDigest::Rfc8785] {
            assert_eq!(form.canonical(&fields(&detail).json()), expected.as_bytes());
        }
    }

    #[test]
    fn an_event_hashes_to_its_golden_vector_in_either_form() {
        // SHA-256 of 32 zero bytes followed by the canonical text above (`sha256sum`).
        let detail = json!({ "b": 1, "a": "two" });
        for form in [JsonDigest::SortedKeys, JsonDigest::Rfc8785] {
            assert_eq!(
                crate::crypto::hex(&fields(&detail).hash(&GENESIS, form)),
                "693cfa07d302ab4e7880cfa4a9ee8c9990f2bbf0cd6cf97e4403d8f5b3e9b2c7"
            );
        }
    }

    #[test]
    fn the_hash_covers_the_previous_hash_and_every_field() {
        let detail = json!({ "a": 1 });
        let form = JsonDigest::CURRENT;
        let base = fields(&detail).hash(&GENESIS, form);
        assert_ne!(base, fields(&detail).hash(&[1; 32], form));
        let other = json!({ "a": 2 });
        assert_ne!(base, fields(&other).hash(&GENESIS, form));
    }
}
