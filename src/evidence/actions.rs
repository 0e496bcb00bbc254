//! What a candidate does with their evidence, each in the caller's transaction with its audit
//! event: start a draft, write into it, attach and remove files, submit it, and start a
//! revision of submitted evidence. The handlers read forms into these; `attest demo` calls
//! them directly.

use serde_json::json;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::db::{self, Evidence};
use super::model::{DeclaredContent, DraftContent, EvidenceFields};
use crate::audit::{self, Actor, NewAuditEvent};
use crate::blobs::{ALLOWED_TYPES_TEXT, BlobError, BlobWriter, StoredBlob};
use crate::clock::Clock;
use crate::cohorts::db as cohorts_db;
use crate::config::Settings;
use crate::crypto::hex;
use crate::error::{AppError, AppResult};
use crate::forms::FormErrors;
use crate::identity::Viewer;
use crate::ids::{EnrolmentId, EvidenceId, FileId, ItemId};

/// A draft being written: by whom, of which enrolment, and the draft as it was.
pub struct Draft<'a> {
    pub by: &'a Actor,
    pub enrolment: EnrolmentId,
    /// The draft, locked or just made in the caller's transaction.
    pub id: EvidenceId,
    /// The draft as it was, or `None` when the caller's transaction made it.
    pub existing: Option<&'a Evidence>,
}

/// Makes a new, empty draft (version 1 of a new item) of `enrolment`; its audit event is
/// written with its content by [`save_draft`].
pub async fn start_draft(
    conn: &mut PgConnection,
    enrolment: EnrolmentId,
) -> sqlx::Result<EvidenceId> {
    db::insert_draft(conn, enrolment, ItemId(Uuid::now_v7()), 1).await
}

/// Makes a new, empty draft record of `enrolment` by its assessor `assessor`; its audit event
/// is written with its content by [`save_draft`].
pub async fn start_record(
    conn: &mut PgConnection,
    enrolment: EnrolmentId,
    assessor: crate::identity::UserId,
) -> sqlx::Result<EvidenceId> {
    let id = start_draft(&mut *conn, enrolment).await?;
    db::mark_record(conn, id, assessor).await?;
    Ok(id)
}

/// How large the files of one piece of evidence may be.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// One file.
    pub file_bytes: u64,
    /// All files of one version together.
    pub evidence_bytes: u64,
}

impl Limits {
    pub fn of(settings: &Settings) -> Self {
        Self {
            file_bytes: settings.max_file_bytes,
            evidence_bytes: settings.max_evidence_bytes,
        }
    }

    /// The most bytes a new file may have, when `attached` bytes are on the draft already.
    pub fn next_file(self, attached: u64) -> u64 {
        self.file_bytes
            .min(self.evidence_bytes.saturating_sub(attached))
    }

    /// Why storage refused the file `name`, of which `size` bytes were read, in words for the
    /// candidate; a failure of the database is no refusal and is passed on.
    pub fn refusal(self, name: &str, error: BlobError, size: u64) -> Result<String, sqlx::Error> {
        let mib = |bytes: u64| bytes / (1024 * 1024);
        Ok(match error {
            BlobError::TooLarge { .. } if size > self.file_bytes => format!(
                "“{name}” is larger than {} MiB, the most one file may be.",
                mib(self.file_bytes)
            ),
            BlobError::TooLarge { .. } => format!(
                "The files of one piece of evidence may add up to at most {} MiB.",
                mib(self.evidence_bytes)
            ),
            BlobError::Empty => format!("“{name}” is empty."),
            BlobError::Expired => {
                format!("“{name}” paused too long while uploading. Choose it again.")
            }
            BlobError::TypeNotAllowed => {
                format!("“{name}” is not a type of file Attest accepts. Use {ALLOWED_TYPES_TEXT}.")
            }
            BlobError::Database(e) => return Err(e),
        })
    }
}

/// A file an upload stored, to be added to a draft under the name it was sent with.
#[derive(Debug, Clone)]
pub struct Upload {
    pub name: String,
    pub blob: StoredBlob,
}

/// Adds the files an upload stored to draft `evidence`, locked by the caller, once more within
/// `limits` with the files the draft has now (another upload to it may have ended meanwhile).
/// Refused, with the reason in words, when they no longer fit.
pub async fn attach_uploads(
    conn: &mut PgConnection,
    evidence: EvidenceId,
    files: &[Upload],
    limits: Limits,
) -> AppResult<Result<(), String>> {
    if files.is_empty() {
        return Ok(Ok(()));
    }
    let attached = u64::try_from(db::attached_bytes(&mut *conn, evidence).await?).unwrap_or(0);
    let adding: u64 = files.iter().map(|f| f.blob.size).sum();
    if attached + adding > limits.evidence_bytes {
        let error = BlobError::TooLarge {
            limit: limits.evidence_bytes,
        };
        return Ok(Err(limits.refusal("", error, 0)?));
    }
    for file in files {
        db::insert_file(&mut *conn, evidence, file.blob.blob_id, &file.name).await?;
    }
    Ok(Ok(()))
}

/// Stores `bytes` as the file `name` of draft `evidence`, within `limits` with the files it
/// has already, all in the caller's transaction; returns the file's id. Refused, with the
/// reason in words, when the file is empty, of a type not accepted, or too large.
pub async fn attach_file(
    conn: &mut PgConnection,
    evidence: EvidenceId,
    name: &str,
    bytes: Vec<u8>,
    limits: Limits,
) -> AppResult<FileId> {
    let attached = u64::try_from(db::attached_bytes(&mut *conn, evidence).await?).unwrap_or(0);
    let mut writer = BlobWriter::new(limits.next_file(attached));
    let stored = match writer.write_all(&mut *conn, &bytes).await {
        Ok(()) => writer.finish(&mut *conn, name).await,
        Err(e) => Err(e),
    };
    match stored {
        Ok(blob) => Ok(db::insert_file(conn, evidence, blob.blob_id, name).await?),
        Err(e) => Err(AppError::BadRequest(limits.refusal(
            name,
            e,
            bytes.len() as u64,
        )?)),
    }
}

/// Takes one file off a (locked) draft, with its audit event; returns the file's name, or
/// `None` when the draft has no such file.
pub async fn remove_file(
    conn: &mut PgConnection,
    by: &Actor,
    id: EvidenceId,
    file_id: FileId,
) -> AppResult<Option<String>> {
    let Some(name) = db::delete_file(&mut *conn, id, file_id).await? else {
        return Ok(None);
    };
    audit::record(
        conn,
        NewAuditEvent {
            actor: by,
            action: "evidence.file_removed",
            entity_type: "evidence",
            entity_id: id.to_string(),
            detail: json!({ "file_id": file_id, "file_name": name }),
        },
    )
    .await?;
    Ok(Some(name))
}

/// Writes `fields` into the draft, with its audit event naming the files `added` to it; returns
/// the problems found in them (the draft is saved all the same).
pub async fn save_draft(
    conn: &mut PgConnection,
    draft: &Draft<'_>,
    fields: &EvidenceFields,
    added: &[String],
    now: OffsetDateTime,
) -> AppResult<FormErrors> {
    let (_, errors, _, _) = write_draft(conn, draft, fields, added, now).await?;
    Ok(errors)
}

/// Writes `fields` into the draft and submits it with the declaration; returns the version
/// submitted, or the problems that stop it (the draft is saved all the same).
pub async fn submit_draft(
    conn: &mut PgConnection,
    draft: &Draft<'_>,
    fields: &EvidenceFields,
    added: &[String],
    clock: &Clock,
) -> AppResult<Result<i32, FormErrors>> {
    lock_for_submission(&mut *conn, draft.enrolment).await?;
    // One moment for the whole save, read once any wait for those locks is over: the draft's
    // update and its submission.
    let now = clock.now();
    let (content, mut errors, mut claims, files) =
        write_draft(conn, draft, fields, added, now).await?;
    // A criterion left out of a revision as met, and no longer met, goes back to the assessor
    // with the submission (only then: a refused one leaves the draft as the candidate wrote it).
    let again = db::no_longer_met(&mut *conn, draft.id)
        .await?
        .into_iter()
        .filter(|id| !claims.iter().any(|c| c.criterion_id == id.0))
        .count();
    let claimed = claims.len() + again;
    content.check_submission(claimed, files.len(), fields.declaration, &mut errors);
    if !errors.is_empty() {
        return Ok(Err(errors));
    }
    if again > 0 {
        db::reclaim_left_out(&mut *conn, draft.id).await?;
        claims = db::list_claims(&mut *conn, draft.id).await?;
    }
    Ok(Ok(submit(
        conn,
        draft,
        &content,
        (&claims, &files),
        Declaration::OwnWork,
        now,
    )
    .await?))
}

/// What the candidate declares when a version is submitted.
#[derive(Debug, Clone, Copy)]
enum Declaration {
    /// Submitting their own evidence.
    OwnWork,
    /// Confirming a record their assessor made.
    AccurateRecord,
}

impl Declaration {
    fn text(self) -> &'static str {
        match self {
            Self::OwnWork => "This evidence is my own work",
            Self::AccurateRecord => ACCURATE_RECORD,
        }
    }

    fn audit_action(self) -> &'static str {
        match self {
            Self::OwnWork => "evidence.submitted",
            Self::AccurateRecord => "evidence.record_confirmed",
        }
    }
}

/// The words a candidate confirms a record with.
pub const ACCURATE_RECORD: &str = "This is an accurate record of what I did";

/// Writes `fields` into the assessor's draft record and sends it to the candidate to confirm;
/// or returns the problems that stop it (the draft is saved all the same).
pub async fn send_record(
    conn: &mut PgConnection,
    draft: &Draft<'_>,
    fields: &EvidenceFields,
    added: &[String],
    now: OffsetDateTime,
) -> AppResult<Result<(), FormErrors>> {
    let (content, mut errors, claims, files) = write_draft(conn, draft, fields, added, now).await?;
    content.check_submission(claims.len(), files.len(), true, &mut errors);
    if !errors.is_empty() {
        return Ok(Err(errors));
    }
    db::mark_sent(&mut *conn, draft.id, now).await?;
    let of = item_and_version(&mut *conn, draft).await?;
    let digest = declared_digest(of, &content, &claims, &files);
    audit::record(
        conn,
        NewAuditEvent {
            actor: draft.by,
            action: "evidence.record_sent",
            entity_type: "evidence",
            entity_id: draft.id.to_string(),
            detail: json!({
                "enrolment_id": draft.enrolment,
                "title": content.title,
                "content_sha256": hex(&digest),
            }),
        },
    )
    .await?;
    Ok(Ok(()))
}

/// The digest a submission of `evidence` as it stands would declare, given its `claims` and
/// `files`: the record a candidate reads is the record they confirm.
pub fn current_digest(
    evidence: &Evidence,
    claims: &[db::Claim],
    files: &[db::EvidenceFile],
) -> [u8; 32] {
    declared_digest(
        (evidence.item_id, evidence.version),
        &evidence.content(),
        claims,
        files,
    )
}

/// What confirming a record came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmation {
    Confirmed,
    /// The record changed since the candidate read it: nothing written.
    Changed,
    /// The assessor left it without something a submission needs: nothing written.
    Incomplete,
}

/// Confirms a record the assessor sent: the candidate's declaration that it is accurate submits
/// it. `seen` is the digest of the record as the candidate read it.
pub async fn confirm_record(
    conn: &mut PgConnection,
    by: &Actor,
    record: &Evidence,
    seen: &str,
    clock: &Clock,
) -> AppResult<Confirmation> {
    lock_for_submission(&mut *conn, record.enrolment_id).await?;
    let now = clock.now();
    let claims = db::list_claims(&mut *conn, record.id).await?;
    let files = db::list_files(&mut *conn, record.id).await?;
    if hex(&current_digest(record, &claims, &files)) != seen {
        return Ok(Confirmation::Changed);
    }
    let mut problems = FormErrors::default();
    record
        .content()
        .check_submission(claims.len(), files.len(), true, &mut problems);
    if !problems.is_empty() {
        return Ok(Confirmation::Incomplete);
    }
    let draft = Draft {
        by,
        enrolment: record.enrolment_id,
        id: record.id,
        existing: Some(record),
    };
    submit(
        conn,
        &draft,
        &record.content(),
        (&claims, &files),
        Declaration::AccurateRecord,
        now,
    )
    .await?;
    Ok(Confirmation::Confirmed)
}

/// The SHA-256 a declaration covers: the item and version, the content, the claims with their
/// notes, and the files' digests and names.
fn declared_digest(
    (item_id, version): (ItemId, i32),
    content: &DraftContent,
    claims: &[db::Claim],
    files: &[db::EvidenceFile],
) -> [u8; 32] {
    let claim_list: Vec<(String, String)> = claims
        .iter()
        .map(|c| (c.code.clone(), c.note.clone()))
        .collect();
    let file_list: Vec<(String, String)> = files
        .iter()
        .map(|f| (hex(&f.sha256), f.file_name.clone()))
        .collect();
    DeclaredContent {
        item_id,
        version,
        content,
        claims: &claim_list,
        files: &file_list,
    }
    .sha256()
}

/// The item and version of the draft being written.
async fn item_and_version(
    conn: &mut PgConnection,
    draft: &Draft<'_>,
) -> sqlx::Result<(ItemId, i32)> {
    match draft.existing {
        Some(e) => Ok((e.item_id, e.version)),
        None => db::item_and_version(conn, draft.id).await,
    }
}

/// Takes the locks a submission needs, before anything of the draft is written. It waits for
/// a sign-off or judging of the same enrolment in progress, so neither rests on a version this
/// one is about to replace (in the order a sign-off takes them); and for the enrolment's stored
/// status, which the submission rewrites.
async fn lock_for_submission(conn: &mut PgConnection, enrolment: EnrolmentId) -> AppResult<()> {
    cohorts_db::lock_for_assessment(&mut *conn, enrolment).await?;
    crate::status::db::lock(conn, enrolment).await?;
    Ok(())
}

/// Writes what the form holds into the draft, with its audit event; returns the content, the
/// problems found in it, and the draft's claims and files as now stored.
async fn write_draft(
    conn: &mut PgConnection,
    draft: &Draft<'_>,
    fields: &EvidenceFields,
    added: &[String],
    now: OffsetDateTime,
) -> AppResult<(
    DraftContent,
    FormErrors,
    Vec<db::Claim>,
    Vec<db::EvidenceFile>,
)> {
    let id = draft.id;
    let (content, errors) = fields.draft(now.date());
    db::update_draft(&mut *conn, id, &content, now).await?;
    db::replace_claims(&mut *conn, id, &fields.claims).await?;
    let claims = db::list_claims(&mut *conn, id).await?;
    let files = db::list_files(&mut *conn, id).await?;
    audit::record(
        conn,
        NewAuditEvent {
            actor: draft.by,
            action: if draft.existing.is_some() {
                "evidence.draft_saved"
            } else {
                "evidence.draft_created"
            },
            entity_type: "evidence",
            entity_id: id.to_string(),
            detail: json!({
                "enrolment_id": draft.enrolment,
                "title": content.title,
                "claims": claims.iter().map(|c| &c.code).collect::<Vec<_>>(),
                "files_added": added,
            }),
        },
    )
    .await?;
    Ok((content, errors, claims, files))
}

/// Submits the saved draft with `declaration`: its digest, the enrolment's status recomputed,
/// and the audit event. Returns the version submitted.
async fn submit(
    conn: &mut PgConnection,
    draft: &Draft<'_>,
    content: &DraftContent,
    (claims, files): (&[db::Claim], &[db::EvidenceFile]),
    declaration: Declaration,
    now: OffsetDateTime,
) -> AppResult<i32> {
    let id = draft.id;
    let (item_id, version) = item_and_version(&mut *conn, draft).await?;
    let digest = declared_digest((item_id, version), content, claims, files);
    db::mark_submitted(&mut *conn, id, &digest, now).await?;
    crate::status::db::refresh(&mut *conn, draft.enrolment).await?;
    audit::record(
        conn,
        NewAuditEvent {
            actor: draft.by,
            action: declaration.audit_action(),
            entity_type: "evidence",
            entity_id: id.to_string(),
            detail: json!({
                "item_id": item_id,
                "version": version,
                "declaration": declaration.text(),
                "declaration_sha256": hex(&digest),
                "claims": claims.iter().map(|c| &c.code).collect::<Vec<_>>(),
                "files": files.iter().map(|f| (hex(&f.sha256), &f.file_name)).collect::<Vec<_>>(),
            }),
        },
    )
    .await?;
    Ok(version)
}

/// What asking to revise submitted evidence came to.
pub enum Revision {
    /// A new draft version, copied from `from_version`.
    Started {
        draft: EvidenceId,
        from_version: i32,
    },
    /// The item has an open draft already: revise that one.
    AlreadyOpen(EvidenceId),
    /// The evidence is a draft itself: edit it directly.
    IsDraft,
}

/// Starts a new draft version of evidence `id`, which must be the candidate `who`'s, on an
/// enrolment not withdrawn; anything else is not found.
pub async fn revise(
    conn: &mut PgConnection,
    who: Viewer<'_>,
    by: &Actor,
    id: EvidenceId,
) -> AppResult<Revision> {
    let evidence = db::find_visible(&mut *conn, id, who)
        .await?
        .filter(|e| e.candidate_id == who.id)
        .ok_or(AppError::NotFound)?;
    let active = cohorts_db::find_visible(&mut *conn, evidence.enrolment_id, who)
        .await?
        .is_some_and(|e| !e.is_withdrawn());
    if !active {
        return Err(AppError::NotFound);
    }
    if evidence.is_record() {
        return Err(AppError::Conflict(
            "Your assessor wrote this record, so it is theirs to correct: say what is wrong in the conversation on it.".into(),
        ));
    }
    // Serialise revisions of one item: lock its newest version.
    db::lock_newest_version(&mut *conn, evidence.item_id).await?;
    if let Some(draft) = db::open_draft_of_item(&mut *conn, evidence.item_id).await? {
        return Ok(Revision::AlreadyOpen(draft));
    }
    if evidence.is_draft() {
        return Ok(Revision::IsDraft);
    }
    let Some(draft) = db::start_revision(&mut *conn, &evidence).await? else {
        return Err(AppError::Conflict(
            "A newer version of this evidence exists; revise that one.".into(),
        ));
    };
    audit::record(
        conn,
        NewAuditEvent {
            actor: by,
            action: "evidence.revision_started",
            entity_type: "evidence",
            entity_id: draft.to_string(),
            detail: json!({ "item_id": evidence.item_id, "from_version": evidence.version, "version": evidence.version + 1 }),
        },
    )
    .await?;
    Ok(Revision::Started {
        draft,
        from_version: evidence.version,
    })
}
