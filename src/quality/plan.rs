//! A cohort's sampling plan: the share of each assessor's judged evidence its IQAs mean to
//! sample, and the assessment methods and criteria the samples must cover. The plan's page
//! shows it beside what has been sampled so far (interim samples and reviewed sign-offs), as
//! a grid of planned against done. The cohort's IQAs and admins keep it.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use time::OffsetDateTime;

use super::db;
use crate::audit::{self, Actor, NewAuditEvent};
use crate::auth::csrf::CsrfForm;
use crate::cohorts::db::{self as cohorts_db, Cohort};
use crate::error::{AppError, AppResult};
use crate::evidence::model::AssessmentMethod;
use crate::forms::FormErrors;
use crate::identity::{CurrentUser, Role, UserId};
use crate::ids::{CohortId, EvidenceId};
use crate::standards::cache::Standards;
use crate::standards::model::{CriterionId, CriterionKind};
use crate::state::AppState;
use crate::web::client_ip::ClientIp;
use crate::web::flash;
use crate::web::layout::{Layout, Section};

/// A plan as stored: who changed it last and when, and its parts.
#[derive(Debug, Clone, Default)]
pub struct StoredPlan {
    pub updated: Option<(OffsetDateTime, String)>,
    pub percents: Vec<(UserId, i32)>,
    pub methods: Vec<AssessmentMethod>,
    pub criteria: Vec<CriterionId>,
}

/// A plan as chosen on the form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanChoice {
    pub percents: Vec<(UserId, i32)>,
    pub methods: Vec<AssessmentMethod>,
    pub criteria: Vec<CriterionId>,
}

/// Judged and sampled versions of one assessor: in all (no method or criterion), of one
/// method, or with a judgement of one criterion.
#[derive(Debug, Clone)]
pub struct SampledCount {
    pub assessor_id: UserId,
    pub assessor_name: String,
    pub method: Option<AssessmentMethod>,
    pub criterion_id: Option<CriterionId>,
    pub judged: i64,
    pub sampled: i64,
}

/// Judged evidence no IQA has sampled yet.
#[derive(Debug, Clone)]
pub struct ToSample {
    pub evidence_id: EvidenceId,
    pub title: String,
    pub version: i32,
    pub method: Option<AssessmentMethod>,
    pub candidate_name: String,
    pub assessor_name: Option<String>,
    pub judged_at: OffsetDateTime,
}

/// One cell of the coverage grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    /// The assessor has judged nothing of this kind: nothing to sample.
    NothingJudged,
    NotYet,
    Sampled,
}

/// An assessor's line of the plan: planned against done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssessorLine {
    pub id: UserId,
    pub name: String,
    pub planned: Option<i32>,
    pub judged: i64,
    pub sampled: i64,
}

impl AssessorLine {
    /// The share of the assessor's judged versions sampled, in whole percent.
    pub fn done_percent(&self) -> i64 {
        if self.judged == 0 {
            0
        } else {
            self.sampled * 100 / self.judged
        }
    }

    /// Sampled at least the share planned (nothing planned is always met).
    pub fn on_plan(&self) -> bool {
        self.planned
            .is_none_or(|p| self.judged == 0 || self.sampled * 100 >= i64::from(p) * self.judged)
    }
}

/// A planned method or criterion, with a cell per assessor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GridRow {
    pub label: String,
    pub text: String,
    pub cells: Vec<Cell>,
}

/// The plan against what is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    pub assessors: Vec<AssessorLine>,
    pub methods: Vec<GridRow>,
    pub criteria: Vec<GridRow>,
}

/// A criterion of the cohort's standard: its id, code and text.
pub type CriterionLabel = (CriterionId, String, String);

/// The coverage of `plan` by `counts`, for the cohort's `assessors` (and anyone else whose
/// judgements were counted), over the standard's `criteria`.
pub fn coverage(
    assessors: &[(UserId, String)],
    plan: &StoredPlan,
    counts: &[SampledCount],
    criteria: &[CriterionLabel],
) -> Coverage {
    let mut people: Vec<(UserId, String)> = assessors.to_vec();
    for c in counts {
        if !people.iter().any(|(id, _)| *id == c.assessor_id) {
            people.push((c.assessor_id, c.assessor_name.clone()));
        }
    }
    let total = |who: UserId| {
        counts
            .iter()
            .find(|c| c.assessor_id == who && c.method.is_none() && c.criterion_id.is_none())
    };
    let lines = people
        .iter()
        .map(|(id, name)| AssessorLine {
            id: *id,
            name: name.clone(),
            planned: plan.percents.iter().find(|(a, _)| a == id).map(|(_, p)| *p),
            judged: total(*id).map_or(0, |c| c.judged),
            sampled: total(*id).map_or(0, |c| c.sampled),
        })
        .collect();
    let cell = |who: UserId, matches: &dyn Fn(&SampledCount) -> bool| match counts
        .iter()
        .find(|c| c.assessor_id == who && matches(c))
    {
        None => Cell::NothingJudged,
        Some(c) if c.judged == 0 => Cell::NothingJudged,
        Some(c) if c.sampled > 0 => Cell::Sampled,
        Some(_) => Cell::NotYet,
    };
    let methods = AssessmentMethod::ALL
        .into_iter()
        .filter(|m| plan.methods.contains(m))
        .map(|m| GridRow {
            label: m.label().to_owned(),
            text: String::new(),
            cells: people
                .iter()
                .map(|(id, _)| cell(*id, &|c| c.method == Some(m) && c.criterion_id.is_none()))
                .collect(),
        })
        .collect();
    let criteria = criteria
        .iter()
        .filter(|(id, ..)| plan.criteria.contains(id))
        .map(|(criterion, code, text)| GridRow {
            label: code.clone(),
            text: text.clone(),
            cells: people
                .iter()
                .map(|(id, _)| cell(*id, &|c| c.criterion_id == Some(*criterion)))
                .collect(),
        })
        .collect();
    Coverage {
        assessors: lines,
        methods,
        criteria,
    }
}

/// The plan chosen on the form, from its fields: `percent-{assessor}` for each of the cohort's
/// `assessors` (blank: none planned), `method` and `criterion` for each ticked; or the form's
/// problems.
pub fn read_plan(
    pairs: &[(String, String)],
    assessors: &[(UserId, String)],
) -> Result<PlanChoice, FormErrors> {
    let mut errors = FormErrors::default();
    let mut choice = PlanChoice::default();
    for (id, name) in assessors {
        let field = format!("percent-{id}");
        let typed = pairs
            .iter()
            .find(|(k, _)| *k == field)
            .map_or("", |(_, v)| v.trim());
        if typed.is_empty() {
            continue;
        }
        match typed.trim_end_matches('%').trim().parse::<i32>() {
            Ok(p) if (0..=100).contains(&p) => choice.percents.push((*id, p)),
            _ => errors.add(
                field,
                format!("Enter the share of {name}'s judged evidence to sample as a whole number from 0 to 100"),
            ),
        }
    }
    for (key, value) in pairs {
        match key.as_str() {
            "method" => match AssessmentMethod::parse(value) {
                Some(m) if !choice.methods.contains(&m) => choice.methods.push(m),
                Some(_) => {}
                None => errors.add("methods", "Choose methods from the list"),
            },
            "criterion" => match value.parse::<uuid::Uuid>() {
                Ok(id) if !choice.criteria.contains(&CriterionId(id)) => {
                    choice.criteria.push(CriterionId(id));
                }
                Ok(_) => {}
                Err(_) => errors.add("criteria", "Choose criteria from the list"),
            },
            _ => {}
        }
    }
    if errors.is_empty() {
        Ok(choice)
    } else {
        Err(errors)
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "quality/plan.html")]
pub struct PlanPage {
    pub layout: Layout,
    /// The assessors of the cohort's enrolments now: the plan sets a share for each.
    pub assessors: Vec<(UserId, String)>,
    /// Reached from the quality page (an IQA), not the cohort's (an admin).
    pub from_quality: bool,
    pub cohort: Cohort,
    pub plan: StoredPlan,
    pub coverage: Coverage,
    /// Every assessment method: its value and label.
    pub methods: Vec<(&'static str, &'static str)>,
    pub criteria: Vec<(CriterionId, CriterionKind, String, String)>,
    /// A refused form: its problems and what was chosen.
    pub errors: FormErrors,
    pub typed: Option<Vec<(String, String)>>,
}

impl PlanPage {
    /// The percent shown for `assessor`: as typed on a refused form, else as planned.
    pub fn percent_of(&self, assessor: &UserId) -> String {
        let field = format!("percent-{assessor}");
        match &self.typed {
            Some(pairs) => pairs
                .iter()
                .find(|(k, _)| *k == field)
                .map(|(_, v)| v.clone())
                .unwrap_or_default(),
            None => self
                .plan
                .percents
                .iter()
                .find(|(a, _)| a == assessor)
                .map(|(_, p)| p.to_string())
                .unwrap_or_default(),
        }
    }

    pub fn method_ticked(&self, method: &str) -> bool {
        match &self.typed {
            Some(pairs) => pairs.iter().any(|(k, v)| k == "method" && v == method),
            None => self.plan.methods.iter().any(|m| m.as_str() == method),
        }
    }

    pub fn criterion_ticked(&self, id: &CriterionId) -> bool {
        match &self.typed {
            Some(pairs) => pairs
                .iter()
                .any(|(k, v)| k == "criterion" && *v == id.to_string()),
            None => self.plan.criteria.contains(id),
        }
    }
}

/// The cohort, if `user` keeps its plan: an admin, or an IQA of one of its enrolments.
async fn kept_by(
    conn: &mut sqlx::PgConnection,
    user: &CurrentUser,
    id: CohortId,
) -> AppResult<Cohort> {
    let cohort = cohorts_db::find(&mut *conn, id)
        .await?
        .ok_or(AppError::NotFound)?;
    let keeps = user.has_role(Role::Admin)
        || (user.has_role(Role::Iqa) && db::assures_cohort(conn, user.id, id).await?);
    if keeps {
        Ok(cohort)
    } else {
        Err(AppError::NotFound)
    }
}

async fn page(
    state: &AppState,
    standards: &Standards,
    user: &CurrentUser,
    layout: Layout,
    id: CohortId,
    refused: Option<(FormErrors, Vec<(String, String)>)>,
) -> AppResult<PlanPage> {
    let mut conn = state.pool.acquire().await?;
    let cohort = kept_by(&mut conn, user, id).await?;
    let assessors = db::cohort_assessors(&mut conn, id).await?;
    let plan = db::plan(&mut conn, id).await?;
    let counts = db::sampled_so_far(&mut conn, id).await?;
    let standard = standards.version(&mut conn, cohort.standard_id).await?;
    drop(conn);
    let criteria: Vec<(CriterionId, CriterionKind, String, String)> = standard
        .criteria()
        .map(|c| (c.id, c.kind, c.code.clone(), c.text.clone()))
        .collect();
    let labels: Vec<CriterionLabel> = criteria
        .iter()
        .map(|(id, _, code, text)| (*id, code.clone(), text.clone()))
        .collect();
    let coverage = coverage(&assessors, &plan, &counts, &labels);
    let (errors, typed) = match refused {
        Some((errors, typed)) => (errors, Some(typed)),
        None => (FormErrors::default(), None),
    };
    let from_quality = user.has_role(Role::Iqa);
    let section = if from_quality {
        Section::Quality
    } else {
        Section::Cohorts
    };
    Ok(PlanPage {
        layout: layout.section(section),
        assessors,
        from_quality,
        cohort,
        plan,
        coverage,
        methods: AssessmentMethod::ALL
            .into_iter()
            .map(|m| (m.as_str(), m.label()))
            .collect(),
        criteria,
        errors,
        typed,
    })
}

/// `GET /cohorts/{id}/sampling-plan`.
pub async fn show(
    State(state): State<AppState>,
    standards: Standards,
    user: CurrentUser,
    layout: Layout,
    Path(id): Path<CohortId>,
) -> AppResult<PlanPage> {
    page(&state, &standards, &user, layout, id, None).await
}

/// `POST /cohorts/{id}/sampling-plan`: replaces the plan.
pub async fn save(
    State(state): State<AppState>,
    standards: Standards,
    ClientIp(ip): ClientIp,
    user: CurrentUser,
    layout: Layout,
    Path(id): Path<CohortId>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> AppResult<Response> {
    let mut tx = state.pool.begin().await?;
    kept_by(&mut tx, &user, id).await?;
    let assessors = db::cohort_assessors(&mut tx, id).await?;
    let choice = match read_plan(&pairs, &assessors) {
        Ok(choice) => choice,
        Err(errors) => {
            drop(tx);
            let page = page(&state, &standards, &user, layout, id, Some((errors, pairs))).await?;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    db::save_plan(&mut tx, id, user.id, &choice, state.clock.now()).await?;
    audit::record(
        &mut tx,
        NewAuditEvent {
            actor: &Actor::user(&user, ip),
            action: "cohort.sampling_plan_saved",
            entity_type: "cohort",
            entity_id: id.to_string(),
            detail: json!({
                "percents": choice.percents.iter().map(|(a, p)| json!({"assessor_id": a, "percent": p})).collect::<Vec<_>>(),
                "methods": choice.methods,
                "criteria": choice.criteria,
            }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(flash::redirect(
        &format!("/cohorts/{id}/sampling-plan"),
        "Sampling plan saved.",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(n: u128) -> UserId {
        UserId(uuid::Uuid::from_u128(n))
    }

    fn count(
        assessor: u128,
        method: Option<AssessmentMethod>,
        criterion: Option<u128>,
        (judged, sampled): (i64, i64),
    ) -> SampledCount {
        SampledCount {
            assessor_id: who(assessor),
            assessor_name: format!("A{assessor}"),
            method,
            criterion_id: criterion.map(|c| CriterionId(uuid::Uuid::from_u128(c))),
            judged,
            sampled,
        }
    }

    #[test]
    fn coverage_sets_each_assessor_against_the_plan() {
        let pc1 = CriterionId(uuid::Uuid::from_u128(100));
        let pc2 = CriterionId(uuid::Uuid::from_u128(101));
        let plan = StoredPlan {
            percents: vec![(who(1), 25), (who(2), 50)],
            methods: vec![AssessmentMethod::Observation],
            criteria: vec![pc1, pc2],
            ..StoredPlan::default()
        };
        let counts = [
            count(1, None, None, (8, 2)),
            count(1, Some(AssessmentMethod::Observation), None, (3, 1)),
            count(1, None, Some(100), (4, 0)),
            count(2, None, None, (4, 1)),
            count(2, Some(AssessmentMethod::Observation), None, (2, 0)),
            count(2, None, Some(100), (2, 1)),
            // Someone who judged and has left the cohort still counts.
            count(3, None, None, (1, 0)),
        ];
        let criteria = [
            (pc1, "PC1".to_owned(), "first".to_owned()),
            (pc2, "PC2".to_owned(), "second".to_owned()),
        ];
        let assessors = [(who(1), "A1".to_owned()), (who(2), "A2".to_owned())];
        let c = coverage(&assessors, &plan, &counts, &criteria);
        assert_eq!(c.assessors.len(), 3);
        assert_eq!(c.assessors[0].done_percent(), 25);
        assert!(c.assessors[0].on_plan(), "2 of 8 is the 25% planned");
        assert!(!c.assessors[1].on_plan(), "1 of 4 is short of 50%");
        assert!(c.assessors[2].on_plan(), "nothing planned");
        assert_eq!(
            c.methods[0].cells,
            [Cell::Sampled, Cell::NotYet, Cell::NothingJudged]
        );
        assert_eq!(c.criteria[0].label, "PC1");
        assert_eq!(
            c.criteria[0].cells,
            [Cell::NotYet, Cell::Sampled, Cell::NothingJudged]
        );
        assert_eq!(c.criteria[1].cells, [Cell::NothingJudged; 3]);
    }

    #[test]
    fn the_plan_form_is_read_or_refused_field_by_field() {
        let assessors = [(who(1), "Priya".to_owned()), (who(2), "Tom".to_owned())];
        let pairs = |extra: &[(&str, &str)]| -> Vec<(String, String)> {
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let field = format!("percent-{}", who(1));
        let read = read_plan(
            &pairs(&[
                (&field, " 30% "),
                ("method", "observation"),
                ("method", "observation"),
                ("criterion", "00000000-0000-0000-0000-000000000064"),
            ]),
            &assessors,
        )
        .expect("read");
        assert_eq!(read.percents, [(who(1), 30)]);
        assert_eq!(read.methods, [AssessmentMethod::Observation]);
        assert_eq!(read.criteria.len(), 1);

        let refused = read_plan(
            &pairs(&[(&field, "120"), ("method", "telepathy")]),
            &assessors,
        )
        .expect_err("refused");
        assert!(refused.get(&field).is_some_and(|m| m.contains("Priya")));
        assert!(refused.get("methods").is_some());
    }
}
