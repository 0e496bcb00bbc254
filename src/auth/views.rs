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
    /// Why sign-in must wait, when it must.
    pub notice: Option<String>,
    /// The account waits: a code from the authenticator, given with the password, gets in.
    pub offer_code: bool,
}

impl LoginPage {
    pub fn new(layout: Layout, email: String, next: String) -> Self {
        Self {
            layout,
            email,
            next,
            errors: FormErrors::default(),
            notice: None,
            offer_code: false,
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

/// The second step of sign-in: a code from the authenticator, or, with `setup`, the
/// authenticator to add to an app first.
#[derive(Template, WebTemplate)]
#[template(path = "auth/second_factor.html")]
pub struct SecondFactorPage {
    pub layout: Layout,
    /// Where the code is sent: the second step of sign-in, or the account page's setup.
    pub action: &'static str,
    pub setup: Option<AuthenticatorSetup>,
    pub errors: FormErrors,
    /// Why codes must wait, when they must.
    pub notice: Option<String>,
}

/// What a person needs to add an authenticator to their app.
pub struct AuthenticatorSetup {
    /// The QR code as SVG markup, made on the server.
    pub qr_svg: String,
    /// The secret to type in by hand, in groups of four.
    pub secret_text: String,
}

impl SecondFactorPage {
    pub fn new(layout: Layout, setup: Option<&super::second_factor::Authenticator>) -> Self {
        Self {
            layout,
            action: super::challenge::PATH,
            setup: setup.map(|a| AuthenticatorSetup {
                qr_svg: a.qr_svg(),
                secret_text: a.secret_text(),
            }),
            errors: FormErrors::default(),
            notice: None,
        }
    }
}

impl SecondFactorPage {
    /// Setting up an authenticator from one's account page.
    pub fn for_account(layout: Layout, setup: &super::second_factor::Authenticator) -> Self {
        Self {
            action: "/account/second-factor",
            ..Self::new(layout, Some(setup))
        }
    }

    pub fn at_sign_in(&self) -> bool {
        self.action == super::challenge::PATH
    }
}

/// The recovery codes, shown once after an authenticator is set up.
#[derive(Template, WebTemplate)]
#[template(path = "auth/recovery_codes.html")]
pub struct RecoveryCodesPage {
    pub layout: Layout,
    pub codes: Vec<String>,
    pub next: String,
}
