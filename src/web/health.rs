//! Liveness and readiness probes for load balancers and orchestrators.

use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sqlx::PgPool;

/// How long readiness waits for the database before answering "not ready".
const READINESS_TIMEOUT: Duration = Duration::from_secs(1);

/// `GET /healthz`: the process is up. Touches nothing else, so a slow database never
/// gets a healthy process restarted.
pub async fn healthz() -> impl IntoResponse {
    (StatusCode::OK, "ok\n")
}

/// `GET /readyz`: the database answers `select 1` within a second.
pub async fn readyz(State(pool): State<PgPool>) -> Response {
    let probe = async {
        let mut conn = pool.acquire().await?;
        crate::db::ping(&mut conn).await
    };
    match tokio::time::timeout(READINESS_TIMEOUT, probe).await {
        Ok(Ok(())) => (StatusCode::OK, "ready\n").into_response(),
        Ok(Err(error)) => {
            tracing::warn!(error = %error, "not ready: database error");
            not_ready()
        }
        Err(_) => {
            tracing::warn!("not ready: the database did not answer within a second");
            not_ready()
        }
    }
}

fn not_ready() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "5")],
        "database unavailable\n",
    )
        .into_response()
}
