//! The metrics of `crate::metrics` over HTTP: the middleware that counts every request, and
//! the router of the separate metrics address (`ATTEST_METRICS_BIND`, off by default). The
//! portal's own router never serves them, so they cannot be made public by accident.

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sqlx::PgPool;

use crate::metrics::metrics;

/// Middleware: counts each request by its matched route, method and status, and times it.
pub async fn count_requests(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    // Any token is a method to hyper: only the ones we know become labels.
    let method = match *request.method() {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    };
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    metrics().answered(route, method, status, started.elapsed());
    response
}

/// The router of the metrics address: `GET /metrics` and nothing else.
pub fn router(pool: PgPool) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .with_state(pool)
}

async fn render(State(pool): State<PgPool>) -> Response {
    let mut response = metrics().render(&pool).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}
