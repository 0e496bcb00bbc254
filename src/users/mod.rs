//! Accounts: who people are, their roles, and how admins manage them.

mod account;
mod admin;
pub mod db;
pub mod model;
mod views;

use crate::web::routes::Routes;

pub fn routes() -> Routes {
    Routes::new()
        .get("/account", account::show)
        .post("/account/password", account::change_password)
        .get("/admin/users", admin::index)
        .post("/admin/users", admin::create)
        .get("/admin/users/new", admin::new)
        .get("/admin/users/{id}", admin::show)
        .post("/admin/users/{id}", admin::update)
        .post("/admin/users/{id}/deactivate", admin::deactivate)
        .post("/admin/users/{id}/reactivate", admin::reactivate)
        .post("/admin/users/{id}/access-link", admin::issue_access_link)
}
