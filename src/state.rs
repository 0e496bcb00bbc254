//! What every request handler can reach.

use std::sync::Arc;

use sqlx::PgPool;

use crate::changes::Changes;
use crate::clock::Clock;
use crate::config::Settings;
use crate::passwords::Passwords;

/// Shared, cheaply cloned state of the portal. The plumbing in `web` takes only the parts it
/// needs (the pool, the settings), through `FromRef`.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub settings: Arc<Settings>,
    pub clock: Clock,
    pub passwords: Passwords,
    /// What this process has heard of changes to sessions and users; `attest serve` listens.
    pub changes: Changes,
}

impl AppState {
    pub fn new(pool: PgPool, settings: Settings, clock: Clock, passwords: Passwords) -> Self {
        Self {
            pool,
            settings: Arc::new(settings),
            clock,
            passwords,
            changes: Changes::default(),
        }
    }
}

impl axum::extract::FromRef<AppState> for PgPool {
    fn from_ref(state: &AppState) -> Self {
        state.pool.clone()
    }
}

impl axum::extract::FromRef<AppState> for Arc<Settings> {
    fn from_ref(state: &AppState) -> Self {
        state.settings.clone()
    }
}
