//! Cohort reports: one row per enrolment with its status and progress, a matrix of enrolments
//! × criteria, a summary with a chart drawn on the server, and the same data as CSV.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::assessments::status::{self, CriterionStatus, EnrolmentStatus, Progress};
use crate::audit::pages::csv_cell;
use crate::cohorts::db::{self as cohorts_db, Cohort};
use crate::error::{AppError, AppResult};
use crate::standards::model::CriterionKind;
use crate::state::AppState;
use crate::web::download::content_disposition;
use crate::web::layout::{Layout, Section};
use crate::web::routes::Routes;

mod archive;
mod workbook;

pub fn routes() -> Routes {
    Routes::new()
        .get("/admin/cohorts/{id}/report", page)
        .get("/admin/cohorts/{id}/report.csv", csv)
        .get("/admin/cohorts/{id}/report.xlsx", workbook::xlsx)
        .get("/enrolments/{id}/archive.zip", archive::download)
}

/// Enrolments one page of the report shows.
const PAGE_SIZE: usize = 100;

/// One enrolment of the report.
#[derive(Debug, Clone)]
pub struct ReportRow {
    pub enrolment_id: Uuid,
    pub candidate: String,
    pub email: String,
    pub assessor: Option<String>,
    pub assessor_id: Option<Uuid>,
    pub iqa: Option<String>,
    pub last_activity: Option<OffsetDateTime>,
    pub signed_off_at: Option<OffsetDateTime>,
    pub signed_off_by: Option<String>,
    pub verified_at: Option<OffsetDateTime>,
    pub verified_by: Option<String>,
    pub status: EnrolmentStatus,
    pub pc: (usize, usize),
    pub k: (usize, usize),
    pub awaiting: usize,
    /// Each criterion's status, in criterion order.
    pub cells: Vec<CriterionStatus>,
}

impl ReportRow {
    /// The values of the columns in [`COLUMNS`], as text.
    pub fn values(&self) -> [String; 13] {
        [
            self.candidate.clone(),
            self.email.clone(),
            self.assessor.clone().unwrap_or_default(),
            self.iqa.clone().unwrap_or_default(),
            self.status.as_str().to_owned(),
            format!("{}/{}", self.pc.0, self.pc.1),
            format!("{}/{}", self.k.0, self.k.1),
            self.awaiting.to_string(),
            iso_date(&self.last_activity),
            iso_date(&self.signed_off_at),
            self.signed_off_by.clone().unwrap_or_default(),
            iso_date(&self.verified_at),
            self.verified_by.clone().unwrap_or_default(),
        ]
    }

    /// Share of criteria met, for sorting by progress.
    fn met(&self) -> usize {
        self.pc.0 + self.k.0
    }
}

async fn rows(conn: &mut PgConnection, cohort: Uuid) -> sqlx::Result<Vec<ReportRow>> {
    let people = sqlx::query!(
        r#"
        select e.enrolment_id, c.display_name as candidate, c.email, a.display_name as "assessor?", e.assessor_id,
               i.display_name as "iqa?",
               greatest((select max(ev.submitted_at) from evidence ev where ev.enrolment_id = e.enrolment_id),
                        (select max(j.created_at) from judgement j join evidence ev using (evidence_id)
                          where ev.enrolment_id = e.enrolment_id)) as last_activity,
               so.signed_at as "signed_off_at?", sa.display_name as "signed_off_by?",
               r.reviewed_at as "verified_at?", ri.display_name as "verified_by?"
          from enrolment e
          join app_user c on c.user_id = e.candidate_id
          left join app_user a on a.user_id = e.assessor_id
          left join app_user i on i.user_id = e.iqa_id
          left join lateral (select s.* from sign_off s left join review rv using (sign_off_id)
                              where s.enrolment_id = e.enrolment_id and (rv.decision is null or rv.decision = 'agree')
                              order by s.sequence desc limit 1) so on true
          left join app_user sa on sa.user_id = so.assessor_id
          left join review r on r.sign_off_id = so.sign_off_id and r.decision = 'agree'
          left join app_user ri on ri.user_id = r.iqa_id
         where e.cohort_id = $1
         order by lower(c.display_name)
        "#,
        cohort
    )
    .fetch_all(&mut *conn)
    .await?;
    let ids: Vec<Uuid> = people.iter().map(|p| p.enrolment_id).collect();
    let progress: HashMap<Uuid, Progress> = status::progress_of_many(conn, &ids).await?;
    Ok(people
        .into_iter()
        .map(|p| {
            let progress = progress.get(&p.enrolment_id);
            ReportRow {
                status: progress.map_or(EnrolmentStatus::NotStarted, |g| g.status),
                pc: progress.map_or((0, 0), |g| g.met_of(CriterionKind::Performance)),
                k: progress.map_or((0, 0), |g| g.met_of(CriterionKind::Knowledge)),
                awaiting: progress.map_or(0, |g| g.count(CriterionStatus::Awaiting)),
                cells: progress
                    .map(|g| g.criteria.iter().map(|c| c.status).collect())
                    .unwrap_or_default(),
                enrolment_id: p.enrolment_id,
                candidate: p.candidate,
                email: p.email,
                assessor: p.assessor,
                assessor_id: p.assessor_id,
                iqa: p.iqa,
                last_activity: p.last_activity,
                signed_off_at: p.signed_off_at,
                signed_off_by: p.signed_off_by,
                verified_at: p.verified_at,
                verified_by: p.verified_by,
            }
        })
        .collect())
}

/// The rows of the cohorts' reports, each kept with the audit head it was computed at. Every
/// change writes an audit event in its own transaction, so while the head stays the same the
/// rows are still true; a new head means computing them again. One computation per cohort runs
/// at a time: requests that arrive meanwhile wait for it instead of repeating it.
#[derive(Default)]
pub struct ReportCache {
    cohorts: std::sync::Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<Option<CachedRows>>>>>,
}

struct CachedRows {
    head: [u8; 32],
    rows: Arc<Vec<ReportRow>>,
}

/// Cohorts whose rows are kept at most; beyond it the cache starts afresh.
const CACHED_COHORTS: usize = 32;

impl ReportCache {
    /// The cohort's rows as of now, with the audit head they are true at: kept ones if nothing
    /// was recorded since, else computed.
    async fn rows(
        &self,
        pool: &sqlx::PgPool,
        cohort: Uuid,
    ) -> sqlx::Result<([u8; 32], Arc<Vec<ReportRow>>)> {
        let slot = {
            let mut cohorts = self
                .cohorts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if cohorts.len() >= CACHED_COHORTS && !cohorts.contains_key(&cohort) {
                cohorts.clear();
            }
            cohorts.entry(cohort).or_default().clone()
        };
        // Waiting here holds no database connection: the pool stays free for other pages.
        let mut cached = slot.lock().await;
        let mut conn = pool.acquire().await?;
        // Read before the rows, so that rows kept under this head are never older than it.
        let head = crate::audit::head(&mut conn).await?;
        if let Some(kept) = cached.as_ref().filter(|c| c.head == head) {
            return Ok((head, kept.rows.clone()));
        }
        let fresh = Arc::new(rows(&mut conn, cohort).await?);
        *cached = Some(CachedRows {
            head,
            rows: fresh.clone(),
        });
        Ok((head, fresh))
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ReportQuery {
    #[serde(default)]
    assessor: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    page: Option<usize>,
}

impl ReportQuery {
    fn keep(&self, row: &ReportRow) -> bool {
        (self.assessor.is_empty()
            || row
                .assessor_id
                .is_some_and(|a| a.to_string() == self.assessor))
            && (self.status.is_empty() || row.status.as_str() == self.status)
    }

    fn link(&self, path: &str, page: Option<usize>) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("assessor", &self.assessor)
            .append_pair("status", &self.status)
            .append_pair("sort", &self.sort);
        if let Some(page) = page {
            q.append_pair("page", &page.to_string());
        }
        format!("{path}?{}", q.finish())
    }
}

/// The filtered, sorted rows of a cohort's report.
pub(crate) async fn selection(
    state: &AppState,
    id: Uuid,
    query: &ReportQuery,
) -> AppResult<Selection> {
    let (cohort, criteria) = {
        let mut conn = state.pool.acquire().await?;
        let cohort = cohorts_db::find(&mut conn, id)
            .await?
            .ok_or(AppError::NotFound)?;
        let criteria = sqlx::query_as!(
            Criterion,
            "select code, text from criterion where standard_id = $1 order by kind, position",
            cohort.standard_id
        )
        .fetch_all(&mut *conn)
        .await?;
        (cohort, criteria)
    };
    let (head, all) = state.reports.rows(&state.pool, id).await?;
    let mut kept: Vec<ReportRow> = all.iter().filter(|r| query.keep(r)).cloned().collect();
    if query.sort == "progress" {
        kept.sort_by(|a, b| {
            b.met()
                .cmp(&a.met())
                .then_with(|| a.candidate.to_lowercase().cmp(&b.candidate.to_lowercase()))
        });
    }
    Ok(Selection {
        cohort,
        criteria,
        head,
        all,
        kept,
    })
}

/// A criterion of the cohort's standard.
pub(crate) struct Criterion {
    pub code: String,
    pub text: String,
}

/// What a report, and each of its exports, shows.
pub(crate) struct Selection {
    pub cohort: Cohort,
    /// The standard's criteria, in order: the matrix's columns.
    pub criteria: Vec<Criterion>,
    /// The audit head the rows are true at.
    pub head: [u8; 32],
    /// Every enrolment of the cohort.
    pub all: Arc<Vec<ReportRow>>,
    /// The enrolments the filters keep, in the order asked for.
    pub kept: Vec<ReportRow>,
}

impl Selection {
    pub fn codes(&self) -> Vec<String> {
        self.criteria.iter().map(|c| c.code.clone()).collect()
    }
}

/// A bar of the summary chart.
#[derive(Debug, Clone)]
pub struct Bar {
    pub label: &'static str,
    pub status: &'static str,
    pub count: usize,
    pub y: usize,
    pub width: usize,
}

/// A filter option.
#[derive(Debug, Clone)]
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "reports/cohort.html")]
pub struct ReportPage {
    pub layout: Layout,
    pub cohort: Cohort,
    pub codes: Vec<String>,
    pub rows: Vec<ReportRow>,
    pub total: usize,
    pub bars: Vec<Bar>,
    pub percent_competent: usize,
    pub percent_verified: usize,
    pub assessors: Vec<Choice>,
    pub statuses: Vec<Choice>,
    pub sort_by_progress: bool,
    pub csv_link: String,
    pub xlsx_link: String,
    pub previous: Option<String>,
    pub next: Option<String>,
    pub first: usize,
}

const STATUSES: [EnrolmentStatus; 6] = [
    EnrolmentStatus::NotStarted,
    EnrolmentStatus::InProgress,
    EnrolmentStatus::ReadyForSignOff,
    EnrolmentStatus::Competent,
    EnrolmentStatus::Verified,
    EnrolmentStatus::Withdrawn,
];

/// `GET /admin/cohorts/{id}/report`.
pub async fn page(
    State(state): State<AppState>,
    layout: Layout,
    Path(id): Path<Uuid>,
    Query(query): Query<ReportQuery>,
) -> AppResult<ReportPage> {
    let Selection {
        cohort,
        criteria,
        all,
        kept,
        ..
    } = selection(&state, id, &query).await?;
    let codes: Vec<String> = criteria.into_iter().map(|c| c.code).collect();
    let max = STATUSES
        .iter()
        .map(|s| kept.iter().filter(|r| r.status == *s).count())
        .max()
        .unwrap_or(0)
        .max(1);
    let bars = STATUSES
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let count = kept.iter().filter(|r| r.status == *s).count();
            Bar {
                label: s.label(),
                status: s.as_str(),
                count,
                y: i * 28,
                width: count * 300 / max,
            }
        })
        .collect();
    let total = kept.len();
    let percent = |n: usize| (n * 100).checked_div(total).unwrap_or(0);
    let verified = kept
        .iter()
        .filter(|r| r.status == EnrolmentStatus::Verified)
        .count();
    let competent = kept
        .iter()
        .filter(|r| r.status == EnrolmentStatus::Competent)
        .count()
        + verified;
    let mut assessors: Vec<Choice> = Vec::new();
    for row in all.iter() {
        if let (Some(id), Some(name)) = (row.assessor_id, &row.assessor)
            && !assessors.iter().any(|a| a.value == id.to_string())
        {
            assessors.push(Choice {
                value: id.to_string(),
                label: name.clone(),
                selected: query.assessor == id.to_string(),
            });
        }
    }
    // A page past the end shows the last one; absurd numbers cannot overflow.
    let last_page = total.div_ceil(PAGE_SIZE).max(1);
    let page = query.page.unwrap_or(1).clamp(1, last_page);
    let path = format!("/admin/cohorts/{id}/report");
    let shown: Vec<ReportRow> = kept
        .into_iter()
        .skip((page - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
        .collect();
    Ok(ReportPage {
        layout: layout.section(Section::Cohorts),
        previous: (page > 1).then(|| query.link(&path, Some(page - 1))),
        next: (page * PAGE_SIZE < total).then(|| query.link(&path, Some(page + 1))),
        first: (page - 1) * PAGE_SIZE,
        csv_link: query.link(&format!("{path}.csv"), None),
        xlsx_link: query.link(&format!("{path}.xlsx"), None),
        statuses: STATUSES
            .iter()
            .map(|s| Choice {
                value: s.as_str().into(),
                label: s.label().into(),
                selected: query.status == s.as_str(),
            })
            .collect(),
        sort_by_progress: query.sort == "progress",
        cohort,
        codes,
        rows: shown,
        total,
        bars,
        percent_competent: percent(competent),
        percent_verified: percent(verified),
        assessors,
    })
}

/// A criterion status as one letter for the matrix and the CSV.
pub fn cell_letter(status: &CriterionStatus) -> &'static str {
    match status {
        CriterionStatus::Met => "M",
        CriterionStatus::Awaiting => "A",
        CriterionStatus::NotMet => "N",
        CriterionStatus::NotStarted => "-",
    }
}

/// A date as ISO 8601, or nothing.
pub fn iso_date(at: &Option<OffsetDateTime>) -> String {
    at.map(|t| t.date().to_string()).unwrap_or_default()
}

/// `GET /admin/cohorts/{id}/report.csv`: the same rows, every criterion a column.
pub async fn csv(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    Query(query): Query<ReportQuery>,
) -> AppResult<Response> {
    let selection = selection(&state, id, &query).await?;
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let mut header: Vec<String> = COLUMNS.iter().map(|c| (*c).to_owned()).collect();
    header.extend(selection.codes());
    writer
        .write_record(&header)
        .map_err(|e| AppError::Internal(e.into()))?;
    for row in &selection.kept {
        // Text people typed could start a formula in a spreadsheet; the rest is ours.
        let mut record: Vec<String> = row.values().iter().map(|v| csv_cell(v)).collect();
        record.extend(row.cells.iter().map(|c| c.as_str().to_owned()));
        writer
            .write_record(&record)
            .map_err(|e| AppError::Internal(e.into()))?;
    }
    let body = writer
        .into_inner()
        .map_err(|e| AppError::Internal(anyhow::anyhow!(e.to_string())))?;
    Ok(download(
        body,
        "text/csv; charset=utf-8",
        &selection.cohort,
        &selection.head,
        state.clock.now(),
        "csv",
    ))
}

/// The report columns before the one-per-criterion ones.
pub const COLUMNS: [&str; 13] = [
    "candidate",
    "email",
    "assessor",
    "iqa",
    "status",
    "pc_met",
    "k_met",
    "claims_awaiting",
    "last_activity",
    "signed_off_on",
    "signed_off_by",
    "verified_on",
    "verified_by",
];

/// An export as a download named by cohort, time and audit head, with the head in a header.
pub(crate) fn download(
    body: Vec<u8>,
    content_type: &'static str,
    cohort: &Cohort,
    head: &[u8; 32],
    at: OffsetDateTime,
    extension: &str,
) -> Response {
    let head_hex = crate::crypto::hex(head);
    let stamp = format!(
        "{}{:02}{:02}T{:02}{:02}{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    );
    let file_name = format!(
        "attest-{}-{stamp}-{}.{extension}",
        archive::slug(&cohort.name, 60),
        &head_hex[..12]
    );
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(&content_disposition("attachment", &file_name)) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    if let Ok(value) = HeaderValue::from_str(&head_hex) {
        headers.insert("x-attest-audit-head", value);
    }
    response
}
