//! Page structs of the accounts domain.

use askama::Template;
use askama_web::WebTemplate;

use crate::accounts::db::User;
use crate::forms::FormErrors;
use crate::identity::CurrentUser;
use crate::identity::Role;
use crate::web::layout::Layout;

/// A role checkbox.
#[derive(Debug, Clone)]
pub struct RoleChoice {
    pub value: &'static str,
    pub label: &'static str,
    pub checked: bool,
}

impl RoleChoice {
    pub fn all(selected: &[Role]) -> Vec<Self> {
        Role::ALL
            .into_iter()
            .map(|role| Self {
                value: role.as_str(),
                label: role.label(),
                checked: selected.contains(&role),
            })
            .collect()
    }
}

/// The roles in words, for lists.
pub fn role_labels(roles: &[Role]) -> String {
    if roles.is_empty() {
        return "No roles".to_owned();
    }
    roles
        .iter()
        .map(|r| r.label())
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Template, WebTemplate)]
#[template(path = "users/index.html")]
pub struct UsersIndexPage {
    pub layout: Layout,
    pub users: Vec<User>,
    pub q: String,
    /// More accounts matched than one page shows.
    pub truncated: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "users/new.html")]
pub struct UserNewPage {
    pub layout: Layout,
    pub name: String,
    pub email: String,
    pub roles: Vec<RoleChoice>,
    pub errors: FormErrors,
}

/// A link shown once, right after it was made.
#[derive(Debug, Clone)]
pub struct ShownLink {
    pub url: String,
    pub lifetime: &'static str,
    pub is_invitation: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "users/show.html")]
pub struct UserShowPage {
    pub layout: Layout,
    pub user: User,
    /// The name field's value (what was typed, after a refused change).
    pub name: String,
    pub roles: Vec<RoleChoice>,
    pub is_self: bool,
    pub errors: FormErrors,
    pub link: Option<ShownLink>,
}

#[derive(Template, WebTemplate)]
#[template(path = "users/account.html")]
pub struct AccountPage {
    pub layout: Layout,
    pub name: String,
    pub email: String,
    pub roles: String,
    pub errors: FormErrors,
    /// The second step of sign-in, when the portal offers one.
    pub second_factor: Option<SecondFactorStatus>,
    pub code_errors: FormErrors,
}

/// Whether someone signs in with a second step, and how many recovery codes they have left.
pub struct SecondFactorStatus {
    pub on: bool,
    pub recovery_codes_left: i64,
    /// Their role requires it (it cannot be left off).
    pub required: bool,
}

impl AccountPage {
    pub fn new(layout: Layout, user: &CurrentUser) -> Self {
        Self {
            layout,
            name: user.name.clone(),
            email: user.email.clone(),
            roles: role_labels(&user.roles),
            errors: FormErrors::default(),
            second_factor: None,
            code_errors: FormErrors::default(),
        }
    }
}
