//! Competency standards: parsing the published text, storing each version with its criteria,
//! and the public pages that show them.

pub mod db;
mod handlers;
pub mod import;
pub mod model;
pub mod parser;
mod views;

use axum::Router;
use axum::routing::get;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/standards", get(handlers::index))
        .route("/standards/{urn}", get(handlers::show))
}
