//! Cohorts and enrolments: admins group candidates on a standard and give each enrolment an
//! assessor and an IQA.

mod admin;
pub mod db;
pub mod model;
mod views;

use crate::web::routes::Routes;

pub fn routes() -> Routes {
    Routes::new()
        .get("/admin/cohorts", admin::index)
        .post("/admin/cohorts", admin::create)
        .get("/admin/cohorts/{id}", admin::show)
        .post("/admin/cohorts/{id}/enrolments", admin::enrol)
        .post("/admin/cohorts/{id}/roster", admin::import_roster)
        .post("/admin/cohorts/{id}/assignments", admin::assign)
        .post("/enrolments/{id}/withdraw", admin::withdraw)
}
