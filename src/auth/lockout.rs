//! Brute-force defence: after 5 failed sign-ins for one account within 15 minutes, that account
//! refuses sign-in for 15 minutes, even with the right password; one client address may fail
//! at most 20 times in 10 minutes. Accounts are keyed by the email typed, so an email without an
//! account locks the same way and reveals nothing.

use std::net::IpAddr;

use sqlx::PgConnection;
use time::{Duration, OffsetDateTime};

pub const ACCOUNT_FAILURES: usize = 5;
pub const ACCOUNT_WINDOW: Duration = Duration::minutes(15);
pub const ACCOUNT_LOCK: Duration = Duration::minutes(15);
pub const ADDRESS_FAILURES: i64 = 20;
pub const ADDRESS_WINDOW: Duration = Duration::minutes(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "login_outcome", rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    Failed,
    Refused,
}

/// Why a sign-in is refused before the password is even checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Account { until: OffsetDateTime },
    Address,
}

/// Whether this email or address is locked out now.
pub async fn check(
    conn: &mut PgConnection,
    email_key: &str,
    ip: Option<IpAddr>,
    now: OffsetDateTime,
) -> sqlx::Result<Option<Refusal>> {
    if let Some(ip) = ip {
        let failures = sqlx::query_scalar!(
            r#"select count(*) as "n!" from login_attempt
                where client_ip = $1::text::inet and outcome = 'failed' and attempted_at > $2"#,
            ip.to_string(),
            now - ADDRESS_WINDOW
        )
        .fetch_one(&mut *conn)
        .await?;
        if failures >= ADDRESS_FAILURES {
            return Ok(Some(Refusal::Address));
        }
    }
    // Failures since the last success within the span a lock can reach back.
    let failures = sqlx::query_scalar!(
        r#"select attempted_at from login_attempt
            where email_key = $1 and outcome = 'failed' and attempted_at > $2
              and attempted_at > coalesce(
                  (select max(attempted_at) from login_attempt where email_key = $1 and outcome = 'succeeded'),
                  '-infinity')
            order by attempted_at"#,
        email_key,
        now - ACCOUNT_WINDOW - ACCOUNT_LOCK
    )
    .fetch_all(&mut *conn)
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

pub async fn record(
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
