//! A candidate's whole portfolio as one ZIP, for anyone who must audit the decision without
//! Attest: `manifest.json` (the standard, every submitted evidence version with its claims,
//! judgements and files, every sign-off with its basis and digest, every IQA review), an
//! `index.html` that reads the same offline, and the files themselves.
//!
//! The archive is streamed: the manifest is read in one snapshot, then each file's chunks pass
//! from the database through the ZIP writer to the client, so memory stays at a chunk or two
//! whatever the portfolio's size. Every file is hashed again on its way out and the download is
//! cut short if a stored file no longer matches its SHA-256.

use std::collections::HashSet;
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use askama::Template;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use time::OffsetDateTime;
use tokio::sync::mpsc;
use uuid::Uuid;
use zip::write::{SimpleFileOptions, ZipWriter};
use zip::{CompressionMethod, DateTime};

use super::db;
use crate::assessments::db as assessments_db;
use crate::assessments::status::{CriterionStatus, EnrolmentStatus};
use crate::auth::session::CurrentUser;
use crate::cohorts::db::{self as cohorts_db, Enrolment};
use crate::error::{AppError, AppResult};
use crate::evidence::model::AssessmentMethod;
use crate::standards::model::CriterionKind;
use crate::state::AppState;
use crate::web::download::content_disposition;

/// Names the layout of `manifest.json`, so that readers can tell future changes apart.
const FORMAT: &str = "attest-portfolio/1";

#[derive(Debug, Serialize)]
pub struct Manifest {
    pub format: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    pub generated_at: OffsetDateTime,
    /// The audit chain's head when the archive was made.
    pub audit_head: String,
    pub enrolment: EnrolmentPart,
    pub standard: StandardPart,
    pub evidence: Vec<EvidencePart>,
    pub sign_offs: Vec<SignOffPart>,
}

#[derive(Debug, Serialize)]
pub struct EnrolmentPart {
    pub id: Uuid,
    pub cohort: String,
    pub candidate: Person,
    pub assessor: Option<String>,
    pub iqa: Option<String>,
    pub status: EnrolmentStatus,
    pub status_label: &'static str,
    #[serde(with = "time::serde::rfc3339::option")]
    pub withdrawn_at: Option<OffsetDateTime>,
    pub withdrawn_reason: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Person {
    pub name: String,
    pub email: String,
}

#[derive(Debug, Serialize)]
pub struct StandardPart {
    pub urn: String,
    pub version: String,
    pub title: String,
    pub content_sha256: String,
    pub criteria: Vec<CriterionPart>,
}

#[derive(Debug, Serialize)]
pub struct CriterionPart {
    pub code: String,
    pub kind: CriterionKind,
    pub text: String,
    pub status: CriterionStatus,
}

#[derive(Debug, Serialize)]
pub struct EvidencePart {
    /// 1, 2, …: the piece of evidence, in the order the candidate began them.
    pub item: i64,
    pub evidence_id: Uuid,
    pub version: i32,
    /// A later version of the same piece has been submitted; this one no longer counts.
    pub superseded: bool,
    pub title: String,
    pub statement: String,
    pub method: AssessmentMethod,
    pub activity_on: time::Date,
    #[serde(with = "time::serde::rfc3339")]
    pub submitted_at: OffsetDateTime,
    /// SHA-256 of the content the candidate declared as their own.
    pub declaration_sha256: String,
    pub claims: Vec<ClaimPart>,
    pub judgements: Vec<JudgementPart>,
    pub files: Vec<FilePart>,
}

#[derive(Debug, Serialize)]
pub struct ClaimPart {
    pub criterion: String,
    pub note: String,
}

#[derive(Debug, Serialize)]
pub struct JudgementPart {
    pub judgement_id: Uuid,
    pub criterion: String,
    pub met: bool,
    pub valid: bool,
    pub authentic: bool,
    pub current: bool,
    pub sufficient: bool,
    pub reliable: bool,
    pub feedback: String,
    pub assessor: String,
    #[serde(with = "time::serde::rfc3339")]
    pub judged_at: OffsetDateTime,
}

#[derive(Debug, Serialize)]
pub struct FilePart {
    pub name: String,
    /// Where the file is inside the archive, relative to `manifest.json`.
    pub path: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    #[serde(skip)]
    blob_id: Uuid,
    #[serde(skip)]
    added_at: OffsetDateTime,
}

#[derive(Debug, Serialize)]
pub struct SignOffPart {
    pub sequence: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub signed_at: OffsetDateTime,
    pub assessor: String,
    /// The criterion → judgement → evidence version → file hashes the sign-off rests on.
    pub basis: serde_json::Value,
    /// SHA-256 of `basis` written as compact JSON with its keys in sorted order.
    pub basis_sha256: String,
    pub sampled_for_review: bool,
    pub sample_reason: String,
    /// This sign-off stands: it is the newest and no IQA disagreed with it.
    pub standing: bool,
    pub review: Option<ReviewPart>,
}

#[derive(Debug, Serialize)]
pub struct ReviewPart {
    pub decision: String,
    pub iqa: String,
    pub actions: String,
    #[serde(with = "time::serde::rfc3339")]
    pub reviewed_at: OffsetDateTime,
}

/// The offline page: the manifest in words, with links to the files beside it.
#[derive(Template)]
#[template(path = "reports/archive_index.html")]
struct IndexPage<'a> {
    manifest: &'a Manifest,
}

impl IndexPage<'_> {
    /// A moment as people read it; the manifest keeps the exact RFC 3339 value.
    fn stamp(&self, at: &OffsetDateTime) -> String {
        let at = at.to_offset(time::UtcOffset::UTC);
        format!("{} {:02}:{:02} UTC", at.date(), at.hour(), at.minute())
    }

    fn checks(&self, judgement: &JudgementPart) -> String {
        checks_text(judgement)
    }

    fn judgements_of<'b>(
        &self,
        evidence: &'b EvidencePart,
        criterion: &str,
    ) -> Vec<&'b JudgementPart> {
        evidence
            .judgements
            .iter()
            .filter(|j| j.criterion == criterion)
            .collect()
    }

    fn met_by(&self, criterion: &str) -> Option<String> {
        let standing = self.manifest.sign_offs.iter().find(|s| s.standing)?;
        let item = standing
            .basis
            .as_array()?
            .iter()
            .find(|b| b["criterion"] == criterion)?;
        Some(format!(
            "{} (version {})",
            item["evidence_title"].as_str()?,
            item["evidence_version"].as_i64()?
        ))
    }
}

fn checks_text(j: &JudgementPart) -> String {
    let checks = [
        (j.valid, "valid"),
        (j.authentic, "authentic"),
        (j.current, "current"),
        (j.sufficient, "sufficient"),
        (j.reliable, "reliable"),
    ];
    let confirmed: Vec<&str> = checks.iter().filter(|c| c.0).map(|c| c.1).collect();
    if confirmed.is_empty() {
        "no checks confirmed".to_owned()
    } else {
        confirmed.join(", ")
    }
}

/// Lower-case ASCII letters and digits with single dashes, at most `max` characters: a name
/// that reads well and is safe on every file system and in a header.
pub(crate) fn slug(text: &str, max: usize) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
        if out.len() > max {
            // Cut at the last whole word that fits.
            let cut = out[..max].rfind('-').unwrap_or(max);
            out.truncate(cut);
            break;
        }
    }
    let trimmed = out.trim_end_matches('-');
    if trimmed.is_empty() {
        "untitled".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// `name` unless already taken in `taken`, else `name (2)`, `name (3)`… before the extension.
fn unique_name(taken: &mut HashSet<String>, folder: &str, name: &str) -> String {
    let (stem, extension) = match name.rfind('.') {
        Some(dot) if dot > 0 => (&name[..dot], &name[dot..]),
        _ => (name, ""),
    };
    let mut candidate = format!("{folder}/{name}");
    let mut n = 2;
    while !taken.insert(candidate.to_lowercase()) {
        candidate = format!("{folder}/{stem} ({n}){extension}");
        n += 1;
    }
    candidate
}

/// Everything the manifest says, read in one snapshot so that its parts agree.
async fn manifest(
    conn: &mut PgConnection,
    enrolment: &Enrolment,
    generated_at: OffsetDateTime,
) -> sqlx::Result<Manifest> {
    let id = enrolment.id;
    let audit_head = crate::crypto::hex(&crate::audit::head(&mut *conn).await?);
    let standard = db::archive_standard(&mut *conn, id).await?;
    let progress = assessments_db::find(&mut *conn, id).await?;
    let status = progress
        .as_ref()
        .map_or(EnrolmentStatus::NotStarted, |p| p.status);
    let criteria = assessments_db::criteria(&mut *conn, id).await?;

    let versions = db::archive_versions(&mut *conn, id).await?;
    let claims = db::archive_claims(&mut *conn, id).await?;
    let judgements = db::archive_judgements(&mut *conn, id).await?;
    let files = db::archive_files(&mut *conn, id).await?;
    let sign_offs = db::archive_sign_offs(&mut *conn, id).await?;
    let standing = progress.as_ref().and_then(|p| p.standing_sign_off_id);

    let mut taken = HashSet::new();
    let evidence = versions
        .into_iter()
        .map(|v| {
            let folder = format!(
                "evidence/{:02}-{}/v{}",
                v.item,
                slug(&v.title, 40),
                v.version
            );
            EvidencePart {
                item: v.item,
                evidence_id: v.evidence_id,
                version: v.version,
                superseded: v.superseded,
                claims: claims
                    .iter()
                    .filter(|c| c.evidence_id == v.evidence_id)
                    .map(|c| ClaimPart {
                        criterion: c.code.clone(),
                        note: c.note.clone(),
                    })
                    .collect(),
                judgements: judgements
                    .iter()
                    .filter(|j| j.evidence_id == v.evidence_id)
                    .map(|j| JudgementPart {
                        judgement_id: j.judgement_id,
                        criterion: j.code.clone(),
                        met: j.met,
                        valid: j.valid,
                        authentic: j.authentic,
                        current: j.current,
                        sufficient: j.sufficient,
                        reliable: j.reliable,
                        feedback: j.feedback.clone(),
                        assessor: j.assessor.clone(),
                        judged_at: j.created_at,
                    })
                    .collect(),
                files: files
                    .iter()
                    .filter(|f| f.evidence_id == v.evidence_id)
                    .map(|f| FilePart {
                        name: f.file_name.clone(),
                        path: unique_name(&mut taken, &folder, &f.file_name),
                        content_type: f.content_type.clone(),
                        size_bytes: f.size_bytes,
                        sha256: f.sha256.clone(),
                        blob_id: f.blob_id,
                        added_at: f.created_at,
                    })
                    .collect(),
                title: v.title,
                statement: v.statement,
                method: v.method,
                activity_on: v.activity_on,
                submitted_at: v.submitted_at,
                declaration_sha256: v.declaration_sha256,
            }
        })
        .collect();

    Ok(Manifest {
        format: FORMAT,
        generated_at,
        audit_head,
        enrolment: EnrolmentPart {
            id,
            cohort: enrolment.cohort_name.clone(),
            candidate: Person {
                name: enrolment.candidate_name.clone(),
                email: standard.email,
            },
            assessor: enrolment.assessor_name.clone(),
            iqa: enrolment.iqa_name.clone(),
            status,
            status_label: status.label(),
            withdrawn_at: enrolment.withdrawn_at,
            withdrawn_reason: enrolment.withdrawn_reason.clone(),
        },
        standard: StandardPart {
            urn: standard.urn,
            version: standard.version,
            title: standard.title,
            content_sha256: standard.content_sha256,
            criteria: criteria
                .into_iter()
                .map(|c| CriterionPart {
                    code: c.code,
                    kind: c.kind,
                    text: c.text,
                    status: c.status,
                })
                .collect(),
        },
        evidence,
        sign_offs: sign_offs
            .into_iter()
            .map(|s| SignOffPart {
                sequence: s.sequence,
                signed_at: s.signed_at,
                assessor: s.assessor,
                basis: s.basis,
                basis_sha256: s.basis_sha256,
                sampled_for_review: s.sampled,
                sample_reason: s.sample_reason,
                standing: standing == Some(s.sign_off_id),
                review: match (s.decision, s.iqa, s.reviewed_at) {
                    (Some(decision), Some(iqa), Some(reviewed_at)) => Some(ReviewPart {
                        decision,
                        iqa,
                        actions: s.actions.unwrap_or_default(),
                        reviewed_at,
                    }),
                    _ => None,
                },
            })
            .collect(),
    })
}

/// `GET /enrolments/{id}/archive.zip`: for the candidate, their assessor and IQA, and admins.
pub async fn download(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    let generated_at = state.clock.now();
    let manifest = {
        let mut tx = state.pool.begin().await?;
        crate::db::set_read_only_snapshot(&mut tx).await?;
        let enrolment = cohorts_db::find_visible(&mut tx, id, user.viewer())
            .await?
            .ok_or(AppError::NotFound)?;
        let manifest = manifest(&mut tx, &enrolment, generated_at).await?;
        tx.commit().await?;
        manifest
    };
    let root = format!(
        "attest-portfolio-{}-{}",
        slug(&manifest.enrolment.candidate.name, 40),
        generated_at.date()
    );
    let manifest_json = serde_json::to_vec_pretty(&manifest)
        .map_err(|error| AppError::Internal(anyhow::anyhow!(error)))?;
    let index_html = IndexPage {
        manifest: &manifest,
    }
    .render()
    .map_err(|error| AppError::Internal(anyhow::anyhow!(error)))?;
    let files: Vec<FilePart> = manifest
        .evidence
        .into_iter()
        .flat_map(|e| e.files)
        .collect();

    let (sender, receiver) = mpsc::channel::<std::io::Result<Bytes>>(2);
    let pool = state.pool.clone();
    let folder = root.clone();
    tokio::spawn(async move {
        let written = write_archive(
            &pool,
            &folder,
            generated_at,
            &manifest_json,
            index_html.as_bytes(),
            &files,
            &sender,
        )
        .await;
        match written {
            Ok(()) | Err(ArchiveError::ClientGone) => {}
            Err(error) => {
                tracing::error!(enrolment = %id, %error, "portfolio archive cut short");
                let _ = sender.send(Err(std::io::Error::other(error))).await;
            }
        }
    });
    let body = Body::from_stream(crate::blobs::receiver_stream(receiver));
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    if let Ok(value) =
        HeaderValue::from_str(&content_disposition("attachment", &format!("{root}.zip")))
    {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(response)
}

#[derive(Debug, thiserror::Error)]
enum ArchiveError {
    #[error("the client went away")]
    ClientGone,
    #[error(transparent)]
    Zip(#[from] zip::result::ZipError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("stored file {path} does not match its SHA-256")]
    Corrupt { path: String },
}

/// What the ZIP writer has produced and the client has not yet been sent.
#[derive(Clone, Default)]
struct Spool(Arc<Mutex<Vec<u8>>>);

impl Spool {
    fn take(&self) -> Bytes {
        Bytes::from(std::mem::take(
            &mut *self.0.lock().unwrap_or_else(PoisonError::into_inner),
        ))
    }
}

impl Write for Spool {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn send(
    sender: &mpsc::Sender<std::io::Result<Bytes>>,
    spool: &Spool,
) -> Result<(), ArchiveError> {
    let bytes = spool.take();
    if bytes.is_empty() {
        return Ok(());
    }
    sender
        .send(Ok(bytes))
        .await
        .map_err(|_| ArchiveError::ClientGone)
}

fn zip_time(at: OffsetDateTime) -> DateTime {
    let at = at.to_offset(time::UtcOffset::UTC);
    DateTime::from_date_and_time(
        u16::try_from(at.year()).unwrap_or(1980),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
    )
    .unwrap_or_default()
}

async fn write_archive(
    pool: &sqlx::PgPool,
    root: &str,
    generated_at: OffsetDateTime,
    manifest: &[u8],
    index: &[u8],
    files: &[FilePart],
    sender: &mpsc::Sender<std::io::Result<Bytes>>,
) -> Result<(), ArchiveError> {
    let spool = Spool::default();
    let mut zip = ZipWriter::new_stream(spool.clone());
    let text = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(zip_time(generated_at));
    zip.start_file(format!("{root}/manifest.json"), text)?;
    zip.write_all(manifest)?;
    zip.start_file(format!("{root}/index.html"), text)?;
    zip.write_all(index)?;
    send(sender, &spool).await?;

    for file in files {
        // Evidence is mostly PDFs, images and office documents, compressed already: stored as is.
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Stored)
            .large_file(file.size_bytes >= i64::from(u32::MAX))
            .last_modified_time(zip_time(file.added_at));
        zip.start_file(format!("{root}/{}", file.path), options)?;
        let mut hasher = Sha256::new();
        let mut chunks = std::pin::pin!(crate::blobs::read(pool.clone(), file.blob_id));
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            hasher.update(&chunk);
            zip.write_all(&chunk)?;
            send(sender, &spool).await?;
        }
        if crate::crypto::hex(&hasher.finalize()) != file.sha256 {
            return Err(ArchiveError::Corrupt {
                path: file.path.clone(),
            });
        }
    }
    zip.finish()?;
    send(sender, &spool).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_the_archive_are_readable_and_never_collide() {
        assert_eq!(
            slug("Pipeline review: Q3 (draft)", 40),
            "pipeline-review-q3-draft"
        );
        assert_eq!(slug("Ünïcode ☃", 40), "n-code");
        assert_eq!(slug("☃☃", 40), "untitled");
        assert_eq!(slug(&"a".repeat(100), 40).len(), 40);
        assert_eq!(
            slug("Incident review: checkout outage of 3 October", 40),
            "incident-review-checkout-outage-of-3"
        );

        let mut taken = HashSet::new();
        assert_eq!(unique_name(&mut taken, "v1", "log.txt"), "v1/log.txt");
        assert_eq!(unique_name(&mut taken, "v1", "LOG.txt"), "v1/LOG (2).txt");
        assert_eq!(unique_name(&mut taken, "v1", "log.txt"), "v1/log (3).txt");
        assert_eq!(unique_name(&mut taken, "v2", "log.txt"), "v2/log.txt");
        assert_eq!(unique_name(&mut taken, "v1", ".env"), "v1/.env");
    }
}
