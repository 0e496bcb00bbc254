//! Queries of the auth domain: sessions, sign-in attempts and single-use links.

use std::net::IpAddr;

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::links::Purpose;
use super::throttle::{AttemptKind, Failures, Outcome};
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

/// Records a pending attempt of `kind` on this email key; returns its id.
pub async fn insert_pending_attempt(
    conn: &mut PgConnection,
    kind: AttemptKind,
    email_key: &str,
    ip: Option<IpAddr>,
    device: Option<&[u8; 32]>,
    now: OffsetDateTime,
) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        "insert into login_attempt (kind, email_key, client_ip, device_hash, outcome, attempted_at)
         values ($1, $2, $3::text::inet, $4, 'pending', $5) returning login_attempt_id",
        kind.as_str(),
        email_key,
        ip.map(|ip| ip.to_string()),
        device.map(|d| &d[..]),
        now
    )
    .fetch_one(conn)
    .await
}

/// Records how the attempt `attempt` turned out.
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

/// Failed password attempts from `ip` after `since`, when the last was, and how many attempts
/// are still pending.
pub async fn attempts_from_address(
    conn: &mut PgConnection,
    ip: IpAddr,
    since: OffsetDateTime,
) -> sqlx::Result<Failures> {
    let row = sqlx::query!(
        r#"select count(*) filter (where outcome = 'failed') as "failed!",
                  max(attempted_at) filter (where outcome = 'failed') as last_failed,
                  count(*) filter (where outcome = 'pending') as "pending!"
             from login_attempt
            where client_ip = $1::text::inet and kind = 'password' and attempted_at > $2"#,
        ip.to_string(),
        since
    )
    .fetch_one(conn)
    .await?;
    Ok(Failures {
        count: row.failed,
        last: row.last_failed,
        pending: row.pending,
    })
}

/// Failed and pending attempts of `kind` on this email key (from `device` only, when given)
/// after `since` and after the key's last clearing or success of that kind in the same scope:
/// a success on a known device does not reset what the account as a whole has suffered.
pub async fn failures_on_account(
    conn: &mut PgConnection,
    kind: AttemptKind,
    email_key: &str,
    device: Option<&[u8; 32]>,
    since: OffsetDateTime,
) -> sqlx::Result<Failures> {
    let row = sqlx::query!(
        r#"select count(*) as "count!", max(attempted_at) as last,
                  count(*) filter (where outcome = 'pending') as "pending!"
             from login_attempt
            where email_key = $2 and kind = $1 and outcome in ('failed', 'pending')
              and ($3::bytea is null or device_hash = $3)
              and attempted_at > $4
              and login_attempt_id > coalesce(
                  (select max(login_attempt_id) from login_attempt
                    where email_key = $2
                      and (outcome = 'cleared'
                           or (outcome = 'succeeded' and kind = $1 and device_hash is not distinct from $3))),
                  0)"#,
        kind.as_str(),
        email_key,
        device.map(|d| &d[..]),
        since
    )
    .fetch_one(conn)
    .await?;
    Ok(Failures {
        count: row.count,
        last: row.last,
        pending: row.pending,
    })
}

/// Records an attempt of `kind` that already has its outcome.
pub async fn insert_attempt(
    conn: &mut PgConnection,
    kind: AttemptKind,
    email_key: &str,
    ip: Option<IpAddr>,
    outcome: Outcome,
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "insert into login_attempt (kind, email_key, client_ip, outcome, attempted_at)
         values ($1, $2, $3::text::inet, $4, $5)",
        kind.as_str(),
        email_key,
        ip.map(|ip| ip.to_string()),
        outcome as Outcome,
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Settles as failed the attempts still pending that began before `before`.
pub async fn fail_stale_pending_attempts(
    conn: &mut PgConnection,
    before: OffsetDateTime,
) -> sqlx::Result<u64> {
    let done = sqlx::query!(
        "update login_attempt set outcome = 'failed' where outcome = 'pending' and attempted_at < $1",
        before
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Forgets attempts made before `before`; returns how many.
pub async fn delete_old_attempts(
    conn: &mut PgConnection,
    before: OffsetDateTime,
) -> sqlx::Result<u64> {
    let done = sqlx::query!("delete from login_attempt where attempted_at < $1", before)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}

/// Whether the browser with this device hash has fully signed in to the account of
/// `email_key` before.
pub async fn is_known_device(
    conn: &mut PgConnection,
    device_hash: &[u8; 32],
    email_key: &str,
) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"select exists (select 1 from known_device d join app_user u using (user_id)
                           where d.device_hash = $1 and lower(u.email) = lower($2)) as "known!""#,
        &device_hash[..],
        email_key
    )
    .fetch_one(conn)
    .await
}

/// Records that `user` fully signed in from the browser with this device hash `now`.
pub async fn remember_device(
    conn: &mut PgConnection,
    device_hash: &[u8; 32],
    user: UserId,
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "insert into known_device (device_hash, user_id, first_seen_at, last_seen_at)
         values ($1, $2, $3, $3)
         on conflict (device_hash, user_id) do update set last_seen_at = excluded.last_seen_at",
        &device_hash[..],
        user.0,
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A user's authenticator: its sealed secret, whether it was confirmed, and the last time
/// step a code was accepted for.
#[derive(Debug, Clone)]
pub struct StoredSecondFactor {
    pub secret_sealed: Vec<u8>,
    pub confirmed: bool,
    pub last_step: Option<i64>,
}

/// The authenticator of `user`, locked until the transaction ends: one code check at a time.
pub async fn second_factor(
    conn: &mut PgConnection,
    user: UserId,
) -> sqlx::Result<Option<StoredSecondFactor>> {
    sqlx::query_as!(
        StoredSecondFactor,
        r#"select secret_sealed, confirmed_at is not null as "confirmed!", last_step
             from second_factor where user_id = $1 for update"#,
        user.0
    )
    .fetch_optional(conn)
    .await
}

/// Ends `user`'s unanswered sign-in challenges and forgets the browsers they signed in from.
pub async fn forget_sign_in_state(conn: &mut PgConnection, user: UserId) -> sqlx::Result<()> {
    sqlx::query!("delete from sign_in_challenge where user_id = $1", user.0)
        .execute(&mut *conn)
        .await?;
    sqlx::query!("delete from known_device where user_id = $1", user.0)
        .execute(conn)
        .await?;
    Ok(())
}

/// Whether `user` has a confirmed authenticator.
pub async fn has_second_factor(conn: &mut PgConnection, user: UserId) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"select exists (select 1 from second_factor where user_id = $1 and confirmed_at is not null) as "yes!""#,
        user.0
    )
    .fetch_one(conn)
    .await
}

/// Starts setting up an authenticator for `user` with this sealed secret, unless one is being
/// set up already (its secret is kept, so a reload shows the same code). Returns the sealed
/// secret now stored; `None` when a confirmed one exists.
pub async fn begin_second_factor(
    conn: &mut PgConnection,
    user: UserId,
    secret_sealed: &[u8],
    now: OffsetDateTime,
) -> sqlx::Result<Option<Vec<u8>>> {
    sqlx::query_scalar!(
        "insert into second_factor (user_id, secret_sealed, created_at) values ($1, $2, $3)
         on conflict (user_id) do update set user_id = excluded.user_id
         returning case when confirmed_at is null then secret_sealed end",
        user.0,
        secret_sealed,
        now
    )
    .fetch_one(conn)
    .await
}

/// Records the time step of an accepted code, and confirms the authenticator if it was not yet.
pub async fn accept_second_factor_step(
    conn: &mut PgConnection,
    user: UserId,
    step: i64,
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "update second_factor set last_step = $2, confirmed_at = coalesce(confirmed_at, $3) where user_id = $1",
        user.0,
        step,
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Replaces the recovery codes of `user` with these hashes.
pub async fn replace_recovery_codes(
    conn: &mut PgConnection,
    user: UserId,
    code_hashes: &[Vec<u8>],
) -> sqlx::Result<()> {
    sqlx::query!("delete from recovery_code where user_id = $1", user.0)
        .execute(&mut *conn)
        .await?;
    sqlx::query!(
        "insert into recovery_code (user_id, code_hash) select $1, unnest($2::bytea[])",
        user.0,
        code_hashes
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Uses up the unused recovery code of `user` with this hash; `false` when there is none.
pub async fn use_recovery_code(
    conn: &mut PgConnection,
    user: UserId,
    code_hash: &[u8; 32],
    now: OffsetDateTime,
) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "update recovery_code set used_at = $3 where user_id = $1 and code_hash = $2 and used_at is null",
        user.0,
        &code_hash[..],
        now
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// How many unused recovery codes `user` has left.
pub async fn recovery_codes_left(conn: &mut PgConnection, user: UserId) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"select count(*) as "n!" from recovery_code where user_id = $1 and used_at is null"#,
        user.0
    )
    .fetch_one(conn)
    .await
}

/// Removes the authenticator and recovery codes of `user`; `true` when there was one.
pub async fn delete_second_factor(conn: &mut PgConnection, user: UserId) -> sqlx::Result<bool> {
    sqlx::query!("delete from recovery_code where user_id = $1", user.0)
        .execute(&mut *conn)
        .await?;
    let done = sqlx::query!("delete from second_factor where user_id = $1", user.0)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Stores a sign-in challenge: `user`'s password was right, the second factor is to come.
pub async fn insert_challenge(
    conn: &mut PgConnection,
    token_hash: &[u8; 32],
    user: UserId,
    next_path: &str,
    now: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "insert into sign_in_challenge (token_hash, user_id, next_path, created_at, expires_at)
         values ($1, $2, $3, $4, $5)",
        &token_hash[..],
        user.0,
        next_path,
        now,
        expires_at
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The account and destination of an unexpired challenge, locked until the transaction ends.
#[derive(Debug, Clone)]
pub struct Challenge {
    pub user_id: UserId,
    pub email: String,
    pub next_path: String,
}

pub async fn find_challenge(
    conn: &mut PgConnection,
    token_hash: &[u8; 32],
    now: OffsetDateTime,
) -> sqlx::Result<Option<Challenge>> {
    sqlx::query_as!(
        Challenge,
        r#"select c.user_id as "user_id: UserId", u.email, c.next_path
             from sign_in_challenge c join app_user u using (user_id)
            where c.token_hash = $1 and c.expires_at > $2 and u.is_active
              for update of c"#,
        &token_hash[..],
        now
    )
    .fetch_optional(conn)
    .await
}

/// Ends a challenge (answered, or its account signed in another way).
pub async fn delete_challenge(conn: &mut PgConnection, token_hash: &[u8; 32]) -> sqlx::Result<()> {
    sqlx::query!(
        "delete from sign_in_challenge where token_hash = $1",
        &token_hash[..]
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes challenges that expired before `now`; returns how many.
pub async fn delete_expired_challenges(
    conn: &mut PgConnection,
    now: OffsetDateTime,
) -> sqlx::Result<u64> {
    let done = sqlx::query!("delete from sign_in_challenge where expires_at <= $1", now)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
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
