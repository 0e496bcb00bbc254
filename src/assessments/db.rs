//! Queries of assessment: the caseload, and the sign-offs with the basis they rest on.

use serde_json::json;
use sqlx::PgConnection;
use time::OffsetDateTime;

use super::caseload::CaseRow;
use super::sign_off::BasisItem;
use crate::identity::UserId;
use crate::ids::{CohortId, EnrolmentId, EvidenceId, JudgementId, SignOffId};
use crate::standards::model::CriterionKind;
use crate::status::model::EnrolmentStatus;

/// The active enrolments of an assessor's caseload in one cohort at one status.
#[derive(Debug, Clone)]
pub struct CaseloadGroup {
    pub cohort_id: CohortId,
    pub cohort_name: String,
    pub status: EnrolmentStatus,
    pub enrolments: i64,
    pub claims_awaiting: i64,
}

/// The assessor's caseload counted by cohort and status, cohorts by name.
pub async fn caseload_groups(
    conn: &mut PgConnection,
    assessor: UserId,
) -> sqlx::Result<Vec<CaseloadGroup>> {
    sqlx::query_as!(
        CaseloadGroup,
        r#"select k.cohort_id, co.name as cohort_name, k.status as "status: EnrolmentStatus",
                  sum(k.enrolments)::bigint as "enrolments!", sum(k.claims_awaiting)::bigint as "claims_awaiting!"
             from enrolment_count k
             join cohort co using (cohort_id)
            where k.assessor_id = $1 and not k.withdrawn
            group by k.cohort_id, co.name, k.status
           having sum(k.enrolments) > 0
            order by lower(co.name), k.cohort_id"#,
        assessor.0
    )
    .fetch_all(conn)
    .await
}

/// How many changes the assessor's enrolments have had: it moves with any change to any of
/// them, and with any enrolment given to them or taken from them.
pub async fn caseload_revision(conn: &mut PgConnection, assessor: UserId) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"select coalesce(sum(changes), 0)::bigint as "changes!" from revision_count where scope_id = $1"#,
        assessor.0
    )
    .fetch_one(conn)
    .await
}

/// What a caseload is narrowed to: a cohort, a status, a part of the candidate's name, and
/// claims waiting since before a moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct CaseFilter<'a> {
    pub cohort: Option<CohortId>,
    pub status: Option<EnrolmentStatus>,
    /// Lower case, matched anywhere in the candidate's name.
    pub name: Option<&'a str>,
    pub waiting_since: Option<OffsetDateTime>,
}

impl CaseFilter<'_> {
    /// Narrows beyond what the counts by cohort and status can answer.
    pub fn is_narrow(&self) -> bool {
        self.name.is_some() || self.waiting_since.is_some()
    }
}

/// The enrolments and claims waiting of the assessor's active enrolments `filter` keeps.
pub async fn caseload_count(
    conn: &mut PgConnection,
    assessor: UserId,
    filter: CaseFilter<'_>,
) -> sqlx::Result<(i64, i64)> {
    let row = sqlx::query!(
        r#"select count(*) as "enrolments!", coalesce(sum(p.claims_awaiting), 0)::bigint as "claims!"
             from enrolment_progress p
            where p.assessor_id = $1 and not p.withdrawn
              and ($2::uuid is null or p.cohort_id = $2)
              and ($3::text is null or p.status = $3::text::enrolment_status)
              and ($4::text is null or strpos(p.candidate_sort_name, lower($4)) > 0)
              and ($5::timestamptz is null or p.oldest_awaiting_at <= $5)"#,
        assessor.0,
        filter.cohort.map(|c| c.0),
        filter.status.map(EnrolmentStatus::as_str),
        filter.name,
        filter.waiting_since,
    )
    .fetch_one(conn)
    .await?;
    Ok((row.enrolments, row.claims))
}

/// One page of the assessor's active enrolments `filter` keeps, longest-waiting first, then by
/// name.
pub async fn caseload_page(
    conn: &mut PgConnection,
    assessor: UserId,
    filter: CaseFilter<'_>,
    limit: usize,
    offset: usize,
) -> sqlx::Result<Vec<CaseRow>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let offset = i64::try_from(offset).unwrap_or(i64::MAX);
    // The page is read from the caseload index alone (an offset of 900 reads 1,000 index
    // entries and no rows); the cohort's name is joined to its rows, and an IQA's actions
    // looked up only where the stored progress says the IQA disagreed.
    sqlx::query_as!(
        CaseRow,
        r#"with page as (
               select p.enrolment_id, p.candidate_name, p.cohort_id, p.claims_awaiting, p.oldest_awaiting_at,
                      p.next_evidence_id, p.status, p.candidate_sort_name, p.iqa_disagreed
                 from enrolment_progress p
                where p.assessor_id = $1 and not p.withdrawn
                  and ($2::uuid is null or p.cohort_id = $2)
                  and ($3::text is null or p.status = $3::text::enrolment_status)
                  and ($6::text is null or strpos(p.candidate_sort_name, lower($6)) > 0)
                  and ($7::timestamptz is null or p.oldest_awaiting_at <= $7)
                order by p.oldest_awaiting_at, p.candidate_sort_name, p.enrolment_id
                limit $4 offset $5
           )
           select p.enrolment_id, p.candidate_name, co.name as cohort_name,
                  p.claims_awaiting::bigint as "awaiting!", p.oldest_awaiting_at as oldest_waiting,
                  p.next_evidence_id as "next_evidence: EvidenceId", p.status as "status: EnrolmentStatus",
                  iqa.actions as "iqa_actions?", iqa.unanswered as "iqa_unanswered?"
             from page p
             join cohort co on co.cohort_id = p.cohort_id
             left join lateral (
                  select array_agg(a.text order by a.position) as actions,
                         count(*) filter (where ans.iqa_action_id is null) as unanswered
                    from latest_sign_off ls
                    join iqa_action a using (review_id)
                    left join iqa_action_answer ans using (iqa_action_id)
                   where p.iqa_disagreed and ls.enrolment_id = p.enrolment_id and ls.decision = 'disagree'
             ) iqa on p.iqa_disagreed
            order by p.oldest_awaiting_at, p.candidate_sort_name, p.enrolment_id"#,
        assessor.0,
        filter.cohort.map(|c| c.0),
        filter.status.map(EnrolmentStatus::as_str),
        limit,
        offset,
        filter.name,
        filter.waiting_since,
    )
    .fetch_all(conn)
    .await
}

/// For every criterion of the enrolment's standard, the earliest met judgement that counts and
/// the evidence version it was made on, in criterion order: what a sign-off rests on. A met
/// claim counts whether its version is current or superseded (met is kept).
pub async fn sign_off_basis(
    conn: &mut PgConnection,
    enrolment: EnrolmentId,
) -> sqlx::Result<Vec<BasisItem>> {
    let rows = sqlx::query!(
        r#"
        with met as (
            select distinct on (lj.criterion_id) lj.criterion_id, lj.judgement_id, lj.evidence_id
              from submitted_claim sc
              join latest_judgement lj using (evidence_id, criterion_id)
             where sc.enrolment_id = $1 and lj.met
             order by lj.criterion_id, lj.created_at, lj.judgement_id
        )
        select c.code, c.text, c.kind as "kind: CriterionKind", c.position,
               m.judgement_id as "judgement_id?: JudgementId", e.evidence_id as "evidence_id?: EvidenceId",
               e.title as "title?",
               e.version as "version?", encode(e.declaration_sha256, 'hex') as declaration,
               array(select encode(b.sha256, 'hex') from evidence_file f join blob b using (blob_id)
                      where f.evidence_id = e.evidence_id order by f.created_at, f.evidence_file_id) as "files!"
          from enrolment en
          join cohort co using (cohort_id)
          join criterion c on c.standard_id = co.standard_id
          left join met m on m.criterion_id = c.criterion_id
          left join evidence e on e.evidence_id = m.evidence_id
         where en.enrolment_id = $1
         order by c.kind, c.position
        "#,
        enrolment.0
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| BasisItem {
            criterion: r.code,
            text: r.text,
            judgement_id: r.judgement_id,
            evidence_id: r.evidence_id,
            evidence_title: r.title,
            evidence_version: r.version,
            declaration_sha256: r.declaration,
            files: r.files,
        })
        .collect())
}

/// The sign-off that stands for an enrolment: the newest, unless an IQA disagreed with it.
pub async fn standing_sign_off(
    conn: &mut PgConnection,
    enrolment: EnrolmentId,
) -> sqlx::Result<Option<SignOffId>> {
    Ok(sqlx::query_scalar!(
        r#"select sign_off_id as "sign_off_id!" from standing_sign_off where enrolment_id = $1"#,
        enrolment.0
    )
    .fetch_optional(conn)
    .await?
    .map(SignOffId))
}

/// A sign-off to store.
#[derive(Debug, Clone, Copy)]
pub struct NewSignOff<'a> {
    pub enrolment_id: EnrolmentId,
    pub assessor_id: UserId,
    pub signed_at: OffsetDateTime,
    /// What the sign-off rests on, stored as its JSON.
    pub basis: &'a [BasisItem],
    /// SHA-256 of the basis's canonical JSON.
    pub basis_sha256: &'a [u8],
    /// Whether it is sampled for IQA review, and why (or why not).
    pub sampled: bool,
    pub sample_reason: &'a str,
}

/// Stores a sign-off and returns its id.
pub async fn insert_sign_off(
    conn: &mut PgConnection,
    sign_off: NewSignOff<'_>,
) -> sqlx::Result<SignOffId> {
    sqlx::query_scalar!(
        "insert into sign_off (enrolment_id, assessor_id, signed_at, basis, basis_sha256, sampled, sample_reason)
         values ($1, $2, $3, $4, $5, $6, $7) returning sign_off_id",
        sign_off.enrolment_id.0,
        sign_off.assessor_id.0,
        sign_off.signed_at,
        json!(sign_off.basis),
        sign_off.basis_sha256,
        sign_off.sampled,
        sign_off.sample_reason
    )
    .fetch_one(conn)
    .await
    .map(SignOffId)
}

/// How many sign-offs an assessor has made in a cohort, whatever became of them.
pub async fn count_assessor_sign_offs(
    conn: &mut PgConnection,
    assessor: UserId,
    cohort: CohortId,
) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"select count(*) as "n!" from sign_off s join enrolment e using (enrolment_id)
            where s.assessor_id = $1 and e.cohort_id = $2"#,
        assessor.0,
        cohort.0
    )
    .fetch_one(conn)
    .await
}

/// Whether a user is a trainee assessor.
pub async fn is_trainee_assessor(conn: &mut PgConnection, user: UserId) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        "select is_trainee_assessor from app_user where user_id = $1",
        user.0
    )
    .fetch_one(conn)
    .await
}
