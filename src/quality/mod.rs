//! Internal quality assurance: the IQA reviews assessors' sign-offs, the sampled ones first,
//! and agrees (countersigns: the enrolment is verified) or disagrees with the actions the
//! assessor must take (the sign-off is withdrawn). Nobody reviews a sign-off they made or an
//! enrolment they are the candidate of.

use crate::auth::policy::IQA;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::assessments::status::EnrolmentStatus;
use crate::audit::{self, Actor, NewAuditEvent};
use crate::auth::csrf::CsrfForm;
use crate::auth::session::CurrentUser;
use crate::error::{AppError, AppResult};
use crate::evidence::model::AssessmentMethod;
use crate::state::AppState;
use crate::web::client_ip::ClientIp;
use crate::web::flash;
use crate::web::forms::FormErrors;
use crate::web::layout::{Layout, Section};
use crate::web::paging::Paging;
use crate::web::routes::Routes;

pub mod db;

pub fn routes() -> Routes {
    Routes::new()
        .get("/quality", IQA, index)
        .post("/sign-offs/{id}/review", IQA, review)
}

/// A sign-off the IQA may review.
#[derive(Debug, Clone)]
pub struct SignOffRow {
    pub sign_off_id: Uuid,
    pub enrolment_id: Uuid,
    pub candidate_name: String,
    pub assessor_name: String,
    pub cohort_name: String,
    pub signed_at: OffsetDateTime,
    pub sampled: bool,
    pub sample_reason: String,
    pub decision: Option<String>,
    pub actions: String,
    pub reviewed_at: Option<OffsetDateTime>,
    /// Where the enrolment stands now.
    pub status: EnrolmentStatus,
}

/// Sign-offs one page of the quality page shows.
const PAGE_SIZE: usize = 50;

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
    /// Links to the previous and next pages of sign-offs.
    pub previous: Option<String>,
    pub next: Option<String>,
    pub total: i64,
    pub coverage: Vec<CoverageRow>,
    /// The sign-off whose review form was refused, with its problems and what was typed.
    pub refused: Option<(Uuid, FormErrors, String)>,
}

impl QualityPage {
    pub fn errors_for(&self, id: &Uuid) -> Option<&FormErrors> {
        self.refused
            .as_ref()
            .filter(|(r, ..)| r == id)
            .map(|(_, e, _)| e)
    }

    pub fn typed_actions(&self, id: &Uuid) -> &str {
        self.refused
            .as_ref()
            .filter(|(r, ..)| r == id)
            .map_or("", |(.., a)| a.as_str())
    }
}

async fn page(
    state: &AppState,
    user: &CurrentUser,
    layout: Layout,
    refused: Option<(Uuid, FormErrors, String)>,
    page: usize,
) -> AppResult<QualityPage> {
    let mut conn = state.pool.acquire().await?;
    // The sign-offs of the enrolments this IQA assures, except their own: unreviewed sampled
    // first, then unreviewed others, then reviewed ones, newest first within each.
    let total = db::count_reviewable(&mut conn, user.id.0).await?;
    let paging = Paging::new(Some(page), PAGE_SIZE, usize::try_from(total).unwrap_or(0));
    let rows = db::reviewable_page(
        &mut conn,
        user.id.0,
        i64::try_from(PAGE_SIZE).unwrap_or(i64::MAX),
        i64::try_from(paging.offset()).unwrap_or(i64::MAX),
    )
    .await?;
    let coverage = db::coverage(&mut conn, user.id.0).await?;
    let pages = paging.links(rows.len(), |page| format!("/quality?page={page}"));
    Ok(QualityPage {
        layout: layout.section(Section::Quality),
        previous: pages.previous,
        next: pages.next,
        total,
        rows,
        coverage,
        refused,
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

#[derive(Debug, Deserialize)]
pub struct ReviewForm {
    #[serde(default)]
    decision: String,
    #[serde(default)]
    actions: String,
}

/// `POST /sign-offs/{id}/review`.
pub async fn review(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    user: CurrentUser,
    layout: Layout,
    Path(id): Path<Uuid>,
    CsrfForm(form): CsrfForm<ReviewForm>,
) -> AppResult<Response> {
    let mut tx = state.pool.begin().await?;
    let target = db::lock_review_target(&mut tx, id)
        .await?
        .filter(|t| {
            t.iqa_id == Some(user.id.0) && t.assessor_id != user.id.0 && t.candidate_id != user.id.0
        })
        .ok_or(AppError::NotFound)?;

    let actions = form.actions.trim().to_owned();
    let mut errors = FormErrors::default();
    let decision = match form.decision.as_str() {
        "agree" => Some("agree"),
        "disagree" if actions.is_empty() => {
            errors.add(
                format!("actions-{id}"),
                "Say what the assessor must do when you disagree",
            );
            None
        }
        "disagree" if actions.chars().count() > 5_000 => {
            errors.add(
                format!("actions-{id}"),
                "Keep the actions under 5,000 characters",
            );
            None
        }
        "disagree" => Some("disagree"),
        _ => {
            errors.add(format!("decision-{id}"), "Choose agree or disagree");
            None
        }
    };
    let Some(decision) = decision else {
        drop(tx);
        let page = page(&state, &user, layout, Some((id, errors, actions)), 1).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    };
    if crate::assessments::db::standing_sign_off(&mut tx, target.enrolment_id).await? != Some(id) {
        return Err(AppError::Conflict(
            "This sign-off has been reviewed or replaced already.".into(),
        ));
    }
    let inserted = db::insert_review(
        &mut tx,
        id,
        user.id.0,
        decision,
        &actions,
        state.clock.now(),
    )
    .await?;
    if !inserted {
        return Err(AppError::Conflict(
            "This sign-off has been reviewed already.".into(),
        ));
    }
    crate::assessments::db::refresh(&mut tx, target.enrolment_id).await?;
    audit::record(
        &mut tx,
        NewAuditEvent {
            actor: &Actor::user(&user, ip),
            action: if decision == "agree" {
                "sign_off.countersigned"
            } else {
                "sign_off.withdrawn"
            },
            entity_type: "enrolment",
            entity_id: target.enrolment_id.to_string(),
            detail: json!({ "sign_off_id": id, "decision": decision, "actions": actions }),
        },
    )
    .await?;
    tx.commit().await?;
    let message = if decision == "agree" {
        "Countersigned: the enrolment is verified."
    } else {
        "Sign-off withdrawn; the assessor sees your actions on their caseload."
    };
    Ok(flash::redirect("/quality", message))
}
