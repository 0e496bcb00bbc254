//! Internal quality assurance: the IQA reviews assessors' sign-offs, the sampled ones first,
//! and agrees (countersigns: the enrolment is verified) or disagrees with the actions the
//! assessor must take (the sign-off is withdrawn). Nobody reviews a sign-off they made or an
//! enrolment they are the candidate of.

use std::collections::HashMap;

use crate::identity::{Access, IQA, Role};
use crate::ids::{EnrolmentId, SignOffId};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use sqlx::PgConnection;
use time::OffsetDateTime;

use crate::audit::{self, Actor, NewAuditEvent};
use crate::auth::csrf::CsrfForm;
use crate::auth::submissions;
use crate::clock::Clock;
use crate::error::{AppError, AppResult};
use crate::evidence::model::AssessmentMethod;
use crate::forms::FormErrors;
use crate::identity::{CurrentUser, UserId, Viewer};
use crate::iqa_actions::{Disagreement, TEXT_MAX_CHARS, split_actions};
use crate::state::AppState;
use crate::status::model::EnrolmentStatus;
use crate::web::client_ip::ClientIp;
use crate::web::flash;
use crate::web::layout::{Layout, Section};
use crate::web::paging::{PageLinks, Paging};
use crate::web::routes::Routes;

pub mod db;
pub mod plan;

/// Who keeps a cohort's sampling plan: its IQAs and admins (the cohort then decides).
const PLAN_KEEPERS: Access = Access::AnyOf(&[Role::Iqa, Role::Admin]);

pub fn routes() -> Routes<AppState> {
    Routes::new()
        .get("/quality", IQA, index)
        .post("/sign-offs/{id}/review", IQA, review)
        .get("/cohorts/{id}/sampling-plan", PLAN_KEEPERS, plan::show)
        .post("/cohorts/{id}/sampling-plan", PLAN_KEEPERS, plan::save)
}

/// A sign-off the IQA may review.
#[derive(Debug, Clone)]
pub struct SignOffRow {
    pub sign_off_id: SignOffId,
    pub enrolment_id: EnrolmentId,
    pub candidate_name: String,
    pub assessor_name: String,
    pub cohort_name: String,
    pub signed_at: OffsetDateTime,
    pub sampled: bool,
    pub sample_reason: String,
    pub decision: Option<String>,
    pub actions: String,
    /// Where the enrolment stands now.
    pub status: EnrolmentStatus,
}

/// Sign-offs one page of the quality page shows.
const PAGE_SIZE: usize = 50;

/// Judged evidence the quality page offers for interim sampling.
const TO_SAMPLE_SHOWN: i64 = 5;

/// One line of the sampling coverage: how many of an assessor's met criteria, judged on
/// evidence of one method, sit in sign-offs the IQA has reviewed.
#[derive(Debug, Clone)]
pub struct CoverageRow {
    pub assessor_name: String,
    pub method: Option<AssessmentMethod>,
    pub performance_reviewed: i64,
    pub performance_total: i64,
    pub knowledge_reviewed: i64,
    pub knowledge_total: i64,
}

impl CoverageRow {
    pub fn method_text(&self) -> &'static str {
        self.method.map_or("Not given", AssessmentMethod::label)
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "quality/index.html")]
pub struct QualityPage {
    pub layout: Layout,
    pub rows: Vec<SignOffRow>,
    /// Where this page of sign-offs stands, and the links either side.
    pub pages: PageLinks,
    pub coverage: Vec<CoverageRow>,
    /// The disagreements of the sign-offs listed, with the assessor's answers so far.
    pub disagreements: HashMap<SignOffId, Disagreement>,
    /// For a sign-off made after a disagreement: that disagreement, answered.
    pub earlier: HashMap<SignOffId, Disagreement>,
    /// The sign-off whose review form was refused, with its problems and what was typed.
    pub refused: Option<(SignOffId, FormErrors, ReviewForm)>,
    /// Judged evidence nobody has sampled yet, newest judgement first.
    pub to_sample: Vec<plan::ToSample>,
    /// The cohorts this IQA assures, for their sampling plans.
    pub cohorts: Vec<(crate::ids::CohortId, String)>,
}

impl QualityPage {
    pub fn errors_for(&self, id: &SignOffId) -> Option<&FormErrors> {
        self.refused
            .as_ref()
            .filter(|(r, ..)| r == id)
            .map(|(_, e, _)| e)
    }

    /// The actions typed for sign-off `id` were refused.
    pub fn actions_refused(&self, id: &SignOffId) -> bool {
        self.errors_for(id)
            .is_some_and(|e| e.get(&format!("actions-{id}")).is_some())
    }

    pub fn disagreement_of(&self, id: &SignOffId) -> Option<&Disagreement> {
        self.disagreements.get(id)
    }

    pub fn earlier_of(&self, id: &SignOffId) -> Option<&Disagreement> {
        self.earlier.get(id)
    }

    fn typed(&self, id: &SignOffId) -> Option<&ReviewForm> {
        self.refused
            .as_ref()
            .filter(|(r, ..)| r == id)
            .map(|(.., typed)| typed)
    }

    pub fn typed_actions(&self, id: &SignOffId) -> &str {
        self.typed(id).map_or("", |t| t.actions.as_str())
    }

    /// The decision chosen on a refused form, so the choice is not lost.
    pub fn typed_decision(&self, id: &SignOffId) -> &str {
        self.typed(id).map_or("", |t| t.decision.as_str())
    }
}

async fn page(
    state: &AppState,
    user: &CurrentUser,
    layout: Layout,
    refused: Option<(SignOffId, FormErrors, ReviewForm)>,
    page: usize,
) -> AppResult<QualityPage> {
    let mut conn = state.pool.acquire().await?;
    // The sign-offs of the enrolments this IQA assures, except their own: unreviewed sampled
    // first, then unreviewed others, then reviewed ones, newest first within each.
    let total = db::count_reviewable(&mut conn, user.id).await?;
    let paging = Paging::new(Some(page), PAGE_SIZE, usize::try_from(total).unwrap_or(0));
    let rows = db::reviewable_page(
        &mut conn,
        user.id,
        i64::try_from(PAGE_SIZE).unwrap_or(i64::MAX),
        i64::try_from(paging.offset()).unwrap_or(i64::MAX),
    )
    .await?;
    let coverage = db::coverage(&mut conn, user.id).await?;
    let to_sample = db::to_sample(&mut conn, user.id, TO_SAMPLE_SHOWN).await?;
    let cohorts = db::cohorts_assured(&mut conn, user.id).await?;
    let listed: Vec<SignOffId> = rows.iter().map(|r| r.sign_off_id).collect();
    let disagreements = crate::iqa_actions::db::disagreements_on(&mut conn, &listed).await?;
    let previous = crate::iqa_actions::db::previous_sign_offs(&mut conn, &listed).await?;
    let before: Vec<SignOffId> = previous.values().copied().collect();
    let mut earlier_by_previous =
        crate::iqa_actions::db::disagreements_on(&mut conn, &before).await?;
    let earlier = previous
        .into_iter()
        .filter_map(|(id, before)| Some((id, earlier_by_previous.remove(&before)?)))
        .collect();
    let pages = paging.links(rows.len(), |page| format!("/quality?page={page}"));
    Ok(QualityPage {
        layout: layout.section(Section::Quality),
        pages,
        rows,
        coverage,
        disagreements,
        earlier,
        refused,
        to_sample,
        cohorts,
    })
}

/// `GET /quality`.
pub async fn index(
    State(state): State<AppState>,
    user: CurrentUser,
    layout: Layout,
    Query(query): Query<PageQuery>,
) -> AppResult<QualityPage> {
    // Page 0 or below is the first.
    let requested = usize::try_from(query.page.unwrap_or(1)).unwrap_or(1);
    page(&state, &user, layout, None, requested).await
}

#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    #[serde(default)]
    page: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReviewForm {
    /// `agree` or `disagree`.
    #[serde(default)]
    pub decision: String,
    /// What the assessor must do; required to disagree.
    #[serde(default)]
    pub actions: String,
    /// The form's one-time key (see `auth::submissions`).
    #[serde(default)]
    pub submission_key: String,
}

/// `POST /sign-offs/{id}/review`.
pub async fn review(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    user: CurrentUser,
    layout: Layout,
    Path(id): Path<SignOffId>,
    CsrfForm(form): CsrfForm<ReviewForm>,
) -> AppResult<Response> {
    let mut tx = state.pool.begin().await?;
    let by = Actor::user(&user, ip);
    let claimed = submissions::claim_form(
        &mut tx,
        &form.submission_key,
        user.id,
        state.clock.now(),
        "This review was recorded already.",
    );
    let submission = match claimed.await? {
        Ok(first) => first,
        Err(repeat) => return Ok(repeat),
    };
    let reviewed = review_sign_off(&mut tx, user.viewer(), &by, id, &form, &state.clock).await?;
    let decision = match reviewed {
        Ok(decision) => decision,
        Err(errors) => {
            // End the transaction, and its lock on the enrolment, before the page reads.
            drop(tx);
            return review_refused(&state, &user, layout, (id, errors, form)).await;
        }
    };
    submission.led_to(&mut tx, "/quality").await?;
    tx.commit().await?;
    Ok(flash::redirect("/quality", decision.confirmation()))
}

/// Reviews sign-off `id` as `who`, its enrolment's IQA, in the caller's transaction: agree
/// (countersign) or disagree (withdraw it, with actions for the assessor, one a line). Stores
/// the review and its actions with the enrolment's status and the audit event, or returns the
/// form's problems (nothing written).
pub async fn review_sign_off(
    conn: &mut PgConnection,
    who: Viewer<'_>,
    by: &Actor,
    id: SignOffId,
    form: &ReviewForm,
    clock: &Clock,
) -> AppResult<Result<Decision, FormErrors>> {
    let target = lock_target_for(&mut *conn, id, who).await?;
    let actions = form.actions.trim().to_owned();
    let decision = match Decision::parse(&form.decision, &actions, id) {
        Ok(decision) => decision,
        Err(errors) => return Ok(Err(errors)),
    };
    let review = Review {
        sign_off_id: id,
        enrolment_id: target.enrolment_id,
        iqa_id: who.id,
        decision,
        actions: &actions,
    };
    store_review(&mut *conn, &review, clock.now()).await?;
    crate::status::db::refresh(&mut *conn, target.enrolment_id).await?;
    audit_review(conn, by, &review).await?;
    Ok(Ok(decision))
}

/// Sign-off `id`'s review target, its enrolment's row locked, if `user` is the enrolment's IQA
/// and neither made the sign-off nor is its candidate; otherwise not found.
async fn lock_target_for(
    conn: &mut PgConnection,
    id: SignOffId,
    user: Viewer<'_>,
) -> AppResult<db::ReviewTarget> {
    db::lock_review_target(conn, id)
        .await?
        .filter(|t| {
            t.iqa_id == Some(user.id) && t.assessor_id != user.id && t.candidate_id != user.id
        })
        .ok_or(AppError::NotFound)
}

/// The quality page again with 422, showing `refused`: the sign-off whose review form was
/// refused, its problems and the form as typed.
async fn review_refused(
    state: &AppState,
    user: &CurrentUser,
    layout: Layout,
    refused: (SignOffId, FormErrors, ReviewForm),
) -> AppResult<Response> {
    let page = page(state, user, layout, Some(refused), 1).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

/// What an IQA decided of a sign-off.
#[derive(Debug, Clone, Copy)]
pub enum Decision {
    /// Countersigned: the enrolment is verified.
    Agree,
    /// The sign-off is withdrawn, with actions for its assessor.
    Disagree,
}

impl Decision {
    /// The decision of the review form of sign-off `id`, whose trimmed actions are `actions`,
    /// or its problem: disagreeing needs actions, of at most 5,000 characters. The problem is
    /// named after `id` because the quality page has a review form per sign-off.
    fn parse(decision: &str, actions: &str, id: SignOffId) -> Result<Self, FormErrors> {
        let (field, message) = match decision {
            "agree" => return Ok(Self::Agree),
            "disagree" if split_actions(actions).is_empty() => (
                "actions",
                "Say what the assessor must do when you disagree: one action a line",
            ),
            "disagree" if actions.chars().count() > TEXT_MAX_CHARS => {
                ("actions", "Keep the actions under 5,000 characters")
            }
            "disagree" => return Ok(Self::Disagree),
            _ => ("decision", "Choose agree or disagree"),
        };
        let mut errors = FormErrors::default();
        errors.add(format!("{field}-{id}"), message);
        Err(errors)
    }

    /// The decision as stored and audited.
    fn as_str(self) -> &'static str {
        match self {
            Self::Agree => "agree",
            Self::Disagree => "disagree",
        }
    }

    /// The audit action of a review with this decision.
    fn audit_action(self) -> &'static str {
        match self {
            Self::Agree => "sign_off.countersigned",
            Self::Disagree => "sign_off.withdrawn",
        }
    }

    /// What the IQA is told once the review is stored.
    fn confirmation(self) -> &'static str {
        match self {
            Self::Agree => "Countersigned: the enrolment is verified.",
            Self::Disagree => {
                "Sign-off withdrawn. The assessor must answer each of your actions before signing off again; you will see the answers when you review that sign-off."
            }
        }
    }
}

/// An IQA's review of a sign-off, to store and audit.
struct Review<'a> {
    sign_off_id: SignOffId,
    enrolment_id: EnrolmentId,
    iqa_id: UserId,
    decision: Decision,
    /// What the assessor must do; trimmed, and empty when the IQA agrees without any.
    actions: &'a str,
}

/// Stores the review, refused when its sign-off no longer stands for the enrolment (a review
/// withdrew it or a newer one replaced it) or has a review already.
async fn store_review(
    conn: &mut PgConnection,
    review: &Review<'_>,
    now: OffsetDateTime,
) -> AppResult<()> {
    let standing = crate::assessments::db::standing_sign_off(conn, review.enrolment_id).await?;
    if standing != Some(review.sign_off_id) {
        return Err(AppError::Conflict(
            "This sign-off has been reviewed or replaced already.".into(),
        ));
    }
    let Some(review_id) = db::insert_review(
        &mut *conn,
        review.sign_off_id,
        review.iqa_id,
        review.decision.as_str(),
        review.actions,
        now,
    )
    .await?
    else {
        return Err(AppError::Conflict(
            "This sign-off has been reviewed already.".into(),
        ));
    };
    if let Decision::Disagree = review.decision {
        crate::iqa_actions::db::insert(
            conn,
            crate::iqa_actions::db::ActionsOf::Review(review_id),
            &split_actions(review.actions),
        )
        .await?;
    }
    Ok(())
}

/// Records the review in the audit chain, against the sign-off's enrolment.
async fn audit_review(
    conn: &mut PgConnection,
    actor: &Actor,
    review: &Review<'_>,
) -> sqlx::Result<()> {
    audit::record(
        conn,
        NewAuditEvent {
            actor,
            action: review.decision.audit_action(),
            entity_type: "enrolment",
            entity_id: review.enrolment_id.to_string(),
            detail: json!({
                "sign_off_id": review.sign_off_id,
                "decision": review.decision.as_str(),
                "actions": split_actions(review.actions),
            }),
        },
    )
    .await
}
