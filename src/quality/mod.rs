//! Internal quality assurance: the IQA reviews assessors' sign-offs, the sampled ones first,
//! and agrees (countersigns: the enrolment is verified) or disagrees with the actions the
//! assessor must take (the sign-off is withdrawn). Nobody reviews a sign-off they made or an
//! enrolment they are the candidate of.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::assessments::sign_off;
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
use crate::web::routes::Routes;

pub fn routes() -> Routes {
    Routes::new()
        .get("/quality", index)
        .post("/sign-offs/{id}/review", review)
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
const PAGE_SIZE: i64 = 50;

/// A page of the sign-offs of the enrolments this IQA assures, except their own: unreviewed
/// sampled first, then unreviewed others, then reviewed ones, newest first within each; with
/// how many there are in all.
async fn list(
    conn: &mut PgConnection,
    iqa: Uuid,
    page: i64,
) -> sqlx::Result<(Vec<SignOffRow>, i64)> {
    let total = sqlx::query_scalar!(
        r#"select count(*) as "n!" from sign_off s join enrolment e using (enrolment_id)
            where e.iqa_id = $1 and s.assessor_id <> $1 and e.candidate_id <> $1"#,
        iqa
    )
    .fetch_one(&mut *conn)
    .await?;
    let rows = sqlx::query_as!(
        SignOffRow,
        r#"select s.sign_off_id, s.enrolment_id, c.display_name as candidate_name, a.display_name as assessor_name,
                  co.name as cohort_name, s.signed_at, s.sampled, s.sample_reason,
                  r.decision::text as decision, coalesce(r.actions, '') as "actions!", r.reviewed_at as "reviewed_at?",
                  p.status as "status: EnrolmentStatus"
             from sign_off s
             join enrolment e using (enrolment_id)
             join enrolment_progress p using (enrolment_id)
             join cohort co on co.cohort_id = e.cohort_id
             join app_user c on c.user_id = e.candidate_id
             join app_user a on a.user_id = s.assessor_id
             left join review r using (sign_off_id)
            where e.iqa_id = $1 and s.assessor_id <> $1 and e.candidate_id <> $1
            order by r.review_id is not null, not s.sampled, s.signed_at desc, s.sign_off_id
            limit $2 offset $3"#,
        iqa,
        PAGE_SIZE,
        (page - 1).saturating_mul(PAGE_SIZE)
    )
    .fetch_all(conn)
    .await?;
    Ok((rows, total))
}

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

/// Coverage per assessor × assessment method × criterion kind, over the sign-offs of the
/// enrolments this IQA assures.
async fn coverage(conn: &mut PgConnection, iqa: Uuid) -> sqlx::Result<Vec<CoverageRow>> {
    sqlx::query_as!(
        CoverageRow,
        r#"select a.display_name as assessor_name, ev.method as "method: AssessmentMethod",
                  count(*) filter (where c.kind = 'performance' and r.review_id is not null) as "performance_reviewed!",
                  count(*) filter (where c.kind = 'performance') as "performance_total!",
                  count(*) filter (where c.kind = 'knowledge' and r.review_id is not null) as "knowledge_reviewed!",
                  count(*) filter (where c.kind = 'knowledge') as "knowledge_total!"
             from sign_off s
             join enrolment e using (enrolment_id)
             join cohort co using (cohort_id)
             join app_user a on a.user_id = s.assessor_id
             cross join lateral jsonb_array_elements(s.basis) as item
             join evidence ev on ev.evidence_id = (item ->> 'evidence_id')::uuid
             join criterion c on c.standard_id = co.standard_id and c.code = item ->> 'criterion'
             left join review r using (sign_off_id)
            where e.iqa_id = $1
            group by a.display_name, ev.method
            order by lower(a.display_name), ev.method"#,
        iqa
    )
    .fetch_all(conn)
    .await
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
    page: i64,
) -> AppResult<QualityPage> {
    let mut conn = state.pool.acquire().await?;
    let last = |total: i64| ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
    let (mut rows, mut total) = list(&mut conn, user.id.0, page.max(1)).await?;
    // A page past the end shows the last one.
    let page = page.clamp(1, last(total));
    if rows.is_empty() && total > 0 {
        (rows, total) = list(&mut conn, user.id.0, page).await?;
    }
    let coverage = coverage(&mut conn, user.id.0).await?;
    Ok(QualityPage {
        layout: layout.section(Section::Quality),
        previous: (page > 1).then(|| format!("/quality?page={}", page - 1)),
        next: (page < last(total)).then(|| format!("/quality?page={}", page + 1)),
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
    page(&state, &user, layout, None, query.page.unwrap_or(1)).await
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
    let target = sqlx::query!(
        r#"select s.enrolment_id, s.assessor_id, e.iqa_id, e.candidate_id
             from sign_off s join enrolment e using (enrolment_id)
            where s.sign_off_id = $1
              for update of e"#,
        id
    )
    .fetch_optional(&mut *tx)
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
    if sign_off::standing(&mut tx, target.enrolment_id).await? != Some(id) {
        return Err(AppError::Conflict(
            "This sign-off has been reviewed or replaced already.".into(),
        ));
    }
    let inserted = sqlx::query!(
        "insert into review (sign_off_id, iqa_id, decision, actions, reviewed_at)
         values ($1, $2, $3::text::review_decision, $4, $5)
         on conflict (sign_off_id) do nothing",
        id,
        user.id.0,
        decision,
        actions,
        state.clock.now()
    )
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
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
