//! A cohort's progress over time: the criteria met across its enrolments at the end of each
//! week, drawn on the server as SVG. Served apart from the report (as an image of it) so the
//! report page costs no more than its table.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::db;
use crate::cohorts::db as cohorts_db;
use crate::error::{AppError, AppResult};
use crate::evidence::views::ProgressChart;
use crate::ids::CohortId;
use crate::standards::cache::Standards;
use crate::state::AppState;
use crate::status::model::weekly_met;

/// Weeks the chart shows at most: a cohort's year, and a little over.
const CHART_WEEKS: usize = 60;

#[derive(Template)]
#[template(path = "reports/progress.svg", escape = "html")]
struct ProgressSvg {
    cohort_name: String,
    chart: Option<ProgressChart>,
}

/// The running total of criteria met, from each day's net change.
fn running_total(changes: &[(time::OffsetDateTime, i64)]) -> Vec<(time::OffsetDateTime, i32)> {
    changes
        .iter()
        .scan(0_i64, |total, (day, change)| {
            *total += change;
            Some((*day, i32::try_from(*total).unwrap_or(i32::MAX)))
        })
        .collect()
}

/// `GET /admin/cohorts/{id}/progress.svg`.
pub async fn svg(
    State(state): State<AppState>,
    standards: Standards,
    Path(id): Path<CohortId>,
) -> AppResult<Response> {
    let mut conn = state.pool.acquire().await?;
    let cohort = cohorts_db::find(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound)?;
    let criteria = standards
        .version(&mut conn, cohort.standard_id)
        .await?
        .criteria()
        .count();
    let enrolments = db::active_enrolments(&mut conn, id).await?;
    let changes = db::met_changes_by_day(&mut conn, id).await?;
    drop(conn);
    let total = i32::try_from(enrolments.saturating_mul(i64::try_from(criteria).unwrap_or(0)))
        .unwrap_or(i32::MAX);
    let history = running_total(&changes);
    let chart = history.first().and_then(|(since, _)| {
        let weeks = weekly_met(&history, *since, state.clock.now(), CHART_WEEKS);
        ProgressChart::new(weeks, total)
    });
    let body = ProgressSvg {
        cohort_name: cohort.name,
        chart,
    }
    .render()
    .map_err(|e| AppError::Internal(e.into()))?;
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("image/svg+xml; charset=utf-8"),
    );
    // Weekly figures: a few minutes old is fresh enough, and the report reloads often.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=300"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::running_total;
    use time::macros::datetime;

    #[test]
    fn each_days_change_adds_to_the_total() {
        let changes = [
            (datetime!(2026-10-01 0:00 UTC), 5),
            (datetime!(2026-10-02 0:00 UTC), 3),
            (datetime!(2026-10-09 0:00 UTC), -1),
        ];
        assert_eq!(
            running_total(&changes)
                .iter()
                .map(|(_, n)| *n)
                .collect::<Vec<_>>(),
            [5, 8, 7]
        );
    }
}
