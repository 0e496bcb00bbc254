//! The one error type of request handlers, and how each error is answered.
//!
//! Which error to use where:
//! - a record that does not exist *or that the user may not see* → [`AppError::NotFound`]
//!   (one answer for both, so ids cannot be probed);
//! - no session → [`AppError::Unauthenticated`]; signed in but the wrong role → [`AppError::Forbidden`];
//! - a change that lost a race or repeats one already made → [`AppError::Conflict`] with a sentence
//!   the user can act on;
//! - database failures arrive through `?` as [`AppError::Database`]; an unreachable database
//!   becomes 503 with `Retry-After`, anything else 500; a signed-in request whose session could
//!   not be looked up is [`AppError::Unavailable`], the same 503, never the sign-in page;
//! - bad form input is *not* an error: handlers re-render the form with 422 and the messages.
//!
//! 5xx details are logged once, here, and never shown. The page itself is drawn by
//! the error-page middleware of `web`, which knows who is signed in.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

/// Seconds a client is asked to wait while the database is unreachable.
const RETRY_AFTER_SECONDS: &str = "5";

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    #[error("sign-in required")]
    Unauthenticated { next: String },
    #[error("forbidden")]
    Forbidden,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("cross-site request refused")]
    CrossSite,
    #[error("form token missing or stale")]
    FormExpired,
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The database could not be reached earlier in the request (the session lookup).
    #[error("database unavailable")]
    Unavailable,
    /// The request ran past its deadline and was ended; its change, if any, rolled back
    /// (unless its commit was already under way).
    #[error("request took too long")]
    TookTooLong,
    #[error("internal: {0}")]
    Internal(#[from] anyhow::Error),
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn status_code(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Unauthenticated { .. } => StatusCode::SEE_OTHER,
            Self::Forbidden | Self::CrossSite | Self::FormExpired => StatusCode::FORBIDDEN,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Database(e) if is_unavailable(e) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unavailable | Self::TookTooLong => StatusCode::SERVICE_UNAVAILABLE,
            Self::Database(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// Failures that mean "the database cannot be reached right now", not "the query is wrong".
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
    )
}

/// What the error page says; carried in the response's extensions until it is drawn.
#[derive(Debug, Clone)]
pub struct ErrorPageSpec {
    pub heading: &'static str,
    pub message: String,
}

impl ErrorPageSpec {
    pub fn for_status(status: StatusCode, message: Option<String>) -> Self {
        let (heading, default_message) = match status {
            StatusCode::NOT_FOUND => (
                "Page not found",
                "There is nothing at this address, or you do not have access to it. Check the address, or go back to the home page.",
            ),
            StatusCode::FORBIDDEN => (
                "You cannot do that",
                "Your account does not have access to this page or action.",
            ),
            StatusCode::BAD_REQUEST => ("That request could not be read", "Go back and try again."),
            StatusCode::METHOD_NOT_ALLOWED => (
                "That cannot be done here",
                "This address does not take that kind of request. Go back and use the page's own links and buttons.",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => (
                "That was too large",
                "The upload is larger than Attest accepts. Nothing of it was kept.",
            ),
            StatusCode::CONFLICT => (
                "That could not be done",
                "The record changed while you were working on it.",
            ),
            StatusCode::SERVICE_UNAVAILABLE => (
                "Attest is briefly unavailable",
                "The service cannot reach its database at the moment. Please try again in a few seconds.",
            ),
            _ => (
                "Something went wrong",
                "Attest could not complete this request. The problem has been logged; please try again.",
            ),
        };
        Self {
            heading,
            message: message.unwrap_or_else(|| default_message.to_owned()),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let message = match self {
            Self::Unauthenticated { next } => {
                return Redirect::to(&format!("/login?next={}", crate::url::encode_query_value(&next))).into_response();
            }
            Self::Database(ref e) if is_unavailable(e) => {
                crate::metrics::metrics().database_failed(e);
                tracing::warn!(error = %e, "database unavailable");
                None
            }
            Self::Database(ref e) => {
                tracing::error!(error = %e, "database error");
                None
            }
            Self::Internal(ref e) => {
                tracing::error!(error = ?e, "internal error");
                None
            }
            Self::CrossSite => Some(
                "This request came from another website, so it was refused. If you were using Attest, go back, reload the page and try again."
                    .to_owned(),
            ),
            Self::FormExpired => Some(
                "This form has expired or was not sent from Attest. Go back, reload the page and send it again.".to_owned(),
            ),
            Self::Conflict(message) | Self::BadRequest(message) => Some(message),
            // Refused before anything was read or written: say so, and that the session stands.
            Self::Unavailable => Some(
                "Attest cannot reach its database at the moment. Your session has not been ended, and nothing you sent has been saved: please try again in a few seconds (if you were sending a form, go back and send it again)."
                    .to_owned(),
            ),
            Self::TookTooLong => Some(
                "Attest took too long over this and stopped it, so it may not have been saved. Please try again in a few seconds: if you were sending a form, go back and send it again (a form sent twice is saved once)."
                    .to_owned(),
            ),
            Self::NotFound | Self::Forbidden | Self::MethodNotAllowed | Self::PayloadTooLarge => {
                None
            }
        };
        let mut response = status.into_response();
        response
            .extensions_mut()
            .insert(ErrorPageSpec::for_status(status, message));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECONDS),
            );
        }
        response
    }
}
