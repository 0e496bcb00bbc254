//! The `attest` subcommands.

use std::path::Path;

use anyhow::Context;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

use crate::audit::Actor;
use crate::config::{Cli, Command, LogFormat, ServeArgs, StandardCommand};
use crate::standards::import::{self, ImportOutcome};
use crate::standards::parser;
use crate::{AppState, app, db};

/// Runs the command the user asked for.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    init_tracing(cli.log_format);
    match cli.command {
        Command::Serve(args) => serve(&cli.database, args).await,
        Command::Standard {
            command: StandardCommand::Import { file },
        } => import_standard(&cli.database, &file).await,
    }
}

fn init_tracing(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

async fn serve(database: &crate::config::DatabaseArgs, args: ServeArgs) -> anyhow::Result<()> {
    let pool = db::open(database).await?;
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
    tracing::info!("Attest is serving on http://{}", listener.local_addr()?);
    axum::serve(listener, app(AppState::new(pool.clone())))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    pool.close().await;
    tracing::info!("stopped");
    Ok(())
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

async fn import_standard(
    database: &crate::config::DatabaseArgs,
    file: &Path,
) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let parsed =
        parser::parse(&text).with_context(|| format!("{} is not a standard", file.display()))?;
    let pool = db::open(database).await?;
    let mut tx = pool.begin().await?;
    let outcome = import::import(&mut tx, &parsed, &Actor::cli()).await?;
    tx.commit().await?;
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
