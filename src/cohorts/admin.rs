//! Cohort management for admins: create cohorts, enrol candidates (picked or from a roster
//! file), assign assessors and IQAs, withdraw enrolments.

use std::collections::HashMap;

use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::db::{self, CohortInsertError};
use super::model::{NewCohort, RosterError, RosterRow, parse_roster};
use super::views::{CohortShowPage, CohortsIndexPage, CreatedAccount};
use crate::accounts::db as users_db;
use crate::accounts::model::{DisplayName, Email};
use crate::audit::{self, Actor, NewAuditEvent};
use crate::auth::csrf::{CsrfForm, CsrfMultipart};
use crate::auth::submissions::{self, Submission};
use crate::error::{AppError, AppResult};
use crate::forms::FormErrors;
use crate::identity::CurrentUser;
use crate::identity::{Role, UserId};
use crate::ids::CohortId;
use crate::standards::model::StandardId;
use crate::state::AppState;
use crate::users;
use crate::web::client_ip::ClientIp;
use crate::web::flash;
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
    let Some((cohort, standard)) = check_new_cohort(&form, &mut page) else {
        page.form = form;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    };
    let mut tx = state.pool.begin().await?;
    let by = Actor::user(&admin, ip);
    let Some(id) = create_cohort(&mut tx, &by, standard, &cohort).await? else {
        page.errors
            .add("name", "A cohort with this name already exists");
        page.form = form;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    };
    tx.commit().await?;
    Ok(flash::redirect(
        &format!("/admin/cohorts/{id}"),
        &format!("Created the cohort {}.", cohort.name),
    ))
}

/// Checks the new-cohort form, and its standard against those the page offers; when the form
/// is refused, the page's errors say why.
fn check_new_cohort(
    form: &CohortForm,
    page: &mut CohortsIndexPage,
) -> Option<(NewCohort, StandardId)> {
    let standard = Uuid::parse_str(&form.standard_id)
        .ok()
        .map(StandardId)
        .filter(|id| page.standards.iter().any(|(s, _)| s == id));
    let parsed = NewCohort::parse(&form.name, &form.starts_on, &form.ends_on);
    match (parsed, standard) {
        (Ok(cohort), Some(standard)) => Some((cohort, standard)),
        (parsed, standard) => {
            let mut errors = parsed.err().unwrap_or_default();
            if standard.is_none() {
                errors.add(
                    "standard_id",
                    "Choose the standard the cohort is assessed against",
                );
            }
            page.errors = errors;
            None
        }
    }
}

/// Creates the cohort with its audit event, in the caller's transaction; `None` when the name
/// is taken.
pub async fn create_cohort(
    conn: &mut PgConnection,
    by: &Actor,
    standard: StandardId,
    cohort: &NewCohort,
) -> AppResult<Option<CohortId>> {
    let inserted = db::insert(
        &mut *conn,
        standard,
        &cohort.name,
        cohort.starts_on,
        cohort.ends_on,
    )
    .await;
    let id = match inserted {
        Ok(id) => id,
        Err(CohortInsertError::NameTaken) => return Ok(None),
        Err(CohortInsertError::Database(e)) => return Err(e.into()),
    };
    audit::record(
        conn,
        NewAuditEvent {
            actor: by,
            action: "cohort.created",
            entity_type: "cohort",
            entity_id: id.to_string(),
            detail: json!({
                "name": cohort.name,
                "standard_id": standard,
                "starts_on": cohort.starts_on.to_string(),
                "ends_on": cohort.ends_on.to_string()
            }),
        },
    )
    .await?;
    Ok(Some(id))
}

async fn show_page(state: &AppState, layout: Layout, id: CohortId) -> AppResult<CohortShowPage> {
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
    Path(id): Path<CohortId>,
) -> AppResult<CohortShowPage> {
    show_page(&state, layout, id).await
}

#[derive(Debug, Deserialize)]
pub struct EnrolForm {
    #[serde(default)]
    candidate: Vec<UserId>,
}

/// `POST /admin/cohorts/{id}/enrolments`: enrols the chosen candidates.
pub async fn enrol(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    admin: CurrentUser,
    layout: Layout,
    Path(id): Path<CohortId>,
    CsrfForm(form): CsrfForm<EnrolForm>,
) -> AppResult<Response> {
    let page = show_page(&state, layout, id).await?;
    let chosen: Vec<UserId> = form
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
    let by = Actor::user(&admin, ip);
    let enrolled = enrol_candidates(&mut tx, &by, id, &chosen, "picked").await?;
    tx.commit().await?;
    Ok(flash::redirect(
        &format!("/admin/cohorts/{id}"),
        &format!("Enrolled {enrolled} candidate(s)."),
    ))
}

/// Enrols `candidates` in `cohort`, each with its stored status and audit event saying how it
/// was made (`via`), in a few statements in the caller's transaction; returns how many were
/// not enrolled already.
pub async fn enrol_candidates(
    conn: &mut PgConnection,
    by: &Actor,
    cohort: CohortId,
    candidates: &[UserId],
    via: &str,
) -> sqlx::Result<usize> {
    let ids: Vec<Uuid> = candidates.iter().map(|c| c.0).collect();
    let enrolled = db::enrol_many(&mut *conn, cohort, &ids).await?;
    // A new enrolment starts with its stored status: not started, every criterion too.
    let enrolments: Vec<Uuid> = enrolled.iter().map(|(e, _)| e.0).collect();
    crate::status::db::refresh_many(&mut *conn, &enrolments).await?;
    let events: Vec<NewAuditEvent<'_>> = enrolled
        .iter()
        .map(|(enrolment, candidate)| NewAuditEvent {
            actor: by,
            action: "enrolment.created",
            entity_type: "enrolment",
            entity_id: enrolment.to_string(),
            detail: json!({ "cohort_id": cohort, "candidate_id": candidate, "via": via }),
        })
        .collect();
    audit::record_many(conn, &events).await?;
    Ok(enrolled.len())
}

/// `POST /admin/cohorts/{id}/roster`: a CSV of `name,email`; new people get candidate accounts
/// and invitation links. One bad line and nothing of the file is applied.
pub async fn import_roster(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    admin: CurrentUser,
    layout: Layout,
    Path(id): Path<CohortId>,
    CsrfMultipart(mut multipart): CsrfMultipart,
) -> AppResult<Response> {
    // The cohort page is read only when it is answered: a large roster's enrolments change it.
    if db::find(&mut *state.pool.acquire().await?, id)
        .await?
        .is_none()
    {
        return Err(AppError::NotFound);
    }
    let (key, rows) = read_roster(&mut multipart).await?;
    let rows = match rows {
        Ok(rows) => rows,
        Err(refusal) => return Ok(refusal.render(show_page(&state, layout, id).await?)),
    };
    let import = RosterImport {
        state: &state,
        cohort: id,
        now: state.clock.now(),
        by: Actor::user(&admin, ip),
    };
    let mut tx = state.pool.begin().await?;
    // The same file sent twice (a double click, a resend) is applied once.
    let first = match submissions::claim(&mut tx, key, admin.id, import.now).await? {
        Submission::Again(to) => {
            return Ok(flash::redirect(
                &to,
                "This file was imported already. Its invitation links were shown once; issue a new one from a person's page if one was lost.",
            ));
        }
        first => first,
    };
    match import.apply(&mut tx, &rows).await? {
        Ok(created) => {
            first
                .led_to(&mut tx, &format!("/admin/cohorts/{id}"))
                .await?;
            tx.commit().await?;
            imported_page(&state, layout, id, created, rows.len()).await
        }
        Err(errors) => {
            tx.rollback().await?;
            let page = show_page(&state, layout, id).await?;
            Ok(RosterRefusal::invalid(errors).render(page))
        }
    }
}

/// Why a roster file was refused as a whole, and the status to answer with.
struct RosterRefusal {
    status: StatusCode,
    errors: Vec<RosterError>,
}

impl RosterRefusal {
    /// The file is larger than `ROSTER_LIMIT`.
    fn too_large() -> Self {
        Self {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            errors: vec![RosterError {
                line: 0,
                message: "The file is larger than 1 MiB".into(),
            }],
        }
    }

    /// Lines of the file have problems, each named.
    fn invalid(errors: Vec<RosterError>) -> Self {
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            errors,
        }
    }

    /// The cohort page again, listing the file's problems.
    fn render(self, mut page: CohortShowPage) -> Response {
        page.roster_errors = self.errors;
        (self.status, page).into_response()
    }
}

/// Reads the uploaded roster file into rows, or the reason the whole file is refused; with
/// the form's one-time key.
async fn read_roster(
    multipart: &mut Multipart,
) -> AppResult<(Option<Uuid>, Result<Vec<RosterRow>, RosterRefusal>)> {
    let (key, bytes) = read_roster_form(multipart).await?;
    let Some(bytes) = bytes else {
        return Ok((key, Err(RosterRefusal::too_large())));
    };
    Ok((key, parse_roster(&bytes).map_err(RosterRefusal::invalid)))
}

/// The form's one-time key and the bytes of its `roster` field; `None` as soon as they pass
/// `ROSTER_LIMIT`, so an oversized upload is not read to its end.
async fn read_roster_form(multipart: &mut Multipart) -> AppResult<(Option<Uuid>, Option<Vec<u8>>)> {
    let unreadable = |_| AppError::BadRequest("The file could not be read.".into());
    let mut key = None;
    let mut bytes = Vec::new();
    while let Some(mut field) = multipart.next_field().await.map_err(unreadable)? {
        let limit = match field.name() {
            Some("roster") => ROSTER_LIMIT,
            Some(submissions::FIELD) => 64,
            _ => continue,
        };
        let mut value = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(unreadable)? {
            value.extend_from_slice(&chunk);
            if value.len() > limit {
                return Ok((key, None));
            }
        }
        if field.name() == Some("roster") {
            bytes = value;
        } else {
            key = submissions::parse_key(&String::from_utf8_lossy(&value));
        }
    }
    Ok((key, Some(bytes)))
}

/// A roster file being applied to a cohort: by whom and when, for the new accounts' invitation
/// links and the audit trail.
struct RosterImport<'a> {
    state: &'a AppState,
    cohort: CohortId,
    now: OffsetDateTime,
    by: Actor,
}

impl RosterImport<'_> {
    /// Enrols every row in one transaction of a few set-wide statements, committed only when
    /// no row has a problem; otherwise rolled back, and every problem found is returned.
    async fn apply(
        &self,
        tx: &mut PgConnection,
        rows: &[RosterRow],
    ) -> AppResult<Result<Vec<CreatedAccount>, Vec<RosterError>>> {
        let emails: Vec<String> = rows.iter().map(|r| r.email.as_str().to_owned()).collect();
        let existing: HashMap<String, users_db::Credentials> =
            users_db::find_credentials_of(&mut *tx, &emails)
                .await?
                .into_iter()
                .collect();
        let mut errors = Vec::new();
        let mut known = Vec::new();
        let mut new_rows = Vec::new();
        for row in rows {
            match existing.get(row.email.as_str()) {
                Some(user) if !user.roles.contains(&Role::Candidate) || !user.is_active => {
                    errors.push(RosterError::not_an_active_candidate(row));
                }
                Some(user) => known.push((row, user.id)),
                None => new_rows.push(row),
            }
        }
        let known_ids: Vec<Uuid> = known.iter().map(|(_, id)| id.0).collect();
        let enrolled_already = db::enrolled_of(&mut *tx, self.cohort, &known_ids).await?;
        errors.extend(
            known
                .iter()
                .filter(|(_, id)| enrolled_already.contains(id))
                .map(|(row, _)| RosterError::already_enrolled(row)),
        );
        if !errors.is_empty() {
            errors.sort_by_key(|e| e.line);
            return Ok(Err(errors));
        }

        let people: Vec<(&Email, &DisplayName)> =
            new_rows.iter().map(|r| (&r.email, &r.name)).collect();
        let base_url = &self.state.settings.base_url;
        let invited = users::invite_many(
            &mut *tx,
            &self.by,
            &people,
            &[Role::Candidate],
            "roster",
            (base_url, self.now),
        )
        .await?;
        let invited = match invited {
            Ok(invited) => invited,
            Err(taken) => {
                let errors = new_rows
                    .iter()
                    .filter(|r| taken.iter().any(|t| t == r.email.as_str()))
                    .map(|r| RosterError::account_made_meanwhile(r))
                    .collect();
                return Ok(Err(errors));
            }
        };
        let mut candidates: Vec<UserId> = known.iter().map(|(_, id)| *id).collect();
        candidates.extend(invited.iter().map(|(id, _)| *id));
        enrol_candidates(&mut *tx, &self.by, self.cohort, &candidates, "roster").await?;
        Ok(Ok(new_rows
            .iter()
            .zip(invited)
            .map(|(row, (_, link))| CreatedAccount {
                name: row.name.as_str().to_owned(),
                email: row.email.as_str().to_owned(),
                link: link.url,
            })
            .collect()))
    }
}

/// The cohort page read afresh once a roster is applied, with the new accounts' invitation
/// links (shown this once) and how many candidates the file enrolled.
async fn imported_page(
    state: &AppState,
    layout: Layout,
    cohort: CohortId,
    created: Vec<CreatedAccount>,
    enrolled: usize,
) -> AppResult<Response> {
    let mut page = show_page(state, layout, cohort).await?;
    page.created = created;
    page.layout.flash = Some(flash::Flash {
        message: format!("Enrolled {enrolled} candidate(s) from the file."),
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
    Path(id): Path<CohortId>,
    CsrfForm(form): CsrfForm<AssignForm>,
) -> AppResult<Response> {
    let mut page = show_page(&state, layout, id).await?;
    let Some(assignment) = check_assignment(&form, &mut page) else {
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    };
    let mut tx = state.pool.begin().await?;
    let by = Actor::user(&admin, ip);
    match assign_staff(&mut tx, &by, id, &assignment).await? {
        Ok(changed) => {
            tx.commit().await?;
            Ok(flash::redirect(
                &format!("/admin/cohorts/{id}"),
                &format!("Updated {} enrolment(s).", changed.len()),
            ))
        }
        Err(conflicts) => {
            page.errors.add(
                "assessor",
                format!(
                    "Nobody may assess or quality-assure their own enrolment: {}",
                    conflicts.join(", ")
                ),
            );
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}

/// What an assignment form asks for, once checked against the page's lists.
pub struct Assignment<'f> {
    pub enrolments: &'f [Uuid],
    pub assessor: Option<UserId>,
    pub iqa: Option<UserId>,
}

/// Checks the assignment form against the assessors and IQAs the page offers; when the form is
/// refused, the page's errors say why.
fn check_assignment<'f>(form: &'f AssignForm, page: &mut CohortShowPage) -> Option<Assignment<'f>> {
    let assessor = listed_choice(&form.assessor, &page.assessors);
    let iqa = listed_choice(&form.iqa, &page.iqas);
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
        return None;
    };
    if assessor.is_none() && iqa.is_none() {
        page.errors
            .add("assessor", "Choose an assessor, an IQA, or both");
    }
    if !page.errors.is_empty() {
        return None;
    }
    Some(Assignment {
        enrolments: &form.enrolment,
        assessor,
        iqa,
    })
}

/// Reads a person picked from a list: `Ok(None)` when nobody is picked, `Err(())` when the
/// pick is not one of `people`.
fn listed_choice(text: &str, people: &[db::Person]) -> Result<Option<UserId>, ()> {
    if text.is_empty() {
        return Ok(None);
    }
    Uuid::parse_str(text)
        .ok()
        .map(UserId)
        .filter(|id| people.iter().any(|p| p.id == *id))
        .map(Some)
        .ok_or(())
}

/// Gives the enrolments their assessor and/or IQA in the caller's transaction, refreshing
/// their stored status and auditing each; refused with the candidates' names (and nothing
/// written) when any of them would assess or quality-assure their own enrolment.
pub async fn assign_staff(
    conn: &mut PgConnection,
    by: &Actor,
    cohort: CohortId,
    assignment: &Assignment<'_>,
) -> sqlx::Result<Result<Vec<Uuid>, Vec<String>>> {
    let (changed, conflicts) = db::assign(
        &mut *conn,
        cohort,
        assignment.enrolments,
        assignment.assessor,
        assignment.iqa,
    )
    .await?;
    if !conflicts.is_empty() {
        return Ok(Err(conflicts));
    }
    crate::status::db::refresh_many(&mut *conn, &changed).await?;
    let events: Vec<NewAuditEvent<'_>> = changed
        .iter()
        .map(|enrolment| NewAuditEvent {
            actor: by,
            action: "enrolment.assigned",
            entity_type: "enrolment",
            entity_id: enrolment.to_string(),
            detail: json!({ "assessor_id": assignment.assessor, "iqa_id": assignment.iqa }),
        })
        .collect();
    audit::record_many(conn, &events).await?;
    Ok(Ok(changed))
}
