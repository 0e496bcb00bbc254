//! Cohort management for admins: create cohorts, enrol candidates (picked or from a roster
//! file), assign assessors and IQAs, withdraw enrolments.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::db::{self, CohortInsertError};
use super::model::{NewCohort, RosterError, parse_roster};
use super::views::{CohortShowPage, CohortsIndexPage, CreatedAccount};
use crate::audit::{self, Actor, NewAuditEvent};
use crate::auth::csrf::{CsrfForm, CsrfMultipart};
use crate::auth::links::{self, Purpose};
use crate::auth::session::CurrentUser;
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::users::db as users_db;
use crate::users::model::Role;
use crate::web::client_ip::ClientIp;
use crate::web::flash;
use crate::web::forms::FormErrors;
use crate::web::layout::{Layout, Section};

/// Largest roster file read, in bytes: thousands of lines.
const ROSTER_LIMIT: usize = 1024 * 1024;

async fn index_page(state: &AppState, layout: Layout) -> AppResult<CohortsIndexPage> {
    let mut conn = state.pool.acquire().await?;
    Ok(CohortsIndexPage {
        layout: layout.section(Section::Cohorts),
        cohorts: db::list(&mut conn).await?,
        standards: db::standards(&mut conn).await?,
        form: CohortForm::default(),
        errors: FormErrors::default(),
    })
}

/// `GET /admin/cohorts`.
pub async fn index(State(state): State<AppState>, layout: Layout) -> AppResult<CohortsIndexPage> {
    index_page(&state, layout).await
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct CohortForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub standard_id: String,
    #[serde(default)]
    pub starts_on: String,
    #[serde(default)]
    pub ends_on: String,
}

/// `POST /admin/cohorts`.
pub async fn create(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    admin: CurrentUser,
    layout: Layout,
    CsrfForm(form): CsrfForm<CohortForm>,
) -> AppResult<Response> {
    let mut page = index_page(&state, layout).await?;
    let standard = Uuid::parse_str(&form.standard_id)
        .ok()
        .filter(|id| page.standards.iter().any(|(s, _)| s == id));
    let parsed = NewCohort::parse(&form.name, &form.starts_on, &form.ends_on);
    let (cohort, standard) = match (parsed, standard) {
        (Ok(cohort), Some(standard)) => (cohort, standard),
        (parsed, standard) => {
            let mut errors = parsed.err().unwrap_or_default();
            if standard.is_none() {
                errors.add(
                    "standard_id",
                    "Choose the standard the cohort is assessed against",
                );
            }
            page.form = form;
            page.errors = errors;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    let mut tx = state.pool.begin().await?;
    let id = match db::insert(
        &mut tx,
        standard,
        &cohort.name,
        cohort.starts_on,
        cohort.ends_on,
    )
    .await
    {
        Ok(id) => id,
        Err(CohortInsertError::NameTaken) => {
            page.errors
                .add("name", "A cohort with this name already exists");
            page.form = form;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
        Err(CohortInsertError::Database(e)) => return Err(e.into()),
    };
    audit::record(
        &mut tx,
        NewAuditEvent {
            actor: &Actor::user(&admin, ip),
            action: "cohort.created",
            entity_type: "cohort",
            entity_id: id.to_string(),
            detail: json!({ "name": cohort.name, "standard_id": standard, "starts_on": cohort.starts_on.to_string(), "ends_on": cohort.ends_on.to_string() }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(flash::redirect(
        &format!("/admin/cohorts/{id}"),
        &format!("Created the cohort {}.", cohort.name),
    ))
}

async fn show_page(state: &AppState, layout: Layout, id: Uuid) -> AppResult<CohortShowPage> {
    let mut conn = state.pool.acquire().await?;
    let cohort = db::find(&mut conn, id).await?.ok_or(AppError::NotFound)?;
    Ok(CohortShowPage {
        layout: layout.section(Section::Cohorts),
        enrolments: db::list_enrolments(&mut conn, id).await?,
        candidates: db::candidates_not_in(&mut conn, id).await?,
        assessors: db::people_with_role(&mut conn, Role::Assessor).await?,
        iqas: db::people_with_role(&mut conn, Role::Iqa).await?,
        cohort,
        errors: FormErrors::default(),
        roster_errors: Vec::new(),
        created: Vec::new(),
    })
}

/// `GET /admin/cohorts/{id}`.
pub async fn show(
    State(state): State<AppState>,
    layout: Layout,
    Path(id): Path<Uuid>,
) -> AppResult<CohortShowPage> {
    show_page(&state, layout, id).await
}

#[derive(Debug, Deserialize)]
pub struct EnrolForm {
    #[serde(default)]
    candidate: Vec<Uuid>,
}

/// `POST /admin/cohorts/{id}/enrolments`: enrols the chosen candidates.
pub async fn enrol(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    admin: CurrentUser,
    layout: Layout,
    Path(id): Path<Uuid>,
    CsrfForm(form): CsrfForm<EnrolForm>,
) -> AppResult<Response> {
    let page = show_page(&state, layout, id).await?;
    let chosen: Vec<Uuid> = form
        .candidate
        .into_iter()
        .filter(|c| page.candidates.iter().any(|p| p.id == *c))
        .collect();
    if chosen.is_empty() {
        let mut page = page;
        page.errors
            .add("candidate", "Choose at least one candidate to enrol");
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    let mut tx = state.pool.begin().await?;
    let mut enrolled = 0;
    for candidate in &chosen {
        if let Some(enrolment) = db::enrol(&mut tx, id, *candidate).await? {
            enrolled += 1;
            record_enrolment(
                &mut tx,
                &Actor::user(&admin, ip),
                id,
                enrolment,
                *candidate,
                "picked",
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok(flash::redirect(
        &format!("/admin/cohorts/{id}"),
        &format!("Enrolled {enrolled} candidate(s)."),
    ))
}

async fn record_enrolment(
    conn: &mut sqlx::PgConnection,
    actor: &Actor,
    cohort: Uuid,
    enrolment: Uuid,
    candidate: Uuid,
    via: &str,
) -> sqlx::Result<()> {
    // A new enrolment starts with its stored status: not started, every criterion too.
    crate::assessments::db::refresh(conn, enrolment).await?;
    audit::record(
        conn,
        NewAuditEvent {
            actor,
            action: "enrolment.created",
            entity_type: "enrolment",
            entity_id: enrolment.to_string(),
            detail: json!({ "cohort_id": cohort, "candidate_id": candidate, "via": via }),
        },
    )
    .await
}

/// `POST /admin/cohorts/{id}/roster`: a CSV of `name,email`; new people get candidate accounts
/// and invitation links. One bad line and nothing of the file is applied.
pub async fn import_roster(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    admin: CurrentUser,
    layout: Layout,
    Path(id): Path<Uuid>,
    CsrfMultipart(mut multipart): CsrfMultipart,
) -> AppResult<Response> {
    let mut page = show_page(&state, layout, id).await?;
    let mut bytes = Vec::new();
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|_| AppError::BadRequest("The file could not be read.".into()))?
    {
        if field.name() != Some("roster") {
            continue;
        }
        while let Some(chunk) = field
            .chunk()
            .await
            .map_err(|_| AppError::BadRequest("The file could not be read.".into()))?
        {
            bytes.extend_from_slice(&chunk);
            if bytes.len() > ROSTER_LIMIT {
                page.roster_errors.push(RosterError {
                    line: 0,
                    message: "The file is larger than 1 MiB".into(),
                });
                return Ok((StatusCode::PAYLOAD_TOO_LARGE, page).into_response());
            }
        }
    }
    let rows = match parse_roster(&bytes) {
        Ok(rows) => rows,
        Err(errors) => {
            page.roster_errors = errors;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };

    let now = state.clock.now();
    let by = Actor::user(&admin, ip);
    let mut tx = state.pool.begin().await?;
    let mut errors = Vec::new();
    let mut created = Vec::new();
    for row in &rows {
        let existing = users_db::find_credentials(&mut tx, &row.email.key()).await?;
        let candidate = match existing {
            Some(user) => {
                if !user.roles.contains(&Role::Candidate) || !user.is_active {
                    errors.push(RosterError {
                        line: row.line,
                        message: format!(
                            "{} has an account that is not an active candidate",
                            row.email.as_str()
                        ),
                    });
                    continue;
                }
                user.id.0
            }
            None => {
                let user = match users_db::insert(
                    &mut tx,
                    &row.email,
                    &row.name,
                    &[Role::Candidate],
                    None,
                )
                .await
                {
                    Ok(user) => user,
                    Err(users_db::InsertError::EmailTaken) => {
                        errors.push(RosterError {
                            line: row.line,
                            message: format!(
                                "{} was given an account by someone else just now; upload the file again",
                                row.email.as_str()
                            ),
                        });
                        // The failed insert has spoilt the transaction; nothing more can be
                        // written in it, and nothing of the file is applied anyway.
                        break;
                    }
                    Err(users_db::InsertError::Database(e)) => return Err(e.into()),
                };
                let link = links::issue(
                    &mut tx,
                    &state.settings.base_url,
                    Purpose::Invitation,
                    Some(user),
                    Some(admin.id),
                    now,
                )
                .await?;
                audit::record(
                    &mut tx,
                    NewAuditEvent {
                        actor: &by,
                        action: "user.created",
                        entity_type: "user",
                        entity_id: user.to_string(),
                        detail: json!({ "email": row.email.as_str(), "name": row.name.as_str(), "roles": ["candidate"], "via": "roster" }),
                    },
                )
                .await?;
                created.push(CreatedAccount {
                    name: row.name.as_str().to_owned(),
                    email: row.email.as_str().to_owned(),
                    link: link.url,
                });
                user.0
            }
        };
        match db::enrol(&mut tx, id, candidate).await? {
            Some(enrolment) => {
                record_enrolment(&mut tx, &by, id, enrolment, candidate, "roster").await?;
            }
            None => errors.push(RosterError {
                line: row.line,
                message: format!("{} is already enrolled in this cohort", row.email.as_str()),
            }),
        }
    }
    if !errors.is_empty() {
        tx.rollback().await?;
        page.roster_errors = errors;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    tx.commit().await?;

    let layout = page.layout.clone();
    let mut page = show_page(&state, layout, id).await?;
    page.created = created;
    page.layout.flash = Some(crate::web::flash::Flash {
        message: format!("Enrolled {} candidate(s) from the file.", rows.len()),
    });
    Ok(page.into_response())
}

#[derive(Debug, Deserialize)]
pub struct AssignForm {
    #[serde(default)]
    enrolment: Vec<Uuid>,
    #[serde(default)]
    assessor: String,
    #[serde(default)]
    iqa: String,
}

/// `POST /admin/cohorts/{id}/assignments`: gives the chosen enrolments an assessor and/or IQA.
pub async fn assign(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    admin: CurrentUser,
    layout: Layout,
    Path(id): Path<Uuid>,
    CsrfForm(form): CsrfForm<AssignForm>,
) -> AppResult<Response> {
    let mut page = show_page(&state, layout, id).await?;
    let pick = |text: &str, people: &[db::Person]| -> Result<Option<Uuid>, ()> {
        if text.is_empty() {
            return Ok(None);
        }
        Uuid::parse_str(text)
            .ok()
            .filter(|id| people.iter().any(|p| p.id == *id))
            .map(Some)
            .ok_or(())
    };
    let assessor = pick(&form.assessor, &page.assessors);
    let iqa = pick(&form.iqa, &page.iqas);
    if form.enrolment.is_empty() {
        page.errors.add("enrolment", "Tick at least one enrolment");
    }
    if assessor.is_err() {
        page.errors
            .add("assessor", "Choose an assessor from the list");
    }
    if iqa.is_err() {
        page.errors.add("iqa", "Choose an IQA from the list");
    }
    let (Ok(assessor), Ok(iqa)) = (assessor, iqa) else {
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    };
    if assessor.is_none() && iqa.is_none() {
        page.errors
            .add("assessor", "Choose an assessor, an IQA, or both");
    }
    if !page.errors.is_empty() {
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    let mut tx = state.pool.begin().await?;
    let (changed, conflicts) = db::assign(&mut tx, id, &form.enrolment, assessor, iqa).await?;
    if !conflicts.is_empty() {
        page.errors.add(
            "assessor",
            format!(
                "Nobody may assess or quality-assure their own enrolment: {}",
                conflicts.join(", ")
            ),
        );
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    crate::assessments::db::refresh_many(&mut tx, &changed).await?;
    for enrolment in &changed {
        audit::record(
            &mut tx,
            NewAuditEvent {
                actor: &Actor::user(&admin, ip),
                action: "enrolment.assigned",
                entity_type: "enrolment",
                entity_id: enrolment.to_string(),
                detail: json!({ "assessor_id": assessor, "iqa_id": iqa }),
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(flash::redirect(
        &format!("/admin/cohorts/{id}"),
        &format!("Updated {} enrolment(s).", changed.len()),
    ))
}

#[derive(Debug, Deserialize)]
pub struct WithdrawForm {
    #[serde(default)]
    reason: String,
}

/// `POST /enrolments/{id}/withdraw`: ends an enrolment with a reason; its records stay.
pub async fn withdraw(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    admin: CurrentUser,
    layout: Layout,
    Path(id): Path<Uuid>,
    CsrfForm(form): CsrfForm<WithdrawForm>,
) -> AppResult<Response> {
    let reason = form.reason.trim();
    if reason.is_empty() {
        let mut page = crate::evidence::portfolio::page(&state, &admin, layout, id).await?;
        page.errors
            .add("reason", "Give the reason for withdrawing the enrolment");
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    let mut tx = state.pool.begin().await?;
    let enrolment = db::find_visible(&mut tx, id, admin.viewer())
        .await?
        .ok_or(AppError::NotFound)?;
    if db::withdraw(&mut tx, id, reason, state.clock.now()).await? {
        crate::assessments::db::refresh(&mut tx, id).await?;
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
