//! Brute-force defence: after 5 failed sign-ins for one account within 15 minutes, that account
//! refuses sign-in for 15 minutes, even with the right password; one client address may fail
//! at most 20 times in 10 minutes. Accounts are keyed by the email typed, so an email without an
//! account locks the same way and reveals nothing; only the SHA-256 of what was typed is kept,
//! in case a password was typed into the email field.
//!
//! An attempt is recorded as failed *before* its password is checked, under a lock per email
//! and per address, so a burst of parallel attempts cannot all pass the check together.

use std::net::IpAddr;

use sqlx::PgConnection;
use time::{Duration, OffsetDateTime};

use super::db;

pub const ACCOUNT_FAILURES: usize = 5;
pub const ACCOUNT_WINDOW: Duration = Duration::minutes(15);
pub const ACCOUNT_LOCK: Duration = Duration::minutes(15);
pub const ADDRESS_FAILURES: i64 = 20;
pub const ADDRESS_WINDOW: Duration = Duration::minutes(10);
/// Failed and unsettled attempts one address may have at once.
pub const ADDRESS_ATTEMPTS_IN_FLIGHT: i64 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "login_outcome", rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    Failed,
    Refused,
    Pending,
}

/// Why a sign-in is refused before the password is even checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Account { until: OffsetDateTime },
    Address,
}

/// The stored key of what was typed as the email.
fn key(email: &str) -> String {
    crate::crypto::hex(&crate::crypto::sha256(email.as_bytes()))
}

/// Starts an attempt: waits for other attempts on the same email and address, refuses it when
/// either is locked out, and otherwise records it as pending until [`settle`] says how it went.
/// Run it in a short transaction of its own and commit before checking the password.
pub async fn begin(
    conn: &mut PgConnection,
    email: &str,
    ip: Option<IpAddr>,
    now: OffsetDateTime,
) -> sqlx::Result<Result<i64, Refusal>> {
    db::lock_attempts_on_email(conn, &key(email)).await?;
    if let Some(ip) = ip {
        db::lock_attempts_from_address(conn, ip).await?;
    }
    if let Some(refusal) = check(conn, email, ip, now).await? {
        db::insert_attempt(conn, &key(email), ip, Outcome::Refused, now).await?;
        return Ok(Err(refusal));
    }
    let id = db::insert_pending_attempt(conn, &key(email), ip, now).await?;
    Ok(Ok(id))
}

/// Settles a begun attempt as the success or failure it turned out to be.
pub async fn settle(conn: &mut PgConnection, attempt: i64, outcome: Outcome) -> sqlx::Result<()> {
    db::set_attempt_outcome(conn, attempt, outcome).await
}

/// Whether this email or address is locked out now.
pub async fn check(
    conn: &mut PgConnection,
    email: &str,
    ip: Option<IpAddr>,
    now: OffsetDateTime,
) -> sqlx::Result<Option<Refusal>> {
    if let Some(ip) = ip {
        // Attempts not yet settled count too, against a limit a class signing in together
        // stays under, so a burst of parallel guesses cannot get round the address limit.
        let (failures, in_flight) =
            db::attempts_from_address(conn, ip, now - ADDRESS_WINDOW).await?;
        if failures >= ADDRESS_FAILURES || failures + in_flight >= ADDRESS_ATTEMPTS_IN_FLIGHT {
            return Ok(Some(Refusal::Address));
        }
    }
    // Failures since the last success within the span a lock can reach back.
    let failures = db::failed_attempt_times_since_last_success(
        conn,
        &key(email),
        now - ACCOUNT_WINDOW - ACCOUNT_LOCK,
    )
    .await?;
    Ok(locked_until(&failures)
        .filter(|until| *until > now)
        .map(|until| Refusal::Account { until }))
}

/// The end of the lock that `failures` (oldest first) earned, if any: 15 minutes after a
/// failure that was the fifth within 15 minutes.
pub fn locked_until(failures: &[OffsetDateTime]) -> Option<OffsetDateTime> {
    failures
        .windows(ACCOUNT_FAILURES)
        .filter(|w| w[ACCOUNT_FAILURES - 1] - w[0] <= ACCOUNT_WINDOW)
        .map(|w| w[ACCOUNT_FAILURES - 1] + ACCOUNT_LOCK)
        .max()
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn five_failures_within_fifteen_minutes_lock_for_fifteen_minutes() {
        let t0 = datetime!(2026-01-01 09:00 UTC);
        let failures: Vec<_> = (0..5).map(|i| t0 + Duration::minutes(3 * i)).collect();
        assert_eq!(
            locked_until(&failures),
            Some(t0 + Duration::minutes(12 + 15))
        );
        assert_eq!(locked_until(&failures[..4]), None);
    }

    #[test]
    fn five_failures_spread_over_more_than_fifteen_minutes_do_not_lock() {
        let t0 = datetime!(2026-01-01 09:00 UTC);
        let failures: Vec<_> = (0..5).map(|i| t0 + Duration::minutes(4 * i)).collect();
        assert_eq!(locked_until(&failures), None);
    }
}
