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

/// The most weeks the progress chart shows: a year.
const CHART_WEEKS: usize = 52;
use crate::web::client_ip::ClientIp;
use crate::web::flash;
use crate::web::layout::{Layout, Section};

/// `GET /enrolments/{id}`: for its candidate, assessor and IQA, and admins.
pub async fn show(
    State(state): State<AppState>,
    standards: Standards,
    user: CurrentUser,
    layout: Layout,
    Path(id): Path<EnrolmentId>,
) -> AppResult<PortfolioPage> {
    page(&state, &standards, &user, layout, id).await
}

/// The portfolio page of enrolment `id` as `user` may see it.
pub async fn page(
    state: &AppState,
    standards: &Standards,
    user: &CurrentUser,
    layout: Layout,
    id: EnrolmentId,
) -> AppResult<PortfolioPage> {
    let portfolio = Portfolio::read(state, standards, user, id).await?;
    Ok(portfolio.into_page(layout, user))
}

#[derive(Debug, Deserialize)]
pub struct WithdrawForm {
    #[serde(default)]
    reason: String,
}

/// `POST /enrolments/{id}/withdraw`: ends an enrolment with a reason; its records stay.
pub async fn withdraw(
    State(state): State<AppState>,
    standards: Standards,
    ClientIp(ip): ClientIp,
    admin: CurrentUser,
    layout: Layout,
    Path(id): Path<EnrolmentId>,
    CsrfForm(form): CsrfForm<WithdrawForm>,
) -> AppResult<Response> {
    let reason = form.reason.trim();
    if reason.is_empty() {
        let mut page = page(&state, &standards, &admin, layout, id).await?;
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
    /// The enrolment's stored status; `None` before it has one.
    progress: Option<Progress>,
    standard: Arc<Published>,
    versions: Vec<VersionSummary>,
    /// The IQA's disagreement with the newest sign-off, with its actions and the answers.
    disagreement: Option<Disagreement>,
    /// Criteria met week by week.
    progress_chart: Option<ProgressChart>,
    /// Sampled evidence whose IQA actions wait for answers; read for the assessor and IQA.
    open_samples: Vec<iqa_actions::OpenSample>,
}

impl Portfolio {
    /// Reads enrolment `id`, if `user` may see it, with its stored progress, its standard
    /// version and the evidence versions `user` may see.
    async fn read(
        state: &AppState,
        standards: &Standards,
        user: &CurrentUser,
        id: EnrolmentId,
    ) -> AppResult<Self> {
        let mut conn = state.pool.acquire().await?;
        let reading = db::read_portfolio(&mut conn, id, user.viewer())
            .await?
            .ok_or(AppError::NotFound)?;
        let enrolment = reading.enrolment;
        let is_candidate = enrolment.is_candidate(user.id);
        let progress = reading.progress;
        let standard = standards.version(&mut conn, enrolment.standard_id).await?;
        let versions = db::summarise(reading.versions, &standard);
        let progress_chart = reading.met_history.first().and_then(|(since, _)| {
            let total = i32::try_from(standard.criteria().count()).unwrap_or(i32::MAX);
            let weeks = weekly_met(&reading.met_history, *since, state.clock.now(), CHART_WEEKS);
            ProgressChart::new(weeks, total)
        });
        // Read only when the stored status says there is one: most portfolios have none.
        let disagreement = if progress.as_ref().is_some_and(|p| p.iqa_disagreed) {
            iqa_actions::open_disagreement(&mut conn, id).await?
        } else {
            None
        };
        // Candidates open their portfolio most, and answering is not theirs: not read for them.
        let open_samples = if is_candidate {
            Vec::new()
        } else {
            iqa_actions::db::open_sample_actions(&mut conn, id).await?
        };
        Ok(Self {
            enrolment,
            is_candidate,
            progress,
            standard,
            versions,
            disagreement,
            progress_chart,
            open_samples,
        })
    }

    /// The page: the criteria by kind with how many of each are met, and what `user` may do.
    fn into_page(self, layout: Layout, user: &CurrentUser) -> PortfolioPage {
        let status = self
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
            is_assessor: enrolment.assessor_id == Some(user.id),
            can_sign_off: enrolment.assessor_id == Some(user.id)
                && status == EnrolmentStatus::ReadyForSignOff
                && self
                    .disagreement
                    .as_ref()
                    .is_none_or(|d| d.unanswered() == 0)
                && self.open_samples.is_empty(),
            disagreement: self.disagreement,
            open_samples: self.open_samples,
            progress_chart: self.progress_chart,
            errors: crate::forms::FormErrors::default(),
            is_candidate: self.is_candidate,
            enrolment,
            versions: self.versions,
        }
    }

    /// Every criterion of the standard, in its order, with its stored status and the current
    /// evidence versions claiming it.
    /// A criterion is not started when nothing is stored for it: statuses are stored by
    /// position, so they are used only when there is one for each criterion.
    fn criteria(&self) -> Vec<PortfolioCriterion> {
        let criteria: Vec<&Criterion> = self.standard.criteria().collect();
        let stored = self
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
                evidence: current_claims(&self.versions, criterion),
            })
            .collect()
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
