//! A candidate's whole portfolio as one ZIP, for anyone who must audit the decision without
//! Attest: `manifest.json` (the standard, every submitted evidence version with its claims,
//! judgements and files, every sign-off with its basis and digest, every IQA review), an
//! `index.html` that reads the same offline, and the files themselves.
//!
//! The archive is streamed: the manifest is read in one snapshot, then each file's chunks pass
//! from the database through the ZIP writer to the client, so memory stays at a chunk or two
//! whatever the portfolio's size. Every file is hashed again on its way out and the download is
//! cut short if a stored file no longer matches its SHA-256.

use std::collections::{HashMap, HashSet};
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
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use tokio::sync::mpsc;
use zip::write::{SimpleFileOptions, StreamWriter, ZipWriter};
use zip::{CompressionMethod, DateTime};

use super::db;
use crate::cohorts::db::{self as cohorts_db, Enrolment};
use crate::error::{AppError, AppResult};
use crate::evidence::model::AssessmentMethod;
use crate::identity::CurrentUser;
use crate::ids::{BlobId, EnrolmentId, EvidenceId, JudgementId, SignOffId};
use crate::iqa_actions::db::SampleScope;
use crate::iqa_actions::{Disagreement, IqaAction, Sample};
use crate::standards::model::CriterionKind;
use crate::state::AppState;
use crate::status::db as status_db;
use crate::status::model::{CriterionProgress, CriterionStatus, EnrolmentStatus};
use crate::web::download::content_disposition;

/// Names the layout of `manifest.json`, so that readers can tell future changes apart.
/// 2: judgements say whether they reverse a kept met; evidence carries its conversation and
/// its witnesses; reviews carry their actions one by one with the assessor's answers.
const FORMAT: &str = "attest-portfolio/2";

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
    pub id: EnrolmentId,
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
    pub evidence_id: EvidenceId,
    pub version: i32,
    /// A later version of the same piece has been submitted; this one no longer counts.
    pub superseded: bool,
    pub title: String,
    pub statement: String,
    pub method: AssessmentMethod,
    pub activity_on: time::Date,
    #[serde(with = "time::serde::rfc3339")]
    pub submitted_at: OffsetDateTime,
    /// SHA-256 of the content the candidate declared: as their own work, or for a record
    /// their assessor made, as an accurate record.
    pub declaration_sha256: String,
    /// The assessor who made this record, when it is one.
    pub recorded_by: Option<String>,
    pub claims: Vec<ClaimPart>,
    pub judgements: Vec<JudgementPart>,
    pub files: Vec<FilePart>,
    /// The comments written on this version.
    pub comments: Vec<CommentPart>,
    /// The witnesses named on this version, and their answers.
    pub witnesses: Vec<WitnessPart>,
    /// The IQA's samples of this version's judgements.
    pub iqa_samples: Vec<SamplePart>,
}

#[derive(Debug, Serialize)]
pub struct SamplePart {
    pub iqa: String,
    /// `agree` or `disagree`.
    pub decision: &'static str,
    pub comment: String,
    #[serde(with = "time::serde::rfc3339")]
    pub sampled_at: OffsetDateTime,
    /// A disagreement's actions, with the assessor's answers.
    pub action_items: Vec<ActionPart>,
}

impl SamplePart {
    fn from_sample(sample: &Sample) -> Self {
        Self {
            iqa: sample.iqa_name.clone(),
            decision: if sample.agreed { "agree" } else { "disagree" },
            comment: sample.comment.clone(),
            sampled_at: sample.sampled_at,
            action_items: sample.actions.iter().map(ActionPart::from_action).collect(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct CommentPart {
    pub author: String,
    /// candidate, assessor or iqa.
    pub part: String,
    pub body: String,
    #[serde(with = "time::serde::rfc3339")]
    pub written_at: OffsetDateTime,
}

#[derive(Debug, Serialize)]
pub struct WitnessPart {
    pub name: String,
    pub email: String,
    pub role: String,
    #[serde(with = "time::serde::rfc3339")]
    pub named_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub answered_at: Option<OffsetDateTime>,
    /// `true` confirmed as written, `false` with the corrections; `None` unanswered.
    pub confirmed: Option<bool>,
    pub corrections: String,
    pub signed_name: Option<String>,
    pub answered_from: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ClaimPart {
    pub criterion: String,
    pub note: String,
}

#[derive(Debug, Serialize)]
pub struct JudgementPart {
    pub judgement_id: JudgementId,
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
    /// It reverses a met kept after a revision; the feedback is the reason.
    pub reverses_kept: bool,
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
    blob_id: BlobId,
    #[serde(skip)]
    added_at: OffsetDateTime,
}

impl FilePart {
    /// The stored file as `blobs::read` checks it.
    fn stored(&self) -> crate::blobs::Stored {
        crate::blobs::Stored {
            blob_id: self.blob_id,
            size_bytes: self.size_bytes,
            sha256: crate::crypto::unhex(&self.sha256).unwrap_or_default(),
        }
    }
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
    /// A disagreement's actions one by one, with the assessor's answers.
    pub action_items: Vec<ActionPart>,
    #[serde(with = "time::serde::rfc3339")]
    pub reviewed_at: OffsetDateTime,
}

#[derive(Debug, Serialize)]
pub struct ActionPart {
    pub action: String,
    pub answer: Option<String>,
    pub answered_by: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub answered_at: Option<OffsetDateTime>,
}

impl ActionPart {
    fn from_action(a: &IqaAction) -> Self {
        Self {
            action: a.text.clone(),
            answer: a.answer.as_ref().map(|x| x.text.clone()),
            answered_by: a.answer.as_ref().map(|x| x.assessor_name.clone()),
            answered_at: a.answer.as_ref().map(|x| x.answered_at),
        }
    }
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
    let rows = ManifestRows::read(conn, enrolment.id).await?;
    Ok(rows.into_manifest(enrolment, generated_at))
}

/// The rows a manifest is made from, as the database gives them.
struct ManifestRows {
    /// The audit chain's head, in hex.
    audit_head: String,
    standard: db::ArchiveStandard,
    status: EnrolmentStatus,
    /// The sign-off that stands, if one does.
    standing: Option<SignOffId>,
    criteria: Vec<CriterionProgress>,
    versions: Vec<db::ArchiveVersion>,
    claims: Vec<db::ArchiveClaim>,
    judgements: Vec<db::ArchiveJudgement>,
    files: Vec<db::ArchiveFile>,
    comments: Vec<db::ArchiveComment>,
    witnesses: Vec<db::ArchiveWitness>,
    /// The IQA's interim samples of the evidence, with their actions and answers.
    samples: Vec<Sample>,
    sign_offs: Vec<db::ArchiveSignOff>,
    /// The disagreements among those sign-offs' reviews, with their actions and answers.
    disagreements: HashMap<SignOffId, Disagreement>,
}

impl ManifestRows {
    /// Reads each part of enrolment `id`'s manifest on `conn`, which holds the snapshot that
    /// makes them agree.
    async fn read(conn: &mut PgConnection, id: EnrolmentId) -> sqlx::Result<Self> {
        let audit_head = crate::crypto::hex(&crate::audit::head(&mut *conn).await?);
        let standard = db::archive_standard(&mut *conn, id).await?;
        let progress = status_db::find(&mut *conn, id).await?;
        let status = progress
            .as_ref()
            .map_or(EnrolmentStatus::NotStarted, |p| p.status);
        let criteria = status_db::criteria(&mut *conn, id).await?;

        let versions = db::archive_versions(&mut *conn, id).await?;
        let claims = db::archive_claims(&mut *conn, id).await?;
        let judgements = db::archive_judgements(&mut *conn, id).await?;
        let files = db::archive_files(&mut *conn, id).await?;
        let comments = db::archive_comments(&mut *conn, id).await?;
        let witnesses = db::archive_witnesses(&mut *conn, id).await?;
        let samples =
            crate::iqa_actions::db::samples(&mut *conn, SampleScope::Enrolment(id)).await?;
        let sign_offs = db::archive_sign_offs(&mut *conn, id).await?;
        let ids: Vec<SignOffId> = sign_offs.iter().map(|s| s.sign_off_id).collect();
        let disagreements = crate::iqa_actions::db::disagreements_on(&mut *conn, &ids).await?;
        let standing = progress.as_ref().and_then(|p| p.standing_sign_off_id);
        Ok(Self {
            audit_head,
            standard,
            status,
            standing,
            criteria,
            versions,
            claims,
            judgements,
            files,
            comments,
            witnesses,
            samples,
            sign_offs,
            disagreements,
        })
    }

    /// The manifest of `enrolment` these rows make, dated `generated_at`.
    fn into_manifest(self, enrolment: &Enrolment, generated_at: OffsetDateTime) -> Manifest {
        Manifest {
            format: FORMAT,
            generated_at,
            audit_head: self.audit_head,
            enrolment: EnrolmentPart::new(enrolment, self.standard.email, self.status),
            standard: StandardPart {
                urn: self.standard.urn,
                version: self.standard.version,
                title: self.standard.title,
                content_sha256: self.standard.content_sha256,
                criteria: self
                    .criteria
                    .into_iter()
                    .map(CriterionPart::from_row)
                    .collect(),
            },
            evidence: evidence_parts(
                self.versions,
                &self.claims,
                &self.judgements,
                &self.files,
                (&self.comments, &self.witnesses, &self.samples),
            ),
            sign_offs: self
                .sign_offs
                .into_iter()
                .map(|row| {
                    let actions = self.disagreements.get(&row.sign_off_id);
                    SignOffPart::from_row(row, self.standing, actions)
                })
                .collect(),
        }
    }
}

impl EnrolmentPart {
    /// The enrolment as the manifest describes it; the candidate's email is read with the
    /// standard, as the enrolment does not carry it.
    fn new(enrolment: &Enrolment, candidate_email: String, status: EnrolmentStatus) -> Self {
        Self {
            id: enrolment.id,
            cohort: enrolment.cohort_name.clone(),
            candidate: Person {
                name: enrolment.candidate_name.clone(),
                email: candidate_email,
            },
            assessor: enrolment.assessor_name.clone(),
            iqa: enrolment.iqa_name.clone(),
            status,
            status_label: status.label(),
            withdrawn_at: enrolment.withdrawn_at,
            withdrawn_reason: enrolment.withdrawn_reason.clone(),
        }
    }
}

impl CriterionPart {
    /// A criterion of the standard with the enrolment's status for it.
    fn from_row(row: CriterionProgress) -> Self {
        Self {
            code: row.code,
            kind: row.kind,
            text: row.text,
            status: row.status,
        }
    }
}

/// Each submitted evidence version, in order, with its own claims, judgements and files; every
/// file is given a path in the archive that no other file has.
fn evidence_parts(
    versions: Vec<db::ArchiveVersion>,
    claims: &[db::ArchiveClaim],
    judgements: &[db::ArchiveJudgement],
    files: &[db::ArchiveFile],
    (comments, witnesses, samples): (&[db::ArchiveComment], &[db::ArchiveWitness], &[Sample]),
) -> Vec<EvidencePart> {
    let mut taken = HashSet::new();
    versions
        .into_iter()
        .map(|row| {
            let id = row.evidence_id;
            let mut part = EvidencePart::from_rows(row, claims, judgements, files, &mut taken);
            part.comments = comments
                .iter()
                .filter(|c| c.evidence_id == id)
                .map(|c| CommentPart {
                    author: c.author.clone(),
                    part: c.part.clone(),
                    body: c.body.clone(),
                    written_at: c.created_at,
                })
                .collect();
            part.witnesses = witnesses
                .iter()
                .filter(|w| w.evidence_id == id)
                .map(|w| WitnessPart {
                    name: w.name.clone(),
                    email: w.email.clone(),
                    role: w.role.clone(),
                    named_at: w.named_at,
                    answered_at: w.answered_at,
                    confirmed: w.confirmed,
                    corrections: w.corrections.clone(),
                    signed_name: w.signed_name.clone(),
                    answered_from: w.answered_from.clone(),
                })
                .collect();
            part.iqa_samples = samples
                .iter()
                .filter(|x| x.evidence_id == id)
                .map(SamplePart::from_sample)
                .collect();
            part
        })
        .collect()
}

impl EvidencePart {
    /// One evidence version with the claims, judgements and files among these that are its
    /// own. Its files go in a folder named for the piece and the version, each under a path
    /// not yet in `taken`, which then holds it.
    fn from_rows(
        row: db::ArchiveVersion,
        claims: &[db::ArchiveClaim],
        judgements: &[db::ArchiveJudgement],
        files: &[db::ArchiveFile],
        taken: &mut HashSet<String>,
    ) -> Self {
        let folder = format!(
            "evidence/{:02}-{}/v{}",
            row.item,
            slug(&row.title, 40),
            row.version
        );
        let evidence_id = row.evidence_id;
        Self {
            item: row.item,
            evidence_id,
            version: row.version,
            superseded: row.superseded,
            claims: claims
                .iter()
                .filter(|c| c.evidence_id == evidence_id)
                .map(ClaimPart::from_row)
                .collect(),
            judgements: judgements
                .iter()
                .filter(|j| j.evidence_id == evidence_id)
                .map(JudgementPart::from_row)
                .collect(),
            files: files
                .iter()
                .filter(|f| f.evidence_id == evidence_id)
                .map(|f| FilePart::from_row(f, &folder, taken))
                .collect(),
            title: row.title,
            statement: row.statement,
            method: row.method,
            activity_on: row.activity_on,
            submitted_at: row.submitted_at,
            declaration_sha256: row.declaration_sha256,
            recorded_by: row.recorded_by,
            comments: Vec::new(),
            witnesses: Vec::new(),
            iqa_samples: Vec::new(),
        }
    }
}

impl ClaimPart {
    /// A criterion an evidence version claims, with the candidate's note.
    fn from_row(row: &db::ArchiveClaim) -> Self {
        Self {
            criterion: row.code.clone(),
            note: row.note.clone(),
        }
    }
}

impl JudgementPart {
    /// An assessor's judgement of an evidence version against a criterion.
    fn from_row(row: &db::ArchiveJudgement) -> Self {
        Self {
            judgement_id: row.judgement_id,
            criterion: row.code.clone(),
            met: row.met,
            valid: row.valid,
            authentic: row.authentic,
            current: row.current,
            sufficient: row.sufficient,
            reliable: row.reliable,
            feedback: row.feedback.clone(),
            assessor: row.assessor.clone(),
            judged_at: row.created_at,
            reverses_kept: row.reverses_kept,
        }
    }
}

impl FilePart {
    /// A file of an evidence version, at a path in `folder` that is not yet in `taken`.
    fn from_row(row: &db::ArchiveFile, folder: &str, taken: &mut HashSet<String>) -> Self {
        Self {
            name: row.file_name.clone(),
            path: unique_name(taken, folder, &row.file_name),
            content_type: row.content_type.clone(),
            size_bytes: row.size_bytes,
            sha256: row.sha256.clone(),
            blob_id: row.blob_id,
            added_at: row.created_at,
        }
    }
}

impl SignOffPart {
    /// A sign-off with its IQA review, if it has one, and the review's `disagreement` actions;
    /// it stands if it is the `standing` one.
    fn from_row(
        row: db::ArchiveSignOff,
        standing: Option<SignOffId>,
        disagreement: Option<&Disagreement>,
    ) -> Self {
        let action_items = disagreement.map_or_else(Vec::new, |d| {
            d.actions.iter().map(ActionPart::from_action).collect()
        });
        Self {
            sequence: row.sequence,
            signed_at: row.signed_at,
            assessor: row.assessor,
            basis: row.basis,
            basis_sha256: row.basis_sha256,
            sampled_for_review: row.sampled,
            sample_reason: row.sample_reason,
            standing: standing == Some(row.sign_off_id),
            review: match (row.decision, row.iqa, row.reviewed_at) {
                (Some(decision), Some(iqa), Some(reviewed_at)) => Some(ReviewPart {
                    decision,
                    iqa,
                    actions: row.actions.unwrap_or_default(),
                    action_items,
                    reviewed_at,
                }),
                _ => None,
            },
        }
    }
}

/// `GET /enrolments/{id}/archive.zip`: for the candidate, their assessor and IQA, and admins.
pub async fn download(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<EnrolmentId>,
) -> AppResult<Response> {
    let generated_at = state.clock.now();
    let manifest = read_manifest(&state.pool, &user, id, generated_at).await?;
    let contents = ArchiveContents::from_manifest(manifest)?;
    let file_name = format!("{}.zip", contents.root);
    let receiver = spawn_archive_writer(state.pool.clone(), contents, id);
    Ok(zip_response(receiver, &file_name))
}

/// The manifest of enrolment `id`, read in one read-only snapshot; not found unless `user` may
/// see the enrolment.
async fn read_manifest(
    pool: &PgPool,
    user: &CurrentUser,
    id: EnrolmentId,
    generated_at: OffsetDateTime,
) -> AppResult<Manifest> {
    // Events committed so far are sealed first, so the head names the changes the archive shows.
    crate::audit::seal_pending(&mut *pool.acquire().await?).await?;
    let mut tx = pool.begin().await?;
    crate::db::set_read_only_snapshot(&mut tx).await?;
    let enrolment = cohorts_db::find_visible(&mut tx, id, user.viewer())
        .await?
        .ok_or(AppError::NotFound)?;
    let manifest = manifest(&mut tx, &enrolment, generated_at).await?;
    tx.commit().await?;
    Ok(manifest)
}

/// What goes into the archive: the folder that holds everything, the manifest as JSON and as
/// the offline index page, and the stored files to copy.
struct ArchiveContents {
    root: String,
    generated_at: OffsetDateTime,
    manifest_json: Vec<u8>,
    index_html: String,
    files: Vec<FilePart>,
}

impl ArchiveContents {
    /// Renders the manifest both ways and keeps its files' places; the folder is named for the
    /// candidate and the day the manifest was made.
    fn from_manifest(manifest: Manifest) -> AppResult<Self> {
        let generated_at = manifest.generated_at;
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
        let files = manifest
            .evidence
            .into_iter()
            .flat_map(|e| e.files)
            .collect();
        Ok(Self {
            root,
            generated_at,
            manifest_json,
            index_html,
            files,
        })
    }
}

/// Writes the archive on a task of its own, so that the response can start at once, and
/// returns the channel its bytes come out of. A failure part-way is logged and ends the body
/// with an error, which cuts the download short.
fn spawn_archive_writer(
    pool: PgPool,
    contents: ArchiveContents,
    enrolment: EnrolmentId,
) -> ByteReceiver {
    let (sender, receiver) = mpsc::channel::<std::io::Result<Bytes>>(2);
    tokio::spawn(async move {
        let written = write_archive(&pool, &contents, &sender).await;
        match written {
            Ok(()) | Err(ArchiveError::ClientGone) => {}
            Err(error) => {
                tracing::error!(%enrolment, %error, "portfolio archive cut short");
                let _ = sender.send(Err(std::io::Error::other(error))).await;
            }
        }
    });
    receiver
}

/// The response that streams the archive's bytes from `receiver` as the download `file_name`,
/// which no cache may keep.
fn zip_response(receiver: ByteReceiver, file_name: &str) -> Response {
    let body = Body::from_stream(crate::web::download::receiver_stream(receiver));
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    if let Ok(value) = HeaderValue::from_str(&content_disposition("attachment", file_name)) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    response
}

/// Where the archive's bytes go on their way to the client, or the error that cut them short.
type ByteSender = mpsc::Sender<std::io::Result<Bytes>>;

/// Where the response body reads the archive's bytes from.
type ByteReceiver = mpsc::Receiver<std::io::Result<Bytes>>;

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

async fn send(sender: &ByteSender, spool: &Spool) -> Result<(), ArchiveError> {
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

/// Writes the whole archive to `sender`: the manifest and the index page, then each file.
async fn write_archive(
    pool: &PgPool,
    contents: &ArchiveContents,
    sender: &ByteSender,
) -> Result<(), ArchiveError> {
    let ArchiveContents {
        root,
        generated_at,
        manifest_json,
        index_html,
        files,
    } = contents;
    let mut out = ZipStream::new(sender);
    let text = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(zip_time(*generated_at));
    out.zip.start_file(format!("{root}/manifest.json"), text)?;
    out.zip.write_all(manifest_json)?;
    out.zip.start_file(format!("{root}/index.html"), text)?;
    out.zip.write_all(index_html.as_bytes())?;
    out.send_spooled().await?;

    for file in files {
        out.copy_file(pool, root, file).await?;
    }
    out.finish().await
}

/// A ZIP on its way to the client: the writer appends to the spool, and what gathers there is
/// sent on after every chunk, so no more than a chunk or two is held at a time.
struct ZipStream<'a> {
    zip: ZipWriter<StreamWriter<Spool>>,
    spool: Spool,
    sender: &'a ByteSender,
}

impl<'a> ZipStream<'a> {
    /// An empty archive whose bytes go to `sender`.
    fn new(sender: &'a ByteSender) -> Self {
        let spool = Spool::default();
        Self {
            zip: ZipWriter::new_stream(spool.clone()),
            spool,
            sender,
        }
    }

    /// Sends the client whatever the writer has produced since the last send.
    async fn send_spooled(&self) -> Result<(), ArchiveError> {
        send(self.sender, &self.spool).await
    }

    /// Copies a stored file into the archive under `root`, chunk by chunk as it is read; fails
    /// if what was read does not match the file's size and SHA-256 (`blobs::read` checks).
    async fn copy_file(
        &mut self,
        pool: &PgPool,
        root: &str,
        file: &FilePart,
    ) -> Result<(), ArchiveError> {
        // Evidence is mostly PDFs, images and office documents, compressed already: stored as is.
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Stored)
            .large_file(file.size_bytes >= i64::from(u32::MAX))
            .last_modified_time(zip_time(file.added_at));
        self.zip
            .start_file(format!("{root}/{}", file.path), options)?;
        let mut chunks = std::pin::pin!(crate::blobs::read(pool.clone(), file.stored()));
        while let Some(chunk) = chunks.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(crate::blobs::ReadError::Damaged { .. }) => {
                    return Err(ArchiveError::Corrupt {
                        path: file.path.clone(),
                    });
                }
                Err(crate::blobs::ReadError::Database(error)) => return Err(error.into()),
            };
            self.zip.write_all(&chunk)?;
            self.send_spooled().await?;
        }
        Ok(())
    }

    /// Writes the ZIP's closing directory and sends the rest.
    async fn finish(self) -> Result<(), ArchiveError> {
        let Self { zip, spool, sender } = self;
        zip.finish()?;
        send(sender, &spool).await
    }
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
