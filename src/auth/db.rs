//! Queries of the auth domain: sessions, sign-in attempts and single-use links.

use std::net::IpAddr;

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::links::Purpose;
use super::lockout::Outcome;
use crate::identity::{Role, UserId};

/// A stored session, found by the hash of its token, with the active account it belongs to.
#[derive(Debug, Clone)]
pub struct StoredSession {
    pub user_id: UserId,
    /// The token the session's forms carry.
    pub csrf_token: String,
    pub created_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
    /// The session gets a new id at its next request (its user's roles changed).
    pub must_rotate: bool,
    pub email: String,
    pub display_name: String,
    pub roles: Vec<Role>,
}

/// Stores a new session of `user` under the hash of its token, created and last seen `now`.
pub async fn insert_session(
    conn: &mut PgConnection,
    session_id_hash: &[u8; 32],
    user: UserId,
    csrf_token: &str,
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "insert into session (session_id_hash, user_id, csrf_token, created_at, last_seen_at)
         values ($1, $2, $3, $4, $4)",
        &session_id_hash[..],
        user as UserId,
        csrf_token,
        now,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes the session with this id hash.
pub async fn delete_session(
    conn: &mut PgConnection,
    session_id_hash: &[u8; 32],
) -> sqlx::Result<()> {
    sqlx::query!(
        "delete from session where session_id_hash = $1",
        &session_id_hash[..]
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes every session of `user` but the one with the id hash `except`; returns how many.
pub async fn delete_sessions_of_user(
    conn: &mut PgConnection,
    user: UserId,
    except: Option<&[u8; 32]>,
) -> sqlx::Result<u64> {
    let except = except.map(|hash| hash.to_vec());
    let done = sqlx::query!(
        "delete from session where user_id = $1 and session_id_hash is distinct from $2",
        user as UserId,
        except,
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Marks every session of `user` to get a new id at its next request.
pub async fn mark_sessions_of_user_for_rotation(
    conn: &mut PgConnection,
    user: UserId,
) -> sqlx::Result<()> {
    sqlx::query!(
        "update session set must_rotate = true where user_id = $1",
        user as UserId
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes the sessions last seen before `last_seen_before` or created before
/// `created_before`; returns how many.
pub async fn delete_sessions_seen_or_created_before(
    conn: &mut PgConnection,
    last_seen_before: OffsetDateTime,
    created_before: OffsetDateTime,
) -> sqlx::Result<u64> {
    let done = sqlx::query!(
        "delete from session where last_seen_at < $1 or created_at < $2",
        last_seen_before,
        created_before,
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// The session with this id hash, if there is one and its account is active.
pub async fn find_session_of_active_user(
    conn: &mut PgConnection,
    session_id_hash: &[u8; 32],
) -> sqlx::Result<Option<StoredSession>> {
    sqlx::query_as!(
        StoredSession,
        r#"
        select s.user_id as "user_id: UserId", s.csrf_token, s.created_at, s.last_seen_at, s.must_rotate,
               u.email, u.display_name, u.roles as "roles: Vec<Role>"
          from session s
          join app_user u using (user_id)
         where s.session_id_hash = $1 and u.is_active
        "#,
        &session_id_hash[..]
    )
    .fetch_optional(conn)
    .await
}

/// Gives the session with the id hash `old_hash` the id hash `new_hash`, clears its rotation
/// mark and records it as seen `now`.
pub async fn replace_session_id(
    conn: &mut PgConnection,
    old_hash: &[u8; 32],
    new_hash: &[u8; 32],
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "update session set session_id_hash = $2, must_rotate = false, last_seen_at = $3
              where session_id_hash = $1",
        &old_hash[..],
        &new_hash[..],
        now,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Records the session with this id hash as seen `now`.
pub async fn set_session_last_seen(
    conn: &mut PgConnection,
    session_id_hash: &[u8; 32],
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "update session set last_seen_at = $2 where session_id_hash = $1",
        &session_id_hash[..],
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Waits until no other transaction holds the sign-in lock of this email key, then holds it
/// until this transaction ends, so attempts on one account are checked one at a time.
pub async fn lock_attempts_on_email(conn: &mut PgConnection, email_key: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "select pg_advisory_xact_lock(hashtext('login-email:' || $1))",
        email_key
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Waits until no other transaction holds the sign-in lock of this client address, then holds
/// it until this transaction ends, so attempts from one address are checked one at a time.
pub async fn lock_attempts_from_address(conn: &mut PgConnection, ip: IpAddr) -> sqlx::Result<()> {
    sqlx::query!(
        "select pg_advisory_xact_lock(hashtext('login-address:' || $1))",
        ip.to_string()
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Records a pending sign-in attempt on this email key from `ip`; returns its id.
pub async fn insert_pending_attempt(
    conn: &mut PgConnection,
    email_key: &str,
    ip: Option<IpAddr>,
    now: OffsetDateTime,
) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        "insert into login_attempt (email_key, client_ip, outcome, attempted_at)
         values ($1, $2::text::inet, 'pending', $3) returning login_attempt_id",
        email_key,
        ip.map(|ip| ip.to_string()),
        now
    )
    .fetch_one(conn)
    .await
}

/// Records how the sign-in attempt `attempt` turned out.
pub async fn set_attempt_outcome(
    conn: &mut PgConnection,
    attempt: i64,
    outcome: Outcome,
) -> sqlx::Result<()> {
    sqlx::query!(
        "update login_attempt set outcome = $2 where login_attempt_id = $1",
        attempt,
        outcome as Outcome
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// How many sign-in attempts from `ip` after `since` failed, and how many are still pending.
pub async fn attempts_from_address(
    conn: &mut PgConnection,
    ip: IpAddr,
    since: OffsetDateTime,
) -> sqlx::Result<(i64, i64)> {
    let counts = sqlx::query!(
        r#"select count(*) filter (where outcome = 'failed') as "failed!",
                  count(*) filter (where outcome = 'pending') as "pending!"
             from login_attempt
            where client_ip = $1::text::inet and attempted_at > $2"#,
        ip.to_string(),
        since
    )
    .fetch_one(conn)
    .await?;
    Ok((counts.failed, counts.pending))
}

/// When the failed and pending sign-in attempts on this email key were made, oldest first:
/// only those after `since` and after the key's last successful attempt.
pub async fn failed_attempt_times_since_last_success(
    conn: &mut PgConnection,
    email_key: &str,
    since: OffsetDateTime,
) -> sqlx::Result<Vec<OffsetDateTime>> {
    sqlx::query_scalar!(
        r#"select attempted_at from login_attempt
            where email_key = $1 and outcome in ('failed', 'pending') and attempted_at > $2
              and attempted_at > coalesce(
                  (select max(attempted_at) from login_attempt where email_key = $1 and outcome = 'succeeded'),
                  '-infinity')
            order by attempted_at"#,
        email_key,
        since
    )
    .fetch_all(conn)
    .await
}

/// Records a sign-in attempt on this email key from `ip` that already has its outcome.
pub async fn insert_attempt(
    conn: &mut PgConnection,
    email_key: &str,
    ip: Option<IpAddr>,
    outcome: Outcome,
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "insert into login_attempt (email_key, client_ip, outcome, attempted_at) values ($1, $2::text::inet, $3, $4)",
        email_key,
        ip.map(|ip| ip.to_string()),
        outcome as Outcome,
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Inserts one link of `purpose` for each of `users` (none for the first admin's setup link),
/// by the hashes of their tokens, in one statement.
pub async fn insert_links(
    conn: &mut PgConnection,
    token_hashes: &[Vec<u8>],
    purpose: Purpose,
    users: &[Option<Uuid>],
    created_by: Option<UserId>,
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "insert into access_link (token_hash, purpose, user_id, created_by, created_at, expires_at)
         select token_hash, $2, user_id, $4, $5, $6
           from unnest($1::bytea[], $3::uuid[]) as t(token_hash, user_id)",
        token_hashes,
        purpose as Purpose,
        users as &[Option<Uuid>],
        created_by.map(|u| u.0),
        created_at,
        expires_at,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Locks, until the transaction ends, the unused link of `purpose` with this token hash that
/// has not expired by `now`, and returns its user (links for the first admin have none);
/// `None` when there is no such link.
pub async fn find_valid_link_user_for_update(
    conn: &mut PgConnection,
    token_hash: &[u8; 32],
    purpose: Purpose,
    now: OffsetDateTime,
) -> sqlx::Result<Option<Option<UserId>>> {
    sqlx::query_scalar!(
        r#"select user_id as "user_id: UserId" from access_link
                where token_hash = $1 and purpose = $2 and used_at is null and expires_at > $3
                  for update"#,
        &token_hash[..],
        purpose as Purpose,
        now
    )
    .fetch_optional(conn)
    .await
}

/// The user (links for the first admin have none) of the unused link of `purpose` with this
/// token hash that has not expired by `now`; `None` when there is no such link.
pub async fn find_valid_link_user(
    conn: &mut PgConnection,
    token_hash: &[u8; 32],
    purpose: Purpose,
    now: OffsetDateTime,
) -> sqlx::Result<Option<Option<UserId>>> {
    sqlx::query_scalar!(
        r#"select user_id as "user_id: UserId" from access_link
                where token_hash = $1 and purpose = $2 and used_at is null and expires_at > $3"#,
        &token_hash[..],
        purpose as Purpose,
        now
    )
    .fetch_optional(conn)
    .await
}

/// Marks the link with this token hash as used `now`.
pub async fn mark_link_used(
    conn: &mut PgConnection,
    token_hash: &[u8; 32],
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "update access_link set used_at = $2 where token_hash = $1",
        &token_hash[..],
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks every unused link of `user` as used `now`, so none of them works any more.
pub async fn retire_unused_links_of_user(
    conn: &mut PgConnection,
    user: UserId,
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "update access_link set used_at = $2 where user_id = $1 and used_at is null",
        user as UserId,
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Claims a form's one-time key for `user`: `true` when this request is the first to send it.
/// A second request with the same key waits here until the first one's transaction ends.
pub async fn claim_submission(
    conn: &mut PgConnection,
    key: Uuid,
    user: UserId,
    now: OffsetDateTime,
) -> sqlx::Result<bool> {
    let claimed = sqlx::query!(
        "insert into form_submission (submission_key, user_id, created_at) values ($1, $2, $3)
         on conflict (submission_key) do nothing",
        key,
        user.0,
        now
    )
    .execute(conn)
    .await?;
    Ok(claimed.rows_affected() == 1)
}

/// Where the first submission of a key led, if it was `user`'s.
pub async fn submission_result(
    conn: &mut PgConnection,
    key: Uuid,
    user: UserId,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!(
        "select result from form_submission where submission_key = $1 and user_id = $2",
        key,
        user.0
    )
    .fetch_optional(conn)
    .await
}

/// Records where a claimed submission led.
pub async fn record_submission_result(
    conn: &mut PgConnection,
    key: Uuid,
    result: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "update form_submission set result = $2 where submission_key = $1",
        key,
        result
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Forgets the submission keys older than `before`; returns how many.
pub async fn delete_old_submissions(
    conn: &mut PgConnection,
    before: OffsetDateTime,
) -> sqlx::Result<u64> {
    let done = sqlx::query!("delete from form_submission where created_at < $1", before)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}
