//! The portfolio of an enrolment: every criterion with its status and the evidence claiming
//! it, and every evidence version. An admin withdraws an enrolment from this page.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::db::{self, VersionSummary};
use super::views::{CurrentClaim, PortfolioCriterion, PortfolioPage, ProgressChart};
use crate::audit::{self, Actor, NewAuditEvent};
use crate::auth::csrf::CsrfForm;
use crate::cohorts::db::{self as cohorts_db, Enrolment};
use crate::error::{AppError, AppResult};
use crate::identity::CurrentUser;
use crate::identity::Role;
use crate::ids::EnrolmentId;
use crate::iqa_actions::{self, Disagreement};
use crate::standards::cache::{Published, Standards};
use crate::standards::model::{Criterion, CriterionKind};
use crate::state::AppState;
use crate::status::db::Progress;
use crate::status::model::{CriterionStatus, EnrolmentStatus, weekly_met};
use time::OffsetDateTime;

use crate::identity::UserId;
use crate::kept::Kept;
use crate::web::client_ip::ClientIp;
use crate::web::flash;
use crate::web::layout::{Layout, Section};

/// The most weeks the progress chart shows: a year.
const CHART_WEEKS: usize = 52;

/// `GET /enrolments/{id}`: for its candidate, assessor and IQA, and admins.
pub async fn show(
    State(state): State<AppState>,
    memory: InMemory,
    user: CurrentUser,
    layout: Layout,
    Path(id): Path<EnrolmentId>,
) -> AppResult<PortfolioPage> {
    let portfolio = Portfolio::read(&state, &memory, &user, id).await?;
    Ok(portfolio.into_page(layout, &user))
}

/// What a portfolio is drawn from besides the database: the standards, and the portfolios
/// kept in memory.
#[derive(axum::extract::FromRequestParts)]
pub struct InMemory {
    standards: Standards,
    kept: KeptPortfolios,
}

/// Portfolios as their viewers last saw them, under the enrolment's revision then: the page
/// most opened is drawn from memory while one short read finds the revision unchanged.
pub type KeptPortfolios = Kept<(EnrolmentId, UserId), Records>;

/// The most portfolios one process keeps, each as one viewer may see it.
pub const PORTFOLIOS_KEPT: usize = 5_000;

#[derive(Debug, Deserialize)]
pub struct WithdrawForm {
    #[serde(default)]
    reason: String,
}

/// `POST /enrolments/{id}/withdraw`: ends an enrolment with a reason; its records stay.
pub async fn withdraw(
    State(state): State<AppState>,
    memory: InMemory,
    ClientIp(ip): ClientIp,
    admin: CurrentUser,
    layout: Layout,
    Path(id): Path<EnrolmentId>,
    CsrfForm(form): CsrfForm<WithdrawForm>,
) -> AppResult<Response> {
    let reason = form.reason.trim();
    if reason.is_empty() {
        let portfolio = Portfolio::read(&state, &memory, &admin, id).await?;
        let mut page = portfolio.into_page(layout, &admin);
        page.errors
            .add("reason", "Give the reason for withdrawing the enrolment");
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    let mut tx = state.pool.begin().await?;
    let enrolment = cohorts_db::find_visible(&mut tx, id, admin.viewer())
        .await?
        .ok_or(AppError::NotFound)?;
    if cohorts_db::withdraw(&mut tx, id, reason, state.clock.now()).await? {
        crate::status::db::refresh(&mut tx, id).await?;
        audit::record(
            &mut tx,
            NewAuditEvent {
                actor: &Actor::user(&admin, ip),
                action: "enrolment.withdrawn",
                entity_type: "enrolment",
                entity_id: id.to_string(),
                detail: json!({ "reason": reason }),
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(flash::redirect(
        &format!("/enrolments/{id}"),
        &format!(
            "{}'s enrolment is withdrawn; its records stay.",
            enrolment.candidate_name
        ),
    ))
}

/// What the portfolio page is drawn from, as read for one viewer.
struct Portfolio {
    enrolment: Enrolment,
    /// The viewer is the enrolment's candidate: the page is their home and shows their drafts.
    is_candidate: bool,
    standard: Arc<Published>,
    records: Arc<Records>,
    /// Criteria met week by week, up to today.
    progress_chart: Option<ProgressChart>,
}

/// The records of a portfolio as one viewer may see them: what is kept between requests.
#[derive(Debug)]
pub struct Records {
    /// The enrolment's stored status; `None` before it has one.
    progress: Option<Progress>,
    versions: Vec<VersionSummary>,
    met_history: Vec<(OffsetDateTime, i32)>,
    /// The IQA's disagreement with the newest sign-off, with its actions and the answers.
    disagreement: Option<Disagreement>,
    /// Sampled evidence whose IQA actions wait for answers; read for the assessor and IQA.
    open_samples: Vec<iqa_actions::OpenSample>,
}

impl Portfolio {
    /// Reads enrolment `id`, if `user` may see it, with its stored progress, its standard
    /// version and the evidence versions `user` may see: from `kept` when the enrolment's
    /// revision has not moved since they were read.
    async fn read(
        state: &AppState,
        memory: &InMemory,
        user: &CurrentUser,
        id: EnrolmentId,
    ) -> AppResult<Self> {
        let InMemory { standards, kept } = memory;
        let mut conn = state.pool.acquire().await?;
        let (enrolment, revision) = db::portfolio_revision(&mut conn, id, user.viewer())
            .await?
            .ok_or(AppError::NotFound)?;
        let standard = standards.version(&mut conn, enrolment.standard_id).await?;
        let kept_as = revision.map(|revision| ((id, user.id), revision));
        let records = kept
            .get_or_read(kept_as, || {
                Records::read(
                    &mut conn,
                    &standard,
                    user,
                    id,
                    enrolment.is_candidate(user.id),
                )
            })
            .await?;
        let progress_chart = records.met_history.first().and_then(|(since, _)| {
            let total = i32::try_from(standard.criteria().count()).unwrap_or(i32::MAX);
            let weeks = weekly_met(&records.met_history, *since, state.clock.now(), CHART_WEEKS);
            ProgressChart::new(weeks, total)
        });
        Ok(Self {
            is_candidate: enrolment.is_candidate(user.id),
            enrolment,
            standard,
            records,
            progress_chart,
        })
    }

    /// The page: the criteria by kind with how many of each are met, and what `user` may do.
    fn into_page(self, layout: Layout, user: &CurrentUser) -> PortfolioPage {
        let records = &self.records;
        let status = records
            .progress
            .as_ref()
            .map_or(EnrolmentStatus::NotStarted, |p| p.status);
        let criteria = self.criteria();
        let (pc, k) = (
            met_of(&criteria, CriterionKind::Performance),
            met_of(&criteria, CriterionKind::Knowledge),
        );
        let (performance, knowledge) = criteria
            .into_iter()
            .partition(|c| c.kind == CriterionKind::Performance);
        let section = if self.is_candidate {
            Section::Home
        } else {
            Section::None
        };
        let enrolment = self.enrolment;
        PortfolioPage {
            layout: layout.section(section),
            performance,
            knowledge,
            pc,
            k,
            status,
            can_add: self.is_candidate && !enrolment.is_withdrawn(),
            can_withdraw: user.has_role(Role::Admin) && !enrolment.is_withdrawn(),
            is_assessor: enrolment.assessed_by(user.viewer()),
            can_sign_off: enrolment.assessed_by(user.viewer())
                && status == EnrolmentStatus::ReadyForSignOff
                && records
                    .disagreement
                    .as_ref()
                    .is_none_or(|d| d.unanswered() == 0)
                && records.open_samples.is_empty(),
            disagreement: records.disagreement.clone(),
            open_samples: records.open_samples.clone(),
            versions: records.versions.clone(),
            progress_chart: self.progress_chart,
            errors: crate::forms::FormErrors::default(),
            is_candidate: self.is_candidate,
            enrolment,
        }
    }

    /// Every criterion of the standard, in its order, with its stored status and the current
    /// evidence versions claiming it.
    /// A criterion is not started when nothing is stored for it: statuses are stored by
    /// position, so they are used only when there is one for each criterion.
    fn criteria(&self) -> Vec<PortfolioCriterion> {
        let criteria: Vec<&Criterion> = self.standard.criteria().collect();
        let stored = self
            .records
            .progress
            .as_ref()
            .map(|p| p.criteria_statuses.as_slice())
            .filter(|statuses| statuses.len() == criteria.len())
            .unwrap_or_default();
        criteria
            .into_iter()
            .enumerate()
            .map(|(n, criterion)| PortfolioCriterion {
                kind: criterion.kind,
                code: criterion.code.clone(),
                text: criterion.text.clone(),
                status: stored
                    .get(n)
                    .copied()
                    .unwrap_or(CriterionStatus::NotStarted),
                evidence: current_claims(&self.records.versions, criterion),
            })
            .collect()
    }
}

impl Records {
    /// Reads the records of enrolment `id` that `user` may see (`is_candidate`: as its
    /// candidate).
    async fn read(
        conn: &mut sqlx::PgConnection,
        standard: &Published,
        user: &CurrentUser,
        id: EnrolmentId,
        is_candidate: bool,
    ) -> AppResult<Self> {
        let reading = db::read_portfolio(conn, id, user.viewer())
            .await?
            .ok_or(AppError::NotFound)?;
        let progress = reading.progress;
        // Read only when the stored status says there is one: most portfolios have none.
        let disagreement = if progress.as_ref().is_some_and(|p| p.iqa_disagreed) {
            iqa_actions::open_disagreement(conn, id).await?
        } else {
            None
        };
        // Candidates open their portfolio most, and answering is not theirs: not read for them.
        let open_samples = if is_candidate {
            Vec::new()
        } else {
            iqa_actions::db::open_sample_actions(conn, id).await?
        };
        Ok(Self {
            progress,
            versions: db::summarise(reading.versions, standard),
            met_history: reading.met_history,
            disagreement,
            open_samples,
        })
    }
}

/// The versions whose claims on `criterion` count: current versions claiming it, and
/// superseded ones that met it (met is kept). By title as people read it (letter case aside),
/// then id, so the order is stable.
fn current_claims(versions: &[VersionSummary], criterion: &Criterion) -> Vec<CurrentClaim> {
    let mut evidence: Vec<CurrentClaim> = versions
        .iter()
        .filter(|v| {
            (v.is_current() && v.claimed.contains(&criterion.id)) || v.kept.contains(&criterion.id)
        })
        .map(|v| CurrentClaim {
            evidence_id: v.id,
            title: v.title.clone(),
            version: v.version,
            kept: v.superseded,
        })
        .collect();
    evidence.sort_by_cached_key(|c| (c.title.to_lowercase(), c.title.clone(), c.evidence_id));
    evidence
}

/// How many criteria of `kind` are met, of how many.
fn met_of(criteria: &[PortfolioCriterion], kind: CriterionKind) -> (usize, usize) {
    let of_kind = criteria.iter().filter(|c| c.kind == kind);
    (
        of_kind
            .clone()
            .filter(|c| c.status == CriterionStatus::Met)
            .count(),
        of_kind.count(),
    )
}
