//! A router that remembers which routes it holds, so the access-policy test can walk every
//! registered route and no route can slip in without a policy line.

use axum::Router;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{get, post};

use crate::state::AppState;

#[derive(Default)]
pub struct Routes {
    router: Router<AppState>,
    registered: Vec<(Method, &'static str)>,
}

impl Routes {
    pub fn new() -> Self {
        Self::default()
    }

    #[must_use]
    pub fn get<H, T>(mut self, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.registered.push((Method::GET, path));
        self.router = self.router.route(path, get(handler));
        self
    }

    #[must_use]
    pub fn post<H, T>(mut self, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.registered.push((Method::POST, path));
        self.router = self.router.route(path, post(handler));
        self
    }

    /// A POST that takes file uploads: no whole-body limit, because the handler streams the
    /// files into storage and enforces the per-file and per-evidence limits itself.
    #[must_use]
    pub fn post_upload<H, T>(mut self, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.registered.push((Method::POST, path));
        self.router = self.router.route(
            path,
            post(handler).layer(axum::extract::DefaultBodyLimit::disable()),
        );
        self
    }

    #[must_use]
    pub fn merge(mut self, other: Routes) -> Self {
        self.router = self.router.merge(other.router);
        self.registered.extend(other.registered);
        self
    }

    pub fn registered(&self) -> &[(Method, &'static str)] {
        &self.registered
    }

    pub fn into_router(self) -> Router<AppState> {
        self.router
    }
}
