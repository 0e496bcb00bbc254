//! A router whose every route is declared with who may use it. The access rule is attached to
//! the route itself, so the router and the policy cannot drift apart, and the router remembers
//! what it holds so the policy test can walk every route.

use axum::Router;
use axum::handler::Handler;
use axum::http::Method;
use axum::middleware;
use axum::routing::{MethodRouter, get, post};

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::AppError;
use crate::identity::{Access, CurrentUser, Decision, SessionUnknown, decide};

/// One registered route and who may use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRule {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
}

/// The routes of a domain (or of the whole portal), over the state `S` their handlers take.
pub struct Routes<S> {
    router: Router<S>,
    registered: Vec<RouteRule>,
}

impl<S: Clone + Send + Sync + 'static> Default for Routes<S> {
    fn default() -> Self {
        Self {
            router: Router::new(),
            registered: Vec::new(),
        }
    }
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    pub fn new() -> Self {
        Self::default()
    }

    #[must_use]
    pub fn get<H, T>(self, path: &'static str, access: Access, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.route(Method::GET, path, access, get(handler))
    }

    #[must_use]
    pub fn post<H, T>(self, path: &'static str, access: Access, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.route(Method::POST, path, access, post(handler))
    }

    /// A POST that takes file uploads: no whole-body limit, because the handler streams the
    /// files into storage and enforces the per-file and per-evidence limits itself.
    #[must_use]
    pub fn post_upload<H, T>(self, path: &'static str, access: Access, handler: H) -> Self
    where
        H: Handler<T, S>,
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
        handler: MethodRouter<S>,
    ) -> Self {
        let guarded = handler.route_layer(middleware::from_fn(move |request, next| {
            enforce(access, request, next)
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
    pub fn merge(mut self, other: Routes<S>) -> Self {
        self.router = self.router.merge(other.router);
        self.registered.extend(other.registered);
        self
    }

    pub fn registered(&self) -> &[RouteRule] {
        &self.registered
    }

    pub fn into_router(self) -> Router<S> {
        self.router
    }
}

/// Middleware around one route: lets the request through when `access` allows its user,
/// sends visitors to sign in (or answers 503 while their session cannot be looked up), and
/// refuses everyone else. `HEAD` passes through a `GET`
/// route's middleware, so it is judged as `GET`.
pub async fn enforce(access: Access, request: Request, next: Next) -> Response {
    match decide(access, request.extensions().get::<CurrentUser>()) {
        Decision::Allow => next.run(request).await,
        Decision::SignIn => {
            let next_path = if request.method() == Method::GET || request.method() == Method::HEAD {
                request
                    .uri()
                    .path_and_query()
                    .map_or("/", |p| p.as_str())
                    .to_owned()
            } else {
                "/".to_owned()
            };
            SessionUnknown::or_sign_in(request.extensions(), next_path).into_response()
        }
        Decision::Deny => AppError::Forbidden.into_response(),
    }
}
