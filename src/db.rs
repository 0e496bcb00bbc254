//! Opening the database: create it when missing, connect a pool, apply migrations, keep the
//! least-privileged role the server works as; and asking it whether it answers.

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

/// The role `attest serve` works as. It reads and adds records, and changes only what is
/// meant to change: it cannot update or delete audit events (but for sealing them), judgements,
/// sign-offs, reviews and other records, nor update a stored file's bytes, nor empty any
/// table, nor alter the schema. (Triggers refuse the same whoever asks; the grants make it so
/// for the server even if a trigger were dropped.)
pub const APP_ROLE: &str = "attest_app";

/// Tables the server only reads and adds to.
const RECORD_TABLES: &[&str] = &[
    "audit_checkpoint",
    "judgement",
    "sign_off",
    "sign_off_item",
    "review",
    "iqa_action",
    "iqa_action_answer",
    "evidence_comment",
    "evidence_sample",
    "standard",
    "criterion",
];

/// Records of which the server may write these columns once (sealing an audit event,
/// retiring a signing key); triggers allow nothing else.
const WRITE_ONCE_COLUMNS: &[(&str, &str)] = &[
    ("audit_event", "chain_seq, prev_hash, hash"),
    ("signing_key", "retired_at"),
];

/// Tables whose rows the server deletes but never updates: the chunks of stored files.
const DELETE_ONLY_TABLES: &[&str] = &["blob_chunk"];

/// Whether the pool works as the login it connects with, or as [`APP_ROLE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkAs {
    Login,
    /// As [`APP_ROLE`]: a login that owns the schema migrates it, then every pooled
    /// connection takes the app role (`SET ROLE`).
    App,
}

/// Creates the database if it does not exist, connects and brings the schema up to date.
/// A login that may change the schema migrates it and keeps [`APP_ROLE`]'s grants current;
/// one that may not (the app role itself) only checks that every migration has been applied.
pub async fn open(args: &DatabaseArgs) -> anyhow::Result<PgPool> {
    open_as(args, WorkAs::Login).await
}

pub async fn open_as(args: &DatabaseArgs, work_as: WorkAs) -> anyhow::Result<PgPool> {
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
    let owner = may_change_schema(&mut migrating).await?;
    let missing = missing_migrations(&mut migrating).await?;
    if owner {
        MIGRATOR
            .run(&mut migrating)
            .await
            .context("applying migrations failed")?;
        // Grants follow the schema: kept current when it changed, or when the role is missing.
        if (missing > 0 || !may_become_app_role(&mut migrating).await?)
            && let Err(error) = setup_roles(&mut migrating, None).await
        {
            // A login that may not create roles keeps working as itself.
            tracing::warn!(error = %error, role = APP_ROLE, "keeping the app role's grants failed");
        }
    } else if missing > 0 {
        anyhow::bail!(
            "the database lacks {missing} migration(s) and this login may not apply them: run \
             `attest db migrate` with the owner's DATABASE_URL first"
        );
    }
    let set_role = work_as == WorkAs::App && owner && may_become_app_role(&mut migrating).await?;
    migrating.close().await.ok();
    if set_role {
        tracing::info!(role = APP_ROLE, "serving as the least-privileged role");
    }
    let millis = |d: std::time::Duration| d.as_millis().to_string();
    let pool = PgPoolOptions::new()
        .max_connections(args.db_max_connections)
        .acquire_timeout(args.db_acquire_timeout)
        // A connection handed out again within moments of its last use is known to be alive
        // (sqlx checks it as it comes back): checking it once more would cost a round trip of
        // every request. One idle for longer, as after a database restart, is still checked.
        .test_before_acquire(false)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if set_role {
                    sqlx::raw_sql("set role attest_app").execute(conn).await?;
                }
                Ok(())
            })
        })
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

/// Whether the login may change the schema (and so migrate it).
async fn may_change_schema(conn: &mut PgConnection) -> sqlx::Result<bool> {
    sqlx::query_scalar!(r#"select has_schema_privilege('public', 'CREATE') as "may!""#)
        .fetch_one(conn)
        .await
}

/// Whether the app role exists and the login may take it (`SET ROLE`).
async fn may_become_app_role(conn: &mut PgConnection) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"select exists (select 1 from pg_roles where rolname = $1)
                  and pg_has_role(current_user, $1, 'MEMBER') as "may!""#,
        APP_ROLE
    )
    .fetch_one(conn)
    .await
}

/// How many of the migrations this binary carries the database has not applied.
async fn missing_migrations(conn: &mut PgConnection) -> anyhow::Result<usize> {
    // sqlx's own table, which the query macros do not know; absent from a new database.
    let exists: bool = sqlx::query_scalar("select to_regclass('_sqlx_migrations') is not null")
        .fetch_one(&mut *conn)
        .await?;
    let applied: Vec<i64> = if exists {
        sqlx::query_scalar("select version from _sqlx_migrations where success")
            .fetch_all(&mut *conn)
            .await
            .context("cannot read which migrations have been applied")?
    } else {
        Vec::new()
    };
    Ok(MIGRATOR
        .iter()
        .filter(|m| !applied.contains(&m.version))
        .count())
}

/// Creates [`APP_ROLE`] if it is missing (with `password`, when given, to log in with) and
/// grants it what the server needs in this database, and no more. Run by a login that owns
/// the schema; again after every migration, so new tables are covered.
pub async fn setup_roles(conn: &mut PgConnection, password: Option<&str>) -> anyhow::Result<()> {
    let mut tx = conn.begin().await?;
    // Roles belong to the whole server: several databases set up at once must not race.
    sqlx::raw_sql(
        "do $$ begin
             create role attest_app login;
         exception when duplicate_object or unique_violation then null;
         end $$",
    )
    .execute(&mut *tx)
    .await
    .context("cannot create the role attest_app (the login needs CREATEROLE)")?;
    if let Some(password) = password {
        let literal = password.replace('\'', "''");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "alter role attest_app password '{literal}'"
        )))
        .execute(&mut *tx)
        .await?;
    }
    let tables: Vec<String> = sqlx::query_scalar!(
        r#"select tablename as "name!" from pg_tables where schemaname = 'public' order by tablename"#
    )
    .fetch_all(&mut *tx)
    .await?;
    // An owner that is not a superuser becomes a member, so that it may serve as the role.
    sqlx::raw_sql(
        "do $$ begin
             if not (select rolsuper from pg_roles where rolname = current_user) then
                 execute format('grant attest_app to %I', current_user);
             end if;
         end $$",
    )
    .execute(&mut *tx)
    .await
    .context("cannot make the owner a member of attest_app")?;
    let mut grants = vec![
        // Before PostgreSQL 15 everyone could create in `public`.
        "revoke create on schema public from public".to_owned(),
        "revoke all on all tables in schema public from attest_app".to_owned(),
        "grant usage on schema public to attest_app".to_owned(),
        // Views too, which the status rule reads from.
        "grant select on all tables in schema public to attest_app".to_owned(),
        "grant usage, select on all sequences in schema public to attest_app".to_owned(),
    ];
    for table in &tables {
        let table = table.as_str();
        let privileges = if table == "_sqlx_migrations" {
            "select".to_owned()
        } else if let Some((_, columns)) = WRITE_ONCE_COLUMNS.iter().find(|(t, _)| *t == table) {
            format!("select, insert, update ({columns})")
        } else if RECORD_TABLES.contains(&table) {
            "select, insert".to_owned()
        } else if DELETE_ONLY_TABLES.contains(&table) {
            "select, insert, delete".to_owned()
        } else {
            "select, insert, update, delete".to_owned()
        };
        grants.push(format!("grant {privileges} on \"{table}\" to attest_app"));
    }
    sqlx::raw_sql(sqlx::AssertSqlSafe(grants.join(";\n")))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Asks the database for `select 1`: succeeds when it answers.
pub async fn ping(conn: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query_scalar!("select 1 as \"one!\"")
        .fetch_one(conn)
        .await?;
    Ok(())
}

/// Waits for the transaction-scoped advisory lock `key`, then holds it until the transaction
/// ends.
pub async fn advisory_xact_lock(conn: &mut PgConnection, key: i64) -> sqlx::Result<()> {
    sqlx::query!("select pg_advisory_xact_lock($1)", key)
        .execute(conn)
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
