//! The assessor's caseload: their enrolments with the claims waiting for judgement, the
//! longest-waiting first, and a link straight to the next evidence to judge.

use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use serde::Deserialize;
use time::OffsetDateTime;

use super::db;
use crate::config::{WaitLevel, WaitingThresholds};
use crate::error::AppResult;
use crate::forms::FormErrors;
use crate::identity::{CurrentUser, UserId};
use crate::ids::{CohortId, EnrolmentId, EvidenceId};
use crate::kept::Kept;
use crate::state::AppState;
use crate::status::model::EnrolmentStatus;
use crate::web::choice::Choice;
use crate::web::filters;
use crate::web::layout::{Layout, Section};
use crate::web::paging::{PageLinks, Paging};

/// One enrolment of the caseload.
#[derive(Debug, Clone)]
pub struct CaseRow {
    pub enrolment_id: EnrolmentId,
    pub candidate_name: String,
    pub cohort_name: String,
    pub awaiting: i64,
    pub oldest_waiting: Option<OffsetDateTime>,
    pub next_evidence: Option<EvidenceId>,
    pub status: EnrolmentStatus,
    /// What the IQA asked for when they disagreed with the last sign-off, action by action,
    /// and how many of the actions wait for an answer.
    pub iqa_actions: Option<Vec<String>>,
    pub iqa_unanswered: Option<i64>,
}

impl CaseRow {
    /// How the oldest claim's wait reads against the thresholds: green, amber or red.
    pub fn wait_level(
        &self,
        now: &OffsetDateTime,
        thresholds: &WaitingThresholds,
    ) -> Option<WaitLevel> {
        thresholds.level(self.oldest_waiting, *now)
    }

    /// How long the oldest claim has waited, in words.
    pub fn waiting_text(&self, now: &OffsetDateTime) -> String {
        match self.oldest_waiting {
            None => "Nothing waiting".to_owned(),
            Some(since) => match (*now - since).whole_days() {
                0 => "Today".to_owned(),
                1 => "1 day".to_owned(),
                days => format!("{days} days"),
            },
        }
    }
}

/// Enrolments one page of the caseload shows.
const PAGE_SIZE: usize = 100;

#[derive(Debug, Default, Deserialize)]
pub struct CaseloadQuery {
    #[serde(default)]
    cohort: String,
    #[serde(default)]
    status: String,
    /// A part of the candidate's name.
    #[serde(default)]
    name: String,
    /// Only enrolments whose oldest claim has waited at least this many days.
    #[serde(default)]
    waiting: String,
    #[serde(default)]
    page: Option<usize>,
}

#[derive(Template, WebTemplate)]
#[template(path = "assessments/caseload.html")]
pub struct CaseloadPage {
    pub layout: Layout,
    pub rows: Arc<Vec<CaseRow>>,
    pub pages: PageLinks,
    pub cohorts: Vec<Choice>,
    pub statuses: Vec<Choice>,
    pub now: OffsetDateTime,
    pub total_awaiting: i64,
    pub name: String,
    pub waiting: String,
    pub thresholds: WaitingThresholds,
    pub errors: FormErrors,
}

/// The statuses a caseload filters by: its enrolments are never withdrawn.
fn statuses() -> impl Iterator<Item = EnrolmentStatus> {
    EnrolmentStatus::ALL
        .into_iter()
        .filter(|s| *s != EnrolmentStatus::Withdrawn)
}

/// The choices of the caseload's filters: each cohort of the caseload once, and every status,
/// with the chosen ones selected.
fn filter_choices(
    groups: &[db::CaseloadGroup],
    cohort: Option<CohortId>,
    status: Option<EnrolmentStatus>,
) -> (Vec<Choice>, Vec<Choice>) {
    let mut cohorts: Vec<Choice> = Vec::new();
    for group in groups {
        if !cohorts
            .iter()
            .any(|c| c.value == group.cohort_id.to_string())
        {
            cohorts.push(Choice {
                value: group.cohort_id.to_string(),
                label: group.cohort_name.clone(),
                selected: cohort == Some(group.cohort_id),
            });
        }
    }
    let statuses = statuses()
        .map(|s| Choice {
            value: s.as_str().to_owned(),
            label: s.label().to_owned(),
            selected: status == Some(s),
        })
        .collect();
    (cohorts, statuses)
}

/// `GET /caseload`.
pub async fn show(
    State(state): State<AppState>,
    kept: KeptCaseloads,
    user: CurrentUser,
    layout: Layout,
    Query(query): Query<CaseloadQuery>,
) -> AppResult<CaseloadPage> {
    let mut conn = state.pool.acquire().await?;
    let groups = db::caseload_groups(&mut conn, user.id).await?;
    let cohort = groups
        .iter()
        .find(|g| g.cohort_id.to_string() == query.cohort)
        .map(|g| g.cohort_id);
    let status = EnrolmentStatus::parse(&query.status).filter(|s| statuses().any(|c| c == *s));
    let (cohorts, statuses) = filter_choices(&groups, cohort, status);
    let now = state.clock.now();
    let mut errors = FormErrors::default();
    let waiting = errors
        .check("waiting", filters::waiting_days(&query.waiting))
        .flatten();
    let name = filters::name_part(&query.name);
    let filter = db::CaseFilter {
        cohort,
        status,
        name: Some(name.as_str()).filter(|n| !n.is_empty()),
        waiting_since: waiting.map(|days| now - time::Duration::days(days)),
    };
    // A wait is measured from now: such a page is read afresh each time. Otherwise the page
    // is kept while no enrolment of the caseload changes, comes or goes.
    let kept_as = match filter.waiting_since {
        Some(_) => None,
        None => Some((
            (
                user.id,
                format!("{:?}|{:?}|{}|{:?}", cohort, status, name, query.page),
            ),
            db::caseload_revision(&mut conn, user.id).await?,
        )),
    };
    let records = kept
        .get_or_read(kept_as, || {
            CaseRecords::read(&mut conn, &user, &groups, filter, query.page)
        })
        .await?;
    let pages = records.paging.links(records.shown.len(), |page| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("cohort", &query.cohort)
            .append_pair("status", &query.status)
            .append_pair("name", &query.name)
            .append_pair("waiting", &query.waiting)
            .append_pair("page", &page.to_string());
        format!("/caseload?{}", q.finish())
    });
    Ok(CaseloadPage {
        layout: layout.section(Section::Caseload),
        total_awaiting: records.total_awaiting,
        rows: records.shown.clone(),
        pages,
        cohorts,
        statuses,
        now,
        name: query.name,
        waiting: query.waiting,
        thresholds: state.settings.waiting,
        errors,
    })
}

/// Caseload pages as last read, under their assessor and query (filters and page), with how
/// many changes the assessor's enrolments had had.
pub type KeptCaseloads = Kept<(UserId, String), CaseRecords>;

/// The most caseload pages one process keeps.
pub const CASELOADS_KEPT: usize = 1_000;

/// One page of a caseload: what is kept between requests.
pub struct CaseRecords {
    paging: Paging,
    total_awaiting: i64,
    shown: Arc<Vec<CaseRow>>,
}

impl CaseRecords {
    /// Counts what `filter` keeps of `user`'s caseload and reads the page of it that `page`
    /// asks for.
    async fn read(
        conn: &mut sqlx::PgConnection,
        user: &CurrentUser,
        groups: &[db::CaseloadGroup],
        filter: db::CaseFilter<'_>,
        page: Option<usize>,
    ) -> AppResult<Self> {
        // The counts by cohort and status answer most filters without reading a row.
        let (total, total_awaiting) = if filter.is_narrow() {
            let (enrolments, claims) = db::caseload_count(&mut *conn, user.id, filter).await?;
            (usize::try_from(enrolments).unwrap_or(0), claims)
        } else {
            let kept = groups.iter().filter(|g| {
                filter.cohort.is_none_or(|c| c == g.cohort_id)
                    && filter.status.is_none_or(|s| s == g.status)
            });
            (
                kept.clone()
                    .map(|g| usize::try_from(g.enrolments).unwrap_or(0))
                    .sum::<usize>(),
                kept.map(|g| g.claims_awaiting).sum(),
            )
        };
        let paging = Paging::new(page, PAGE_SIZE, total);
        let shown =
            db::caseload_page(&mut *conn, user.id, filter, PAGE_SIZE, paging.offset()).await?;
        Ok(Self {
            paging,
            total_awaiting,
            shown: Arc::new(shown),
        })
    }
}
