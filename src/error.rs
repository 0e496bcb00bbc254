//! The one error type of request handlers, and how each error is answered.
//!
//! Which error to use where:
//! - a record that does not exist *or that the user may not see* → [`AppError::NotFound`]
//!   (one answer for both, so ids cannot be probed);
//! - no session → [`AppError::Unauthenticated`]; signed in but the wrong role → [`AppError::Forbidden`];
//! - a change that lost a race or repeats one already made → [`AppError::Conflict`] with a sentence
//!   the user can act on;
//! - database failures arrive through `?` as [`AppError::Database`]; an unreachable database
//!   becomes 503 with `Retry-After`, anything else 500;
//! - bad form input is *not* an error: handlers re-render the form with 422 and the messages.
//!
//! 5xx details are logged once, here, and never shown.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use crate::web::layout::Layout;

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
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("internal: {0}")]
    Internal(#[from] anyhow::Error),
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn status_code(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Unauthenticated { .. } => StatusCode::SEE_OTHER,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Database(e) if is_unavailable(e) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Database(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// Failures that mean "the database cannot be reached right now", not "the query is wrong".
fn is_unavailable(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
    )
}

/// The error page, inside the normal layout.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub layout: Layout,
    pub heading: &'static str,
    pub message: String,
}

impl ErrorPage {
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
            StatusCode::CONFLICT => (
                "That could not be done",
                "The record changed while you were working on it.",
            ),
            StatusCode::SERVICE_UNAVAILABLE => (
                "Attest is briefly unavailable",
                "The service cannot reach its database at the moment. Nothing you sent has been lost; please try again in a few seconds.",
            ),
            _ => (
                "Something went wrong",
                "Attest could not complete this request. The problem has been logged; please try again.",
            ),
        };
        Self {
            layout: Layout::public(),
            heading,
            message: message.unwrap_or_else(|| default_message.to_owned()),
        }
    }

    /// The page as a response with `status`.
    pub fn into_response_with(self, status: StatusCode) -> Response {
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

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        match &self {
            Self::Unauthenticated { next } => {
                return Redirect::to(&format!(
                    "/login?next={}",
                    crate::web::encode_query_value(next)
                ))
                .into_response();
            }
            Self::Database(e) if is_unavailable(e) => {
                tracing::warn!(error = %e, "database unavailable");
            }
            Self::Database(e) => tracing::error!(error = %e, "database error"),
            Self::Internal(e) => tracing::error!(error = ?e, "internal error"),
            Self::NotFound | Self::Forbidden | Self::Conflict(_) => {}
        }
        let message = match self {
            Self::Conflict(message) => Some(message),
            _ => None,
        };
        let mut response = ErrorPage::for_status(status, message).into_response_with(status);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECONDS),
            );
        }
        response
    }
}
