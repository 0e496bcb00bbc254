//! Page structs of sign-in, setup and password links.

use askama::Template;
use askama_web::WebTemplate;

use super::links::Purpose;
use crate::forms::FormErrors;
use crate::web::layout::Layout;

#[derive(Template, WebTemplate)]
#[template(path = "auth/login.html")]
pub struct LoginPage {
    pub layout: Layout,
    pub email: String,
    pub next: String,
    pub errors: FormErrors,
    /// Why sign-in is paused, when it is.
    pub notice: Option<String>,
}

impl LoginPage {
    pub fn new(layout: Layout, email: String, next: String) -> Self {
        Self {
            layout,
            email,
            next,
            errors: FormErrors::default(),
            notice: None,
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "auth/setup.html")]
pub struct SetupPage {
    pub layout: Layout,
    pub name: String,
    pub email: String,
    pub errors: FormErrors,
}

impl SetupPage {
    pub fn new(layout: Layout) -> Self {
        Self {
            layout,
            name: String::new(),
            email: String::new(),
            errors: FormErrors::default(),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "auth/set_password.html")]
pub struct SetPasswordPage {
    pub layout: Layout,
    pub heading: &'static str,
    pub intro: &'static str,
    pub name: String,
    pub email: String,
    pub errors: FormErrors,
}

impl SetPasswordPage {
    pub fn new(layout: Layout, purpose: Purpose, name: String, email: String) -> Self {
        let (heading, intro) = match purpose {
            Purpose::Invitation => (
                "Accept your invitation",
                "You have been invited to Attest. Choose a password to finish setting up your account.",
            ),
            _ => (
                "Choose a new password",
                "Choose a new password for your account. Other sessions will be signed out.",
            ),
        };
        Self {
            layout,
            heading,
            intro,
            name,
            email,
            errors: FormErrors::default(),
        }
    }
}

/// The answer for a link that has expired, was used already, or never existed.
#[derive(Template, WebTemplate)]
#[template(path = "auth/link_unusable.html")]
pub struct LinkUnusablePage {
    pub layout: Layout,
    pub message: &'static str,
}

impl LinkUnusablePage {
    pub fn setup(layout: Layout) -> Self {
        Self {
            layout,
            message: "This setup link has expired or has already been used. Restart attest serve to get a new one \
                      while no admin exists, or sign in.",
        }
    }

    pub fn password(layout: Layout) -> Self {
        Self {
            layout,
            message: "This link has expired or has already been used. Ask an administrator for a new one.",
        }
    }
}
