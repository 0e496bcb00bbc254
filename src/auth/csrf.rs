//! Cross-site request forgery defence, in two layers.
//!
//! 1. Every request that can change data (anything but GET, HEAD, OPTIONS) must come from our
//!    own pages: `Sec-Fetch-Site` must say `same-origin` (or `none`, typed by the user), and an
//!    `Origin` header must name this portal. A browser sends at least one of them.
//! 2. Every form carries a token: the session's for signed-in users, else the one in the
//!    visitor's `attest_csrf` cookie. [`CsrfForm`] checks it before the handler sees the form.

use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::crypto::constant_time_eq;
use crate::error::AppError;
use crate::identity::CsrfToken;
use crate::state::AppState;

/// The name of the hidden field every form carries.
pub const FIELD: &str = "csrf_token";

/// Middleware: refuses a state-changing request that another site's page sent.
pub async fn require_same_origin(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) || is_same_origin(request.headers(), &state.settings.base_url)
    {
        next.run(request).await
    } else {
        tracing::warn!(method = %request.method(), "refused a cross-site request");
        AppError::CrossSite.into_response()
    }
}

fn is_same_origin(headers: &HeaderMap, base_url: &str) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return matches!(site.to_str(), Ok("same-origin" | "none"));
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        // Neither header: not a browser of this decade (a script or a test client). The form
        // token still has to match.
        return true;
    };
    let origin_authority = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    origin == base_url.trim_end_matches('/')
        || headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|host| host == origin_authority)
}

/// The token this request's forms must carry.
fn expected_token(request: &Request) -> Result<String, AppError> {
    request
        .extensions()
        .get::<CsrfToken>()
        .map(|t| t.0.clone())
        .ok_or(AppError::FormExpired)
}

/// A urlencoded form whose `csrf_token` field matched this request's token.
pub struct CsrfForm<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let expected = expected_token(&request)?;
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|_| AppError::BadRequest("The form could not be read.".into()))?;
        let sent = form_urlencoded::parse(&bytes)
            .find(|(key, _)| key == FIELD)
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default();
        if !constant_time_eq(sent.as_bytes(), expected.as_bytes()) {
            return Err(AppError::FormExpired);
        }
        if form_urlencoded::parse(&bytes)
            .any(|(key, value)| key.contains('\0') || value.contains('\0'))
        {
            return Err(AppError::BadRequest(
                "The form was not sent as text.".into(),
            ));
        }
        serde_html_form::from_bytes(&bytes)
            .map(CsrfForm)
            .map_err(|_| AppError::BadRequest("The form could not be read.".into()))
    }
}

/// A multipart form (with files) whose first field, `csrf_token`, matched this request's token.
/// The token is checked before any file is read, so a forged upload stores nothing.
pub struct CsrfMultipart(pub axum::extract::Multipart);

impl FromRequest<AppState> for CsrfMultipart {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let expected = expected_token(&request)?;
        let request = request.map(|body| idle_limited(body, state.settings.upload_idle));
        let mut multipart = axum::extract::Multipart::from_request(request, state)
            .await
            .map_err(|_| AppError::BadRequest("The form could not be read.".into()))?;
        let first = multipart
            .next_field()
            .await
            .map_err(|_| AppError::FormExpired)?;
        let Some(field) = first.filter(|f| f.name() == Some(FIELD)) else {
            return Err(AppError::FormExpired);
        };
        let sent = read_token(field).await?;
        if !constant_time_eq(&sent, expected.as_bytes()) {
            return Err(AppError::FormExpired);
        }
        Ok(Self(multipart))
    }
}

/// `body`, ended with an error when nothing arrives for `idle`: the upload reading it then
/// fails, and its transaction and connection are let go, however long the client stays silent.
fn idle_limited(body: axum::body::Body, idle: std::time::Duration) -> axum::body::Body {
    use futures_util::StreamExt;
    let stream =
        futures_util::stream::unfold(Some(body.into_data_stream()), move |state| async move {
            let mut stream = state?;
            match tokio::time::timeout(idle, stream.next()).await {
                Ok(Some(chunk)) => Some((chunk, Some(stream))),
                Ok(None) => None,
                Err(_) => {
                    let stalled = std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the upload sent nothing for too long",
                    );
                    Some((Err(axum::Error::new(stalled)), None))
                }
            }
        });
    axum::body::Body::from_stream(stream)
}

/// The longest form token read: a real one is 64 characters. Anything longer is refused as
/// it arrives, so a huge "token" is never held in memory.
const MAX_TOKEN_BYTES: usize = 128;

async fn read_token(mut field: axum::extract::multipart::Field<'_>) -> Result<Vec<u8>, AppError> {
    let mut sent = Vec::with_capacity(64);
    while let Some(chunk) = field.chunk().await.map_err(|_| AppError::FormExpired)? {
        if sent.len() + chunk.len() > MAX_TOKEN_BYTES {
            return Err(AppError::FormExpired);
        }
        sent.extend_from_slice(&chunk);
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    const BASE: &str = "https://attest.example.org";

    #[test]
    fn fetch_metadata_decides_when_present() {
        assert!(is_same_origin(
            &headers(&[("sec-fetch-site", "same-origin")]),
            BASE
        ));
        assert!(is_same_origin(
            &headers(&[("sec-fetch-site", "none")]),
            BASE
        ));
        assert!(!is_same_origin(
            &headers(&[("sec-fetch-site", "cross-site")]),
            BASE
        ));
        assert!(!is_same_origin(
            &headers(&[("sec-fetch-site", "same-site")]),
            BASE
        ));
        // A same-origin Origin does not rescue a cross-site fetch.
        assert!(!is_same_origin(
            &headers(&[
                ("sec-fetch-site", "cross-site"),
                ("origin", "https://attest.example.org")
            ]),
            BASE
        ));
    }

    #[test]
    fn origin_must_be_the_portal_or_the_host_asked_for() {
        assert!(is_same_origin(
            &headers(&[("origin", "https://attest.example.org")]),
            BASE
        ));
        assert!(is_same_origin(
            &headers(&[
                ("origin", "http://127.0.0.1:3000"),
                ("host", "127.0.0.1:3000")
            ]),
            BASE
        ));
        assert!(!is_same_origin(
            &headers(&[("origin", "https://evil.example")]),
            BASE
        ));
        assert!(!is_same_origin(
            &headers(&[("origin", "null"), ("host", "attest.example.org")]),
            BASE
        ));
        assert!(!is_same_origin(
            &headers(&[
                ("origin", "https://evil.example"),
                ("host", "attest.example.org")
            ]),
            BASE
        ));
    }
}
