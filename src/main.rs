//! The `attest` binary: parse the command line and run the chosen subcommand.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    attest::cli::run(attest::config::Cli::parse()).await
}
