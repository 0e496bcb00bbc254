//! Queries of the audit trail. The chain is kept by the parent module (the sealer's lock, the
//! hashes, their order); these are only its statements.

use futures_util::Stream;
use serde_json::Value;
use sqlx::PgConnection;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use super::EventFields;

/// An event as stored, with the columns the hash covers.
pub struct StoredEvent {
    pub audit_event_id: i64,
    pub occurred_at: OffsetDateTime,
    pub actor_user_id: Option<Uuid>,
    pub actor: String,
    pub action: String,
    pub entity_type: String,
    pub entity_id: String,
    pub client_ip: Option<String>,
    pub detail: Value,
    pub prev_hash: Option<Vec<u8>>,
    pub hash: Option<Vec<u8>>,
    /// The form the event's JSON is hashed in (`crypto::JsonDigest`).
    pub digest_version: i16,
}

/// One event as the list shows it.
#[derive(Debug, Clone)]
pub struct EventRow {
    pub id: i64,
    pub occurred_at: OffsetDateTime,
    pub actor: String,
    pub action: String,
    pub entity_type: String,
    pub entity_id: String,
    pub client_ip: Option<String>,
    pub detail: Value,
}

impl EventRow {
    /// The detail as JSON.
    pub fn detail_text(&self) -> String {
        self.detail.to_string()
    }

    /// The start of the detail, when it is too long to show whole in a row.
    pub fn detail_preview(&self) -> Option<String> {
        let text = self.detail_text();
        (text.chars().count() > 120)
            .then(|| format!("{}…", text.chars().take(100).collect::<String>()))
    }
}

/// The hash and place of the newest sealed event, `None` when none is sealed.
pub async fn newest_sealed(conn: &mut PgConnection) -> sqlx::Result<Option<(Vec<u8>, i64)>> {
    let row = sqlx::query!(
        r#"select hash as "hash!", chain_seq as "chain_seq!" from audit_event
            where chain_seq is not null order by chain_seq desc limit 1"#
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| (r.hash, r.chain_seq)))
}

/// Inserts an event, unsealed: the sealer gives it its place in the chain.
pub async fn insert_event(conn: &mut PgConnection, fields: &EventFields<'_>) -> sqlx::Result<()> {
    sqlx::query!(
        r#"
        insert into audit_event (occurred_at, actor_user_id, actor, action, entity_type, entity_id, client_ip, detail)
        values ($1, $2, $3, $4, $5, $6, $7::text::inet, $8)
        "#,
        fields.occurred_at,
        fields.actor_user_id,
        fields.actor,
        fields.action,
        fields.entity_type,
        fields.entity_id,
        fields.client_ip,
        fields.detail,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Many events' fields, column by column, for [`insert_events`].
#[derive(Debug, Default)]
pub struct EventRows {
    occurred_at: Vec<OffsetDateTime>,
    actor_user_id: Vec<Option<Uuid>>,
    actor: Vec<String>,
    action: Vec<String>,
    entity_type: Vec<String>,
    entity_id: Vec<String>,
    client_ip: Vec<Option<String>>,
    detail: Vec<serde_json::Value>,
}

impl EventRows {
    pub fn push(&mut self, fields: &EventFields<'_>) {
        self.occurred_at.push(fields.occurred_at);
        self.actor_user_id.push(fields.actor_user_id);
        self.actor.push(fields.actor.to_owned());
        self.action.push(fields.action.to_owned());
        self.entity_type.push(fields.entity_type.to_owned());
        self.entity_id.push(fields.entity_id.to_owned());
        self.client_ip.push(fields.client_ip.map(str::to_owned));
        self.detail.push(fields.detail.clone());
    }
}

/// Inserts many events in one statement, unsealed, in the order given.
pub async fn insert_events(conn: &mut PgConnection, rows: &EventRows) -> sqlx::Result<()> {
    sqlx::query!(
        r#"
        insert into audit_event (occurred_at, actor_user_id, actor, action, entity_type, entity_id, client_ip, detail)
        select occurred_at, actor_user_id, actor, action, entity_type, entity_id, client_ip::inet, detail
          from unnest($1::timestamptz[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::jsonb[])
               with ordinality as e(occurred_at, actor_user_id, actor, action, entity_type, entity_id, client_ip, detail, n)
         order by n
        "#,
        &rows.occurred_at,
        &rows.actor_user_id as &[Option<Uuid>],
        &rows.actor,
        &rows.action,
        &rows.entity_type,
        &rows.entity_id,
        &rows.client_ip as &[Option<String>],
        &rows.detail,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// How many events wait for the sealer.
pub async fn count_unsealed(conn: &mut PgConnection) -> sqlx::Result<i64> {
    sqlx::query_scalar!(r#"select count(*) as "n!" from audit_event where hash is null"#)
        .fetch_one(conn)
        .await
}

/// Whether any event waits for the sealer: the first entry of a small partial index, cheap to
/// ask many times a second. (Asked as `exists`, the planner may scan the whole table instead.)
pub async fn any_unsealed(conn: &mut PgConnection) -> sqlx::Result<bool> {
    let first = sqlx::query_scalar!(
        "select audit_event_id from audit_event where hash is null order by audit_event_id limit 1"
    )
    .fetch_optional(conn)
    .await?;
    Ok(first.is_some())
}

/// Up to `limit` events that wait for the sealer, in the order they were written.
pub async fn unsealed_events(
    conn: &mut PgConnection,
    limit: i64,
) -> sqlx::Result<Vec<StoredEvent>> {
    sqlx::query_as!(
        StoredEvent,
        r#"select audit_event_id, occurred_at, actor_user_id, actor, action, entity_type, entity_id,
                  host(client_ip) as client_ip, detail, prev_hash, hash, digest_version
             from audit_event where hash is null
            order by audit_event_id
            limit $1"#,
        limit
    )
    .fetch_all(conn)
    .await
}

/// Every sealed event with the columns its hash covers, in chain order, streamed one row at a
/// time.
pub fn stored_events(
    conn: &mut PgConnection,
) -> impl Stream<Item = sqlx::Result<StoredEvent>> + '_ {
    sqlx::query_as!(
        StoredEvent,
        r#"select audit_event_id, occurred_at, actor_user_id, actor, action, entity_type, entity_id,
                  host(client_ip) as client_ip, detail, prev_hash, hash, digest_version
             from audit_event where chain_seq is not null order by chain_seq"#
    )
    .fetch(conn)
}

/// Gives each event of `ids` its place in the chain: the same place in `seqs`, `prev_hashes`
/// and `hashes`.
pub async fn seal_events(
    conn: &mut PgConnection,
    ids: &[i64],
    seqs: &[i64],
    prev_hashes: &[Vec<u8>],
    hashes: &[Vec<u8>],
) -> sqlx::Result<()> {
    sqlx::query!(
        "update audit_event e
            set chain_seq = s.seq, prev_hash = s.prev_hash, hash = s.hash
           from unnest($1::bigint[], $2::bigint[], $3::bytea[], $4::bytea[]) as s(id, seq, prev_hash, hash)
          where e.audit_event_id = s.id",
        ids,
        seqs,
        prev_hashes,
        hashes
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The events whose actor matches `actor_pattern` and whose entity type, entity id or action
/// matches `entity_pattern` (both `ilike` patterns), from the day `from` to the day `to` (both
/// included) when they are given: newest first, at most `limit`, streamed one row at a time.
pub fn filtered_events<'c>(
    conn: &'c mut PgConnection,
    actor_pattern: &str,
    entity_pattern: &str,
    from: Option<Date>,
    to: Option<Date>,
    (limit, before): (i64, Option<i64>),
) -> impl Stream<Item = sqlx::Result<EventRow>> + use<'c> {
    sqlx::query_as!(
        EventRow,
        r#"select audit_event_id as id, occurred_at, actor, action, entity_type, entity_id,
                      host(client_ip) as client_ip, detail
                 from audit_event
                where actor ilike $1
                  and (entity_type ilike $2 or entity_id ilike $2 or action ilike $2)
                  and ($3::date is null or occurred_at >= $3::date)
                  and ($4::date is null or occurred_at < $4::date + 1)
                  and ($6::bigint is null or audit_event_id < $6)
                order by audit_event_id desc
                limit $5"#,
        actor_pattern,
        entity_pattern,
        from,
        to,
        limit,
        before
    )
    .fetch(conn)
}

/// A stored checkpoint, with the hash the chain holds now at the checkpoint's place (`None`
/// when the chain is shorter).
#[derive(Debug, Clone)]
pub struct StoredCheckpoint {
    pub events: i64,
    pub head_hash: Vec<u8>,
    pub made_at: OffsetDateTime,
    pub kid: String,
    pub signature: Vec<u8>,
    pub chain_hash: Option<Vec<u8>>,
}

/// Every checkpoint, oldest first, each beside what the chain holds at its place now.
pub async fn checkpoints(conn: &mut PgConnection) -> sqlx::Result<Vec<StoredCheckpoint>> {
    sqlx::query_as!(
        StoredCheckpoint,
        r#"select c.events, c.head_hash, c.made_at, c.kid, c.signature, e.hash as "chain_hash?"
             from audit_checkpoint c
             left join audit_event e on e.chain_seq = c.events
            order by c.audit_checkpoint_id"#
    )
    .fetch_all(conn)
    .await
}

/// The hash the chain holds at `events` (the event whose place it is).
pub async fn hash_at(conn: &mut PgConnection, events: i64) -> sqlx::Result<Option<Vec<u8>>> {
    sqlx::query_scalar!(
        r#"select hash as "hash!" from audit_event where chain_seq = $1"#,
        events
    )
    .fetch_optional(conn)
    .await
}

/// The newest checkpoint, beside what the chain holds at its place now.
pub async fn newest_checkpoint(conn: &mut PgConnection) -> sqlx::Result<Option<StoredCheckpoint>> {
    sqlx::query_as!(
        StoredCheckpoint,
        r#"select c.events, c.head_hash, c.made_at, c.kid, c.signature, e.hash as "chain_hash?"
             from audit_checkpoint c
             left join audit_event e on e.chain_seq = c.events
            order by c.audit_checkpoint_id desc limit 1"#
    )
    .fetch_optional(conn)
    .await
}

pub async fn insert_checkpoint(
    conn: &mut PgConnection,
    events: i64,
    head_hash: &[u8],
    made_at: OffsetDateTime,
    kid: &str,
    signature: &[u8],
) -> sqlx::Result<()> {
    sqlx::query!(
        "insert into audit_checkpoint (events, head_hash, made_at, kid, signature) values ($1, $2, $3, $4, $5)",
        events,
        head_hash,
        made_at,
        kid,
        signature
    )
    .execute(conn)
    .await?;
    Ok(())
}
