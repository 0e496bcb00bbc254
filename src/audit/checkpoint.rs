//! Signed checkpoints of the chain: "the chain had `events` events, ending in `head`, at
//! `made_at`", signed with the portal's key. The chain alone cannot show that its newest events
//! were cut off or rewritten together with everything after them; a checkpoint can, and one
//! kept outside the database (`attest audit checkpoint --export`) survives whatever is done
//! to the database.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{Connection, PgConnection};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use super::{CHAIN_LOCK, db};
use crate::crypto::{JsonDigest, hex};
use crate::keys::{self, ActiveKey};

/// A checkpoint as exported and kept elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// How many events the chain had: the place of its newest event.
    pub events: i64,
    /// The hash of that event, hex.
    pub head: String,
    /// When it was made, RFC 3339.
    pub made_at: String,
    /// The signing key, as published in `/.well-known/jwks.json`.
    pub kid: String,
    /// Ed25519 signature over [`Checkpoint::statement`], base64url.
    pub signature: String,
}

impl Checkpoint {
    /// What is signed: the checkpoint without its signature, as RFC 8785 canonical JSON.
    pub fn statement(&self) -> Vec<u8> {
        JsonDigest::Rfc8785.canonical(&json!({
            "events": self.events,
            "head": self.head,
            "made_at": self.made_at,
            "kid": self.kid,
        }))
    }

    fn of_stored(stored: &db::StoredCheckpoint) -> Self {
        Self {
            events: stored.events,
            head: hex(&stored.head_hash),
            made_at: stored.made_at.format(&Rfc3339).unwrap_or_default(),
            kid: stored.kid.clone(),
            signature: URL_SAFE_NO_PAD.encode(&stored.signature),
        }
    }
}

/// When the serving process makes a checkpoint by itself: after this many new events, or
/// this long after the last one when there are any.
#[derive(Debug, Clone, Copy)]
pub struct Cadence {
    pub events: i64,
    pub every: Duration,
}

impl Default for Cadence {
    fn default() -> Self {
        Self {
            events: 1_000,
            every: Duration::minutes(10),
        }
    }
}

/// Makes a checkpoint of the chain as sealed now, signed with `key`, when the chain has grown
/// since the last one (and, with a `cadence`, when that says one is due). Returns it, or
/// `None` when none was made. One maker at a time: it holds the chain's lock.
pub async fn make(
    conn: &mut PgConnection,
    key: &ActiveKey,
    cadence: Option<Cadence>,
    now: OffsetDateTime,
) -> sqlx::Result<Option<Checkpoint>> {
    let mut tx = conn.begin().await?;
    crate::db::advisory_xact_lock(&mut tx, CHAIN_LOCK).await?;
    let Some((head_hash, events)) = db::newest_sealed(&mut tx).await? else {
        return Ok(None);
    };
    let last = db::newest_checkpoint(&mut tx).await?;
    let grown = last.as_ref().is_none_or(|last| events > last.events);
    let due = match (cadence, &last) {
        (Some(cadence), Some(last)) => {
            events - last.events >= cadence.events || last.made_at + cadence.every <= now
        }
        _ => true,
    };
    if !grown || !due {
        return Ok(None);
    }
    // Stored to the microsecond, so the signed time is the stored time.
    let made_at = now
        .replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap_or(now);
    let mut checkpoint = Checkpoint {
        events,
        head: hex(&head_hash),
        made_at: made_at.format(&Rfc3339).unwrap_or_default(),
        kid: key.kid.clone(),
        signature: String::new(),
    };
    let signature = key.sign(&checkpoint.statement());
    checkpoint.signature = URL_SAFE_NO_PAD.encode(&signature);
    db::insert_checkpoint(&mut tx, events, &head_hash, made_at, &key.kid, &signature).await?;
    tx.commit().await?;
    Ok(Some(checkpoint))
}

/// The newest checkpoint, as exported.
pub async fn latest(conn: &mut PgConnection) -> sqlx::Result<Option<Checkpoint>> {
    Ok(db::checkpoints(conn)
        .await?
        .last()
        .map(Checkpoint::of_stored))
}

/// Checks `checkpoint` against the chain as stored: its signature with the published key it
/// names, and that the chain still holds the event it ends in. `Err` says what is wrong.
/// (The chain itself is checked by `verify`; this checks that it still has this prefix.)
pub async fn check(
    conn: &mut PgConnection,
    checkpoint: &Checkpoint,
) -> sqlx::Result<Result<(), String>> {
    let key = keys::find(conn, &checkpoint.kid).await?;
    let held = db::hash_at(conn, checkpoint.events).await?;
    Ok(judge(checkpoint, key.as_ref(), held.as_deref()))
}

/// Checks every stored checkpoint; returns how many, and the first problem.
pub async fn check_all(conn: &mut PgConnection) -> sqlx::Result<(u64, Option<String>)> {
    let stored = db::checkpoints(conn).await?;
    let published = keys::published(conn).await?;
    let count = u64::try_from(stored.len()).unwrap_or(u64::MAX);
    let problem = stored.iter().find_map(|one| {
        let checkpoint = Checkpoint::of_stored(one);
        let key = published.iter().find(|k| k.kid == checkpoint.kid);
        judge(&checkpoint, key, one.chain_hash.as_deref()).err()
    });
    Ok((count, problem))
}

/// What is wrong with `checkpoint`, signed (it says) by `key`, when the chain holds `held` at
/// its place.
fn judge(
    checkpoint: &Checkpoint,
    key: Option<&keys::PublicKey>,
    held: Option<&[u8]>,
) -> Result<(), String> {
    let Some(key) = key else {
        return Err(format!(
            "the checkpoint of {} events is signed with key {}, which this portal does not publish",
            checkpoint.events, checkpoint.kid
        ));
    };
    let signature = URL_SAFE_NO_PAD
        .decode(&checkpoint.signature)
        .unwrap_or_default();
    if !key.verifies(&checkpoint.statement(), &signature) {
        return Err(format!(
            "the checkpoint of {} events does not carry a valid signature: it was altered",
            checkpoint.events
        ));
    }
    match held {
        None => Err(format!(
            "a checkpoint signed at {} says the trail had {} events, but it has fewer now: events were removed from its end",
            checkpoint.made_at, checkpoint.events
        )),
        Some(hash) if hex(hash) != checkpoint.head => Err(format!(
            "a checkpoint signed at {} says event {} of the trail had hash {}, but it has another now: the trail was rewritten",
            checkpoint.made_at, checkpoint.events, checkpoint.head
        )),
        Some(_) => Ok(()),
    }
}
