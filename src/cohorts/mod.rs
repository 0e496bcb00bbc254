//! Cohorts and enrolments: admins group candidates on a standard and give each enrolment an
//! assessor and an IQA.

mod admin;
pub mod db;
pub mod model;
mod views;

pub use admin::{Assignment, assign_staff, create_cohort, enrol_candidates};

use crate::identity::ADMIN;
use crate::state::AppState;
use crate::web::routes::Routes;

pub fn routes() -> Routes<AppState> {
    Routes::new()
        .get("/admin/cohorts", ADMIN, admin::index)
        .post("/admin/cohorts", ADMIN, admin::create)
        .get("/admin/cohorts/{id}", ADMIN, admin::show)
        .post("/admin/cohorts/{id}/enrolments", ADMIN, admin::enrol)
        .post("/admin/cohorts/{id}/roster", ADMIN, admin::import_roster)
        .post("/admin/cohorts/{id}/assignments", ADMIN, admin::assign)
}
