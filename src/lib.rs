//! Attest: a competency assessment portal. Candidates submit evidence against the criteria of
//! an occupational standard, assessors judge it and sign candidates off, internal quality
//! assurers sample those decisions, and admins run cohorts and reports.

pub mod assessments;
pub mod audit;
pub mod auth;
pub mod blobs;
pub mod cli;
pub mod clock;
pub mod cohorts;
pub mod config;
pub mod crypto;
pub mod db;
pub mod demo;
pub mod error;
pub mod evidence;
pub mod home;
pub mod quality;
pub mod reports;
pub mod standards;
pub mod state;
pub mod url;
pub mod users;
pub mod web;

use crate::auth::policy::Access;
use axum::Router;

pub use state::AppState;
use web::routes::Routes;

/// Every route of the portal, with its handler.
pub fn routes() -> Routes {
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
        .merge(reports::routes())
}

/// The whole portal as one router: every domain's routes inside the shared layers.
pub fn app(state: AppState) -> Router {
    let router = routes()
        .into_router()
        .fallback(web::not_found)
        .method_not_allowed_fallback(web::method_not_allowed);
    web::with_layers(router, state)
}
