//! The candidate's evidence: drafts with files and criteria claims, submission with the
//! declaration, versions, downloads, and the portfolio that brings them together.

pub mod db;
mod handlers;
pub mod model;
pub mod portfolio;
mod upload;
pub mod views;

use crate::web::routes::Routes;

pub fn routes() -> Routes {
    Routes::new()
        .get("/enrolments/{id}", portfolio::show)
        .get("/enrolments/{id}/evidence/new", handlers::new)
        .post_upload("/enrolments/{id}/evidence/new", handlers::create)
        .get("/evidence/{id}", handlers::show)
        .get("/evidence/{id}/edit", handlers::edit)
        .post_upload("/evidence/{id}/edit", handlers::update)
        .post("/evidence/{id}/delete", handlers::delete)
        .post("/evidence/{id}/revise", handlers::revise)
        .get("/evidence/{id}/files/{file_id}", handlers::download)
        .post(
            "/evidence/{id}/files/{file_id}/delete",
            handlers::remove_file,
        )
}
