//! Attest: a competency assessment portal. Candidates submit evidence against the criteria of
//! an occupational standard, assessors judge it and sign candidates off, internal quality
//! assurers sample those decisions, and admins run cohorts and reports.

pub mod accounts;
pub mod assessments;
pub mod audit;
pub mod auth;
pub mod blobs;
pub mod changes;
pub mod cli;
pub mod clock;
pub mod cohorts;
pub mod config;
pub mod crypto;
pub mod db;
pub mod demo;
pub mod error;
pub mod evidence;
pub mod forms;
pub mod home;
pub mod identity;
pub mod ids;
pub mod iqa_actions;
pub mod kept;
pub mod keys;
pub mod metrics;
pub mod passwords;
pub mod quality;
pub mod reports;
pub mod standards;
pub mod state;
pub mod status;
pub mod url;
pub mod users;
pub mod web;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, header};
use axum::middleware;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveHeadersLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::auth::{csrf, session};
use crate::identity::Access;
use crate::web::{
    CONTENT_SECURITY_POLICY, REQUEST_ID, flash, panic_response, refuse_nul_in_uri,
    render_error_pages,
};

pub use state::AppState;
use web::routes::Routes;

/// Every route of the portal, with its handler.
pub fn routes() -> Routes<AppState> {
    Routes::new()
        .get("/healthz", Access::Public, web::health::healthz)
        .get("/readyz", Access::Public, web::health::readyz)
        .get("/static/{name}", Access::Public, web::assets::show)
        .merge(home::routes())
        .merge(standards::routes())
        .merge(auth::routes())
        .merge(users::routes())
        .merge(cohorts::routes())
        .merge(evidence::routes())
        .merge(assessments::routes())
        .merge(quality::routes())
        .merge(audit::routes())
        .merge(keys::routes())
        .merge(reports::routes())
}

/// The whole portal as one router: every domain's routes inside the shared layers.
pub fn app(state: AppState) -> Router {
    let router = routes()
        .into_router()
        .layer(axum::Extension(standards::cache::Standards::default()))
        .layer(axum::Extension(evidence::portfolio::KeptPortfolios::new(
            evidence::portfolio::PORTFOLIOS_KEPT,
        )))
        .layer(axum::Extension(reports::KeptReports::new(
            reports::REPORTS_KEPT,
        )))
        .layer(axum::Extension(assessments::caseload::KeptCaseloads::new(
            assessments::caseload::CASELOADS_KEPT,
        )))
        .fallback(web::not_found)
        .method_not_allowed_fallback(web::method_not_allowed);
    with_layers(router, state)
}

/// Wraps the application's routes in the layers every request passes through, outermost first:
/// request id, tracing span, request metrics, security headers, HSTS and Secure cookies under https, panic → 500 page, session, flash, error pages,
/// request deadline, NUL refusal, same-origin check for changes. Each route adds its own access rule inside
/// these (`web::routes`).
fn with_layers(router: Router<AppState>, state: AppState) -> Router {
    let security_headers = ServiceBuilder::new()
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ));

    router
        .layer(
            ServiceBuilder::new()
                .layer(SetSensitiveHeadersLayer::new([
                    header::AUTHORIZATION,
                    header::COOKIE,
                    header::SET_COOKIE,
                ]))
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(TraceLayer::new_for_http().make_span_with(request_span))
                .layer(middleware::from_fn(web::metrics::count_requests))
                .layer(security_headers)
                .layer(middleware::from_fn_with_state(
                    state.clone(),
                    web::https_only,
                ))
                .layer(CatchPanicLayer::custom(panic_response))
                .layer(middleware::from_fn_with_state(
                    session::Sessions::new(state.clone()),
                    session::load,
                ))
                .layer(middleware::from_fn(flash::middleware))
                .layer(middleware::from_fn(render_error_pages))
                .layer(middleware::from_fn_with_state(
                    state.clone(),
                    web::limit_request_time,
                ))
                .layer(middleware::from_fn(refuse_nul_in_uri))
                .layer(middleware::from_fn_with_state(
                    state.clone(),
                    csrf::require_same_origin,
                )),
        )
        .with_state(state)
}

/// The span every log line of a request is recorded in: method, matched route and request id.
/// The matched route, not the path, so tokens in links never reach the logs.
fn request_span(request: &Request) -> tracing::Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    let request_id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    tracing::info_span!(
        "request",
        http.method = %request.method(),
        http.route = route,
        request.id = request_id,
    )
}
