//! Opening the database: create it when missing, connect a pool, apply migrations.

use std::str::FromStr;

use anyhow::Context;
use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres};

use crate::config::DatabaseArgs;

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
    let pool = PgPoolOptions::new()
        .max_connections(args.db_max_connections)
        .acquire_timeout(args.db_acquire_timeout)
        // Every query here serves a page; JIT compilation costs tens of milliseconds up front and
        // is set off by cost estimates that grow with unrelated cohorts, so it only adds latency.
        // And the data of a page is in memory (or on SSD): an index lookup costs about what a
        // sequential read does, so joins of a page of rows to a large table use the index.
        // Every statement is prepared once per connection; planning a many-join statement
        // anew for each request cost more than running it (a cohort report: 350 requests/s
        // re-planned, 740 with the generic plan), so the generic plan is always used.
        .connect_with(options.options([
            ("jit", "off"),
            ("random_page_cost", "1.1"),
            ("plan_cache_mode", "force_generic_plan"),
        ]))
        .await
        .with_context(|| format!("cannot connect to {where_}"))?;
    MIGRATOR
        .run(&pool)
        .await
        .context("applying migrations failed")?;
    let mut tx = pool.begin().await?;
    let sealed = crate::audit::seal_legacy_events(&mut tx)
        .await
        .context("sealing the audit trail failed")?;
    tx.commit().await?;
    if sealed > 0 {
        tracing::info!(
            audit.sealed = sealed,
            "sealed audit events written before the hash chain"
        );
    }
    let filled = crate::assessments::verify::fill_missing(&pool)
        .await
        .context("storing the status of enrolments failed")?;
    if filled > 0 {
        tracing::info!(
            enrolments = filled,
            "stored the status of enrolments that had none"
        );
    }
    tracing::info!(database = %where_, "database ready");
    Ok(pool)
}
