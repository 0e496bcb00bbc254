//! What every page carries: the navigation for the signed-in user's roles, the flash message
//! of the last action, and the form token.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::Extensions;
use axum::http::request::Parts;

use super::flash::Flash;
use crate::identity::Role;
use crate::identity::{CsrfToken, CurrentUser, SessionUnknown};

/// One link of the main navigation.
#[derive(Debug, Clone)]
pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    /// Marks the section the page belongs to (`aria-current`).
    pub current: bool,
}

/// The sections of the portal, used to mark where a page belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    None,
    Home,
    Standards,
    Users,
    Cohorts,
    Caseload,
    Quality,
    Audit,
    Account,
}

/// The frame around every page. Handlers take it as an extractor and name their section.
#[derive(Debug, Clone)]
pub struct Layout {
    pub user: Option<CurrentUser>,
    /// The request's session could not be looked up (the database is out of reach): the
    /// person may well be signed in, so the page offers no "Sign in".
    pub session_unknown: bool,
    pub nav: Vec<NavItem>,
    pub flash: Option<Flash>,
    pub csrf_token: String,
    /// A fresh one-time key for the forms of this page (see `auth::submissions`).
    pub submission_key: uuid::Uuid,
}

impl Layout {
    /// The layout for the request whose extensions these are.
    pub fn from_extensions(extensions: &Extensions) -> Self {
        let user = extensions.get::<CurrentUser>().cloned();
        let mut layout = Self {
            nav: Vec::new(),
            flash: extensions.get::<Flash>().cloned(),
            csrf_token: extensions
                .get::<CsrfToken>()
                .map(|t| t.0.clone())
                .unwrap_or_default(),
            user,
            session_unknown: extensions.get::<SessionUnknown>().is_some(),
            submission_key: uuid::Uuid::new_v4(),
        };
        layout.nav = layout.nav_items(Section::None);
        layout
    }

    /// Marks `section` as the current one in the navigation.
    #[must_use]
    pub fn section(mut self, section: Section) -> Self {
        self.nav = self.nav_items(section);
        self
    }

    fn nav_items(&self, current: Section) -> Vec<NavItem> {
        let mut items = Vec::new();
        if self.user.is_some() {
            items.push((Section::Home, "/", "Home"));
        }
        if self
            .user
            .as_ref()
            .is_some_and(|u| u.has_role(Role::Assessor))
        {
            items.push((Section::Caseload, "/caseload", "Caseload"));
        }
        if self.user.as_ref().is_some_and(|u| u.has_role(Role::Iqa)) {
            items.push((Section::Quality, "/quality", "Quality"));
        }
        items.push((Section::Standards, "/standards", "Standards"));
        if self.user.as_ref().is_some_and(|u| u.has_role(Role::Admin)) {
            items.push((Section::Cohorts, "/admin/cohorts", "Cohorts"));
            items.push((Section::Users, "/admin/users", "Users"));
            items.push((Section::Audit, "/admin/audit", "Audit"));
        }
        items
            .into_iter()
            .map(|(section, href, label)| NavItem {
                href,
                label,
                current: section == current,
            })
            .collect()
    }

    /// The signed-in person's name, or nothing.
    pub fn user_name(&self) -> &str {
        self.user.as_ref().map_or("", |u| u.name.as_str())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Layout {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::from_extensions(&parts.extensions))
    }
}
