//! The candidate's evidence: write a draft with files and claims, submit it with the
//! declaration, revise it as a new version; and anyone on the enrolment reads it.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;

use super::actions::{self, Draft, Limits, Revision};
use super::db::{self, Evidence};
use super::model::EvidenceFields;
use super::upload::{self, Action, Refusal};
use super::views::{EvidenceFormPage, EvidenceShowPage};
use crate::audit::{self, Actor, NewAuditEvent};
use crate::auth::EmptyForm;
use crate::auth::csrf::{CsrfForm, CsrfMultipart};
use crate::auth::submissions::{self, Submission};
use crate::cohorts::db as cohorts_db;
use crate::error::{AppError, AppResult};
use crate::forms::FormErrors;
use crate::identity::CurrentUser;
use crate::ids::{EnrolmentId, EvidenceId, FileId};
use crate::standards::cache::Standards;
use crate::state::AppState;
use crate::web::client_ip::ClientIp;
use crate::web::flash;
use crate::web::layout::Layout;

/// Who writes new evidence on an enrolment: its candidate their own, its assessor records.
#[derive(Debug, Clone, Copy)]
enum Writer {
    Candidate,
    Assessor,
}

/// The active enrolment `user` writes on as `writer`; anything else is "not found".
async fn writable_enrolment(
    state: &AppState,
    user: &CurrentUser,
    id: EnrolmentId,
    writer: Writer,
) -> AppResult<cohorts_db::Enrolment> {
    let mut conn = state.pool.acquire().await?;
    cohorts_db::find_visible(&mut conn, id, user.viewer())
        .await?
        .filter(|e| {
            let theirs = match writer {
                Writer::Candidate => e.is_candidate(user.id),
                Writer::Assessor => e.assessed_by(user.viewer()),
            };
            theirs && !e.is_withdrawn()
        })
        .ok_or(AppError::NotFound)
}

/// `GET /enrolments/{id}/evidence/new`.
pub async fn new(
    State(state): State<AppState>,
    user: CurrentUser,
    layout: Layout,
    Path(enrolment_id): Path<EnrolmentId>,
) -> AppResult<EvidenceFormPage> {
    let enrolment = writable_enrolment(&state, &user, enrolment_id, Writer::Candidate).await?;
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

/// `GET /enrolments/{id}/records/new`: the assessor's form for a record of an observation,
/// discussion or questioning.
pub async fn new_record(
    State(state): State<AppState>,
    user: CurrentUser,
    layout: Layout,
    Path(enrolment_id): Path<EnrolmentId>,
) -> AppResult<EvidenceFormPage> {
    let enrolment = writable_enrolment(&state, &user, enrolment_id, Writer::Assessor).await?;
    let fields = EvidenceFields {
        activity_on: state.clock.now().date().to_string(),
        ..EvidenceFields::default()
    };
    Ok(EvidenceFormPage::build(
        &state,
        layout,
        &enrolment,
        None,
        &fields,
        FormErrors::default(),
    )
    .await?
    .for_record())
}

/// `POST /enrolments/{id}/records/new`: a new draft record with whatever the form holds.
pub async fn create_record(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    user: CurrentUser,
    layout: Layout,
    Path(enrolment_id): Path<EnrolmentId>,
    CsrfMultipart(multipart): CsrfMultipart,
) -> AppResult<Response> {
    let asked = (&state, &user, ip, enrolment_id);
    create_as(asked, Writer::Assessor, layout, multipart).await
}

/// `POST /enrolments/{id}/evidence/new`: a new draft with whatever the form holds.
pub async fn create(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    user: CurrentUser,
    layout: Layout,
    Path(enrolment_id): Path<EnrolmentId>,
    CsrfMultipart(multipart): CsrfMultipart,
) -> AppResult<Response> {
    let asked = (&state, &user, ip, enrolment_id);
    create_as(asked, Writer::Candidate, layout, multipart).await
}

/// A new draft of enrolment `enrolment_id` by `user` as `writer`, with whatever the form holds.
async fn create_as(
    (state, user, ip, enrolment_id): (
        &AppState,
        &CurrentUser,
        Option<std::net::IpAddr>,
        EnrolmentId,
    ),
    writer: Writer,
    layout: Layout,
    multipart: axum::extract::Multipart,
) -> AppResult<Response> {
    let enrolment = writable_enrolment(state, user, enrolment_id, writer).await?;
    let saving = Saving {
        state,
        user,
        ip,
        enrolment: &enrolment,
        existing: None,
        record: matches!(writer, Writer::Assessor),
        attached: 0,
    };
    save(saving, layout, multipart).await
}

/// `GET /evidence/{id}/edit`: a draft, for its writer only (the candidate, or for a record the
/// enrolment's assessor).
pub async fn edit(
    State(state): State<AppState>,
    user: CurrentUser,
    layout: Layout,
    Path(id): Path<EvidenceId>,
) -> AppResult<EvidenceFormPage> {
    let mut conn = state.pool.acquire().await?;
    let evidence = db::find_visible(&mut conn, id, user.viewer())
        .await?
        .ok_or(AppError::NotFound)?;
    let enrolment = cohorts_db::find_visible(&mut conn, evidence.enrolment_id, user.viewer())
        .await?
        .filter(|e| !e.is_withdrawn())
        .ok_or(AppError::NotFound)?;
    let writer = if evidence.is_record() {
        enrolment.assessed_by(user.viewer())
    } else {
        evidence.candidate_id == user.id
    };
    if !writer {
        return Err(AppError::NotFound);
    }
    if !evidence.is_draft() {
        return Err(submitted_is_final());
    }
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
    Path(id): Path<EvidenceId>,
    CsrfMultipart(multipart): CsrfMultipart,
) -> AppResult<Response> {
    // Checked before the upload is read, without holding the draft's lock meanwhile: `save`
    // takes it once the files are stored.
    let mut conn = state.pool.acquire().await?;
    let Some((enrolment_id, ..)) = db::lock_own_draft(&mut conn, id, user.id).await? else {
        // Not theirs (404), or theirs and submitted (409).
        let evidence = db::find_visible(&mut conn, id, user.viewer()).await?;
        return Err(match evidence {
            Some(e) if !e.is_draft() && !e.is_record() && e.candidate_id == user.id => {
                submitted_is_final()
            }
            _ => AppError::NotFound,
        });
    };
    let enrolment = cohorts_db::find_visible(&mut conn, enrolment_id, user.viewer())
        .await?
        .ok_or(AppError::NotFound)?;
    let evidence = db::find_visible(&mut conn, id, user.viewer())
        .await?
        .ok_or(AppError::NotFound)?;
    let attached = u64::try_from(db::attached_bytes(&mut conn, id).await?).unwrap_or(0);
    drop(conn);
    let saving = Saving {
        state: &state,
        user: &user,
        ip,
        enrolment: &enrolment,
        record: evidence.is_record(),
        existing: Some(evidence),
        attached,
    };
    save(saving, layout, multipart).await
}

/// One save of a draft: who saves it, from where, and which draft of which enrolment.
struct Saving<'a> {
    state: &'a AppState,
    user: &'a CurrentUser,
    ip: Option<std::net::IpAddr>,
    enrolment: &'a cohorts_db::Enrolment,
    /// The draft as it was, or `None` when this request makes it.
    existing: Option<Evidence>,
    /// A record the assessor writes: "submit" sends it to the candidate to confirm.
    record: bool,
    /// Bytes of files on the draft before this save.
    attached: u64,
}

impl Saving<'_> {
    /// The form again with `fields` and their `errors`, for the draft as it now is.
    async fn form(
        &self,
        layout: Layout,
        evidence: Option<&Evidence>,
        fields: &EvidenceFields,
        errors: FormErrors,
    ) -> AppResult<EvidenceFormPage> {
        let page =
            EvidenceFormPage::build(self.state, layout, self.enrolment, evidence, fields, errors)
                .await?;
        Ok(if self.record { page.for_record() } else { page })
    }
}

/// Reads the form and stores its files, then in one short transaction writes them into the
/// draft (made now, for a new form) and saves it, takes a file off it or submits it.
async fn save(
    saving: Saving<'_>,
    layout: Layout,
    mut multipart: axum::extract::Multipart,
) -> AppResult<Response> {
    let state = saving.state;
    let limits = Limits::of(&state.settings);
    let read = upload::read_form(&state.pool, &mut multipart, saving.attached, limits).await?;
    let mut form = match read {
        Ok(form) => form,
        // Nothing of this request is kept: its files are swept, unlinked.
        Err(refusal) => return refused_upload(&saving, layout, refusal).await,
    };
    if saving.existing.is_none() && form.fields.is_blank() && form.files.is_empty() {
        // A new form sent blank makes no "Untitled evidence" draft: it says what is missing.
        return refused_blank(&saving, layout, &form.fields, &form.action).await;
    }
    let mut tx = state.pool.begin().await?;
    // The same form sent twice (a double click, a resend) is saved once: the repeat waits here
    // for the first, then goes where it went (before anything else, so it never meets the
    // draft the first one submitted).
    let now = state.clock.now();
    let first = match submissions::claim(&mut tx, form.submission_key, saving.user.id, now).await? {
        Submission::Again(to) => {
            tx.rollback().await?;
            return Ok(flash::redirect(
                &to,
                "This form was sent already: here is what it made.",
            ));
        }
        first => first,
    };
    let id = match &saving.existing {
        Some(draft) => {
            if db::lock_own_draft(&mut tx, draft.id, saving.user.id)
                .await?
                .is_none()
            {
                return Err(AppError::Conflict(
                    "This draft was submitted or deleted in another window while this one was sending. Open it again to see it as it is now.".into(),
                ));
            }
            draft.id
        }
        None => {
            // Checked again now that the files are stored: the enrolment may have been
            // withdrawn, or given another assessor, while they were sending.
            let (enrolment, user) = (saving.enrolment.id, saving.user.id);
            if !db::lock_writable_enrolment(&mut tx, enrolment, user, saving.record).await? {
                return Err(AppError::Conflict(
                    "This enrolment was withdrawn, or given to another assessor, while the form was sending, so nothing was saved.".into(),
                ));
            }
            // Its audit event is written with the draft's content, below.
            if saving.record {
                actions::start_record(&mut tx, enrolment, user).await?
            } else {
                actions::start_draft(&mut tx, enrolment).await?
            }
        }
    };
    let goes_to = match (&saving.existing, form.action) {
        (Some(_), Action::SaveDraft | Action::RemoveFile(_)) => format!("/evidence/{id}/edit"),
        _ => format!("/evidence/{id}"),
    };
    first.led_to(&mut tx, &goes_to).await?;
    if let Err(message) = actions::attach_uploads(&mut tx, id, &form.files, limits).await? {
        // Another upload to the draft ended meanwhile, and the two together are too large.
        tx.rollback().await?;
        let refusal = Refusal::TooLarge {
            fields: form.fields,
            message,
        };
        return refused_upload(&saving, layout, refusal).await;
    }
    let added: Vec<String> = form.files.iter().map(|f| f.name.clone()).collect();
    let by = Actor::user(saving.user, saving.ip);
    let draft = Draft {
        by: &by,
        enrolment: saving.enrolment.id,
        id,
        existing: saving.existing.as_ref(),
    };
    // A record is of a method an assessor records; another is not kept, and the record waits.
    let method_errors = if saving.record {
        form.fields.refuse_unrecorded_method()
    } else {
        FormErrors::default()
    };
    if !method_errors.is_empty() && matches!(form.action, Action::Submit) {
        form.action = Action::SaveDraft;
    }
    if saving.record {
        // A record is made by the assessor who last wrote it: a new assessor who takes over a
        // draft record signs it as theirs.
        db::mark_record(&mut tx, id, saving.user.id).await?;
    }
    let (fields, added) = (&form.fields, &added[..]);
    let mut errors = match form.action {
        Action::Submit if saving.record => {
            let now = saving.state.clock.now();
            match actions::send_record(&mut tx, &draft, fields, added, now).await? {
                Ok(()) => {
                    tx.commit().await?;
                    let message = format!(
                        "Sent to {} to confirm. It counts once they confirm it is accurate.",
                        saving.enrolment.candidate_name
                    );
                    return Ok(flash::redirect(&format!("/evidence/{id}"), &message));
                }
                Err(errors) => errors,
            }
        }
        Action::Submit => {
            match actions::submit_draft(&mut tx, &draft, fields, added, &saving.state.clock).await?
            {
                Ok(version) => {
                    tx.commit().await?;
                    return Ok(submitted(id, version));
                }
                Err(errors) => errors,
            }
        }
        Action::RemoveFile(file_id) => {
            // The Remove buttons sit inside the evidence form: what was typed is saved first.
            let now = saving.state.clock.now();
            actions::save_draft(&mut tx, &draft, fields, added, now).await?;
            // A Remove button of a page older than the draft may name a file gone already:
            // what this request typed and uploaded is kept all the same.
            let removed = actions::remove_file(&mut tx, &by, id, file_id).await?;
            tx.commit().await?;
            let message = match removed {
                Some(name) => format!("Removed “{name}”; the rest of the draft is saved."),
                None => "That file was removed already; the rest of the draft is saved.".into(),
            };
            return Ok(flash::redirect(&format!("/evidence/{id}/edit"), &message));
        }
        Action::SaveDraft => {
            let now = saving.state.clock.now();
            actions::save_draft(&mut tx, &draft, fields, added, now).await?
        }
    };
    errors.extend(method_errors);
    tx.commit().await?;
    if !errors.is_empty() {
        return refused_fields(&saving, id, layout, fields, errors).await;
    }
    Ok(flash::redirect(
        &format!("/evidence/{id}/edit"),
        "Draft saved.",
    ))
}

/// Where a submission leads: the evidence, saying what the new version replaces.
fn submitted(id: EvidenceId, version: i32) -> Response {
    let message = if version > 1 {
        format!(
            "Version {version} submitted. It replaces version {} for assessment.",
            version - 1
        )
    } else {
        "Evidence submitted for assessment.".to_owned()
    };
    flash::redirect(&format!("/evidence/{id}"), &message)
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
    let page = saving
        .form(layout, saving.existing.as_ref(), &fields, errors)
        .await?;
    Ok((status, page).into_response())
}

/// The form again after its fields were refused (422): the draft and its files are saved.
async fn refused_fields(
    saving: &Saving<'_>,
    id: EvidenceId,
    layout: Layout,
    fields: &EvidenceFields,
    errors: FormErrors,
) -> AppResult<Response> {
    let evidence = {
        let mut conn = saving.state.pool.acquire().await?;
        db::find_visible(&mut conn, id, saving.user.viewer()).await?
    };
    let mut page = saving
        .form(layout, evidence.as_ref(), fields, errors)
        .await?;
    page.draft_saved = evidence.is_some();
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

/// The new-evidence form again (422) after it was sent blank; nothing was stored. A submission
/// is told everything it lacks; a save, that there is nothing to save yet.
async fn refused_blank(
    saving: &Saving<'_>,
    layout: Layout,
    fields: &EvidenceFields,
    action: &Action,
) -> AppResult<Response> {
    let errors = match action {
        Action::Submit => fields.submission_problems(saving.state.clock.now().date()),
        _ => {
            let mut errors = FormErrors::default();
            errors.add(
                "title",
                "Nothing to save yet: give the evidence a title, or add a file",
            );
            errors
        }
    };
    let page = saving.form(layout, None, fields, errors).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

/// `GET /evidence/{id}`.
pub async fn show(
    State(state): State<AppState>,
    standards: Standards,
    user: CurrentUser,
    layout: Layout,
    Path(id): Path<EvidenceId>,
) -> AppResult<EvidenceShowPage> {
    EvidenceShowPage::build(&state, &standards, &user, layout, id, None).await
}

/// `POST /evidence/{id}/files/{file_id}/delete`: takes one file off a draft.
pub async fn remove_file(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    user: CurrentUser,
    Path((id, file_id)): Path<(EvidenceId, FileId)>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> AppResult<Response> {
    let mut tx = state.pool.begin().await?;
    if db::lock_own_draft(&mut tx, id, user.id).await?.is_none() {
        return Err(AppError::NotFound);
    }
    let name = actions::remove_file(&mut tx, &Actor::user(&user, ip), id, file_id)
        .await?
        .ok_or(AppError::NotFound)?;
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
    Path(id): Path<EvidenceId>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> AppResult<Response> {
    let mut tx = state.pool.begin().await?;
    let Some((enrolment_id, item_id, version)) = db::lock_own_draft(&mut tx, id, user.id).await?
    else {
        return Err(AppError::NotFound);
    };
    if db::has_comments(&mut tx, id).await? {
        return Err(AppError::Conflict(
            "This record has a conversation, which is kept: correct the record instead of deleting it.".into(),
        ));
    }
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
    Path(id): Path<EvidenceId>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> AppResult<Response> {
    let mut tx = state.pool.begin().await?;
    let by = Actor::user(&user, ip);
    let (draft, from_version) = match actions::revise(&mut tx, user.viewer(), &by, id).await? {
        Revision::Started {
            draft,
            from_version,
        } => (draft, from_version),
        Revision::AlreadyOpen(draft) => {
            return Ok(flash::redirect(
                &format!("/evidence/{draft}/edit"),
                "You are already revising this evidence.",
            ));
        }
        Revision::IsDraft => {
            return Ok(flash::redirect(
                &format!("/evidence/{id}/edit"),
                "This is a draft; edit it directly.",
            ));
        }
    };
    tx.commit().await?;
    Ok(flash::redirect(
        &format!("/evidence/{draft}/edit"),
        &format!(
            "Version {} is a draft copy of version {from_version}. Change what you need, then submit it.",
            from_version + 1,
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
    Path((id, file_id)): Path<(EvidenceId, FileId)>,
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
    let previewable = crate::evidence::views::previewable(&file.content_type);
    let disposition = if query.inline.is_some() && previewable {
        "inline"
    } else {
        "attachment"
    };
    let mut chunks = Box::pin(crate::blobs::read(state.pool.clone(), file.stored()));
    // A file found damaged in its first chunk (most files are one) gets an error page; one
    // found damaged later ends its body as failed.
    let first = match chunks.next().await {
        Some(Err(crate::blobs::ReadError::Damaged { .. })) => {
            return Err(AppError::Internal(anyhow::anyhow!(
                "the stored file {} is damaged",
                file.id.0
            )));
        }
        Some(Err(crate::blobs::ReadError::Database(error))) => return Err(error.into()),
        first => first,
    };
    let body = Body::from_stream(futures_util::stream::iter(first).chain(chunks));
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
