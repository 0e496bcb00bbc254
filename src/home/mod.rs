//! The home page of a signed-in person: what each of their roles can do from here.

use askama::Template;
use askama_web::WebTemplate;

use crate::auth::session::CurrentUser;
use crate::users::model::Role;
use crate::web::layout::{Layout, Section};
use crate::web::routes::Routes;

pub fn routes() -> Routes {
    Routes::new().get("/", show)
}

/// A role's corner of the home page.
pub struct RolePanel {
    pub heading: &'static str,
    pub text: &'static str,
    pub links: Vec<(&'static str, &'static str)>,
}

#[derive(Template, WebTemplate)]
#[template(path = "home/show.html")]
pub struct HomePage {
    pub layout: Layout,
    pub name: String,
    pub panels: Vec<RolePanel>,
}

/// `GET /`.
pub async fn show(user: CurrentUser, layout: Layout) -> HomePage {
    let panels = Role::ALL
        .into_iter()
        .filter(|role| user.has_role(*role))
        .map(|role| match role {
            Role::Candidate => RolePanel {
                heading: "Your portfolio",
                text: "Your enrolments and the evidence you submit will appear here.",
                links: vec![("/standards", "Read the standards")],
            },
            Role::Assessor => RolePanel {
                heading: "Assessing",
                text: "Candidates' evidence waiting for your judgement will appear here.",
                links: vec![("/standards", "Read the standards")],
            },
            Role::Iqa => RolePanel {
                heading: "Quality assurance",
                text: "Sign-offs sampled for your review will appear here.",
                links: vec![("/standards", "Read the standards")],
            },
            Role::Admin => RolePanel {
                heading: "Administration",
                text: "Invite people, give them roles, and manage their access.",
                links: vec![
                    ("/admin/users", "Manage users"),
                    ("/admin/users/new", "Invite a user"),
                ],
            },
        })
        .collect();
    HomePage {
        layout: layout.section(Section::Home),
        name: user.name,
        panels,
    }
}
