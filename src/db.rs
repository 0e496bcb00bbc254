//! Opening the database: create it when missing, connect a pool, apply migrations; and
//! asking it whether it answers.

use std::str::FromStr;

use anyhow::Context;
use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool, Postgres};

use crate::config::DatabaseArgs;

/// How long a pooled connection may sit idle before it is checked again as it is handed out.
const IDLE_CHECK_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// The schema, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Creates the database if it does not exist, connects and brings the schema up to date.
pub async fn open(args: &DatabaseArgs) -> anyhow::Result<PgPool> {
    let options = PgConnectOptions::from_str(&args.database_url)
        .context("DATABASE_URL is not a PostgreSQL URL")?;
    let where_ = format!(
        "{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("(default)")
    );
    if !Postgres::database_exists(&args.database_url)
        .await
        .with_context(|| format!("cannot reach PostgreSQL at {where_}"))?
    {
        Postgres::create_database(&args.database_url)
            .await
            .with_context(|| format!("cannot create the database {where_}"))?;
        tracing::info!(database = %where_, "created the database");
    }
    // Migrations run on a connection of their own, without the serving limits: a backfill of
    // a large database may rightly take minutes.
    let mut migrating = PgConnection::connect_with(&options)
        .await
        .with_context(|| format!("cannot connect to {where_}"))?;
    MIGRATOR
        .run(&mut migrating)
        .await
        .context("applying migrations failed")?;
    migrating.close().await.ok();
    let millis = |d: std::time::Duration| d.as_millis().to_string();
    let pool = PgPoolOptions::new()
        .max_connections(args.db_max_connections)
        .acquire_timeout(args.db_acquire_timeout)
        // A connection handed out again within moments of its last use is known to be alive
        // (sqlx checks it as it comes back): checking it once more would cost a round trip of
        // every request. One idle for longer, as after a database restart, is still checked.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= IDLE_CHECK_AFTER {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
        // Every query here serves a page; JIT compilation costs tens of milliseconds up front and
        // is set off by cost estimates that grow with unrelated cohorts, so it only adds latency.
        // And the data of a page is in memory (or on SSD): an index lookup costs about what a
        // sequential read does, so joins of a page of rows to a large table use the index.
        // Every statement is prepared once per connection; planning a many-join statement
        // anew for each request cost more than running it (a cohort report: 350 requests/s
        // re-planned, 740 with the generic plan), so the generic plan is always used.
        //
        // A statement that runs away, or a transaction left idle by a stalled client, is ended
        // by PostgreSQL itself, so neither holds a connection and its locks for long.
        .connect_with(options.options([
            ("jit", "off"),
            ("random_page_cost", "1.1"),
            ("plan_cache_mode", "force_generic_plan"),
            ("statement_timeout", &millis(args.db_statement_timeout)),
            (
                "idle_in_transaction_session_timeout",
                &millis(args.db_idle_in_transaction_timeout),
            ),
        ]))
        .await
        .with_context(|| format!("cannot connect to {where_}"))?;
    tracing::info!(database = %where_, "database ready");
    Ok(pool)
}

/// Asks the database for `select 1`: succeeds when it answers.
pub async fn ping(conn: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query_scalar!("select 1 as \"one!\"")
        .fetch_one(conn)
        .await?;
    Ok(())
}

/// Sends `payload` on the notification channel `channel`, to every connection listening.
pub async fn notify(conn: &mut PgConnection, channel: &str, payload: &str) -> sqlx::Result<()> {
    sqlx::query!("select pg_notify($1, $2)", channel, payload)
        .execute(conn)
        .await?;
    Ok(())
}

/// Makes the transaction just begun on `conn` a read-only snapshot (repeatable read): every
/// statement after this one, which must be its first, sees the same data.
pub async fn set_read_only_snapshot(conn: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query!("set transaction isolation level repeatable read, read only")
        .execute(conn)
        .await?;
    Ok(())
}

/// A `like`/`ilike` pattern matching values that contain `text`, with the pattern's own
/// wildcards (`%`, `_`) and escape character in `text` taken literally. NUL, which PostgreSQL
/// refuses in text, is dropped.
pub fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        match c {
            '\\' | '%' | '_' => {
                pattern.push('\\');
                pattern.push(c);
            }
            '\0' => {}
            c => pattern.push(c),
        }
    }
    pattern.push('%');
    pattern
}

#[cfg(test)]
mod tests {
    use super::contains_pattern;

    #[test]
    fn search_text_is_matched_literally() {
        assert_eq!(contains_pattern("ann"), "%ann%");
        assert_eq!(contains_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
        assert_eq!(contains_pattern("a\0b"), "%ab%");
    }
}
