//! HTTP plumbing shared by every domain: the layers around the router, the page layout,
//! flash messages, static assets and the health probes. No domain logic lives here.

pub mod assets;
pub mod choice;
pub mod client_ip;
pub mod download;
pub mod filters;
pub mod flash;
pub mod health;
pub mod layout;
pub mod metrics;
pub mod paging;
pub mod routes;
pub mod server;

use std::any::Any;

use askama::Template;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

use crate::error::{AppError, ErrorPageSpec};
use layout::Layout;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Pages may load only our own assets, run no inline script, and never be framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'; object-src 'none'";

/// Ends a request not answered within `Settings::request_timeout` with 503: dropping the
/// handler rolls its transaction back, unless it was already committing. Multipart uploads are left to
/// their idle limit, as a large file on a slow line may rightly take long; a response body
/// (a download) is not timed, only the handler that makes it.
pub async fn limit_request_time(
    axum::extract::State(state): axum::extract::State<crate::state::AppState>,
    request: Request,
    next: Next,
) -> Response {
    let limit = state.settings.request_timeout;
    let upload = request.method() == axum::http::Method::POST
        && request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    if limit.is_zero() || upload {
        return next.run(request).await;
    }
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(
                limit_ms = limit.as_millis(),
                "a request ran past its deadline and was ended"
            );
            AppError::TookTooLong.into_response()
        }
    }
}

/// HSTS for a year, sent only when the portal is served over https.
pub const STRICT_TRANSPORT_SECURITY: &str = "max-age=31536000; includeSubDomains";

/// Middleware for a portal served over https: tells browsers to use nothing else (HSTS), and
/// marks every cookie `Secure`, so none (the flash message's included) ever crosses plain http.
pub async fn https_only(
    axum::extract::State(state): axum::extract::State<crate::state::AppState>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    if !state.settings.is_https() {
        return response;
    }
    let headers = response.headers_mut();
    headers.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static(STRICT_TRANSPORT_SECURITY),
    );
    let cookies: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .cloned()
        .collect();
    if cookies.iter().any(|c| !is_secure_cookie(c)) {
        headers.remove(header::SET_COOKIE);
        for cookie in cookies {
            let secured = if is_secure_cookie(&cookie) {
                Some(cookie)
            } else {
                let mut text = cookie.as_bytes().to_vec();
                text.extend_from_slice(b"; Secure");
                HeaderValue::from_bytes(&text).ok()
            };
            headers.extend(secured.map(|c| (header::SET_COOKIE, c)));
        }
    }
    response
}

/// Whether a `Set-Cookie` value carries the `Secure` attribute.
fn is_secure_cookie(value: &HeaderValue) -> bool {
    value
        .as_bytes()
        .split(|b| *b == b';')
        .skip(1)
        .any(|attribute| attribute.trim_ascii().eq_ignore_ascii_case(b"secure"))
}

/// A NUL byte (`%00`) in the path or query is never meaningful here, and PostgreSQL refuses
/// it in text: answered 400 at the door rather than as a database error in some handler.
pub async fn refuse_nul_in_uri(
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
pub async fn render_error_pages(request: Request, next: Next) -> Response {
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
pub fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
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
