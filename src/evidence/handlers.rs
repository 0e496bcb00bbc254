//! The candidate's evidence: write a draft with files and claims, submit it with the
//! declaration, revise it as a new version; and anyone on the enrolment reads it.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::db::{self, Evidence};
use super::model::{DeclaredContent, DraftContent, EvidenceFields};
use super::upload::{self, Action, Limits, Refusal};
use super::views::{EvidenceFormPage, EvidenceShowPage};
use crate::audit::{self, Actor, NewAuditEvent};
use crate::auth::EmptyForm;
use crate::auth::csrf::{CsrfForm, CsrfMultipart};
use crate::cohorts::db as cohorts_db;
use crate::crypto::hex;
use crate::error::{AppError, AppResult};
use crate::forms::FormErrors;
use crate::identity::CurrentUser;
use crate::ids::{EnrolmentId, EvidenceId};
use crate::standards::cache::Standards;
use crate::state::AppState;
use crate::web::client_ip::ClientIp;
use crate::web::flash;
use crate::web::layout::Layout;

fn limits(state: &AppState) -> Limits {
    Limits {
        file_bytes: state.settings.max_file_bytes,
        evidence_bytes: state.settings.max_evidence_bytes,
    }
}

/// The candidate's own, active enrolment; anything else is "not found".
async fn own_enrolment(
    state: &AppState,
    user: &CurrentUser,
    id: Uuid,
) -> AppResult<cohorts_db::Enrolment> {
    let mut conn = state.pool.acquire().await?;
    cohorts_db::find_visible(&mut conn, EnrolmentId(id), user.viewer())
        .await?
        .filter(|e| e.is_candidate(user.id) && !e.is_withdrawn())
        .ok_or(AppError::NotFound)
}

/// `GET /enrolments/{id}/evidence/new`.
pub async fn new(
    State(state): State<AppState>,
    user: CurrentUser,
    layout: Layout,
    Path(enrolment_id): Path<Uuid>,
) -> AppResult<EvidenceFormPage> {
    let enrolment = own_enrolment(&state, &user, enrolment_id).await?;
    EvidenceFormPage::build(
        &state,
        layout,
        &enrolment,
        None,
        &EvidenceFields::default(),
        FormErrors::default(),
    )
    .await
}

/// `POST /enrolments/{id}/evidence/new`: a new draft with whatever the form holds.
pub async fn create(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    user: CurrentUser,
    layout: Layout,
    Path(enrolment_id): Path<Uuid>,
    CsrfMultipart(multipart): CsrfMultipart,
) -> AppResult<Response> {
    let enrolment = own_enrolment(&state, &user, enrolment_id).await?;
    let mut tx = state.pool.begin().await?;
    // Its audit event is written with the draft's content, after the upload: the chain's lock
    // is held from an append to the commit, and must not wait on a slow client.
    let id = db::insert_draft(&mut tx, enrolment.id, Uuid::now_v7(), 1).await?;
    let saving = Saving {
        state: &state,
        user: &user,
        ip,
        enrolment: &enrolment,
        id,
        existing: None,
    };
    save(saving, tx, layout, multipart).await
}

/// `GET /evidence/{id}/edit`: only the candidate's own draft.
pub async fn edit(
    State(state): State<AppState>,
    user: CurrentUser,
    layout: Layout,
    Path(id): Path<Uuid>,
) -> AppResult<EvidenceFormPage> {
    let mut conn = state.pool.acquire().await?;
    let evidence = db::find_visible(&mut conn, id, user.viewer())
        .await?
        .ok_or(AppError::NotFound)?;
    if evidence.candidate_id != user.id.0 {
        return Err(AppError::NotFound);
    }
    if !evidence.is_draft() {
        return Err(submitted_is_final());
    }
    let enrolment = cohorts_db::find_visible(&mut conn, evidence.enrolment_id, user.viewer())
        .await?
        .filter(|e| !e.is_withdrawn())
        .ok_or(AppError::NotFound)?;
    let claims = db::list_claims(&mut conn, id).await?;
    drop(conn);
    let fields = EvidenceFields {
        title: evidence.title.clone(),
        statement: evidence.statement.clone(),
        method: evidence
            .method
            .map(|m| m.as_str().to_owned())
            .unwrap_or_default(),
        activity_on: evidence
            .activity_on
            .map(|d| d.to_string())
            .unwrap_or_default(),
        claims: claims
            .into_iter()
            .map(|c| (c.criterion_id, c.note))
            .collect(),
        declaration: false,
    };
    EvidenceFormPage::build(
        &state,
        layout,
        &enrolment,
        Some(&evidence),
        &fields,
        FormErrors::default(),
    )
    .await
}

fn submitted_is_final() -> AppError {
    AppError::Conflict(
        "Submitted evidence cannot be changed. To change it, open it and choose “Revise”: that makes a new version and keeps this one in the history.".into(),
    )
}

/// `POST /evidence/{id}/edit`: saves the draft, and submits it when asked.
pub async fn update(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    user: CurrentUser,
    layout: Layout,
    Path(id): Path<Uuid>,
    CsrfMultipart(multipart): CsrfMultipart,
) -> AppResult<Response> {
    let mut tx = state.pool.begin().await?;
    let Some((enrolment_id, ..)) = db::lock_own_draft(&mut tx, id, user.id).await? else {
        // Not theirs (404), or theirs and submitted (409).
        let evidence = db::find_visible(&mut tx, id, user.viewer()).await?;
        return Err(match evidence {
            Some(e) if e.candidate_id == user.id.0 && !e.is_draft() => submitted_is_final(),
            _ => AppError::NotFound,
        });
    };
    let enrolment = cohorts_db::find_visible(&mut tx, EnrolmentId(enrolment_id), user.viewer())
        .await?
        .ok_or(AppError::NotFound)?;
    let evidence = db::find_visible(&mut tx, id, user.viewer())
        .await?
        .ok_or(AppError::NotFound)?;
    let saving = Saving {
        state: &state,
        user: &user,
        ip,
        enrolment: &enrolment,
        id,
        existing: Some(evidence),
    };
    save(saving, tx, layout, multipart).await
}

/// One save of a draft: who saves it, from where, and which draft of which enrolment.
struct Saving<'a> {
    state: &'a AppState,
    user: &'a CurrentUser,
    ip: Option<std::net::IpAddr>,
    enrolment: &'a cohorts_db::Enrolment,
    /// The draft, locked or just made in the transaction.
    id: Uuid,
    /// The draft as it was, or `None` when this request made it.
    existing: Option<Evidence>,
}

impl Saving<'_> {
    fn actor(&self) -> Actor {
        Actor::user(self.user, self.ip)
    }
}

/// Reads the form into the draft, then saves it, takes a file off it or submits it.
async fn save(
    saving: Saving<'_>,
    mut tx: sqlx::Transaction<'static, sqlx::Postgres>,
    layout: Layout,
    mut multipart: axum::extract::Multipart,
) -> AppResult<Response> {
    let limits = limits(saving.state);
    let form =
        match upload::read_form(&mut tx, &mut multipart, EvidenceId(saving.id), limits).await? {
            Ok(form) => form,
            Err(refusal) => {
                // Nothing of this request is kept.
                tx.rollback().await?;
                return refused_upload(&saving, layout, refusal).await;
            }
        };
    let id = saving.id;
    if form.action == Action::Submit {
        lock_for_submission(&mut tx, saving.enrolment.id).await?;
    }
    // One moment for the whole save, read once any wait for those locks is over: the draft's
    // update and, when submitted, its submission.
    let now = saving.state.clock.now();
    let (content, mut errors, claims, files) = write_draft(&saving, &mut tx, &form, now).await?;
    if let Action::RemoveFile(file_id) = form.action {
        // The Remove buttons sit inside the evidence form: what was typed is saved first.
        let name = take_file_off(&mut tx, saving.user, saving.ip, id, file_id).await?;
        tx.commit().await?;
        let message = format!("Removed “{name}”; the rest of the draft is saved.");
        return Ok(flash::redirect(&format!("/evidence/{id}/edit"), &message));
    }
    if form.action == Action::Submit {
        let declared = form.fields.declaration;
        content.check_submission(claims.len(), files.len(), declared, &mut errors);
    }
    if !errors.is_empty() {
        tx.commit().await?;
        return refused_fields(&saving, layout, &form.fields, errors).await;
    }
    if form.action == Action::SaveDraft {
        tx.commit().await?;
        return Ok(flash::redirect(
            &format!("/evidence/{id}/edit"),
            "Draft saved.",
        ));
    }
    let version = submit(&saving, &mut tx, &content, &claims, &files, now).await?;
    tx.commit().await?;
    let message = if version > 1 {
        format!(
            "Version {version} submitted. It replaces version {} for assessment.",
            version - 1
        )
    } else {
        "Evidence submitted for assessment.".to_owned()
    };
    Ok(flash::redirect(&format!("/evidence/{id}"), &message))
}

/// Takes the locks a submission needs, before anything of the draft is written. It waits for
/// a sign-off or judging of the same enrolment in progress, so neither rests on a version this
/// one is about to replace (taken before the audit chain's lock, in the order a sign-off takes
/// them); and for the enrolment's stored status, which the submission rewrites, before the
/// draft's audit event takes the chain's lock.
async fn lock_for_submission(tx: &mut sqlx::PgConnection, enrolment: EnrolmentId) -> AppResult<()> {
    cohorts_db::lock_for_assessment(&mut *tx, enrolment).await?;
    crate::status::db::lock(tx, enrolment).await?;
    Ok(())
}

/// Writes what the form holds into the draft, with its audit event; returns the content, the
/// problems found in it, and the draft's claims and files as now stored.
async fn write_draft(
    saving: &Saving<'_>,
    tx: &mut sqlx::PgConnection,
    form: &upload::ReadForm,
    now: OffsetDateTime,
) -> AppResult<(
    DraftContent,
    FormErrors,
    Vec<db::Claim>,
    Vec<db::EvidenceFile>,
)> {
    let (id, enrolment) = (saving.id, saving.enrolment.id);
    let (content, errors) = form.fields.draft(now.date());
    db::update_draft(&mut *tx, id, &content, now).await?;
    db::replace_claims(&mut *tx, id, &form.fields.claims).await?;
    let claims = db::list_claims(&mut *tx, id).await?;
    let files = db::list_files(&mut *tx, id).await?;
    audit::record(
        tx,
        NewAuditEvent {
            actor: &saving.actor(),
            action: if saving.existing.is_some() {
                "evidence.draft_saved"
            } else {
                "evidence.draft_created"
            },
            entity_type: "evidence",
            entity_id: id.to_string(),
            detail: json!({
                "enrolment_id": enrolment,
                "title": content.title,
                "claims": claims.iter().map(|c| &c.code).collect::<Vec<_>>(),
                "files_added": form.added,
            }),
        },
    )
    .await?;
    Ok((content, errors, claims, files))
}

/// Submits the saved draft: its declaration's digest, the enrolment's status recomputed, and
/// the audit event. Returns the version submitted.
async fn submit(
    saving: &Saving<'_>,
    tx: &mut sqlx::PgConnection,
    content: &DraftContent,
    claims: &[db::Claim],
    files: &[db::EvidenceFile],
    now: OffsetDateTime,
) -> AppResult<i32> {
    let id = saving.id;
    let (item_id, version) = match &saving.existing {
        Some(e) => (e.item_id, e.version),
        None => db::item_and_version(&mut *tx, id).await?,
    };
    let claim_list: Vec<(String, String)> = claims
        .iter()
        .map(|c| (c.code.clone(), c.note.clone()))
        .collect();
    let file_list: Vec<(String, String)> = files
        .iter()
        .map(|f| (hex(&f.sha256), f.file_name.clone()))
        .collect();
    let declaration = DeclaredContent {
        item_id,
        version,
        content,
        claims: &claim_list,
        files: &file_list,
    }
    .sha256();
    db::mark_submitted(&mut *tx, id, &declaration, now).await?;
    crate::status::db::refresh(&mut *tx, saving.enrolment.id).await?;
    audit::record(
        tx,
        NewAuditEvent {
            actor: &saving.actor(),
            action: "evidence.submitted",
            entity_type: "evidence",
            entity_id: id.to_string(),
            detail: json!({
                "item_id": item_id,
                "version": version,
                "declaration": "This evidence is my own work",
                "declaration_sha256": hex(&declaration),
                "claims": claim_list.iter().map(|(code, _)| code).collect::<Vec<_>>(),
                "files": file_list,
            }),
        },
    )
    .await?;
    Ok(version)
}

/// The form again after an upload was refused: 413 or 422, with what was typed and why.
async fn refused_upload(
    saving: &Saving<'_>,
    layout: Layout,
    refusal: Refusal,
) -> AppResult<Response> {
    let (status, fields, messages) = match refusal {
        Refusal::TooLarge { fields, message } => {
            (StatusCode::PAYLOAD_TOO_LARGE, fields, vec![message])
        }
        Refusal::Rejected { fields, messages } => {
            (StatusCode::UNPROCESSABLE_ENTITY, fields, messages)
        }
    };
    let mut errors = FormErrors::default();
    for message in messages {
        errors.add("files", message);
    }
    errors.add(
        "files",
        "Nothing from this attempt was saved. Choose the files again.",
    );
    let existing = saving.existing.as_ref();
    let page = EvidenceFormPage::build(
        saving.state,
        layout,
        saving.enrolment,
        existing,
        &fields,
        errors,
    )
    .await?;
    Ok((status, page).into_response())
}

/// The form again after its fields were refused (422): the draft and its files are saved.
async fn refused_fields(
    saving: &Saving<'_>,
    layout: Layout,
    fields: &EvidenceFields,
    mut errors: FormErrors,
) -> AppResult<Response> {
    let evidence = {
        let mut conn = saving.state.pool.acquire().await?;
        db::find_visible(&mut conn, saving.id, saving.user.viewer()).await?
    };
    errors.add(
        "saved",
        "Your draft and its files are saved; correct the marked fields.",
    );
    let page = EvidenceFormPage::build(
        saving.state,
        layout,
        saving.enrolment,
        evidence.as_ref(),
        fields,
        errors,
    )
    .await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

/// `GET /evidence/{id}`.
pub async fn show(
    State(state): State<AppState>,
    standards: Standards,
    user: CurrentUser,
    layout: Layout,
    Path(id): Path<Uuid>,
) -> AppResult<EvidenceShowPage> {
    EvidenceShowPage::build(&state, &standards, &user, layout, id, None).await
}

/// Takes one file off a (locked) draft, with its audit event; returns the file's name.
async fn take_file_off(
    tx: &mut sqlx::PgConnection,
    user: &CurrentUser,
    ip: Option<std::net::IpAddr>,
    id: Uuid,
    file_id: Uuid,
) -> AppResult<String> {
    let name = db::delete_file(&mut *tx, EvidenceId(id), file_id)
        .await?
        .ok_or(AppError::NotFound)?;
    audit::record(
        tx,
        NewAuditEvent {
            actor: &Actor::user(user, ip),
            action: "evidence.file_removed",
            entity_type: "evidence",
            entity_id: id.to_string(),
            detail: json!({ "file_id": file_id, "file_name": name }),
        },
    )
    .await?;
    Ok(name)
}

/// `POST /evidence/{id}/files/{file_id}/delete`: takes one file off a draft.
pub async fn remove_file(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    user: CurrentUser,
    Path((id, file_id)): Path<(Uuid, Uuid)>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> AppResult<Response> {
    let mut tx = state.pool.begin().await?;
    if db::lock_own_draft(&mut tx, id, user.id).await?.is_none() {
        return Err(AppError::NotFound);
    }
    let name = take_file_off(&mut tx, &user, ip, id, file_id).await?;
    tx.commit().await?;
    Ok(flash::redirect(
        &format!("/evidence/{id}/edit"),
        &format!("Removed “{name}”."),
    ))
}

/// `POST /evidence/{id}/delete`: only drafts can be deleted.
pub async fn delete(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> AppResult<Response> {
    let mut tx = state.pool.begin().await?;
    let Some((enrolment_id, item_id, version)) = db::lock_own_draft(&mut tx, id, user.id).await?
    else {
        return Err(AppError::NotFound);
    };
    db::delete_draft(&mut tx, id).await?;
    audit::record(
        &mut tx,
        NewAuditEvent {
            actor: &Actor::user(&user, ip),
            action: "evidence.draft_deleted",
            entity_type: "evidence",
            entity_id: id.to_string(),
            detail: json!({ "item_id": item_id, "version": version }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(flash::redirect(
        &format!("/enrolments/{enrolment_id}"),
        "Draft deleted.",
    ))
}

/// `POST /evidence/{id}/revise`: a new draft version of submitted evidence.
pub async fn revise(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> AppResult<Response> {
    let mut tx = state.pool.begin().await?;
    let evidence = db::find_visible(&mut tx, id, user.viewer())
        .await?
        .filter(|e| e.candidate_id == user.id.0)
        .ok_or(AppError::NotFound)?;
    let active = cohorts_db::find_visible(&mut tx, evidence.enrolment_id, user.viewer())
        .await?
        .is_some_and(|e| !e.is_withdrawn());
    if !active {
        return Err(AppError::NotFound);
    }
    // Serialise revisions of one item: lock its newest version.
    db::lock_newest_version(&mut tx, evidence.item_id).await?;
    if let Some(draft) = db::open_draft_of_item(&mut tx, evidence.item_id).await? {
        return Ok(flash::redirect(
            &format!("/evidence/{draft}/edit"),
            "You are already revising this evidence.",
        ));
    }
    if evidence.is_draft() {
        return Ok(flash::redirect(
            &format!("/evidence/{id}/edit"),
            "This is a draft; edit it directly.",
        ));
    }
    let Some(draft) = db::start_revision(&mut tx, &evidence).await? else {
        return Err(AppError::Conflict(
            "A newer version of this evidence exists; revise that one.".into(),
        ));
    };
    audit::record(
        &mut tx,
        NewAuditEvent {
            actor: &Actor::user(&user, ip),
            action: "evidence.revision_started",
            entity_type: "evidence",
            entity_id: draft.to_string(),
            detail: json!({ "item_id": evidence.item_id, "from_version": evidence.version, "version": evidence.version + 1 }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(flash::redirect(
        &format!("/evidence/{draft}/edit"),
        &format!(
            "Version {} is a draft copy of version {}. Change what you need, then submit it.",
            evidence.version + 1,
            evidence.version
        ),
    ))
}

#[derive(Debug, Deserialize)]
pub struct DownloadQuery {
    #[serde(default)]
    inline: Option<String>,
}

/// `GET /evidence/{id}/files/{file_id}`: the file, streamed from the database.
pub async fn download(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, file_id)): Path<(Uuid, Uuid)>,
    Query(query): Query<DownloadQuery>,
) -> AppResult<Response> {
    let file = {
        let mut conn = state.pool.acquire().await?;
        db::find_visible(&mut conn, id, user.viewer())
            .await?
            .ok_or(AppError::NotFound)?;
        db::list_files(&mut conn, id)
            .await?
            .into_iter()
            .find(|f| f.id == file_id)
            .ok_or(AppError::NotFound)?
    };
    // Images and PDFs may be shown in the browser; everything else is only ever a download.
    let previewable =
        file.content_type.starts_with("image/") || file.content_type == "application/pdf";
    let disposition = if query.inline.is_some() && previewable {
        "inline"
    } else {
        "attachment"
    };
    let body = Body::from_stream(crate::blobs::read(state.pool.clone(), file.blob_id));
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&file.content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(file.size_bytes));
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&crate::web::download::content_disposition(
            disposition,
            &file.file_name,
        ))
        .unwrap_or(HeaderValue::from_static("attachment")),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(response)
}
