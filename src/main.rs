//! The `attest` binary: parse the command line and run the chosen subcommand.

use clap::Parser;

/// Pages allocate many short-lived strings on both worker threads at once; glibc's allocator
/// spent a sixth of the server's time on a signed-in page in its own locks and bookkeeping.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    attest::cli::run(attest::config::Cli::parse()).await
}
