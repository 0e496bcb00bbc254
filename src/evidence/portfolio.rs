//! The portfolio of an enrolment: every criterion with its status and the evidence claiming
//! it, and every evidence version.

use axum::extract::{Path, State};
use uuid::Uuid;

use super::db;
use super::views::{CurrentClaim, PortfolioCriterion, PortfolioPage};
use crate::assessments::db as assessments_db;
use crate::assessments::status::{CriterionStatus, EnrolmentStatus};
use crate::auth::session::CurrentUser;
use crate::cohorts::db as cohorts_db;
use crate::error::{AppError, AppResult};
use crate::standards::model::CriterionKind;
use crate::state::AppState;
use crate::users::model::Role;
use crate::web::layout::{Layout, Section};

/// `GET /enrolments/{id}`: for its candidate, assessor and IQA, and admins.
pub async fn show(
    State(state): State<AppState>,
    user: CurrentUser,
    layout: Layout,
    Path(id): Path<Uuid>,
) -> AppResult<PortfolioPage> {
    page(&state, &user, layout, id).await
}

/// The portfolio page of enrolment `id` as `user` may see it.
pub async fn page(
    state: &AppState,
    user: &CurrentUser,
    layout: Layout,
    id: Uuid,
) -> AppResult<PortfolioPage> {
    let mut conn = state.pool.acquire().await?;
    let enrolment = cohorts_db::find_visible(&mut conn, id, user.viewer())
        .await?
        .ok_or(AppError::NotFound)?;
    let is_candidate = enrolment.is_candidate(user.id);
    let progress = assessments_db::find(&mut conn, id).await?;
    let standard = state
        .standards
        .version(&mut conn, enrolment.standard_id)
        .await?;
    let versions = db::list_for_enrolment(&mut conn, id, is_candidate, None, &standard).await?;
    let status = progress
        .as_ref()
        .map_or(EnrolmentStatus::NotStarted, |p| p.status);
    let criteria: Vec<PortfolioCriterion> = standard
        .criteria()
        .enumerate()
        .map(|(n, criterion)| {
            let mut evidence: Vec<CurrentClaim> = versions
                .iter()
                .filter(|v| v.is_current() && v.claimed.contains(&criterion.id))
                .map(|v| CurrentClaim {
                    evidence_id: v.id,
                    title: v.title.clone(),
                    version: v.version,
                })
                .collect();
            evidence.sort_by(|a, b| (&a.title, a.evidence_id).cmp(&(&b.title, b.evidence_id)));
            PortfolioCriterion {
                kind: criterion.kind,
                code: criterion.code.clone(),
                text: criterion.text.clone(),
                status: progress
                    .as_ref()
                    .and_then(|p| p.criteria_statuses.get(n).copied())
                    .unwrap_or(CriterionStatus::NotStarted),
                evidence,
            }
        })
        .collect();
    let met_of = |kind: CriterionKind| {
        let of_kind = criteria.iter().filter(|c| c.kind == kind);
        (
            of_kind
                .clone()
                .filter(|c| c.status == CriterionStatus::Met)
                .count(),
            of_kind.count(),
        )
    };
    let (pc, k) = (
        met_of(CriterionKind::Performance),
        met_of(CriterionKind::Knowledge),
    );
    let (performance, knowledge) = criteria
        .into_iter()
        .partition(|c| c.kind == CriterionKind::Performance);
    let section = if is_candidate {
        Section::Home
    } else {
        Section::None
    };
    Ok(PortfolioPage {
        layout: layout.section(section),
        performance,
        knowledge,
        pc,
        k,
        status,
        can_add: is_candidate && !enrolment.is_withdrawn(),
        can_withdraw: user.has_role(Role::Admin) && !enrolment.is_withdrawn(),
        can_sign_off: enrolment.assessor_id == Some(user.id.0)
            && status == EnrolmentStatus::ReadyForSignOff,
        errors: crate::web::forms::FormErrors::default(),
        is_candidate,
        enrolment,
        versions,
    })
}
