//! The assessor's caseload: their enrolments with the claims waiting for judgement, the
//! longest-waiting first, and a link straight to the next evidence to judge.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use serde::Deserialize;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::status::{self, EnrolmentStatus};
use crate::auth::session::CurrentUser;
use crate::error::AppResult;
use crate::state::AppState;
use crate::web::layout::{Layout, Section};

/// One enrolment of the caseload.
#[derive(Debug, Clone)]
pub struct CaseRow {
    pub enrolment_id: Uuid,
    pub candidate_name: String,
    pub cohort_id: Uuid,
    pub cohort_name: String,
    pub awaiting: i64,
    pub oldest_waiting: Option<OffsetDateTime>,
    pub next_evidence: Option<Uuid>,
    pub status: EnrolmentStatus,
    /// What the IQA asked for when they disagreed with the last sign-off.
    pub iqa_actions: Option<String>,
}

impl CaseRow {
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

/// The assessor's active enrolments, longest-waiting first, without their statuses.
pub async fn list(conn: &mut PgConnection, assessor: Uuid) -> sqlx::Result<Vec<CaseRow>> {
    let rows = sqlx::query!(
        r#"
        with mine as materialized (
            select e.enrolment_id, u.display_name as candidate_name, co.cohort_id, co.name as cohort_name
              from enrolment e
              join app_user u on u.user_id = e.candidate_id
              join cohort co using (cohort_id)
             where e.assessor_id = $1 and e.withdrawn_at is null
        ),
        current_version as materialized (
            select distinct on (ev.item_id) ev.evidence_id, ev.enrolment_id, ev.submitted_at
              from evidence ev
             where ev.enrolment_id in (select enrolment_id from mine) and ev.state = 'submitted'
             order by ev.item_id, ev.version desc
        ),
        -- Counted per version by index lookups: a join here lets the planner read every claim
        -- and judgement of every cohort, so the page would slow down as other cohorts grow.
        unjudged as materialized (
            select cv.enrolment_id, cv.evidence_id, cv.submitted_at,
                   (select count(*) from evidence_claim cl
                     where cl.evidence_id = cv.evidence_id
                       and not exists (select 1 from judgement j
                                        where j.evidence_id = cl.evidence_id
                                          and j.criterion_id = cl.criterion_id)) as claims
              from current_version cv
        ),
        waiting as materialized (
            select u.enrolment_id, sum(u.claims)::bigint as awaiting, min(u.submitted_at) as oldest,
                   (array_agg(u.evidence_id order by u.submitted_at, u.evidence_id))[1] as next_evidence
              from unjudged u
             where u.claims > 0
             group by u.enrolment_id
        )
        select m.enrolment_id as "enrolment_id!", m.candidate_name as "candidate_name!",
               m.cohort_id as "cohort_id!", m.cohort_name as "cohort_name!",
               coalesce(w.awaiting, 0) as "awaiting!",
               w.oldest as oldest_waiting,
               w.next_evidence,
               (select case when r.decision = 'disagree' then r.actions end
                  from sign_off so left join review r using (sign_off_id)
                 where so.enrolment_id = m.enrolment_id
                 order by so.sequence desc limit 1) as iqa_actions
          from mine m
          left join waiting w on w.enrolment_id = m.enrolment_id
         order by w.oldest nulls last, lower(m.candidate_name)
        "#,
        assessor
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| CaseRow {
            status: EnrolmentStatus::NotStarted,
            enrolment_id: r.enrolment_id,
            candidate_name: r.candidate_name,
            cohort_id: r.cohort_id,
            cohort_name: r.cohort_name,
            awaiting: r.awaiting,
            oldest_waiting: r.oldest_waiting,
            next_evidence: r.next_evidence,
            iqa_actions: r.iqa_actions,
        })
        .collect())
}

/// Fills in the status of each row, in one query.
async fn with_statuses(
    conn: &mut PgConnection,
    mut rows: Vec<CaseRow>,
) -> sqlx::Result<Vec<CaseRow>> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.enrolment_id).collect();
    let progress = status::progress_of_many(conn, &ids).await?;
    for row in &mut rows {
        row.status = progress
            .get(&row.enrolment_id)
            .map_or(EnrolmentStatus::NotStarted, |p| p.status);
    }
    Ok(rows)
}

/// Enrolments one page of the caseload shows.
const PAGE_SIZE: usize = 100;

#[derive(Debug, Default, Deserialize)]
pub struct CaseloadQuery {
    #[serde(default)]
    cohort: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    page: Option<usize>,
}

/// A filter option.
#[derive(Debug, Clone)]
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// Where this page of the caseload stands in the whole.
#[derive(Debug, Clone)]
pub struct PageLinks {
    pub first: usize,
    pub last: usize,
    pub total: usize,
    pub previous: Option<String>,
    pub next: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "assessments/caseload.html")]
pub struct CaseloadPage {
    pub layout: Layout,
    pub rows: Vec<CaseRow>,
    pub pages: PageLinks,
    pub cohorts: Vec<Choice>,
    pub statuses: Vec<Choice>,
    pub now: OffsetDateTime,
    pub total_awaiting: i64,
}

const STATUSES: [EnrolmentStatus; 5] = [
    EnrolmentStatus::NotStarted,
    EnrolmentStatus::InProgress,
    EnrolmentStatus::ReadyForSignOff,
    EnrolmentStatus::Competent,
    EnrolmentStatus::Verified,
];

/// `GET /caseload`.
pub async fn show(
    State(state): State<AppState>,
    user: CurrentUser,
    layout: Layout,
    Query(query): Query<CaseloadQuery>,
) -> AppResult<CaseloadPage> {
    let mut conn = state.pool.acquire().await?;
    let all = list(&mut conn, user.id.0).await?;
    let mut cohorts: Vec<Choice> = Vec::new();
    for row in &all {
        if !cohorts.iter().any(|c| c.value == row.cohort_id.to_string()) {
            cohorts.push(Choice {
                value: row.cohort_id.to_string(),
                label: row.cohort_name.clone(),
                selected: query.cohort == row.cohort_id.to_string(),
            });
        }
    }
    let statuses = STATUSES
        .into_iter()
        .map(|s| Choice {
            value: s.as_str().to_owned(),
            label: s.label().to_owned(),
            selected: query.status == s.as_str(),
        })
        .collect();
    let mut rows: Vec<CaseRow> = all
        .into_iter()
        .filter(|r| query.cohort.is_empty() || r.cohort_id.to_string() == query.cohort)
        .collect();
    // Statuses cost a query over every criterion of every enrolment: only the page shown needs
    // them, unless the list is filtered by status.
    if !query.status.is_empty() {
        rows = with_statuses(&mut conn, rows)
            .await?
            .into_iter()
            .filter(|r| r.status.as_str() == query.status)
            .collect();
    }
    let total = rows.len();
    let total_awaiting = rows.iter().map(|r| r.awaiting).sum();
    // A page past the end shows the last one; absurd numbers cannot overflow.
    let last_page = total.div_ceil(PAGE_SIZE).max(1);
    let page = query.page.unwrap_or(1).clamp(1, last_page);
    let shown: Vec<CaseRow> = rows
        .into_iter()
        .skip((page - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
        .collect();
    let shown = if query.status.is_empty() {
        with_statuses(&mut conn, shown).await?
    } else {
        shown
    };
    let link = |page: usize| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("cohort", &query.cohort)
            .append_pair("status", &query.status)
            .append_pair("page", &page.to_string());
        format!("/caseload?{}", q.finish())
    };
    let pages = PageLinks {
        first: if total == 0 {
            0
        } else {
            (page - 1) * PAGE_SIZE + 1
        },
        last: ((page - 1) * PAGE_SIZE + shown.len()).min(total),
        total,
        previous: (page > 1).then(|| link(page - 1)),
        next: (page * PAGE_SIZE < total).then(|| link(page + 1)),
    };
    Ok(CaseloadPage {
        layout: layout.section(Section::Caseload),
        total_awaiting,
        rows: shown,
        pages,
        cohorts,
        statuses,
        now: state.clock.now(),
    })
}
