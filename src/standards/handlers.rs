//! Public standards pages: anyone may read a standard.

use axum::extract::{Path, State};

use super::db;
use super::model::CriterionKind;
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

/// `GET /standards/{urn}`: the newest version of the standard.
pub async fn show(
    State(state): State<AppState>,
    layout: Layout,
    Path(urn): Path<String>,
) -> AppResult<StandardsShowPage> {
    let mut conn = state.pool.acquire().await?;
    let standard = db::find_latest_by_urn(&mut conn, &urn)
        .await?
        .ok_or(AppError::NotFound)?;
    let (performance, knowledge) = db::list_criteria(&mut conn, standard.id)
        .await?
        .into_iter()
        .partition(|c| c.kind == CriterionKind::Performance);
    let overdue_for_review = standard.is_overdue_for_review(state.clock.now().date());
    Ok(StandardsShowPage {
        layout: layout.section(Section::Standards),
        standard,
        performance,
        knowledge,
        overdue_for_review,
    })
}

/// `GET /standards/{urn}/case.json`: the newest version as a 1EdTech CASE package.
pub async fn case_package(
    State(state): State<AppState>,
    Path(urn): Path<String>,
) -> AppResult<axum::Json<serde_json::Value>> {
    let mut conn = state.pool.acquire().await?;
    let standard = db::find_latest_by_urn(&mut conn, &urn)
        .await?
        .ok_or(AppError::NotFound)?;
    let criteria = db::list_criteria(&mut conn, standard.id).await?;
    Ok(axum::Json(super::case::export(
        &standard,
        &criteria,
        &state.settings.base_url,
    )))
}
