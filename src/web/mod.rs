//! HTTP plumbing shared by every domain: the layers around the router, the page layout,
//! flash messages, static assets and the health probes. No domain logic lives here.

pub mod assets;
pub mod client_ip;
pub mod download;
pub mod flash;
pub mod forms;
pub mod health;
pub mod layout;
pub mod paging;
pub mod routes;

use std::any::Any;

use askama::Template;
use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveHeadersLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::auth::{csrf, session};
use crate::error::{AppError, ErrorPageSpec};
use crate::state::AppState;
use layout::Layout;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Pages may load only our own assets, run no inline script, and never be framed.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'; object-src 'none'";

/// A NUL byte (`%00`) in the path or query is never meaningful here, and PostgreSQL refuses
/// it in text: answered 400 at the door rather than as a database error in some handler.
async fn refuse_nul_in_uri(
    request: axum::extract::Request,
    next: middleware::Next,
) -> Result<axum::response::Response, crate::error::AppError> {
    let uri = request.uri();
    let has_nul = |part: &str| {
        part.as_bytes()
            .windows(3)
            .any(|w| w.eq_ignore_ascii_case(b"%00"))
    };
    if has_nul(uri.path()) || uri.query().is_some_and(has_nul) {
        return Err(crate::error::AppError::BadRequest(
            "The address contains a NUL character.".into(),
        ));
    }
    Ok(next.run(request).await)
}

/// Wraps the application's routes in the layers every request passes through, outermost first:
/// request id, tracing span, security headers, panic → 500 page, session, flash, error pages,
/// NUL refusal, same-origin check for changes. Each route adds its own access rule inside
/// these (`web::routes`).
pub fn with_layers(router: Router<AppState>, state: AppState) -> Router {
    let security_headers = ServiceBuilder::new()
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ));

    router
        .layer(
            ServiceBuilder::new()
                .layer(SetSensitiveHeadersLayer::new([
                    header::AUTHORIZATION,
                    header::COOKIE,
                    header::SET_COOKIE,
                ]))
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(TraceLayer::new_for_http().make_span_with(request_span))
                .layer(security_headers)
                .layer(CatchPanicLayer::custom(panic_response))
                .layer(middleware::from_fn_with_state(state.clone(), session::load))
                .layer(middleware::from_fn(flash::middleware))
                .layer(middleware::from_fn(render_error_pages))
                .layer(middleware::from_fn(refuse_nul_in_uri))
                .layer(middleware::from_fn_with_state(
                    state.clone(),
                    csrf::require_same_origin,
                )),
        )
        .with_state(state)
}

/// The span every log line of a request is recorded in: method, matched route and request id.
/// The matched route, not the path, so tokens in links never reach the logs.
fn request_span(request: &Request) -> tracing::Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    let request_id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    tracing::info_span!(
        "request",
        http.method = %request.method(),
        http.route = route,
        request.id = request_id,
    )
}

/// The error page, inside the layout of whoever asked.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub layout: Layout,
    pub heading: &'static str,
    pub message: String,
}

impl ErrorPage {
    fn into_response_with(self, status: StatusCode) -> Response {
        match self.render() {
            Ok(html) => (
                status,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                html,
            )
                .into_response(),
            Err(error) => {
                tracing::error!(error = %error, "rendering the error page failed");
                (status, "Something went wrong.").into_response()
            }
        }
    }
}

/// Middleware: draws the page of an [`AppError`] response, with the requester's navigation.
async fn render_error_pages(request: Request, next: Next) -> Response {
    let layout = Layout::from_extensions(request.extensions());
    let response = next.run(request).await;
    let Some(spec) = response.extensions().get::<ErrorPageSpec>().cloned() else {
        return response;
    };
    let (mut parts, _) = response.into_parts();
    let page = ErrorPage {
        layout,
        heading: spec.heading,
        message: spec.message,
    }
    .into_response_with(parts.status);
    let (page_parts, body) = page.into_parts();
    parts.headers.insert(
        header::CONTENT_TYPE,
        page_parts
            .headers
            .get(header::CONTENT_TYPE)
            .cloned()
            .unwrap_or(HeaderValue::from_static("text/plain")),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, body)
}

#[expect(
    clippy::needless_pass_by_value,
    reason = "the signature CatchPanicLayer calls"
)]
fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    tracing::error!(panic = detail, "request handler panicked");
    let spec = ErrorPageSpec::for_status(StatusCode::INTERNAL_SERVER_ERROR, None);
    ErrorPage {
        layout: Layout::from_extensions(&axum::http::Extensions::new()),
        heading: spec.heading,
        message: spec.message,
    }
    .into_response_with(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The answer for any path no route matches.
pub async fn not_found() -> AppError {
    AppError::NotFound
}

/// The answer for a path some route matches, asked with a method none of them takes.
pub async fn method_not_allowed() -> AppError {
    AppError::MethodNotAllowed
}
