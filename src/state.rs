//! What every request handler can reach.

use sqlx::PgPool;

/// Shared, cheaply cloned state of the portal.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
}

impl AppState {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}
