//! The `attest` subcommands.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::json;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

use crate::accounts::db as users_db;
use crate::accounts::model::{DisplayName, Email, check_new_password};
use crate::audit::{self, Actor, NewAuditEvent};
use crate::auth::links::{self, Purpose};
use crate::auth::session;
use crate::clock::Clock;
use crate::config::Settings;
use crate::config::{
    AuditCommand, BlobsCommand, Cli, Command, DatabaseArgs, DbCommand, DemoArgs, KeysCommand,
    LogFormat, ServeArgs, StandardCommand, StatusCommand, UserCommand,
};
use crate::identity::{Role, normalise_roles};
use crate::passwords::Passwords;
use crate::standards::import::{self, ImportOutcome};
use crate::standards::parser;
use crate::{AppState, app, db};

/// How often expired sessions are swept away.
const SESSION_SWEEP_INTERVAL: Duration = Duration::from_secs(300);
/// How soon after its commit a change's audit event is in the chain, at most (plus the time
/// sealing takes).
const AUDIT_SEAL_INTERVAL: Duration = Duration::from_millis(50);
/// How often the serving process looks whether a checkpoint of the audit trail is due.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(30);
/// How long each last step of a stopping server (sealing, closing the pool) may take.
const LAST_WORDS: Duration = Duration::from_secs(2);

/// Runs the command the user asked for.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    init_tracing(cli.log_format);
    match cli.command {
        Command::Serve(args) => serve(&cli.database, cli.base_url, args).await,
        Command::Audit {
            command: AuditCommand::Verify { checkpoint },
        } => verify_audit(&cli.database, checkpoint.as_deref()).await,
        Command::Audit {
            command: AuditCommand::Checkpoint { export, secret_key },
        } => checkpoint_audit(&cli.database, export, &secret_key).await,
        Command::Keys {
            command: KeysCommand::Rotate { secret_key },
        } => rotate_keys(&cli.database, &secret_key).await,
        Command::Db { command } => db_command(&cli.database, command).await,
        Command::Blobs {
            command: BlobsCommand::Verify,
        } => verify_blobs(&cli.database).await,
        Command::Standard {
            command: StandardCommand::Import { file },
        } => import_standard(&cli.database, &file).await,
        Command::Status {
            command: StatusCommand::Verify { repair },
        } => verify_status(&cli.database, repair).await,
        Command::Demo(args) => demo(&cli.database, cli.base_url, args).await,
        Command::User { command } => {
            let base_url = cli.base_url.unwrap_or_else(|| Settings::default().base_url);
            user_command(&cli.database, &base_url, command).await
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    // Logs go to standard error; standard output carries only what a command prints for people.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

async fn serve(
    database: &DatabaseArgs,
    base_url: Option<String>,
    args: ServeArgs,
) -> anyhow::Result<()> {
    let pool = open_database_as(database, db::WorkAs::App).await?;
    {
        let mut tx = pool.begin().await?;
        if let ImportOutcome::Created(_) = import::ensure_bundled(&mut tx).await? {
            tracing::info!("loaded the bundled standard TECIT50761");
        }
        tx.commit().await?;
    }

    let listener = TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("cannot listen on {}", args.bind))?;
    let address = listener.local_addr()?;
    let settings = Settings {
        base_url: base_url
            .unwrap_or_else(|| format!("http://{address}"))
            .trim_end_matches('/')
            .to_owned(),
        session_idle_timeout: time::Duration::minutes(i64::from(args.session_idle_minutes)),
        session_absolute_timeout: time::Duration::hours(i64::from(args.session_absolute_hours)),
        trusted_proxies: args.trusted_proxies.clone(),
        max_file_bytes: args.max_file_mib * 1024 * 1024,
        max_evidence_bytes: args.max_evidence_mib * 1024 * 1024,
        iqa_sample_percent: args.iqa_sample_percent,
        waiting: crate::config::WaitingThresholds::new(
            args.waiting_amber_days,
            args.waiting_red_days,
        ),
        upload_idle: args.upload_idle_seconds,
        request_timeout: args.request_timeout_seconds,
        second_factor: args.second_factor,
        secret_key: args.secret_key.clone(),
    };
    let state = AppState::new(
        pool.clone(),
        settings,
        Clock::system(),
        Passwords::new(args.hash_concurrency()),
    );

    let metrics = match args.metrics_bind {
        Some(address) => {
            let listener = TcpListener::bind(address)
                .await
                .with_context(|| format!("cannot serve metrics on {address}"))?;
            tracing::info!("metrics are served on http://{address}/metrics");
            let router = crate::web::metrics::router(pool.clone());
            Some(tokio::spawn(async move {
                if let Err(error) = axum::serve(listener, router).await {
                    tracing::warn!(error = %error, "serving metrics stopped");
                }
            }))
        }
        None => None,
    };
    offer_first_admin_setup(&state).await?;
    // The signing key is made at the first start (checkpoints need it), and checked to open
    // with the configured secret key before serving.
    let key = active_signing_key(
        &mut *pool.acquire().await?,
        &state.settings.secret_key,
        state.clock.now(),
    )
    .await?;
    let sweeper = tokio::spawn(sweep_what_has_expired(state.clone()));
    let sealer = tokio::spawn(seal_audit_events(pool.clone()));
    drop(key);
    let checkpointer = tokio::spawn(checkpoint_audit_events(
        pool.clone(),
        state.settings.secret_key.clone(),
    ));
    let change_listener = crate::changes::Listening::start(state.changes.clone(), &pool);

    tracing::info!("Attest is serving on {}", state.settings.base_url);
    let grace = Duration::from_secs(args.shutdown_grace_seconds);
    crate::web::server::serve(
        listener,
        app(state),
        args.header_read_seconds,
        shutdown_signal(),
        grace,
    )
    .await;
    sweeper.abort();
    sealer.abort();
    checkpointer.abort();
    if let Some(metrics) = metrics {
        metrics.abort();
    }
    change_listener.stop().await;
    // Every request has ended (those past the grace were cut off): their uploads leave no
    // chunks behind.
    match tokio::time::timeout(LAST_WORDS, crate::blobs::discard_unfinished(&pool)).await {
        Ok(Ok(0)) => {}
        Ok(Ok(count)) => tracing::info!(uploads = count, "dropped uploads cut off by the shutdown"),
        Ok(Err(error)) => tracing::warn!(error = %error, "dropping unfinished uploads failed"),
        Err(_) => tracing::warn!("dropping unfinished uploads took too long"),
    }
    // What the last requests recorded is in the chain before the process ends.
    match tokio::time::timeout(LAST_WORDS, seal_once(&pool)).await {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => {
            tracing::warn!(error = %error, "sealing the audit trail on the way out failed");
        }
        Err(_) => tracing::warn!("sealing the audit trail on the way out took too long"),
    }
    let _ = tokio::time::timeout(LAST_WORDS, pool.close()).await;
    tracing::info!("stopped");
    Ok(())
}

/// `attest demo`: the demo cohort, then the accounts and where to go.
async fn demo(
    database: &DatabaseArgs,
    base_url: Option<String>,
    args: DemoArgs,
) -> anyhow::Result<()> {
    let pool = open_database(&database.without_limits()).await?;
    {
        let mut tx = pool.begin().await?;
        import::ensure_bundled(&mut tx).await?;
        tx.commit().await?;
    }
    let defaults = Settings::default();
    let settings = Settings {
        base_url: base_url
            .unwrap_or(defaults.base_url.clone())
            .trim_end_matches('/')
            .to_owned(),
        ..defaults
    };
    let base = settings.base_url.clone();
    let state = AppState::new(pool.clone(), settings, Clock::system(), Passwords::new(1));
    let outcome = crate::demo::run(&state).await?;
    let scaled = match args.scale {
        Some(n) => Some((
            n,
            crate::demo::scale::run(&state, n, crate::demo::PASSWORD).await?,
        )),
        None => None,
    };
    close_database(pool).await;
    match outcome {
        crate::demo::Outcome::Created => {
            println!("Made the demo cohort \"{}\".", crate::demo::COHORT);
        }
        crate::demo::Outcome::AlreadyThere => println!(
            "The demo cohort \"{}\" is already there; nothing was changed.",
            crate::demo::COHORT
        ),
    }
    println!(
        "\nEvery demo account has the password {}\n",
        crate::demo::PASSWORD
    );
    for account in crate::demo::accounts() {
        println!(
            "  {:<32} {:<14} {:<10} {}",
            account.email,
            account.name,
            account.role.as_str(),
            account.shows
        );
    }
    match scaled {
        Some((n, crate::demo::scale::Outcome::Created { assessors })) => println!(
            "\nMade \"{}\": {n} candidates (scale-candidate-00001@attest.example …), \
             assessors scale-assessor-01@attest.example … scale-assessor-{assessors:02}@attest.example \
             with up to {} enrolments each, and the IQA scale-iqa@attest.example.",
            crate::demo::scale::cohort_name(n),
            crate::demo::scale::PER_ASSESSOR
        ),
        Some((n, crate::demo::scale::Outcome::AlreadyThere)) => println!(
            "\nThe cohort \"{}\" is already there; nothing was changed.",
            crate::demo::scale::cohort_name(n)
        ),
        None => {}
    }
    println!(
        "\nOpen {base} and sign in as {} (password {}).",
        crate::demo::ADMIN.email,
        crate::demo::PASSWORD
    );
    Ok(())
}

/// While no admin exists, prints a single-use link (valid one hour) that creates the first one.
async fn offer_first_admin_setup(state: &AppState) -> anyhow::Result<()> {
    let mut tx = state.pool.begin().await?;
    if users_db::any_active_admin(&mut tx).await? {
        return Ok(());
    }
    let link = links::issue(
        &mut tx,
        &state.settings.base_url,
        Purpose::Setup,
        None,
        None,
        state.clock.now(),
    )
    .await?;
    audit::record(
        &mut tx,
        NewAuditEvent {
            actor: &Actor::system(),
            action: "auth.setup_link_issued",
            entity_type: "setup",
            entity_id: "first-admin".into(),
            detail: json!({ "expires_at": link.expires_at.unix_timestamp() }),
        },
    )
    .await?;
    tx.commit().await?;
    // Printed for the operator, not logged: the link is a credential.
    println!(
        "No admin account exists yet. Create the first one within an hour at:\n  {}",
        link.url
    );
    Ok(())
}

/// Every few minutes: ends expired sessions, forgets old form keys, and sweeps storage.
async fn sweep_what_has_expired(state: AppState) {
    let mut interval = tokio::time::interval(SESSION_SWEEP_INTERVAL);
    loop {
        interval.tick().await;
        let swept = match state.pool.acquire().await {
            Ok(mut conn) => {
                session::delete_expired(&mut conn, &state.settings, state.clock.now()).await
            }
            Err(error) => Err(error),
        };
        match swept {
            Ok(0) => {}
            Ok(count) => tracing::info!(sessions.deleted = count, "deleted expired sessions"),
            Err(error) => tracing::warn!(error = %error, "sweeping expired sessions failed"),
        }
        let now = state.clock.now();
        let forgotten = match state.pool.acquire().await {
            Ok(mut conn) => {
                let attempts = crate::auth::throttle::delete_old(&mut conn, now).await;
                let challenges = crate::auth::db::delete_expired_challenges(&mut conn, now).await;
                attempts.and(challenges)
            }
            Err(error) => Err(error),
        };
        if let Err(error) = forgotten {
            tracing::warn!(error = %error, "forgetting old sign-in attempts failed");
        }
        // Forms' one-time keys are kept a day.
        let before = state.clock.now() - crate::auth::submissions::KEPT_FOR;
        let forgotten = match state.pool.acquire().await {
            Ok(mut conn) => crate::auth::db::delete_old_submissions(&mut conn, before).await,
            Err(error) => Err(error),
        };
        if let Err(error) = forgotten {
            tracing::warn!(error = %error, "forgetting old form keys failed");
        }
        sweep_storage(&state).await;
    }
}

/// Removes abandoned uploads and files no evidence refers to any more.
async fn sweep_storage(state: &AppState) {
    let retention = crate::blobs::Retention::default();
    match crate::blobs::sweep(&state.pool, state.clock.now(), retention).await {
        Ok(swept) if swept == crate::blobs::SweepCounts::default() => {}
        Ok(swept) => tracing::info!(
            storage.abandoned_uploads = swept.abandoned_uploads,
            storage.unreferenced_files = swept.unreferenced_files,
            storage.chunks = swept.chunks,
            "swept storage"
        ),
        Err(error) => tracing::warn!(error = %error, "sweeping storage failed"),
    }
}

/// Links the audit events that changes have written into the chain, a moment after they are
/// committed. Sealers of other processes on the same database take turns with this one.
async fn seal_audit_events(pool: PgPool) {
    let mut interval = tokio::time::interval(AUDIT_SEAL_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if let Err(error) = seal_once(&pool).await {
            tracing::warn!(error = %error, "sealing the audit trail failed");
        }
    }
}

/// Signs a checkpoint of the chain when the cadence says one is due (1,000 new events, or ten
/// minutes after the last when there are new ones), with the key active then (a rotation by
/// `attest keys rotate` is taken up at the next tick). Makers of other processes take turns.
async fn checkpoint_audit_events(pool: PgPool, secret: crate::crypto::SecretKey) {
    let mut interval = tokio::time::interval(CHECKPOINT_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let cadence = crate::audit::checkpoint::Cadence::default();
    loop {
        interval.tick().await;
        let made = async {
            let mut conn = pool.acquire().await?;
            let Some(key) = crate::keys::active(&mut conn, &secret).await? else {
                return Ok(None);
            };
            let now = time::OffsetDateTime::now_utc();
            crate::audit::checkpoint::make(&mut conn, &key, Some(cadence), now).await
        };
        match made.await {
            Ok(Some(checkpoint)) => tracing::info!(
                events = checkpoint.events,
                head = %checkpoint.head,
                "signed a checkpoint of the audit trail"
            ),
            Ok(None) => {}
            Err(error) => tracing::warn!(error = %error, "signing a checkpoint failed"),
        }
    }
}

async fn seal_once(pool: &PgPool) -> sqlx::Result<u64> {
    crate::audit::seal_pending(&mut *pool.acquire().await?).await
}

/// Resolves on SIGINT or SIGTERM; the server then stops accepting and drains in-flight requests.
async fn shutdown_signal() {
    let interrupt = async {
        tokio::signal::ctrl_c().await.expect("listening for SIGINT");
    };
    #[cfg(unix)]
    let terminate = async {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("listening for SIGTERM")
            .recv()
            .await;
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

async fn import_standard(database: &DatabaseArgs, file: &Path) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    // A CASE package (JSON) or the NOS plain-text format.
    let parsed = if text.trim_start().starts_with('{') {
        crate::standards::case::import(&text)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("{} is not a standard", file.display()))?
    } else {
        parser::parse(&text).with_context(|| format!("{} is not a standard", file.display()))?
    };
    let pool = open_database(&database.without_limits()).await?;
    let mut tx = pool.begin().await?;
    let outcome = import::import(&mut tx, &parsed, &Actor::cli()).await?;
    tx.commit().await?;
    close_database(pool).await;
    match outcome {
        ImportOutcome::Created(_) => println!(
            "Imported {} version {}: \"{}\" with {} criteria.",
            parsed.urn,
            parsed.version,
            parsed.title,
            parsed.criteria.len()
        ),
        ImportOutcome::Unchanged(_) => println!(
            "{} version {} is already loaded with the same content; nothing changed.",
            parsed.urn, parsed.version
        ),
    }
    Ok(())
}

fn read_password_from_stdin() -> anyhow::Result<String> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("cannot read the password from standard input")?;
    // One trailing line break is how `echo` and files end; it is not part of the password.
    let password = text.strip_suffix('\n').unwrap_or(&text);
    Ok(password.strip_suffix('\r').unwrap_or(password).to_owned())
}

async fn user_command(
    database: &DatabaseArgs,
    base_url: &str,
    command: UserCommand,
) -> anyhow::Result<()> {
    let passwords = Passwords::new(1);
    let now = time::OffsetDateTime::now_utc();
    match command {
        UserCommand::Add {
            email,
            name,
            roles,
            password_stdin,
        } => {
            let email = Email::parse(&email).map_err(anyhow::Error::msg)?;
            let name = DisplayName::parse(&name).map_err(anyhow::Error::msg)?;
            let roles = roles
                .iter()
                .map(|r| {
                    Role::parse(r).with_context(|| {
                        format!("{r:?} is not a role (candidate, assessor, iqa, admin)")
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let roles = normalise_roles(roles);
            let hash = if password_stdin {
                let password = read_password_from_stdin()?;
                check_new_password(&password, email.as_str(), name.as_str())
                    .map_err(anyhow::Error::msg)?;
                Some(passwords.hash(&password).await?)
            } else {
                None
            };
            let pool = open_database(&database.without_limits()).await?;
            let mut tx = pool.begin().await?;
            let id = crate::accounts::create_from_command(
                &mut tx,
                &email,
                &name,
                &roles,
                hash.as_deref(),
                "cli",
            )
            .await?;
            let link = match hash {
                Some(_) => None,
                None => Some(
                    links::issue(&mut tx, base_url, Purpose::Invitation, Some(id), None, now)
                        .await?,
                ),
            };
            tx.commit().await?;
            close_database(pool).await;
            println!("Created {} <{}>.", name.as_str(), email.as_str());
            if let Some(link) = link {
                println!(
                    "Invitation link (valid 7 days, single use):\n  {}",
                    link.url
                );
            }
            Ok(())
        }
        UserCommand::SetPassword {
            email,
            password_stdin: _,
        } => {
            let email = Email::parse(&email).map_err(anyhow::Error::msg)?;
            let password = read_password_from_stdin()?;
            let pool: PgPool = open_database(&database.without_limits()).await?;
            let mut tx = pool.begin().await?;
            let Some(user) = users_db::find_credentials(&mut tx, &email.key()).await? else {
                bail!("no account has the email address {}", email.as_str());
            };
            check_new_password(&password, &user.email, &user.name).map_err(anyhow::Error::msg)?;
            let hash = passwords.hash(&password).await?;
            let ended =
                crate::auth::replace_password(&mut tx, user.id, &user.email, &hash, now, None)
                    .await?;
            audit::record(
                &mut tx,
                NewAuditEvent {
                    actor: &Actor::cli(),
                    action: "user.password_changed",
                    entity_type: "user",
                    entity_id: user.id.to_string(),
                    detail: json!({ "via": "cli", "sessions_ended": ended }),
                },
            )
            .await?;
            tx.commit().await?;
            close_database(pool).await;
            println!(
                "Set the password of {}; {ended} session(s) ended.",
                user.email
            );
            Ok(())
        }
        UserCommand::ResetSecondFactor { email } => {
            let email = Email::parse(&email).map_err(anyhow::Error::msg)?;
            let pool: PgPool = open_database(&database.without_limits()).await?;
            let mut tx = pool.begin().await?;
            let Some(user) = users_db::find_credentials(&mut tx, &email.key()).await? else {
                bail!("no account has the email address {}", email.as_str());
            };
            let had = crate::auth::reset_second_factor(&mut tx, user.id, &user.email, now).await?;
            audit::record(
                &mut tx,
                NewAuditEvent {
                    actor: &Actor::cli(),
                    action: "user.second_factor_reset",
                    entity_type: "user",
                    entity_id: user.id.to_string(),
                    detail: json!({ "had_second_factor": had, "via": "cli" }),
                },
            )
            .await?;
            tx.commit().await?;
            close_database(pool).await;
            if had {
                println!(
                    "Reset the second step of {}; its sessions ended.",
                    user.email
                );
            } else {
                println!(
                    "{} had no second step set up; its sessions ended.",
                    user.email
                );
            }
            Ok(())
        }
    }
}

/// Checks the chain as it stands, without sealing first: an event that waits is reported, not
/// made part of the chain by the check itself.
async fn verify_audit(
    database: &DatabaseArgs,
    external: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let external = match external {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let checkpoint: audit::checkpoint::Checkpoint = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a checkpoint", path.display()))?;
            Some(checkpoint)
        }
        None => None,
    };
    let pool = db::open(&database.without_limits()).await?;
    let mut conn = pool.acquire().await?;
    let report = audit::verify(&mut conn).await?;
    if let Some((id, reason)) = &report.broken {
        bail!("the audit trail is broken at event {id}: {reason}");
    }
    if let Some(problem) = &report.checkpoint_problem {
        bail!("the audit trail does not fit its checkpoints: {problem}");
    }
    if let Some(checkpoint) = &external
        && let Err(problem) = audit::checkpoint::check(&mut conn, checkpoint).await?
    {
        bail!("the audit trail does not fit the checkpoint given: {problem}");
    }
    println!(
        "The audit trail is intact: {} events; head hash {}; signed checkpoints that hold: {}.",
        report.events,
        crate::crypto::hex(&report.head),
        report.checkpoints
    );
    if let Some(checkpoint) = &external {
        println!(
            "It holds the checkpoint given: {} events at {}.",
            checkpoint.events, checkpoint.made_at
        );
    }
    if report.pending > 0 {
        println!(
            "{} more events were waiting to be sealed into it (changes still being made).",
            report.pending
        );
    }
    Ok(())
}

/// Seals what waits, makes a signed checkpoint when the chain has grown, and with `export`
/// prints the newest one as JSON.
async fn checkpoint_audit(
    database: &DatabaseArgs,
    export: bool,
    secret: &crate::crypto::SecretKey,
) -> anyhow::Result<()> {
    let pool = open_database(&database.without_limits()).await?;
    let mut conn = pool.acquire().await?;
    let now = time::OffsetDateTime::now_utc();
    let key = active_signing_key(&mut conn, secret, now).await?;
    // The key's own event, if it was just made, is in the chain the checkpoint covers.
    audit::seal_pending(&mut conn).await?;
    let made = audit::checkpoint::make(&mut conn, &key, None, now).await?;
    if export {
        let latest = audit::checkpoint::latest(&mut conn).await?;
        let latest = latest.context("the audit trail is empty: there is nothing to checkpoint")?;
        println!("{}", serde_json::to_string_pretty(&latest)?);
    } else {
        match made {
            Some(checkpoint) => println!(
                "Signed a checkpoint: {} events, head {}.",
                checkpoint.events, checkpoint.head
            ),
            None => println!("The newest checkpoint already covers the whole trail."),
        }
    }
    drop(conn);
    close_database(pool).await;
    Ok(())
}

/// The active signing key, made (and recorded) first if there is none yet.
async fn active_signing_key(
    conn: &mut sqlx::PgConnection,
    secret: &crate::crypto::SecretKey,
    now: time::OffsetDateTime,
) -> anyhow::Result<crate::keys::ActiveKey> {
    use sqlx::Connection;
    let mut tx = conn.begin().await?;
    if let Some(kid) = crate::keys::ensure_active(&mut tx, secret, now).await? {
        record_key_event(&mut tx, "keys.created", &kid, json!({})).await?;
    }
    tx.commit().await?;
    crate::keys::active(conn, secret).await?.context(
        "the active signing key cannot be opened: is ATTEST_SECRET_KEY the key it was made with?",
    )
}

async fn record_key_event(
    conn: &mut sqlx::PgConnection,
    action: &'static str,
    kid: &str,
    detail: serde_json::Value,
) -> sqlx::Result<()> {
    audit::record(
        conn,
        NewAuditEvent {
            actor: &Actor::system(),
            action,
            entity_type: "signing_key",
            entity_id: kid.to_owned(),
            detail,
        },
    )
    .await
}

/// `attest keys rotate`.
async fn rotate_keys(
    database: &DatabaseArgs,
    secret: &crate::crypto::SecretKey,
) -> anyhow::Result<()> {
    let pool = open_database(&database.without_limits()).await?;
    let mut tx = pool.begin().await?;
    let now = time::OffsetDateTime::now_utc();
    let (retired, kid) = crate::keys::rotate(&mut tx, secret, now).await?;
    audit::record(
        &mut tx,
        NewAuditEvent {
            actor: &Actor::cli(),
            action: "keys.rotated",
            entity_type: "signing_key",
            entity_id: kid.clone(),
            detail: json!({ "retired": retired }),
        },
    )
    .await?;
    tx.commit().await?;
    close_database(pool).await;
    println!("The new signing key is {kid}; the one before stays published for checking.");
    Ok(())
}

async fn verify_blobs(database: &DatabaseArgs) -> anyhow::Result<()> {
    let pool = db::open(&database.without_limits()).await?;
    let (checked, damaged) = crate::blobs::verify_all(&pool).await?;
    if damaged.is_empty() {
        println!("Every stored file matches its SHA-256: {checked} files checked.");
        close_database(pool).await;
        return Ok(());
    }
    println!(
        "{checked} files checked; {} are damaged (restore them from a backup):",
        damaged.len()
    );
    let mut conn = pool.acquire().await?;
    for (stored, reason) in &damaged {
        println!(
            "  file {} (SHA-256 {}): {reason}",
            stored.blob_id.0,
            crate::crypto::hex(&stored.sha256)
        );
        for use_of in crate::blobs::uses(&mut conn, stored.blob_id).await? {
            println!("    {use_of}");
        }
    }
    drop(conn);
    close_database(pool).await;
    bail!("{} stored files are damaged", damaged.len())
}

async fn verify_status(database: &DatabaseArgs, repair: bool) -> anyhow::Result<()> {
    let pool = open_database(&database.without_limits()).await?;
    let outcome = crate::status::verify::verify(&pool, repair).await?;
    close_database(pool).await;
    if outcome.is_clean() {
        println!(
            "Every stored status is right: {} enrolments checked.",
            outcome.checked
        );
        return Ok(());
    }
    println!(
        "{} enrolments checked; {} have a stored status that differs from their records:",
        outcome.checked,
        outcome.wrong.len()
    );
    for count in &outcome.wrong_counts {
        println!("  {count}");
    }
    for m in &outcome.mismatches {
        let criterion = if m.criterion.is_empty() {
            String::new()
        } else {
            format!(" criterion {}", m.criterion)
        };
        println!(
            "  enrolment {}{criterion} {}: stored {}, computed {}",
            m.enrolment_id, m.field, m.stored, m.computed
        );
    }
    if !outcome.repaired {
        bail!(
            "stored statuses differ from the records; `attest status verify --repair` rewrites them"
        );
    }
    println!("Repaired: the stored statuses now match the records.");
    Ok(())
}

/// `attest db migrate` and `attest db setup-roles`.
async fn db_command(database: &DatabaseArgs, command: DbCommand) -> anyhow::Result<()> {
    match command {
        DbCommand::Migrate => {
            let pool = db::open(&database.without_limits()).await?;
            pool.close().await;
            println!("The database is up to date.");
        }
        DbCommand::SetupRoles {
            app_password_stdin: _,
        } => {
            let password = read_password_from_stdin()?;
            let pool = db::open(&database.without_limits()).await?;
            let mut conn = pool.acquire().await?;
            db::setup_roles(&mut conn, Some(&password)).await?;
            drop(conn);
            pool.close().await;
            println!(
                "The role {} can log in with that password; serve with it in DATABASE_URL.",
                db::APP_ROLE
            );
        }
    }
    Ok(())
}

/// The database, migrated, with every record the portal keeps derived from others in place:
/// audit events written before the hash chain are sealed, and enrolments without a stored
/// status get one.
async fn open_database(database: &DatabaseArgs) -> anyhow::Result<PgPool> {
    open_database_as(database, db::WorkAs::Login).await
}

/// [`open_database`], the pool working as `work_as`.
async fn open_database_as(database: &DatabaseArgs, work_as: db::WorkAs) -> anyhow::Result<PgPool> {
    let pool = db::open_as(database, work_as).await?;
    let sealed = seal_once(&pool)
        .await
        .context("sealing the audit trail failed")?;
    if sealed > 0 {
        tracing::info!(audit.sealed = sealed, "sealed waiting audit events");
    }
    let upkeep = crate::status::verify::bring_up_to_date(&pool)
        .await
        .context("storing the status of enrolments failed")?;
    if upkeep.filled > 0 {
        tracing::info!(
            enrolments = upkeep.filled,
            "stored the status of enrolments that had none"
        );
    }
    if upkeep.recomputed > 0 {
        tracing::info!(
            enrolments = upkeep.recomputed,
            "worked out the status of enrolments again by the current rule"
        );
    }
    Ok(pool)
}

/// Seals what a command recorded, so its events are in the chain before it exits rather than
/// whenever a server next seals, then closes the pool.
async fn close_database(pool: PgPool) {
    if let Err(error) = seal_once(&pool).await {
        tracing::warn!(error = %error, "sealing the audit trail after the command failed");
    }
    pool.close().await;
}
