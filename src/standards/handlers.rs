//! Public standards pages: anyone may read a standard.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::cache::Standards;
use super::db;
use super::views::{StandardsIndexPage, StandardsShowPage};
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::web::layout::{Layout, Section};

/// `GET /standards`.
pub async fn index(State(state): State<AppState>, layout: Layout) -> AppResult<StandardsIndexPage> {
    let mut conn = state.pool.acquire().await?;
    let standards = db::list_latest(&mut conn).await?;
    Ok(StandardsIndexPage {
        layout: layout.section(Section::Standards),
        standards,
    })
}

/// `GET /standards/{urn}`: the newest version of the standard, from memory. Visitors who are
/// not signed in all get the same page, kept rendered, with an ETag.
pub async fn show(
    State(state): State<AppState>,
    standards: Standards,
    layout: Layout,
    Path(urn): Path<String>,
    headers: HeaderMap,
) -> AppResult<Response> {
    let published = standards
        .latest(&state.pool, &urn, state.clock.now())
        .await?
        .ok_or(AppError::NotFound)?;
    let today = state.clock.now().date();
    let page = |layout: Layout| StandardsShowPage {
        layout: layout.section(Section::Standards),
        standard: published.standard.clone(),
        performance: published.performance.clone(),
        knowledge: published.knowledge.clone(),
        overdue_for_review: published.standard.is_overdue_for_review(today),
    };
    if layout.user.is_some() || layout.flash.is_some() {
        return Ok(page(layout).into_response());
    }
    let (html, etag) = published
        .anonymous_page(today, || page(layout).render())
        .map_err(|e| AppError::Internal(e.into()))?;
    let etag_value = HeaderValue::from_str(&etag).map_err(|e| AppError::Internal(e.into()))?;
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|sent| sent.as_bytes() == etag.as_bytes());
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            )],
            html,
        )
            .into_response()
    };
    let headers = response.headers_mut();
    headers.insert(header::ETAG, etag_value);
    // Shared caches may keep it briefly; the cookie decides whether this page applies.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    headers.insert(header::VARY, HeaderValue::from_static("cookie"));
    Ok(response)
}

/// `GET /standards/{urn}/case.json`: the newest version as a 1EdTech CASE package.
pub async fn case_package(
    State(state): State<AppState>,
    standards: Standards,
    Path(urn): Path<String>,
) -> AppResult<axum::Json<serde_json::Value>> {
    let published = standards
        .latest(&state.pool, &urn, state.clock.now())
        .await?
        .ok_or(AppError::NotFound)?;
    let criteria: Vec<_> = published
        .performance
        .iter()
        .chain(&published.knowledge)
        .cloned()
        .collect();
    Ok(axum::Json(super::case::export(
        &published.standard,
        &criteria,
        &state.settings.base_url,
    )))
}
