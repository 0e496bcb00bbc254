//! The candidate's evidence: drafts with files and criteria claims, submission with the
//! declaration, versions, downloads, and the portfolio that brings them together.

pub mod actions;
pub mod comments;
pub mod db;
mod handlers;
pub mod judgements;
pub mod model;
pub mod portfolio;
mod records;
mod samples;
mod upload;
pub mod views;
pub mod witness;

use crate::identity::Access;
use crate::identity::{ADMIN, ASSESSOR, CANDIDATE, IQA, ON_ENROLMENTS, Role};
use crate::state::AppState;
use crate::web::routes::Routes;

/// Who may write in an evidence conversation: the people an enrolment has (the enrolment
/// then decides).
const IN_CONVERSATION: Access = Access::AnyOf(&[Role::Candidate, Role::Assessor, Role::Iqa]);

/// Who writes drafts: candidates their evidence, assessors their records (the draft then
/// decides).
const WRITERS: Access = Access::AnyOf(&[Role::Candidate, Role::Assessor]);

pub fn routes() -> Routes<AppState> {
    Routes::new()
        .get("/enrolments/{id}", ON_ENROLMENTS, portfolio::show)
        .post("/enrolments/{id}/withdraw", ADMIN, portfolio::withdraw)
        .get("/enrolments/{id}/evidence/new", CANDIDATE, handlers::new)
        .post_upload("/enrolments/{id}/evidence/new", CANDIDATE, handlers::create)
        .get(
            "/enrolments/{id}/records/new",
            ASSESSOR,
            handlers::new_record,
        )
        .post_upload(
            "/enrolments/{id}/records/new",
            ASSESSOR,
            handlers::create_record,
        )
        .get("/evidence/{id}", ON_ENROLMENTS, handlers::show)
        .get("/evidence/{id}/edit", WRITERS, handlers::edit)
        .post_upload("/evidence/{id}/edit", WRITERS, handlers::update)
        .post("/evidence/{id}/delete", WRITERS, handlers::delete)
        .post("/evidence/{id}/confirm", CANDIDATE, records::confirm)
        .post("/evidence/{id}/revise", CANDIDATE, handlers::revise)
        .post("/evidence/{id}/comments", IN_CONVERSATION, comments::post)
        .post("/evidence/{id}/samples", IQA, samples::post)
        .post("/evidence/{id}/witness", CANDIDATE, witness::request)
        .post(
            "/evidence/{id}/witness/{request}/link",
            ASSESSOR,
            witness::link,
        )
        .get("/witness/{token}", Access::Public, witness::show)
        .post("/witness/{token}", Access::Public, witness::answer)
        .get(
            "/evidence/{id}/files/{file_id}",
            ON_ENROLMENTS,
            handlers::download,
        )
        .post(
            "/evidence/{id}/files/{file_id}/delete",
            WRITERS,
            handlers::remove_file,
        )
}
