//! Queries of internal quality assurance: the sign-offs an IQA may review, the sampling
//! coverage, and the reviews themselves.

use sqlx::PgConnection;
use time::OffsetDateTime;

use super::{CoverageRow, SignOffRow};
use crate::evidence::model::AssessmentMethod;
use crate::identity::UserId;
use crate::ids::{EnrolmentId, ReviewId, SignOffId};
use crate::status::model::EnrolmentStatus;

/// How many sign-offs of the enrolments this IQA assures they may review: all but those they
/// made or are the candidate of.
pub async fn count_reviewable(conn: &mut PgConnection, iqa: UserId) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"select count(*) as "n!" from sign_off s join enrolment e using (enrolment_id)
            where e.iqa_id = $1 and s.assessor_id <> $1 and e.candidate_id <> $1"#,
        iqa.0
    )
    .fetch_one(conn)
    .await
}

/// `limit` of the sign-offs this IQA may review, from `offset`: unreviewed sampled first, then
/// unreviewed others, then reviewed ones, newest first within each.
pub async fn reviewable_page(
    conn: &mut PgConnection,
    iqa: UserId,
    limit: i64,
    offset: i64,
) -> sqlx::Result<Vec<SignOffRow>> {
    sqlx::query_as!(
        SignOffRow,
        r#"select s.sign_off_id, s.enrolment_id, c.display_name as candidate_name, a.display_name as assessor_name,
                  co.name as cohort_name, s.signed_at, s.sampled, s.sample_reason,
                  r.decision::text as decision, coalesce(r.actions, '') as "actions!",
                  p.status as "status: EnrolmentStatus"
             from sign_off s
             join enrolment e using (enrolment_id)
             join enrolment_progress p using (enrolment_id)
             join cohort co on co.cohort_id = e.cohort_id
             join app_user c on c.user_id = e.candidate_id
             join app_user a on a.user_id = s.assessor_id
             left join review r using (sign_off_id)
            where e.iqa_id = $1 and s.assessor_id <> $1 and e.candidate_id <> $1
            order by r.review_id is not null, not s.sampled, s.signed_at desc, s.sign_off_id
            limit $2 offset $3"#,
        iqa.0,
        limit,
        offset
    )
    .fetch_all(conn)
    .await
}

/// Coverage per assessor × assessment method × criterion kind, over the sign-offs of the
/// enrolments this IQA assures.
pub async fn coverage(conn: &mut PgConnection, iqa: UserId) -> sqlx::Result<Vec<CoverageRow>> {
    sqlx::query_as!(
        CoverageRow,
        r#"select a.display_name as assessor_name, ev.method as "method: AssessmentMethod",
                  count(*) filter (where c.kind = 'performance' and r.review_id is not null) as "performance_reviewed!",
                  count(*) filter (where c.kind = 'performance') as "performance_total!",
                  count(*) filter (where c.kind = 'knowledge' and r.review_id is not null) as "knowledge_reviewed!",
                  count(*) filter (where c.kind = 'knowledge') as "knowledge_total!"
             from sign_off s
             join enrolment e using (enrolment_id)
             join cohort co using (cohort_id)
             join app_user a on a.user_id = s.assessor_id
             cross join lateral jsonb_array_elements(s.basis) as item
             join evidence ev on ev.evidence_id = (item ->> 'evidence_id')::uuid
             join criterion c on c.standard_id = co.standard_id and c.code = item ->> 'criterion'
             left join review r using (sign_off_id)
            where e.iqa_id = $1
            group by a.display_name, ev.method
            order by lower(a.display_name), ev.method"#,
        iqa.0
    )
    .fetch_all(conn)
    .await
}

/// A sign-off to review: its enrolment, and the people who may or may not review it.
#[derive(Debug, Clone)]
pub struct ReviewTarget {
    pub enrolment_id: EnrolmentId,
    pub assessor_id: UserId,
    pub iqa_id: Option<UserId>,
    pub candidate_id: UserId,
}

/// The sign-off to review, locking its enrolment's row until the transaction ends.
pub async fn lock_review_target(
    conn: &mut PgConnection,
    sign_off: SignOffId,
) -> sqlx::Result<Option<ReviewTarget>> {
    sqlx::query_as!(
        ReviewTarget,
        r#"select s.enrolment_id, s.assessor_id, e.iqa_id as "iqa_id: UserId", e.candidate_id
             from sign_off s join enrolment e using (enrolment_id)
            where s.sign_off_id = $1
              for update of e"#,
        sign_off.0
    )
    .fetch_optional(conn)
    .await
}

/// Stores an IQA's review of a sign-off (`decision` is `agree` or `disagree`); `None`, and
/// nothing stored, when the sign-off has a review already.
pub async fn insert_review(
    conn: &mut PgConnection,
    sign_off: SignOffId,
    iqa: UserId,
    decision: &str,
    actions: &str,
    reviewed_at: OffsetDateTime,
) -> sqlx::Result<Option<ReviewId>> {
    sqlx::query_scalar!(
        r#"insert into review (sign_off_id, iqa_id, decision, actions, reviewed_at)
           values ($1, $2, $3::text::review_decision, $4, $5)
           on conflict (sign_off_id) do nothing
           returning review_id as "id: ReviewId""#,
        sign_off.0,
        iqa.0,
        decision,
        actions,
        reviewed_at
    )
    .fetch_optional(conn)
    .await
}
