//! Managing people: one's own account page, and the admins' pages that invite, change,
//! deactivate and re-admit users. The account records themselves are in `accounts`.

mod account;
mod admin;
mod views;

pub use admin::{Invitation, ProfileChange, change_profile, invite, invite_many};

use crate::identity::{ADMIN, Access};
use crate::state::AppState;
use crate::web::routes::Routes;

pub fn routes() -> Routes<AppState> {
    Routes::new()
        .get("/account", Access::SignedIn, account::show)
        .post(
            "/account/password",
            Access::SignedIn,
            account::change_password,
        )
        .get(
            "/account/second-factor",
            Access::SignedIn,
            account::second_factor_form,
        )
        .post(
            "/account/second-factor",
            Access::SignedIn,
            account::set_up_second_factor,
        )
        .post(
            "/account/second-factor/recovery-codes",
            Access::SignedIn,
            account::renew_recovery_codes,
        )
        .get("/admin/users", ADMIN, admin::index)
        .post("/admin/users", ADMIN, admin::create)
        .get("/admin/users/new", ADMIN, admin::new)
        .get("/admin/users/{id}", ADMIN, admin::show)
        .post("/admin/users/{id}", ADMIN, admin::update)
        .post("/admin/users/{id}/deactivate", ADMIN, admin::deactivate)
        .post("/admin/users/{id}/reactivate", ADMIN, admin::reactivate)
        .post(
            "/admin/users/{id}/access-link",
            ADMIN,
            admin::issue_access_link,
        )
        .post(
            "/admin/users/{id}/second-factor/reset",
            ADMIN,
            admin::reset_second_factor,
        )
}
