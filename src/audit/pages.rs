//! The audit trail for admins: events filtered by actor, entity and date, newest first, and
//! the same selection as CSV.

use askama::Template;
use askama_web::WebTemplate;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use futures_util::{Stream, TryStreamExt};
use serde::Deserialize;
use sqlx::PgConnection;
use time::Date;

use super::db::{self, EventRow};
use crate::error::AppResult;
use crate::forms::parse_date;
use crate::state::AppState;
use crate::web::layout::{Layout, Section};

/// Events one page shows.
const PAGE_SIZE: i64 = 200;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuditFilter {
    #[serde(default)]
    pub actor: String,
    #[serde(default)]
    pub entity: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
}

impl AuditFilter {
    fn pattern(text: &str) -> String {
        crate::db::contains_pattern(text.trim())
    }

    fn start_date(&self) -> Option<Date> {
        parse_date(&self.from)
    }

    fn end_date(&self) -> Option<Date> {
        parse_date(&self.to)
    }

    /// The query string that repeats this filter, for the CSV link.
    pub fn query_string(&self) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("actor", &self.actor)
            .append_pair("entity", &self.entity);
        query
            .append_pair("from", &self.from)
            .append_pair("to", &self.to);
        query.finish()
    }

    /// The events this filter selects, newest first, at most `limit`.
    fn select_events<'c>(
        &self,
        conn: &'c mut PgConnection,
        limit: i64,
        before: Option<i64>,
    ) -> impl Stream<Item = sqlx::Result<EventRow>> + use<'c> {
        db::filtered_events(
            conn,
            &Self::pattern(&self.actor),
            &Self::pattern(&self.entity),
            self.start_date(),
            self.end_date(),
            (limit, before),
        )
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "audit/index.html")]
pub struct AuditPage {
    pub layout: Layout,
    pub filter: AuditFilter,
    pub events: Vec<EventRow>,
    pub truncated: bool,
}

/// `GET /admin/audit`.
pub async fn index(
    State(state): State<AppState>,
    layout: Layout,
    Query(filter): Query<AuditFilter>,
) -> AppResult<AuditPage> {
    let mut conn = state.pool.acquire().await?;
    let mut events: Vec<EventRow> = filter
        .select_events(&mut conn, PAGE_SIZE + 1, None)
        .try_collect()
        .await?;
    let truncated = events.len() > usize::try_from(PAGE_SIZE).unwrap_or(usize::MAX);
    events.truncate(usize::try_from(PAGE_SIZE).unwrap_or(usize::MAX));
    Ok(AuditPage {
        layout: layout.section(Section::Audit),
        filter,
        events,
        truncated,
    })
}

/// A cell a spreadsheet will not run as a formula.
pub fn csv_cell(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

/// Events the CSV export reads in one query.
const EXPORT_PAGE: i64 = 1_000;

/// One event as a line of the CSV export.
fn csv_line(row: &EventRow) -> Result<Vec<u8>, std::io::Error> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    writer
        .write_record([
            row.id.to_string(),
            row.occurred_at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            csv_cell(&row.actor),
            csv_cell(&row.action),
            csv_cell(&row.entity_type),
            csv_cell(&row.entity_id),
            row.client_ip.clone().unwrap_or_default(),
            csv_cell(&row.detail.to_string()),
        ])
        .map_err(std::io::Error::other)?;
    writer
        .into_inner()
        .map_err(|e| std::io::Error::other(e.into_error()))
}

/// `GET /admin/audit.csv`: the filtered events, streamed row by row.
pub async fn export(State(state): State<AppState>, Query(filter): Query<AuditFilter>) -> Response {
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(8);
    tokio::spawn(async move {
        let header = "id,occurred_at,actor,action,entity_type,entity_id,client_ip,detail\r\n";
        if sender.send(Ok(header.as_bytes().to_vec())).await.is_err() {
            return;
        }
        // A page of rows at a time, each one short query whose connection is back in the pool
        // before the client is waited for: a slow reader holds no connection, and no statement
        // runs for as long as the download takes.
        let mut before = None;
        loop {
            let page: Result<Vec<EventRow>, _> = match state.pool.acquire().await {
                Ok(mut conn) => {
                    filter
                        .select_events(&mut conn, EXPORT_PAGE, before)
                        .try_collect()
                        .await
                }
                Err(e) => Err(e),
            };
            let rows = match page {
                Ok(rows) if rows.is_empty() => break,
                Ok(rows) => rows,
                Err(e) => {
                    let _ = sender.send(Err(std::io::Error::other(e))).await;
                    break;
                }
            };
            before = rows.last().map(|row| row.id);
            for row in rows {
                let line = csv_line(&row);
                let failed = line.is_err();
                if sender.send(line).await.is_err() || failed {
                    return;
                }
            }
        }
    });
    let mut response = Response::new(Body::from_stream(crate::web::download::receiver_stream(
        receiver,
    )));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"attest-audit.csv\""),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::csv_cell;

    #[test]
    fn cells_that_a_spreadsheet_would_run_are_neutralised() {
        for formula in ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
            assert!(csv_cell(formula).starts_with('\''), "{formula:?}");
        }
        assert_eq!(csv_cell("plain"), "plain");
    }
}
