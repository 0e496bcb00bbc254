//! The home page of a signed-in person: what each of their roles can do from here.

use crate::identity::Access;
use askama::Template;
use askama_web::WebTemplate;

use axum::extract::State;

use crate::cohorts::db as cohorts_db;
use crate::error::AppResult;
use crate::identity::CurrentUser;
use crate::identity::Role;
use crate::state::AppState;
use crate::status::db as status_db;
use crate::status::model::{CriterionStatus, EnrolmentStatus};
use crate::web::layout::{Layout, Section};
use crate::web::routes::Routes;

pub fn routes() -> Routes<AppState> {
    Routes::new().get("/", Access::SignedIn, show)
}

/// A role's corner of the home page.
pub struct RolePanel {
    pub heading: &'static str,
    pub text: &'static str,
    pub links: Vec<(&'static str, &'static str)>,
}

/// One of the candidate's enrolments with its progress in words and numbers.
pub struct EnrolmentCard {
    pub id: crate::ids::EnrolmentId,
    pub standard_title: String,
    pub cohort_name: String,
    pub progress: String,
    pub next_step: &'static str,
    pub withdrawn: bool,
}

/// A cohort with its headline figures, for admins.
pub struct CohortFigures {
    pub id: crate::ids::CohortId,
    pub name: String,
    pub enrolled: usize,
    /// Enrolments at each of these statuses, as the cohort's report counts them.
    pub in_progress: usize,
    pub ready: usize,
    pub competent: usize,
    pub verified: usize,
}

#[derive(Template, WebTemplate)]
#[template(path = "home/show.html")]
pub struct HomePage {
    pub layout: Layout,
    pub name: String,
    pub panels: Vec<RolePanel>,
    pub enrolments: Vec<EnrolmentCard>,
    pub cohorts: Vec<CohortFigures>,
}

/// Every cohort with how many of its active enrolments stand where, from the stored statuses.
async fn cohort_figures(state: &AppState) -> AppResult<Vec<CohortFigures>> {
    let mut conn = state.pool.acquire().await?;
    let cohorts = cohorts_db::list(&mut conn).await?;
    let counts = status_db::counts_by_cohort(&mut conn).await?;
    Ok(cohorts
        .into_iter()
        .map(|c| {
            let count = |statuses: &[EnrolmentStatus]| {
                counts
                    .iter()
                    .filter(|n| n.cohort_id == c.id && statuses.contains(&n.status))
                    .map(|n| usize::try_from(n.count).unwrap_or(0))
                    .sum()
            };
            CohortFigures {
                id: c.id,
                name: c.name,
                enrolled: counts
                    .iter()
                    .filter(|n| n.cohort_id == c.id)
                    .map(|n| usize::try_from(n.count).unwrap_or(0))
                    .sum(),
                in_progress: count(&[EnrolmentStatus::InProgress]),
                ready: count(&[EnrolmentStatus::ReadyForSignOff]),
                competent: count(&[EnrolmentStatus::Competent]),
                verified: count(&[EnrolmentStatus::Verified]),
            }
        })
        .collect())
}

async fn enrolment_cards(state: &AppState, user: &CurrentUser) -> AppResult<Vec<EnrolmentCard>> {
    let mut conn = state.pool.acquire().await?;
    let enrolments = cohorts_db::list_for_candidate(&mut conn, user.id).await?;
    let ids: Vec<_> = enrolments.iter().map(|e| e.id.0).collect();
    let all_progress = status_db::progress_of(&mut conn, &ids).await?;
    let mut cards = Vec::new();
    for enrolment in enrolments {
        let Some(progress) = all_progress.iter().find(|p| p.enrolment_id == enrolment.id) else {
            continue;
        };
        let awaiting = progress.criteria_awaiting;
        let not_met = progress.criteria_not_met;
        let not_started = progress
            .criteria_statuses
            .iter()
            .filter(|c| **c == CriterionStatus::NotStarted)
            .count();
        let mut words = format!(
            "{}: PC {} of {}, K {} of {} met",
            progress.status.label(),
            progress.performance_met,
            progress.performance_total,
            progress.knowledge_met,
            progress.knowledge_total
        );
        if awaiting > 0 {
            words.push_str(&format!("; {awaiting} awaiting assessment"));
        }
        if not_met > 0 {
            words.push_str(&format!("; {not_met} not met"));
        }
        let next_step = match progress.status {
            _ if enrolment.is_withdrawn() => "This enrolment is withdrawn.",
            EnrolmentStatus::NotStarted => "Add your first piece of evidence.",
            EnrolmentStatus::InProgress if not_met > 0 => {
                "Read the feedback and revise the evidence marked not met."
            }
            EnrolmentStatus::InProgress if awaiting > 0 && not_started == 0 => {
                "Wait for your assessor's judgement."
            }
            EnrolmentStatus::InProgress => "Add evidence for the criteria not started.",
            EnrolmentStatus::ReadyForSignOff if progress.iqa_disagreed => {
                "Every criterion is met. The quality assurer asked your assessor to act on some points before signing you off again."
            }
            EnrolmentStatus::ReadyForSignOff => {
                "Every criterion is met: your assessor can sign you off."
            }
            EnrolmentStatus::Competent => "Signed off as competent.",
            EnrolmentStatus::Verified => "Signed off and verified.",
            EnrolmentStatus::Withdrawn => "This enrolment is withdrawn.",
        };
        cards.push(EnrolmentCard {
            id: enrolment.id,
            withdrawn: enrolment.is_withdrawn(),
            standard_title: enrolment.standard_title,
            cohort_name: enrolment.cohort_name,
            progress: words,
            next_step,
        });
    }
    Ok(cards)
}

/// `GET /`.
pub async fn show(
    State(state): State<AppState>,
    user: CurrentUser,
    layout: Layout,
) -> AppResult<HomePage> {
    let cohorts = if user.has_role(Role::Admin) {
        cohort_figures(&state).await?
    } else {
        Vec::new()
    };
    let enrolments = if user.has_role(Role::Candidate) {
        enrolment_cards(&state, &user).await?
    } else {
        Vec::new()
    };
    let panels = Role::ALL
        .into_iter()
        .filter(|role| user.has_role(*role))
        .map(|role| match role {
            Role::Candidate => RolePanel {
                heading: "Your portfolio",
                text: if enrolments.is_empty() {
                    "You are not enrolled on a standard yet: your centre enrols you, and your portfolio appears here."
                } else {
                    "Open an enrolment above to add evidence and follow its assessment."
                },
                links: vec![("/standards", "Read the standards")],
            },
            Role::Assessor => RolePanel {
                heading: "Assessing",
                text: "Judge candidates' evidence, longest waiting first.",
                links: vec![("/caseload", "Open your caseload"), ("/standards", "Read the standards")],
            },
            Role::Iqa => RolePanel {
                heading: "Quality assurance",
                text: "Review assessors' sign-offs, the sampled ones first.",
                links: vec![("/quality", "Review sign-offs"), ("/standards", "Read the standards")],
            },
            Role::Admin => RolePanel {
                heading: "Administration",
                text: "Invite people, give them roles, and manage their access.",
                links: vec![
                    ("/admin/users", "Manage users"),
                    ("/admin/users/new", "Invite a user"),
                ],
            },
        })
        .collect();
    Ok(HomePage {
        layout: layout.section(Section::Home),
        name: user.name,
        panels,
        enrolments,
        cohorts,
    })
}
