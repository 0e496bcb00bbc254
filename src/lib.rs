//! Attest: a competency assessment portal. Candidates submit evidence against the criteria of
//! an occupational standard, assessors judge it and sign candidates off, internal quality
//! assurers sample those decisions, and admins run cohorts and reports.

pub mod audit;
pub mod cli;
pub mod config;
pub mod db;
pub mod error;
pub mod standards;
pub mod state;
pub mod web;

use axum::Router;
use axum::routing::get;

pub use state::AppState;

/// The whole portal as one router: every domain's routes inside the shared layers.
pub fn app(state: AppState) -> Router {
    let routes = Router::new()
        .route("/", get(web::home))
        .route("/healthz", get(web::health::healthz))
        .route("/readyz", get(web::health::readyz))
        .route("/static/{name}", get(web::assets::show))
        .merge(standards::router())
        .fallback(web::not_found)
        .with_state(state);
    web::with_layers(routes)
}
