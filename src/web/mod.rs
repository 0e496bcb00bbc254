//! HTTP plumbing shared by every domain: the layers around the router, the page layout,
//! static assets and the health probes. No domain logic lives here.

pub mod assets;
pub mod health;
pub mod layout;

use std::any::Any;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveHeadersLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::error::{AppError, ErrorPage};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Pages may load only our own assets, run no inline script, and never be framed.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'; object-src 'none'";

/// Wraps the application's routes in the layers every request passes through, outermost first:
/// request id, tracing span, panic → 500 page, security headers.
pub fn with_layers(router: Router) -> Router {
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

    router.layer(
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
            .layer(CatchPanicLayer::custom(panic_response)),
    )
}

/// The span every log line of a request is recorded in: method, matched route and request id.
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
    ErrorPage::for_status(StatusCode::INTERNAL_SERVER_ERROR, None)
        .into_response_with(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The answer for any path no route matches.
pub async fn not_found() -> AppError {
    AppError::NotFound
}

/// Percent-encodes a value for a query string (RFC 3986 unreserved characters stay as they are).
pub fn encode_query_value(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// A redirect to the home page, the only thing `/` does until people can sign in.
pub async fn home() -> impl IntoResponse {
    axum::response::Redirect::to("/standards")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            encode_query_value("/enrolments/1?x=a b&c"),
            "/enrolments/1%3Fx%3Da%20b%26c"
        );
        assert_eq!(encode_query_value("é"), "%C3%A9");
    }
}
