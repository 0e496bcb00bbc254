//! Queries of cohort reports, over the stored statuses: a page (or all) of a cohort's
//! enrolments, and their counts by assessor and status; and of a candidate's portfolio
//! archive: the parts of its manifest, read in one snapshot.

use sqlx::PgConnection;
use time::{Date, OffsetDateTime};

use super::ReportRow;
use crate::evidence::model::AssessmentMethod;
use crate::identity::UserId;
use crate::ids::{BlobId, CohortId, EnrolmentId, EvidenceId, JudgementId, SignOffId};
use crate::status::model::{CriterionStatus, EnrolmentStatus};

/// Which enrolments of a cohort a report keeps, and in what order.
#[derive(Debug, Clone, Copy, Default)]
pub struct Filter<'a> {
    pub assessor: Option<UserId>,
    pub status: Option<EnrolmentStatus>,
    /// Lower case, matched anywhere in the candidate's name.
    pub name: Option<&'a str>,
    /// Only enrolments whose oldest claim has waited since this moment or before.
    pub waiting_since: Option<OffsetDateTime>,
    /// Most criteria met first, rather than by name.
    pub by_progress: bool,
}

impl Filter<'_> {
    /// Narrows beyond what the counts by assessor and status can answer.
    pub fn is_narrow(&self) -> bool {
        self.name.is_some() || self.waiting_since.is_some()
    }
}

/// A cohort's enrolments with one assessor at one status.
#[derive(Debug, Clone)]
pub struct Group {
    pub assessor_id: Option<UserId>,
    pub assessor_name: Option<String>,
    pub status: EnrolmentStatus,
    pub enrolments: i64,
}

/// How many changes the cohort's enrolments have had: it moves with any change to any of them.
pub async fn cohort_revision(conn: &mut PgConnection, cohort: CohortId) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"select coalesce(sum(changes), 0)::bigint as "changes!" from revision_count where scope_id = $1"#,
        cohort.0
    )
    .fetch_one(conn)
    .await
}

/// The cohort's enrolments counted by assessor and status, assessors by name.
pub async fn groups(conn: &mut PgConnection, cohort: CohortId) -> sqlx::Result<Vec<Group>> {
    sqlx::query_as!(
        Group,
        r#"select k.assessor_id as "assessor_id: UserId", a.display_name as "assessor_name?",
                  k.status as "status: EnrolmentStatus", sum(k.enrolments)::bigint as "enrolments!"
             from enrolment_count k
             left join app_user a on a.user_id = k.assessor_id
            where k.cohort_id = $1
            group by k.assessor_id, a.display_name, k.status
           having sum(k.enrolments) > 0
            order by lower(a.display_name), k.assessor_id"#,
        cohort.0
    )
    .fetch_all(conn)
    .await
}

/// The cohort's enrolments whose candidate's name holds `filter.name` and whose oldest claim
/// waited since `filter.waiting_since`, counted by assessor and status, assessors by name.
pub async fn narrowed_groups(
    conn: &mut PgConnection,
    cohort: CohortId,
    filter: Filter<'_>,
) -> sqlx::Result<Vec<Group>> {
    sqlx::query_as!(
        Group,
        r#"select p.assessor_id as "assessor_id: UserId", a.display_name as "assessor_name?",
                  p.status as "status: EnrolmentStatus", count(*) as "enrolments!"
             from enrolment_progress p
             left join app_user a on a.user_id = p.assessor_id
            where p.cohort_id = $1
              and ($2::text is null or strpos(p.candidate_sort_name, lower($2)) > 0)
              and ($3::timestamptz is null or p.oldest_awaiting_at <= $3)
            group by p.assessor_id, a.display_name, p.status
            order by lower(a.display_name), p.assessor_id"#,
        cohort.0,
        filter.name,
        filter.waiting_since,
    )
    .fetch_all(conn)
    .await
}

/// `limit` enrolments of the cohort from `offset` on, as `filter` keeps and orders them.
pub async fn rows(
    conn: &mut PgConnection,
    cohort: CohortId,
    filter: Filter<'_>,
    limit: usize,
    offset: usize,
) -> sqlx::Result<Vec<ReportRow>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let offset = i64::try_from(offset).unwrap_or(i64::MAX);
    let status = filter.status.map(EnrolmentStatus::as_str);
    // One statement per order rather than one with a conditional order: by name, the page
    // comes straight from an index, read alone; the rows and names are joined to the page.
    macro_rules! page {
        ($order:literal) => {
            sqlx::query!(
                r#"select p.enrolment_id as "enrolment_id: EnrolmentId", c.display_name as candidate, c.email,
                          a.display_name as "assessor?",
                          i.display_name as "iqa?", p.last_activity_at,
                          p.signed_off_at, sa.display_name as "signed_off_by?",
                          p.verified_at, ri.display_name as "verified_by?",
                          p.status as "status: EnrolmentStatus", p.performance_met, p.performance_total,
                          p.knowledge_met, p.knowledge_total, p.criteria_awaiting, p.oldest_awaiting_at,
                          p.criteria_statuses as "cells: Vec<CriterionStatus>"
                     from (select enrolment_id from enrolment_progress p
                            where p.cohort_id = $1 and ($2::uuid is null or p.assessor_id = $2)
                              and ($3::text is null or p.status = $3::text::enrolment_status)
                              and ($6::text is null or strpos(p.candidate_sort_name, lower($6)) > 0)
                              and ($7::timestamptz is null or p.oldest_awaiting_at <= $7)
                            order by "# + $order + r#"
                            limit $4 offset $5) page
                     join enrolment_progress p using (enrolment_id)
                     join app_user c on c.user_id = p.candidate_id
                     left join app_user a on a.user_id = p.assessor_id
                     left join app_user i on i.user_id = p.iqa_id
                     left join app_user sa on sa.user_id = p.signed_off_by
                     left join app_user ri on ri.user_id = p.verified_by
                    order by "# + $order + r#""#,
                cohort.0,
                filter.assessor.map(|a| a.0),
                status,
                limit,
                offset,
                filter.name,
                filter.waiting_since,
            )
        };
    }
    let count = |n: i32| usize::try_from(n).unwrap_or(0);
    // The two statements' records are two types with the same fields.
    macro_rules! row {
        ($r:ident) => {
            ReportRow {
                enrolment_id: $r.enrolment_id,
                candidate: $r.candidate,
                email: $r.email,
                assessor: $r.assessor,
                iqa: $r.iqa,
                last_activity: $r.last_activity_at,
                signed_off_at: $r.signed_off_at,
                signed_off_by: $r.signed_off_by,
                verified_at: $r.verified_at,
                verified_by: $r.verified_by,
                status: $r.status,
                pc: (count($r.performance_met), count($r.performance_total)),
                k: (count($r.knowledge_met), count($r.knowledge_total)),
                awaiting: count($r.criteria_awaiting),
                oldest_waiting: $r.oldest_awaiting_at,
                cells: $r.cells,
            }
        };
    }
    let rows: Vec<ReportRow> = if filter.by_progress {
        page!("p.performance_met + p.knowledge_met desc, p.candidate_sort_name, p.enrolment_id")
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .map(|r| row!(r))
            .collect()
    } else {
        page!("p.candidate_sort_name, p.enrolment_id")
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .map(|r| row!(r))
            .collect()
    };
    Ok(rows)
}

/// The standard version an enrolment is assessed against, and its candidate's email.
#[derive(Debug, Clone)]
pub struct ArchiveStandard {
    pub urn: String,
    pub version: String,
    pub title: String,
    /// SHA-256 of the standard's content, in hex.
    pub content_sha256: String,
    /// The candidate's email.
    pub email: String,
}

/// The standard of the enrolment `enrolment`, with its candidate's email.
pub async fn archive_standard(
    conn: &mut PgConnection,
    enrolment: EnrolmentId,
) -> sqlx::Result<ArchiveStandard> {
    sqlx::query_as!(
        ArchiveStandard,
        r#"select s.urn, s.version, s.title, encode(s.content_sha256, 'hex') as "content_sha256!",
                  u.email
             from enrolment e
             join cohort co using (cohort_id)
             join standard s using (standard_id)
             join app_user u on u.user_id = e.candidate_id
            where e.enrolment_id = $1"#,
        enrolment.0
    )
    .fetch_one(conn)
    .await
}

/// A submitted evidence version, for the portfolio archive.
#[derive(Debug, Clone)]
pub struct ArchiveVersion {
    pub evidence_id: EvidenceId,
    pub version: i32,
    pub title: String,
    pub statement: String,
    pub method: AssessmentMethod,
    pub activity_on: Date,
    pub submitted_at: OffsetDateTime,
    /// SHA-256 of the declared content, in hex.
    pub declaration_sha256: String,
    /// 1, 2, …: the piece of evidence, in the order the candidate began them.
    pub item: i64,
    /// A later version of the same piece has been submitted.
    pub superseded: bool,
    /// For a record the assessor made and the candidate confirmed: the assessor's name.
    pub recorded_by: Option<String>,
}

/// Every submitted evidence version of an enrolment: pieces in the order they were begun,
/// each piece's versions oldest first.
pub async fn archive_versions(
    conn: &mut PgConnection,
    enrolment: EnrolmentId,
) -> sqlx::Result<Vec<ArchiveVersion>> {
    sqlx::query_as!(
        ArchiveVersion,
        r#"select e.evidence_id, e.version, e.title, e.statement,
                  e.method as "method!: AssessmentMethod", e.activity_on as "activity_on!",
                  e.submitted_at as "submitted_at!",
                  encode(e.declaration_sha256, 'hex') as "declaration_sha256!",
                  dense_rank() over (order by first.started_at, e.item_id) as "item!",
                  not exists (select 1 from current_evidence cv where cv.evidence_id = e.evidence_id) as "superseded!",
                  maker.display_name as "recorded_by?"
             from evidence e
             left join app_user maker on maker.user_id = e.made_by
             join lateral (select min(created_at) as started_at from evidence f
                            where f.item_id = e.item_id) first on true
            where e.enrolment_id = $1 and e.state = 'submitted'
            order by first.started_at, e.item_id, e.version"#,
        enrolment.0
    )
    .fetch_all(conn)
    .await
}

/// A claim of a submitted evidence version, for the portfolio archive.
#[derive(Debug, Clone)]
pub struct ArchiveClaim {
    pub evidence_id: EvidenceId,
    /// The criterion's code.
    pub code: String,
    pub note: String,
}

/// The claims of an enrolment's submitted evidence versions, in criterion order.
pub async fn archive_claims(
    conn: &mut PgConnection,
    enrolment: EnrolmentId,
) -> sqlx::Result<Vec<ArchiveClaim>> {
    sqlx::query_as!(
        ArchiveClaim,
        r#"select ec.evidence_id, c.code, ec.note
             from evidence_claim ec
             join criterion c using (criterion_id)
             join evidence e using (evidence_id)
            where e.enrolment_id = $1 and e.state = 'submitted'
            order by c.kind, c.position"#,
        enrolment.0
    )
    .fetch_all(conn)
    .await
}

/// An assessor's judgement of a criterion on an evidence version, for the portfolio archive.
#[derive(Debug, Clone)]
pub struct ArchiveJudgement {
    pub judgement_id: JudgementId,
    pub evidence_id: EvidenceId,
    /// The criterion's code.
    pub code: String,
    pub met: bool,
    pub valid: bool,
    pub authentic: bool,
    pub current: bool,
    pub sufficient: bool,
    pub reliable: bool,
    pub feedback: String,
    /// The assessor's display name.
    pub assessor: String,
    pub created_at: OffsetDateTime,
    /// It reverses a met kept after a revision; `feedback` is the reason.
    pub reverses_kept: bool,
}

/// Every judgement of an enrolment's evidence, in criterion order, each criterion's oldest
/// first.
pub async fn archive_judgements(
    conn: &mut PgConnection,
    enrolment: EnrolmentId,
) -> sqlx::Result<Vec<ArchiveJudgement>> {
    sqlx::query_as!(
        ArchiveJudgement,
        r#"select j.judgement_id, j.evidence_id, c.code, j.met, j.valid, j.authentic, j.current,
                  j.sufficient, j.reliable, j.feedback, u.display_name as assessor, j.created_at,
                  j.reverses_kept
             from judgement j
             join criterion c using (criterion_id)
             join evidence e using (evidence_id)
             join app_user u on u.user_id = j.assessor_id
            where e.enrolment_id = $1
            order by c.kind, c.position, j.created_at, j.judgement_id"#,
        enrolment.0
    )
    .fetch_all(conn)
    .await
}

/// A comment in the conversation on a piece of evidence, for the portfolio archive.
#[derive(Debug, Clone)]
pub struct ArchiveComment {
    /// The version it was written on.
    pub evidence_id: EvidenceId,
    pub author: String,
    pub part: String,
    pub body: String,
    pub created_at: OffsetDateTime,
}

/// Every comment on the enrolment's evidence, oldest first.
pub async fn archive_comments(
    conn: &mut PgConnection,
    enrolment: EnrolmentId,
) -> sqlx::Result<Vec<ArchiveComment>> {
    sqlx::query_as!(
        ArchiveComment,
        r#"select c.evidence_id as "evidence_id: EvidenceId", u.display_name as author, c.author_part as part,
                  c.body, c.created_at
             from evidence_comment c
             join evidence e using (evidence_id)
             join app_user u on u.user_id = c.author_id
            where e.enrolment_id = $1
            order by c.created_at, c.comment_id"#,
        enrolment.0
    )
    .fetch_all(conn)
    .await
}

/// A witness named on an evidence version and their answer, for the portfolio archive.
#[derive(Debug, Clone)]
pub struct ArchiveWitness {
    pub evidence_id: EvidenceId,
    pub name: String,
    pub email: String,
    pub role: String,
    pub named_at: OffsetDateTime,
    pub answered_at: Option<OffsetDateTime>,
    pub confirmed: Option<bool>,
    pub corrections: String,
    pub signed_name: Option<String>,
    /// The address the answer came from.
    pub answered_from: Option<String>,
}

/// Every witness named on the enrolment's evidence, in the order they were named.
pub async fn archive_witnesses(
    conn: &mut PgConnection,
    enrolment: EnrolmentId,
) -> sqlx::Result<Vec<ArchiveWitness>> {
    sqlx::query_as!(
        ArchiveWitness,
        r#"select w.evidence_id as "evidence_id: EvidenceId", w.witness_name as name, w.witness_email as email,
                  w.witness_role as role, w.requested_at as named_at, w.answered_at, w.confirmed,
                  w.corrections, w.signed_name, host(w.answered_ip) as answered_from
             from witness_request w
             join evidence e using (evidence_id)
            where e.enrolment_id = $1
            order by w.requested_at, w.witness_request_id"#,
        enrolment.0
    )
    .fetch_all(conn)
    .await
}

/// A file of a submitted evidence version, for the portfolio archive.
#[derive(Debug, Clone)]
pub struct ArchiveFile {
    pub evidence_id: EvidenceId,
    pub file_name: String,
    /// When the file was added to the evidence.
    pub created_at: OffsetDateTime,
    pub blob_id: BlobId,
    pub size_bytes: i64,
    pub content_type: String,
    /// SHA-256 of the stored bytes, in hex.
    pub sha256: String,
}

/// The files of an enrolment's submitted evidence versions, in the order they were added.
pub async fn archive_files(
    conn: &mut PgConnection,
    enrolment: EnrolmentId,
) -> sqlx::Result<Vec<ArchiveFile>> {
    sqlx::query_as!(
        ArchiveFile,
        r#"select f.evidence_id, f.file_name, f.created_at, b.blob_id, b.size_bytes, b.content_type,
                  encode(b.sha256, 'hex') as "sha256!"
             from evidence_file f
             join blob b using (blob_id)
             join evidence e using (evidence_id)
            where e.enrolment_id = $1 and e.state = 'submitted'
            order by f.created_at, f.evidence_file_id"#,
        enrolment.0
    )
    .fetch_all(conn)
    .await
}

/// A sign-off with its IQA review, if any, for the portfolio archive.
#[derive(Debug, Clone)]
pub struct ArchiveSignOff {
    pub sign_off_id: SignOffId,
    pub sequence: i64,
    pub signed_at: OffsetDateTime,
    /// The assessor's display name.
    pub assessor: String,
    pub basis: serde_json::Value,
    /// SHA-256 of the basis, in hex.
    pub basis_sha256: String,
    pub sampled: bool,
    pub sample_reason: String,
    /// The review's decision, actions, time and IQA's display name; `None` when unreviewed.
    pub decision: Option<String>,
    pub actions: Option<String>,
    pub reviewed_at: Option<OffsetDateTime>,
    pub iqa: Option<String>,
}

/// Every sign-off of an enrolment, in sequence, each with its review.
pub async fn archive_sign_offs(
    conn: &mut PgConnection,
    enrolment: EnrolmentId,
) -> sqlx::Result<Vec<ArchiveSignOff>> {
    sqlx::query_as!(
        ArchiveSignOff,
        r#"select s.sign_off_id, s.sequence, s.signed_at, a.display_name as assessor, s.basis,
                  encode(s.basis_sha256, 'hex') as "basis_sha256!", s.sampled, s.sample_reason,
                  r.decision::text as "decision?", r.actions as "actions?",
                  r.reviewed_at as "reviewed_at?", i.display_name as "iqa?"
             from sign_off s
             join app_user a on a.user_id = s.assessor_id
             left join review r using (sign_off_id)
             left join app_user i on i.user_id = r.iqa_id
            where s.enrolment_id = $1
            order by s.sequence"#,
        enrolment.0
    )
    .fetch_all(conn)
    .await
}

/// How the number of criteria met across a cohort changed, day by day: each day's net change,
/// oldest first. Withdrawn enrolments are left out, as from the cohort's total.
pub async fn met_changes_by_day(
    conn: &mut PgConnection,
    cohort: CohortId,
) -> sqlx::Result<Vec<(OffsetDateTime, i64)>> {
    let rows = sqlx::query!(
        r#"select date_trunc('day', d.at) as "day!", sum(d.change)::bigint as "change!"
             from (select h.at,
                          h.criteria_met - coalesce(lag(h.criteria_met) over (
                              partition by h.enrolment_id order by h.at, h.history_id), 0) as change
                     from enrolment_met_history h
                     join enrolment e using (enrolment_id)
                    where e.cohort_id = $1 and e.withdrawn_at is null) d
            group by 1
            order by 1"#,
        cohort.0
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.day, r.change)).collect())
}

/// Enrolments of a cohort that are not withdrawn.
pub async fn active_enrolments(conn: &mut PgConnection, cohort: CohortId) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"select count(*) as "n!" from enrolment where cohort_id = $1 and withdrawn_at is null"#,
        cohort.0
    )
    .fetch_one(conn)
    .await
}
