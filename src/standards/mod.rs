//! Competency standards: parsing the published text, storing each version with its criteria,
//! and the public pages that show them.

pub mod cache;
pub mod case;
pub mod db;
mod handlers;
pub mod import;
pub mod model;
pub mod parser;
mod views;

use crate::identity::Access;
use crate::state::AppState;
use crate::web::routes::Routes;

pub fn routes() -> Routes<AppState> {
    Routes::new()
        .get("/standards", Access::Public, handlers::index)
        .get("/standards/{urn}", Access::Public, handlers::show)
        .get(
            "/standards/{urn}/case.json",
            Access::Public,
            handlers::case_package,
        )
}
