//! A router whose every route is declared with who may use it. The access rule is attached to
//! the route itself, so the router and the policy cannot drift apart, and the router remembers
//! what it holds so the policy test can walk every route.

use axum::Router;
use axum::handler::Handler;
use axum::http::Method;
use axum::middleware;
use axum::routing::{MethodRouter, get, post};

use crate::auth::policy::{self, Access};
use crate::state::AppState;

/// One registered route and who may use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRule {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
}

#[derive(Default)]
pub struct Routes {
    router: Router<AppState>,
    registered: Vec<RouteRule>,
}

impl Routes {
    pub fn new() -> Self {
        Self::default()
    }

    #[must_use]
    pub fn get<H, T>(self, path: &'static str, access: Access, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.route(Method::GET, path, access, get(handler))
    }

    #[must_use]
    pub fn post<H, T>(self, path: &'static str, access: Access, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.route(Method::POST, path, access, post(handler))
    }

    /// A POST that takes file uploads: no whole-body limit, because the handler streams the
    /// files into storage and enforces the per-file and per-evidence limits itself.
    #[must_use]
    pub fn post_upload<H, T>(self, path: &'static str, access: Access, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.route(
            Method::POST,
            path,
            access,
            post(handler).layer(axum::extract::DefaultBodyLimit::disable()),
        )
    }

    fn route(
        mut self,
        method: Method,
        path: &'static str,
        access: Access,
        handler: MethodRouter<AppState>,
    ) -> Self {
        let guarded = handler.route_layer(middleware::from_fn(move |request, next| {
            policy::enforce(access, request, next)
        }));
        self.router = self.router.route(path, guarded);
        self.registered.push(RouteRule {
            method,
            path,
            access,
        });
        self
    }

    #[must_use]
    pub fn merge(mut self, other: Routes) -> Self {
        self.router = self.router.merge(other.router);
        self.registered.extend(other.registered);
        self
    }

    pub fn registered(&self) -> &[RouteRule] {
        &self.registered
    }

    pub fn into_router(self) -> Router<AppState> {
        self.router
    }
}
