//! Brute-force defence by growing delays, never by a lock an attacker can hold shut.
//!
//! Failures are counted per account (by the email typed, so an email without an account
//! behaves the same and reveals nothing), per client address, and per account on a browser
//! that has signed in to it before (a *known device*). Once a count passes its free allowance,
//! each further attempt must wait twice as long after the last failure as the one before,
//! up to 15 minutes. An attempt refused for waiting is not checked and does not count.
//!
//! An attack on an account does not shut its owner out: a known device is judged only by its
//! own failures, and anyone may still sign in by giving a code from their authenticator with
//! their password. Passwords sent with a code past the wait have a count of their own, which
//! only a new password or an admin clears; wrong codes at the second step have theirs. Setting a password or an admin's reset
//! clears the account's count.
//!
//! Attempts are kept for 30 days, not in the audit trail; the trail records when a count
//! trips a threshold. Only the SHA-256 of what was typed as the email is kept, in case a
//! password was typed there. An attempt is recorded as pending *before* its secret is
//! checked, under a lock per email and per address, so a burst of parallel attempts cannot
//! all pass together.

use std::net::IpAddr;

use sqlx::PgConnection;
use time::{Duration, OffsetDateTime};

use super::db;

/// How far back failures count.
pub const WINDOW: Duration = Duration::hours(1);
/// How long attempts are kept.
pub const KEPT_FOR: Duration = Duration::days(30);
/// Failed and unsettled attempts one address may have at once.
pub const ADDRESS_ATTEMPTS_IN_FLIGHT: i64 = 100;

/// How many failures pass free, and the longest wait after that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub free: i64,
    pub longest_wait: Duration,
}

/// Password failures on one account (or on one account from one known device).
pub const ACCOUNT: Rule = Rule {
    free: 5,
    longest_wait: Duration::minutes(15),
};
/// Password failures from one client address, on any account.
pub const ADDRESS: Rule = Rule {
    free: 20,
    longest_wait: Duration::minutes(15),
};
/// Wrong second-factor codes for one account.
pub const SECOND_FACTOR: Rule = Rule {
    free: 5,
    longest_wait: Duration::minutes(15),
};
/// Passwords sent with a code past an account's wait, whatever either turns out to be: a way
/// in for the owner during an attack, which a guesser gains little from (an hour's wait at
/// most), and which leaves the owner's other ways (a known device, the code page) untouched.
pub const PAST_THE_WAIT: Rule = Rule {
    free: 5,
    longest_wait: Duration::hours(1),
};

impl Rule {
    /// Until when the next attempt must wait after `failures` failures, the last at `last`.
    pub fn wait_until(self, failures: i64, last: Option<OffsetDateTime>) -> Option<OffsetDateTime> {
        let last = last?;
        if failures < self.free {
            return None;
        }
        let doublings = u32::try_from((failures - self.free).min(20)).unwrap_or(20);
        Some(last + Duration::seconds(1_i64 << doublings).min(self.longest_wait))
    }

    /// Whether the failure that brought the count to `failures` is worth a line in the audit
    /// trail: when waiting starts, and at ten and a hundred times that.
    pub fn trips_at(self, failures: i64) -> bool {
        [1, 10, 100].iter().any(|m| failures == self.free * m)
    }
}

/// What an attempt checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptKind {
    Password,
    SecondFactor,
    /// A password and a code sent together past the account's wait.
    PasswordWithCode,
}

impl AttemptKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::SecondFactor => "second_factor",
            Self::PasswordWithCode => "password_with_code",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "login_outcome", rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    Failed,
    Refused,
    Pending,
    Cleared,
    /// Right password and code while the account waited: in, but the wait goes on for others.
    SucceededWhileWaiting,
}

/// Failures counted in one scope.
#[derive(Debug, Clone, Copy, Default)]
pub struct Failures {
    pub count: i64,
    pub last: Option<OffsetDateTime>,
    pub pending: i64,
}

/// Why an attempt must wait, and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Account { until: OffsetDateTime },
    Address { until: OffsetDateTime },
    SecondFactor { until: OffsetDateTime },
}

impl Refusal {
    pub fn until(self) -> OffsetDateTime {
        match self {
            Self::Account { until } | Self::Address { until } | Self::SecondFactor { until } => {
                until
            }
        }
    }
}

/// Who is trying, as the throttle judges it.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    pub kind: AttemptKind,
    /// The email typed (trimmed, lower-cased), or the account's own for a signed-in check.
    pub email: &'a str,
    pub ip: Option<IpAddr>,
    /// The device hash of the browser, when it has signed in to this account before.
    pub known_device: Option<&'a [u8; 32]>,
}

/// A begun attempt: its id, and, when the account is waiting but the form carries a code, the
/// wait and the attempt past it: the password may then go on only with a right code.
#[derive(Debug, Clone, Copy)]
pub struct Begun {
    pub id: i64,
    pub waiting_for: Option<Refusal>,
    /// The pending attempt past the wait ([`AttemptKind::PasswordWithCode`]), counted whatever
    /// the password and code turn out to be, and never cleared by a success.
    pub past_the_wait: Option<i64>,
}

/// The stored key of what was typed as the email.
pub fn key(email: &str) -> String {
    crate::crypto::hex(&crate::crypto::sha256(email.as_bytes()))
}

/// Starts an attempt: waits for other attempts on the same email and address, refuses it when
/// it must wait, and otherwise records it as pending until [`settle`] says how it went.
/// `with_code` says the form carries a second-factor code, which lets a password attempt
/// past an account that is waiting. Run it in a short transaction of its own and commit before
/// checking the secret.
pub async fn begin(
    conn: &mut PgConnection,
    attempt: Attempt<'_>,
    with_code: bool,
    now: OffsetDateTime,
) -> sqlx::Result<Result<Begun, Refusal>> {
    let email_key = key(attempt.email);
    db::lock_attempts_on_email(conn, &email_key).await?;
    if let Some(ip) = attempt.ip {
        db::lock_attempts_from_address(conn, ip).await?;
    }
    let mut waiting_for = None;
    let mut past_the_wait = None;
    if let Some(refusal) = check(conn, attempt, now).await? {
        // Past an account's wait only with a code, on a count of its own. Whether the account
        // exists or has an authenticator makes no difference here: the answer is the same.
        let may_pass = matches!(refusal, Refusal::Account { .. })
            && with_code
            && attempt.kind == AttemptKind::Password
            && past_the_wait_allowed(conn, &email_key, now).await?;
        if !may_pass {
            db::insert_attempt(
                conn,
                attempt.kind,
                &email_key,
                attempt.ip,
                Outcome::Refused,
                now,
            )
            .await?;
            return Ok(Err(refusal));
        }
        waiting_for = Some(refusal);
        past_the_wait = Some(
            db::insert_pending_attempt(
                conn,
                AttemptKind::PasswordWithCode,
                &email_key,
                attempt.ip,
                None,
                now,
            )
            .await?,
        );
    }
    let id = db::insert_pending_attempt(
        conn,
        attempt.kind,
        &email_key,
        attempt.ip,
        attempt.known_device,
        now,
    )
    .await?;
    Ok(Ok(Begun {
        id,
        waiting_for,
        past_the_wait,
    }))
}

/// Whether another password with a code may go past the account's wait now.
async fn past_the_wait_allowed(
    conn: &mut PgConnection,
    email_key: &str,
    now: OffsetDateTime,
) -> sqlx::Result<bool> {
    let tried = db::failures_on_account(
        conn,
        AttemptKind::PasswordWithCode,
        email_key,
        None,
        now - PAST_THE_WAIT.longest_wait - WINDOW,
    )
    .await?;
    Ok(waiting(PAST_THE_WAIT, tried, now).is_none())
}

/// [`begin`] in a short transaction of its own, committed before the secret is checked (so
/// the pending attempt counts for parallel ones while the checking takes its time).
pub async fn begin_alone(
    pool: &sqlx::PgPool,
    attempt: Attempt<'_>,
    with_code: bool,
    now: OffsetDateTime,
) -> sqlx::Result<Result<Begun, Refusal>> {
    let mut tx = pool.begin().await?;
    let begun = begin(&mut tx, attempt, with_code, now).await?;
    tx.commit().await?;
    Ok(begun)
}

/// Settles a begun attempt as the success or failure it turned out to be.
pub async fn settle(conn: &mut PgConnection, attempt: i64, outcome: Outcome) -> sqlx::Result<()> {
    db::set_attempt_outcome(conn, attempt, outcome).await
}

/// Whether `attempt` must wait now, and why.
pub async fn check(
    conn: &mut PgConnection,
    attempt: Attempt<'_>,
    now: OffsetDateTime,
) -> sqlx::Result<Option<Refusal>> {
    let email_key = key(attempt.email);
    let since = now - WINDOW;
    if attempt.kind == AttemptKind::SecondFactor {
        return second_factor_wait(conn, attempt.email, now).await;
    }
    if let Some(device) = attempt.known_device {
        // A browser that signed in before is judged by its own failures only.
        let failures =
            db::failures_on_account(conn, attempt.kind, &email_key, Some(device), since).await?;
        return Ok(waiting(ACCOUNT, failures, now).map(|until| Refusal::Account { until }));
    }
    if let Some(ip) = attempt.ip {
        let failures = db::attempts_from_address(conn, ip, since).await?;
        // Attempts not yet settled count too, against a limit a class signing in together
        // stays under, so a burst of parallel guesses cannot get round the address's count.
        if failures.count + failures.pending >= ADDRESS_ATTEMPTS_IN_FLIGHT {
            return Ok(Some(Refusal::Address {
                until: now + ADDRESS.longest_wait,
            }));
        }
        if let Some(until) = waiting(ADDRESS, failures, now) {
            return Ok(Some(Refusal::Address { until }));
        }
    }
    // Pending attempts count as failures here, at the time they began, so parallel guesses
    // wait their turn (and one left pending by a failed request ages out like a failure).
    let failures = db::failures_on_account(conn, attempt.kind, &email_key, None, since).await?;
    Ok(waiting(ACCOUNT, failures, now).map(|until| Refusal::Account { until }))
}

/// Until when second-factor codes for the account of `email` must wait, if they must.
async fn second_factor_wait(
    conn: &mut PgConnection,
    email: &str,
    now: OffsetDateTime,
) -> sqlx::Result<Option<Refusal>> {
    let failures = db::failures_on_account(
        conn,
        AttemptKind::SecondFactor,
        &key(email),
        None,
        now - WINDOW,
    )
    .await?;
    Ok(waiting(SECOND_FACTOR, failures, now).map(|until| Refusal::SecondFactor { until }))
}

fn waiting(rule: Rule, failures: Failures, now: OffsetDateTime) -> Option<OffsetDateTime> {
    rule.wait_until(failures.count, failures.last)
        .filter(|until| *until > now)
}

/// After a failure is settled: the scope whose count it brought to a threshold worth
/// recording, with that count.
pub async fn tripped(
    conn: &mut PgConnection,
    attempt: Attempt<'_>,
    now: OffsetDateTime,
) -> sqlx::Result<Option<(&'static str, i64)>> {
    let since = now - WINDOW;
    let email_key = key(attempt.email);
    let (rule, scope) = match attempt.kind {
        AttemptKind::SecondFactor => (SECOND_FACTOR, "second_factor"),
        AttemptKind::Password => (ACCOUNT, "account"),
        AttemptKind::PasswordWithCode => (PAST_THE_WAIT, "past_the_wait"),
    };
    let account =
        db::failures_on_account(conn, attempt.kind, &email_key, attempt.known_device, since)
            .await?;
    // Settled failures only: those still pending are counted when they settle.
    let failed = account.count - account.pending;
    if rule.trips_at(failed) {
        return Ok(Some((scope, failed)));
    }
    if let (Some(ip), AttemptKind::Password, None) =
        (attempt.ip, attempt.kind, attempt.known_device)
    {
        let address = db::attempts_from_address(conn, ip, since).await?;
        if ADDRESS.trips_at(address.count) {
            return Ok(Some(("address", address.count)));
        }
    }
    Ok(None)
}

/// Clears the failures counted against the account of `email` (a new password, or an admin's
/// reset): its owner need not wait any more.
pub async fn clear(conn: &mut PgConnection, email: &str, now: OffsetDateTime) -> sqlx::Result<()> {
    db::insert_attempt(
        conn,
        AttemptKind::Password,
        &key(email),
        None,
        Outcome::Cleared,
        now,
    )
    .await
}

/// Forgets attempts older than [`KEPT_FOR`], and settles as failed any left pending for over
/// a minute (a request that failed or was cut off between its steps). Runs in the background
/// of `attest serve`.
pub async fn delete_old(conn: &mut PgConnection, now: OffsetDateTime) -> sqlx::Result<u64> {
    db::fail_stale_pending_attempts(conn, now - Duration::minutes(1)).await?;
    db::delete_old_attempts(conn, now - KEPT_FOR).await
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn the_wait_doubles_after_the_free_failures_up_to_fifteen_minutes() {
        let t0 = datetime!(2026-01-01 09:00 UTC);
        assert_eq!(ACCOUNT.wait_until(4, Some(t0)), None);
        assert_eq!(
            ACCOUNT.wait_until(5, Some(t0)),
            Some(t0 + Duration::seconds(1))
        );
        assert_eq!(
            ACCOUNT.wait_until(6, Some(t0)),
            Some(t0 + Duration::seconds(2))
        );
        assert_eq!(
            ACCOUNT.wait_until(12, Some(t0)),
            Some(t0 + Duration::seconds(128))
        );
        assert_eq!(
            ACCOUNT.wait_until(15, Some(t0)),
            Some(t0 + Duration::minutes(15))
        );
        assert_eq!(
            ACCOUNT.wait_until(5000, Some(t0)),
            Some(t0 + Duration::minutes(15))
        );
        assert_eq!(ACCOUNT.wait_until(50, None), None);
    }

    #[test]
    fn thresholds_trip_at_the_start_of_waiting_and_ten_and_a_hundred_times_it() {
        let tripped: Vec<i64> = (1..=600).filter(|n| ACCOUNT.trips_at(*n)).collect();
        assert_eq!(tripped, [5, 50, 500]);
    }
}
