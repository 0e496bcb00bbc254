//! One-time messages after an action ("User created"), carried across the redirect in a cookie
//! and shown on the next page.

use axum::extract::Request;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};

const COOKIE: &str = "attest_flash";

/// The message of the last action.
#[derive(Debug, Clone)]
pub struct Flash {
    pub message: String,
}

/// A 303 to `to` that shows `message` on the page it leads to.
pub fn redirect(to: &str, message: &str) -> Response {
    let cookie = Cookie::build((COOKIE, crate::url::encode_query_value(message)))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .build();
    let mut response = Redirect::to(to).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
        response.headers_mut().append(SET_COOKIE, value);
    }
    response
}

/// Middleware: hands the message to the page and removes it once a page has been shown.
pub async fn middleware(jar: CookieJar, mut request: Request, next: Next) -> Response {
    let flash = jar.get(COOKIE).map(|c| Flash {
        message: form_urlencoded::parse(format!("m={}", c.value()).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default(),
    });
    let had_flash = flash.is_some();
    if let Some(flash) = flash {
        request.extensions_mut().insert(flash);
    }
    let mut response = next.run(request).await;
    if had_flash
        && !response.status().is_redirection()
        && response.status() != StatusCode::NOT_MODIFIED
    {
        let mut removal = Cookie::build((COOKIE, "")).path("/").build();
        removal.make_removal();
        if let Ok(value) = HeaderValue::from_str(&removal.to_string()) {
            response.headers_mut().append(SET_COOKIE, value);
        }
    }
    response
}
