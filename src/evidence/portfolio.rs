//! The portfolio of an enrolment: every criterion with its status and the evidence claiming
//! it, and every evidence version.

use axum::extract::{Path, State};
use uuid::Uuid;

use super::db;
use super::views::{CriterionRow, PortfolioPage};
use crate::assessments::db as assessments_db;
use crate::assessments::status::EnrolmentStatus;
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
    let enrolment = cohorts_db::find_visible(&mut conn, id, user)
        .await?
        .ok_or(AppError::NotFound)?;
    let is_candidate = enrolment.is_candidate(user);
    let progress = assessments_db::find(&mut conn, id).await?;
    let criteria = assessments_db::criteria(&mut conn, id).await?;
    let status = progress
        .as_ref()
        .map_or(EnrolmentStatus::NotStarted, |p| p.status);
    let claims = db::current_claims(&mut conn, id).await?;
    let versions = db::list_for_enrolment(&mut conn, id, is_candidate, None).await?;
    let rows = |kind: CriterionKind| -> Vec<CriterionRow> {
        criteria
            .iter()
            .filter(|c| c.kind == kind)
            .map(|c| CriterionRow {
                code: c.code.clone(),
                text: c.text.clone(),
                status: c.status,
                evidence: claims
                    .iter()
                    .filter(|cl| cl.criterion_id == c.criterion_id)
                    .cloned()
                    .collect(),
            })
            .collect()
    };
    let section = if is_candidate {
        Section::Home
    } else {
        Section::None
    };
    Ok(PortfolioPage {
        layout: layout.section(section),
        performance: rows(CriterionKind::Performance),
        knowledge: rows(CriterionKind::Knowledge),
        pc: progress.as_ref().map_or((0, 0), |p| {
            (count(p.performance_met), count(p.performance_total))
        }),
        k: progress.as_ref().map_or((0, 0), |p| {
            (count(p.knowledge_met), count(p.knowledge_total))
        }),
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

/// A stored count for a page.
fn count(n: i32) -> usize {
    usize::try_from(n).unwrap_or(0)
}
