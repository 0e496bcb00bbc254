//! Reading the evidence form: text fields, claims, and files streamed into storage as they
//! arrive, with no transaction held. The caller links the stored files to the draft after.

use std::collections::HashMap;

use axum::extract::Multipart;
use axum::extract::multipart::Field;
use sqlx::PgPool;
use uuid::Uuid;

use super::actions::{Limits, Upload};
use super::model::{EvidenceFields, STATEMENT_MAX_BYTES, clean_file_name};
use crate::blobs::{self, BlobError};
use crate::error::AppError;
use crate::ids::FileId;

/// What the form asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    SaveDraft,
    Submit,
    /// Save the draft as typed, then take this file off it.
    RemoveFile(FileId),
}

/// The form as read, with the files that were stored.
#[derive(Debug)]
pub struct ReadForm {
    pub fields: EvidenceFields,
    pub action: Action,
    /// The files this request stored, to be added to the draft.
    pub files: Vec<Upload>,
    /// The form's one-time key, when it has one.
    pub submission_key: Option<Uuid>,
}

/// Why the request's files cannot be kept; nothing of the request is saved.
#[derive(Debug)]
pub enum Refusal {
    /// 413: a file or the evidence as a whole is over its limit.
    TooLarge {
        fields: EvidenceFields,
        message: String,
    },
    /// 422: a file is empty or of a type that is not accepted.
    Rejected {
        fields: EvidenceFields,
        messages: Vec<String>,
    },
}

/// The most parts a form may have: the claims and notes of a few hundred criteria, and files.
const MAX_PARTS: usize = 2_000;
/// The most bytes read past a refused file before the connection is given up.
const MAX_DRAIN_BYTES: u64 = 256 * 1024 * 1024;

/// Reads the rest of the multipart form (after its token), storing its files within `limits`
/// for a draft that has `attached` bytes of files already.
pub async fn read_form(
    pool: &PgPool,
    multipart: &mut Multipart,
    attached: u64,
    limits: Limits,
) -> Result<Result<ReadForm, Refusal>, AppError> {
    let mut text = TextParts::default();
    let mut files = FileParts::new(attached);
    let mut parts = 0usize;
    while let Some(mut field) = next_field(multipart).await? {
        parts += 1;
        if parts > MAX_PARTS {
            return Err(AppError::BadRequest("The form has too many fields.".into()));
        }
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            files.store(pool, &mut field, limits).await?;
        } else {
            let value = read_text(&mut field, STATEMENT_MAX_BYTES + 1024).await?;
            text.set(&name, value);
        }
    }
    let submission_key = text.submission_key;
    let (fields, action) = text.finish();
    if let Some(message) = files.too_large {
        return Ok(Err(Refusal::TooLarge { fields, message }));
    }
    if !files.rejected.is_empty() {
        return Ok(Err(Refusal::Rejected {
            fields,
            messages: files.rejected,
        }));
    }
    Ok(Ok(ReadForm {
        fields,
        action,
        files: files.stored,
        submission_key,
    }))
}

/// The form's text parts as read so far.
#[derive(Default)]
struct TextParts {
    fields: EvidenceFields,
    notes: HashMap<Uuid, String>,
    claimed: Vec<Uuid>,
    action: Option<Action>,
    submission_key: Option<Uuid>,
}

impl TextParts {
    fn set(&mut self, name: &str, value: String) {
        match name {
            "title" => self.fields.title = value,
            "statement" => self.fields.statement = value,
            "method" => self.fields.method = value,
            "activity_on" => self.fields.activity_on = value,
            "declaration" => self.fields.declaration = value == "yes",
            "action" => {
                self.action = Some(match value.strip_prefix("remove:").map(Uuid::parse_str) {
                    Some(Ok(file)) => Action::RemoveFile(FileId(file)),
                    _ if value == "submit" => Action::Submit,
                    _ => Action::SaveDraft,
                });
            }
            "claim" => self.claimed.extend(Uuid::parse_str(&value).ok()),
            crate::auth::submissions::FIELD => {
                self.submission_key = crate::auth::submissions::parse_key(&value);
            }
            other => {
                if let Some(id) = other
                    .strip_prefix("note-")
                    .and_then(|id| Uuid::parse_str(id).ok())
                {
                    self.notes
                        .insert(id, value.trim().chars().take(500).collect());
                }
            }
        }
    }

    /// The fields, each claim with its note, and the action asked for.
    fn finish(mut self) -> (EvidenceFields, Action) {
        self.claimed.dedup();
        self.fields.claims = self
            .claimed
            .into_iter()
            .map(|id| (id, self.notes.remove(&id).unwrap_or_default()))
            .collect();
        (self.fields, self.action.unwrap_or(Action::SaveDraft))
    }
}

/// The form's files as stored so far, and why the request will be refused, if it will.
struct FileParts {
    /// Bytes attached to the draft, before this request and by it.
    total: u64,
    stored: Vec<Upload>,
    rejected: Vec<String>,
    too_large: Option<String>,
}

impl FileParts {
    fn new(attached: u64) -> Self {
        Self {
            total: attached,
            stored: Vec::new(),
            rejected: Vec::new(),
            too_large: None,
        }
    }

    /// Streams one file part into storage; or, once the request is to be refused, reads past
    /// its bytes without keeping them.
    async fn store(
        &mut self,
        pool: &PgPool,
        field: &mut Field<'_>,
        limits: Limits,
    ) -> Result<(), AppError> {
        // A file input left empty still sends a part, with no name and no bytes.
        let chosen = field.file_name().is_some_and(|n| !n.is_empty());
        let file_name = field.file_name().map(clean_file_name);
        if self.too_large.is_some() || !self.rejected.is_empty() {
            return drain(field).await;
        }
        let display = file_name.unwrap_or_else(|| "file".to_owned());
        let limit = limits.next_file(self.total);
        let (size, file) = blobs::store_stream(pool, &display, field, limit)
            .await
            .map_err(bad_upload)?;
        match file {
            Ok(blob) => {
                self.total += size;
                self.stored.push(Upload {
                    name: display,
                    blob,
                });
            }
            Err(BlobError::Empty) if !chosen => {}
            Err(error) => {
                // Whatever the refused file still had to send is read past.
                drain(field).await?;
                let too_large = matches!(error, BlobError::TooLarge { .. });
                let message = limits.refusal(&display, error, size)?;
                if too_large {
                    self.too_large = Some(message);
                } else {
                    self.rejected.push(message);
                }
            }
        }
        Ok(())
    }
}

async fn next_field<'a>(multipart: &'a mut Multipart) -> Result<Option<Field<'a>>, AppError> {
    multipart.next_field().await.map_err(bad_upload)
}

#[expect(clippy::needless_pass_by_value, reason = "used as map_err(bad_upload)")]
fn bad_upload(error: axum::extract::multipart::MultipartError) -> AppError {
    tracing::info!(error = %error, "an upload could not be read");
    AppError::BadRequest(
        "The upload was interrupted or could not be read. Please try again.".into(),
    )
}

/// A text field, refusing more than `limit` bytes.
async fn read_text(field: &mut Field<'_>, limit: usize) -> Result<String, AppError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(bad_upload)? {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > limit {
            return Err(AppError::BadRequest(
                "A field of the form is too long.".into(),
            ));
        }
    }
    match String::from_utf8(bytes) {
        Ok(text) if !text.contains('\0') => Ok(text),
        _ => Err(AppError::BadRequest(
            "The form was not sent as text.".into(),
        )),
    }
}

/// Reads the rest of a field and forgets it, so the browser finishes sending and sees our
/// answer instead of a broken connection.
async fn drain(field: &mut Field<'_>) -> Result<(), AppError> {
    let mut drained = 0u64;
    while let Some(chunk) = field.chunk().await.map_err(bad_upload)? {
        drained += chunk.len() as u64;
        if drained > MAX_DRAIN_BYTES {
            return Err(AppError::PayloadTooLarge);
        }
    }
    Ok(())
}
