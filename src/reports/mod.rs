//! Cohort reports: one row per enrolment with its status and progress, a matrix of enrolments
//! × criteria, a summary with a chart drawn on the server, and the same data as CSV.

use crate::identity::{ADMIN, ON_ENROLMENTS, UserId};
use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::audit::pages::csv_cell;
use crate::cohorts::db::{self as cohorts_db, Cohort};
use crate::config::WaitingThresholds;
use crate::error::{AppError, AppResult};
use crate::forms::FormErrors;
use crate::ids::{CohortId, EnrolmentId};
use crate::kept::Kept;
use crate::standards::cache::{Published, Standards};
use crate::state::AppState;
use crate::status::model::{CriterionStatus, EnrolmentStatus};
use crate::web::choice::Choice;
use crate::web::download::content_disposition;
use crate::web::layout::{Layout, Section};
use crate::web::paging::{PageLinks, Paging};
use crate::web::routes::Routes;

mod archive;
pub mod db;
mod progress;
mod workbook;

pub fn routes() -> Routes<AppState> {
    Routes::new()
        .get("/admin/cohorts/{id}/report", ADMIN, page)
        .get("/admin/cohorts/{id}/report.csv", ADMIN, csv)
        .get("/admin/cohorts/{id}/report.xlsx", ADMIN, workbook::xlsx)
        .get("/admin/cohorts/{id}/progress.svg", ADMIN, progress::svg)
        .get(
            "/enrolments/{id}/archive.zip",
            ON_ENROLMENTS,
            archive::download,
        )
}

/// Enrolments one page of the report shows.
const PAGE_SIZE: usize = 100;

/// One enrolment of the report.
#[derive(Debug, Clone)]
pub struct ReportRow {
    pub enrolment_id: EnrolmentId,
    pub candidate: String,
    pub email: String,
    pub assessor: Option<String>,
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
    /// When the oldest claim waiting for judgement was submitted.
    pub oldest_waiting: Option<OffsetDateTime>,
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
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ReportQuery {
    #[serde(default)]
    assessor: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    sort: String,
    /// A part of the candidate's name.
    #[serde(default)]
    name: String,
    /// Only enrolments whose oldest claim has waited at least this many days.
    #[serde(default)]
    waiting: String,
    #[serde(default)]
    page: Option<usize>,
}

impl ReportQuery {
    /// The filter asked for at `now`, with the problems of what was typed; values that name no
    /// assessor or status are ignored.
    fn filter(&self, now: OffsetDateTime) -> (db::Filter<'_>, FormErrors) {
        let mut errors = FormErrors::default();
        let waiting = errors
            .check("waiting", crate::web::filters::waiting_days(&self.waiting))
            .flatten();
        let filter = db::Filter {
            assessor: Uuid::parse_str(&self.assessor).ok().map(UserId),
            status: EnrolmentStatus::parse(&self.status),
            name: Some(self.name.as_str()).filter(|n| !n.is_empty()),
            waiting_since: waiting.map(|days| now - time::Duration::days(days)),
            by_progress: self.sort == "progress",
        };
        (filter, errors)
    }

    /// The name typed, as the filter matches it: spaces collapsed, lower case.
    fn normalise(mut self) -> Self {
        self.name = crate::web::filters::name_part(&self.name);
        self
    }

    fn link(&self, path: &str, page: Option<usize>) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("assessor", &self.assessor)
            .append_pair("status", &self.status)
            .append_pair("name", &self.name)
            .append_pair("waiting", &self.waiting)
            .append_pair("sort", &self.sort);
        if let Some(page) = page {
            q.append_pair("page", &page.to_string());
        }
        format!("{path}?{}", q.finish())
    }
}

/// Every row of a cohort's report that the filters keep, for an export: read in one snapshot
/// with the audit head they are true at.
pub(crate) async fn selection(
    state: &AppState,
    standards: &Standards,
    id: CohortId,
    query: &ReportQuery,
) -> AppResult<Selection> {
    // Events committed so far are sealed first, so the head names the changes the rows show.
    crate::audit::seal_pending(&mut *state.pool.acquire().await?).await?;
    let mut tx = state.pool.begin().await?;
    crate::db::set_read_only_snapshot(&mut tx).await?;
    let cohort = cohorts_db::find(&mut tx, id)
        .await?
        .ok_or(AppError::NotFound)?;
    let standard = standards.version(&mut tx, cohort.standard_id).await?;
    let head = crate::audit::head(&mut tx).await?;
    // A filter typed wrongly keeps everything, as the page shows it.
    let query = query.clone().normalise();
    let (filter, _) = query.filter(state.clock.now());
    let kept = db::rows(&mut tx, id, filter, usize::MAX, 0).await?;
    tx.commit().await?;
    Ok(Selection {
        cohort,
        standard,
        head,
        kept,
    })
}

/// What a report, and each of its exports, shows.
pub(crate) struct Selection {
    pub cohort: Cohort,
    /// The cohort's standard version: its criteria, in order, are the matrix's columns.
    pub standard: Arc<Published>,
    /// The audit head the rows are true at.
    pub head: [u8; 32],
    /// The enrolments the filters keep, in the order asked for.
    pub kept: Vec<ReportRow>,
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

#[derive(Template, WebTemplate)]
#[template(path = "reports/cohort.html")]
pub struct ReportPage {
    pub layout: Layout,
    pub cohort: Cohort,
    pub codes: Vec<String>,
    pub rows: Arc<Vec<ReportRow>>,
    pub total: usize,
    pub bars: Vec<Bar>,
    pub percent_competent: usize,
    pub percent_verified: usize,
    pub assessors: Vec<Choice>,
    pub statuses: Vec<Choice>,
    pub sort_by_progress: bool,
    pub csv_link: String,
    pub xlsx_link: String,
    pub pages: PageLinks,
    pub name: String,
    pub waiting: String,
    pub errors: FormErrors,
    pub now: OffsetDateTime,
    pub thresholds: WaitingThresholds,
}

impl ReportPage {
    /// How long a row's oldest claim has waited, against the thresholds.
    pub fn wait_of(&self, row: &ReportRow) -> Option<crate::config::WaitLevel> {
        self.thresholds.level(row.oldest_waiting, self.now)
    }
}

/// `GET /admin/cohorts/{id}/report`.
pub async fn page(
    State(state): State<AppState>,
    standards: Standards,
    kept: KeptReports,
    layout: Layout,
    Path(id): Path<CohortId>,
    Query(query): Query<ReportQuery>,
) -> AppResult<ReportPage> {
    let query = query.normalise();
    let now = state.clock.now();
    let (filter, errors) = query.filter(now);
    // A wait is measured from now: such a page is read afresh each time.
    let key = filter
        .waiting_since
        .is_none()
        .then(|| (id, query.link("", query.page)));
    let reading = PageReading::read(&state, &standards, &kept, key, id, filter, query.page).await?;
    let path = format!("/admin/cohorts/{id}/report");
    let waits = (now, state.settings.waiting);
    Ok(reading.render(layout, &query, &path, errors, waits))
}

/// Report pages as last read, each under its cohort and query (filters and page), with how
/// many changes the cohort's enrolments had had: any change to any of them moves it.
pub type KeptReports = Kept<(CohortId, String), ReportRecords>;

/// The most report pages one process keeps.
pub const REPORTS_KEPT: usize = 200;

/// One page of a cohort's report as read from the database, with the figures worked out from
/// its counts.
struct PageReading<'a> {
    /// The filter the counts and rows were read with.
    filter: db::Filter<'a>,
    cohort: Cohort,
    /// The codes of the standard's criteria, in order: the matrix's columns.
    codes: Vec<String>,
    records: Arc<ReportRecords>,
}

/// The records of one report page: what is kept between requests.
pub struct ReportRecords {
    /// The cohort's enrolments counted by assessor and status.
    groups: Vec<db::Group>,
    /// Those the filter keeps, summed up.
    summary: Summary,
    paging: Paging,
    /// The enrolments this page shows.
    shown: Arc<Vec<ReportRow>>,
}

impl<'a> PageReading<'a> {
    /// Reads cohort `id` and its criteria, then its counts and the page of rows that the counts
    /// and `page` place: from `kept` under `key`, when there is one, while the cohort's
    /// revision stands still.
    async fn read(
        state: &AppState,
        standards: &Standards,
        kept: &KeptReports,
        key: Option<(CohortId, String)>,
        id: CohortId,
        filter: db::Filter<'a>,
        page: Option<usize>,
    ) -> AppResult<Self> {
        let mut conn = state.pool.acquire().await?;
        let cohort = cohorts_db::find(&mut conn, id)
            .await?
            .ok_or(AppError::NotFound)?;
        let codes = standards
            .version(&mut conn, cohort.standard_id)
            .await?
            .codes();
        let kept_as = match key {
            Some(key) => Some((key, db::cohort_revision(&mut conn, id).await?)),
            None => None,
        };
        let records = kept
            .get_or_read(kept_as, || ReportRecords::read(&mut conn, id, filter, page))
            .await?;
        Ok(Self {
            filter,
            cohort,
            codes,
            records,
        })
    }

    /// The page, its links keeping the query's filters: to the pages either side of it, at
    /// `path`, and to the exports beside it; with the problems of the filters typed, and the
    /// moment and thresholds waits are shown against.
    fn render(
        self,
        layout: Layout,
        query: &ReportQuery,
        path: &str,
        errors: FormErrors,
        (now, thresholds): (OffsetDateTime, WaitingThresholds),
    ) -> ReportPage {
        let filter = self.filter;
        let records = &self.records;
        ReportPage {
            layout: layout.section(Section::Cohorts),
            pages: records
                .paging
                .links(records.shown.len(), |page| query.link(path, Some(page))),
            csv_link: query.link(&format!("{path}.csv"), None),
            xlsx_link: query.link(&format!("{path}.xlsx"), None),
            statuses: status_choices(filter),
            sort_by_progress: filter.by_progress,
            cohort: self.cohort,
            codes: self.codes,
            rows: records.shown.clone(),
            total: records.summary.total,
            bars: records.summary.bars.clone(),
            percent_competent: records.summary.percent_competent,
            percent_verified: records.summary.percent_verified,
            assessors: assessor_choices(&records.groups, filter),
            name: query.name.clone(),
            waiting: query.waiting.clone(),
            errors,
            now,
            thresholds,
        }
    }
}

/// The summary above the report: the chart and the figures, over the enrolments the filter
/// keeps.
impl ReportRecords {
    /// Reads the cohort's counts, then the page of rows that the counts and `page` place.
    async fn read(
        conn: &mut sqlx::PgConnection,
        id: CohortId,
        filter: db::Filter<'_>,
        page: Option<usize>,
    ) -> AppResult<Self> {
        let groups = db::groups(&mut *conn, id).await?;
        // Names and waits are not in the counts: then the rows kept are counted instead.
        let summary = if filter.is_narrow() {
            Summary::of(&db::narrowed_groups(&mut *conn, id, filter).await?, filter)
        } else {
            Summary::of(&groups, filter)
        };
        let paging = Paging::new(page, PAGE_SIZE, summary.total);
        let shown = db::rows(&mut *conn, id, filter, PAGE_SIZE, paging.offset()).await?;
        Ok(Self {
            groups,
            summary,
            paging,
            shown: Arc::new(shown),
        })
    }
}

struct Summary {
    bars: Vec<Bar>,
    total: usize,
    percent_competent: usize,
    percent_verified: usize,
}

impl Summary {
    /// Counts the enrolments of `groups` that `filter` keeps at each status.
    fn of(groups: &[db::Group], filter: db::Filter<'_>) -> Self {
        let count = |status: EnrolmentStatus| kept_at(groups, filter, status);
        let counts: Vec<usize> = EnrolmentStatus::ALL.iter().map(|s| count(*s)).collect();
        let total: usize = counts.iter().sum();
        let percent = |n: usize| (n * 100).checked_div(total).unwrap_or(0);
        let verified = count(EnrolmentStatus::Verified);
        let competent = count(EnrolmentStatus::Competent) + verified;
        Self {
            bars: bars(&counts),
            total,
            percent_competent: percent(competent),
            percent_verified: percent(verified),
        }
    }
}

/// How many enrolments of `groups` are at `status` and kept by `filter`.
fn kept_at(groups: &[db::Group], filter: db::Filter<'_>, status: EnrolmentStatus) -> usize {
    groups
        .iter()
        .filter(|g| {
            g.status == status
                && filter.assessor.is_none_or(|a| g.assessor_id == Some(a))
                && filter.status.is_none_or(|s| s == g.status)
        })
        .map(|g| usize::try_from(g.enrolments).unwrap_or(0))
        .sum()
}

/// A bar for each of [`EnrolmentStatus::ALL`] from its count, the longest 300 wide.
fn bars(counts: &[usize]) -> Vec<Bar> {
    let max = counts.iter().copied().max().unwrap_or(0).max(1);
    EnrolmentStatus::ALL
        .iter()
        .zip(counts)
        .enumerate()
        .map(|(i, (s, count))| Bar {
            label: s.label(),
            status: s.as_str(),
            count: *count,
            y: i * 28,
            width: count * 300 / max,
        })
        .collect()
}

/// Each assessor in `groups` once, in the groups' order, the one `filter` keeps selected.
fn assessor_choices(groups: &[db::Group], filter: db::Filter<'_>) -> Vec<Choice> {
    let mut assessors: Vec<Choice> = Vec::new();
    for group in groups {
        if let (Some(id), Some(name)) = (group.assessor_id, &group.assessor_name)
            && !assessors.iter().any(|a| a.value == id.to_string())
        {
            assessors.push(Choice {
                value: id.to_string(),
                label: name.clone(),
                selected: filter.assessor == Some(id),
            });
        }
    }
    assessors
}

/// Each status, the one `filter` keeps selected.
fn status_choices(filter: db::Filter<'_>) -> Vec<Choice> {
    EnrolmentStatus::ALL
        .iter()
        .map(|s| Choice {
            value: s.as_str().into(),
            label: s.label().into(),
            selected: filter.status == Some(*s),
        })
        .collect()
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
    standards: Standards,
    Path(id): Path<CohortId>,
    Query(query): Query<ReportQuery>,
) -> AppResult<Response> {
    let selection = selection(&state, &standards, id, &query).await?;
    let body = csv_body(&selection)?;
    Ok(download(
        body,
        "text/csv; charset=utf-8",
        &selection.cohort,
        &selection.head,
        state.clock.now(),
        "csv",
    ))
}

/// The selection as CSV with CRLF line ends: a header, then a record per enrolment kept.
fn csv_body(selection: &Selection) -> AppResult<Vec<u8>> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    writer
        .write_record(csv_header(selection))
        .map_err(|e| AppError::Internal(e.into()))?;
    for row in &selection.kept {
        writer
            .write_record(csv_record(row))
            .map_err(|e| AppError::Internal(e.into()))?;
    }
    writer
        .into_inner()
        .map_err(|e| AppError::Internal(anyhow::anyhow!(e.to_string())))
}

/// The CSV's header: the [`COLUMNS`], then each criterion's code.
fn csv_header(selection: &Selection) -> Vec<String> {
    let mut header: Vec<String> = COLUMNS.iter().map(|c| (*c).to_owned()).collect();
    header.extend(selection.standard.codes());
    header
}

/// An enrolment's CSV record: its values, then its status for each criterion.
fn csv_record(row: &ReportRow) -> Vec<String> {
    // Text people typed could start a formula in a spreadsheet; the rest is ours.
    let mut record: Vec<String> = row.values().iter().map(|v| csv_cell(v)).collect();
    record.extend(row.cells.iter().map(|c| c.as_str().to_owned()));
    record
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
