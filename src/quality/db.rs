//! Queries of internal quality assurance: the sign-offs an IQA may review, the sampling
//! coverage, and the reviews themselves.

use sqlx::PgConnection;
use time::OffsetDateTime;

use super::plan::{PlanChoice, SampledCount, StoredPlan, ToSample};
use super::{CoverageRow, SignOffRow};
use crate::evidence::model::AssessmentMethod;
use crate::identity::UserId;
use crate::ids::{CohortId, EnrolmentId, EvidenceId, ReviewId, SignOffId};
use crate::standards::model::CriterionId;
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
        r#"select a.display_name as assessor_name, si.method as "method: AssessmentMethod",
                  count(*) filter (where si.kind = 'performance' and r.review_id is not null) as "performance_reviewed!",
                  count(*) filter (where si.kind = 'performance') as "performance_total!",
                  count(*) filter (where si.kind = 'knowledge' and r.review_id is not null) as "knowledge_reviewed!",
                  count(*) filter (where si.kind = 'knowledge') as "knowledge_total!"
             from sign_off s
             join enrolment e using (enrolment_id)
             join app_user a on a.user_id = s.assessor_id
             join sign_off_item si using (sign_off_id)
             left join review r using (sign_off_id)
            where e.iqa_id = $1 and si.evidence_id is not null
            group by a.display_name, si.method
            order by lower(a.display_name), si.method"#,
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

/// Whether `iqa` assures any enrolment of the cohort.
pub async fn assures_cohort(
    conn: &mut PgConnection,
    iqa: UserId,
    cohort: CohortId,
) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"select exists (select 1 from enrolment where cohort_id = $1 and iqa_id = $2) as "yes!""#,
        cohort.0,
        iqa.0
    )
    .fetch_one(conn)
    .await
}

/// The cohorts `iqa` assures enrolments of, by name.
pub async fn cohorts_assured(
    conn: &mut PgConnection,
    iqa: UserId,
) -> sqlx::Result<Vec<(CohortId, String)>> {
    let rows = sqlx::query!(
        r#"select c.cohort_id as "id: CohortId", c.name from cohort c
            where exists (select 1 from enrolment e where e.cohort_id = c.cohort_id and e.iqa_id = $1)
            order by lower(c.name)"#,
        iqa.0
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.name)).collect())
}

/// The assessors of a cohort's enrolments, by name.
pub async fn cohort_assessors(
    conn: &mut PgConnection,
    cohort: CohortId,
) -> sqlx::Result<Vec<(UserId, String)>> {
    let rows = sqlx::query!(
        r#"select u.user_id as "id: UserId", u.display_name from app_user u
            where exists (select 1 from enrolment e where e.cohort_id = $1 and e.assessor_id = u.user_id)
            order by lower(u.display_name), u.user_id"#,
        cohort.0
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.display_name)).collect())
}

/// A cohort's sampling plan as stored; empty when it has none.
pub async fn plan(conn: &mut PgConnection, cohort: CohortId) -> sqlx::Result<StoredPlan> {
    let row = sqlx::query!(
        r#"select p.updated_at, u.display_name as updated_by,
                  array(select (a.assessor_id, a.percent) from sampling_plan_assessor a
                         where a.cohort_id = p.cohort_id) as "assessors!: Vec<(UserId, i32)>",
                  array(select m.method from sampling_plan_method m
                         where m.cohort_id = p.cohort_id) as "methods!: Vec<AssessmentMethod>",
                  array(select c.criterion_id from sampling_plan_criterion c
                         where c.cohort_id = p.cohort_id) as "criteria!: Vec<CriterionId>"
             from sampling_plan p join app_user u on u.user_id = p.updated_by
            where p.cohort_id = $1"#,
        cohort.0
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map_or_else(StoredPlan::default, |r| StoredPlan {
        updated: Some((r.updated_at, r.updated_by)),
        percents: r.assessors,
        methods: r.methods,
        criteria: r.criteria,
    }))
}

/// Replaces a cohort's sampling plan.
pub async fn save_plan(
    conn: &mut PgConnection,
    cohort: CohortId,
    by: UserId,
    plan: &PlanChoice,
    at: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "insert into sampling_plan (cohort_id, updated_by, updated_at) values ($1, $2, $3)
         on conflict (cohort_id) do update set updated_by = excluded.updated_by, updated_at = excluded.updated_at",
        cohort.0,
        by.0,
        at
    )
    .execute(&mut *conn)
    .await?;
    // Each part is replaced whole.
    sqlx::query!(
        "delete from sampling_plan_assessor where cohort_id = $1",
        cohort.0
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "delete from sampling_plan_method where cohort_id = $1",
        cohort.0
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "delete from sampling_plan_criterion where cohort_id = $1",
        cohort.0
    )
    .execute(&mut *conn)
    .await?;
    let (assessors, percents): (Vec<uuid::Uuid>, Vec<i32>) =
        plan.percents.iter().map(|(a, p)| (a.0, *p)).unzip();
    sqlx::query!(
        "insert into sampling_plan_assessor (cohort_id, assessor_id, percent)
         select $1, a, p from unnest($2::uuid[], $3::int[]) as t(a, p)",
        cohort.0,
        &assessors,
        &percents
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "insert into sampling_plan_method (cohort_id, method)
         select $1, m from unnest($2::assessment_method[]) as m",
        cohort.0,
        &plan.methods as &[AssessmentMethod]
    )
    .execute(&mut *conn)
    .await?;
    let criteria: Vec<uuid::Uuid> = plan.criteria.iter().map(|c| c.0).collect();
    sqlx::query!(
        "insert into sampling_plan_criterion (cohort_id, criterion_id)
         select $1, c.criterion_id from criterion c
           join cohort co on co.standard_id = c.standard_id and co.cohort_id = $1
          where c.criterion_id = any($2)",
        cohort.0,
        &criteria
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// What the IQAs of a cohort have sampled of each assessor's judged evidence: versions judged
/// and sampled (by an interim sample or a reviewed sign-off resting on them), per assessor, per
/// assessor and method, and per assessor and criterion.
pub async fn sampled_so_far(
    conn: &mut PgConnection,
    cohort: CohortId,
) -> sqlx::Result<Vec<SampledCount>> {
    sqlx::query_as!(
        SampledCount,
        r#"with judged as (
               select distinct j.assessor_id, j.evidence_id, ev.method, j.criterion_id
                 from judgement j
                 join evidence ev using (evidence_id)
                 join enrolment en on en.enrolment_id = ev.enrolment_id
                where en.cohort_id = $1
           ), sampled as (
               select es.evidence_id from evidence_sample es
                 join evidence ev using (evidence_id)
                 join enrolment en on en.enrolment_id = ev.enrolment_id
                where en.cohort_id = $1
               union
               select si.evidence_id from sign_off s
                 join review r using (sign_off_id)
                 join enrolment en on en.enrolment_id = s.enrolment_id
                 join sign_off_item si using (sign_off_id)
                where en.cohort_id = $1 and si.evidence_id is not null
           )
           select jd.assessor_id as "assessor_id!: UserId", u.display_name as "assessor_name!",
                  jd.method as "method?: AssessmentMethod", jd.criterion_id as "criterion_id?: CriterionId",
                  count(distinct jd.evidence_id) as "judged!",
                  count(distinct jd.evidence_id) filter (where s.evidence_id is not null) as "sampled!"
             from judged jd
             join app_user u on u.user_id = jd.assessor_id
             left join sampled s on s.evidence_id = jd.evidence_id
            group by grouping sets ((jd.assessor_id, u.display_name),
                                    (jd.assessor_id, u.display_name, jd.method),
                                    (jd.assessor_id, u.display_name, jd.criterion_id))"#,
        cohort.0
    )
    .fetch_all(conn)
    .await
}

/// Judged evidence of the enrolments `iqa` assures that no IQA has sampled yet, newest
/// judgement first: what interim sampling picks from. Read from the newest judgements down
/// (the last few hundred are plenty for a short list), not from every judged version.
pub async fn to_sample(
    conn: &mut PgConnection,
    iqa: UserId,
    limit: i64,
) -> sqlx::Result<Vec<ToSample>> {
    sqlx::query_as!(
        ToSample,
        r#"with recent as (
               select j.evidence_id, j.created_at
                 from judgement j
                 join evidence ev on ev.evidence_id = j.evidence_id
                 join enrolment en on en.enrolment_id = ev.enrolment_id
                where en.iqa_id = $1 and en.candidate_id <> $1 and en.assessor_id is distinct from $1
                  and en.withdrawn_at is null
                  and not exists (select 1 from evidence_sample es where es.evidence_id = j.evidence_id)
                order by j.created_at desc
                limit 500
           ), newest as (
               select evidence_id, max(created_at) as judged_at from recent
                group by evidence_id
                order by judged_at desc, evidence_id
                limit $2
           )
           select ev.evidence_id as "evidence_id: EvidenceId", ev.title, ev.version,
                  ev.method as "method: AssessmentMethod",
                  c.display_name as candidate_name, a.display_name as "assessor_name?",
                  n.judged_at as "judged_at!"
             from newest n
             join evidence ev using (evidence_id)
             join enrolment en on en.enrolment_id = ev.enrolment_id
             join app_user c on c.user_id = en.candidate_id
             left join app_user a on a.user_id = en.assessor_id
            order by n.judged_at desc, ev.evidence_id"#,
        iqa.0,
        limit
    )
    .fetch_all(conn)
    .await
}
