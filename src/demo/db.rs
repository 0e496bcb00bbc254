//! Queries of `attest demo`: the few reads the demo cohort needs between its requests to the
//! portal, and the set-based statements that load the scale cohort in one transaction.
//!
//! The scale statements that read the temporary table `scale_class` (which candidate stands
//! where) are checked when the tests run the scale load, not at compile time: the checked
//! macros cannot see a table made at run time. So they are `sqlx::query` and `sqlx::query_as`,
//! not the macros.

use std::collections::HashMap;

use sqlx::PgConnection;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::evidence::model::AssessmentMethod;
use crate::identity::UserId;
use crate::ids::{CohortId, EnrolmentId, ItemId};
use crate::standards::model::StandardId;

/// Whether a cohort of this name exists.
pub async fn cohort_exists(conn: &mut PgConnection, name: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"select exists(select 1 from cohort where name = $1) as "exists!""#,
        name
    )
    .fetch_one(conn)
    .await
}

/// The enrolments of a cohort, by candidate.
pub async fn enrolments_by_candidate(
    conn: &mut PgConnection,
    cohort: CohortId,
) -> sqlx::Result<HashMap<UserId, EnrolmentId>> {
    let rows = sqlx::query!(
        r#"select candidate_id as "candidate: UserId", enrolment_id as "enrolment_id: EnrolmentId" from enrolment where cohort_id = $1"#,
        cohort.0
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.candidate, r.enrolment_id))
        .collect())
}

/// The criteria of a standard, by code.
pub async fn criteria_by_code(
    conn: &mut PgConnection,
    standard: StandardId,
) -> sqlx::Result<HashMap<String, Uuid>> {
    let rows = sqlx::query!(
        "select code, criterion_id from criterion where standard_id = $1",
        standard.0
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.code, r.criterion_id)).collect())
}

/// Takes the advisory lock of `name` until the transaction ends: another transaction asking
/// for it waits until then.
pub async fn lock_name(conn: &mut PgConnection, name: &str) -> sqlx::Result<()> {
    sqlx::query!("select pg_advisory_xact_lock(hashtext($1))", name)
        .execute(conn)
        .await?;
    Ok(())
}

/// The scale accounts, all with the password hash `hash`: candidate k named `names[k - 1]`,
/// `assessors` assessors and one IQA. Accounts already there are left as they are.
pub async fn insert_scale_accounts(
    conn: &mut PgConnection,
    names: &[String],
    hash: &str,
    assessors: u32,
) -> sqlx::Result<()> {
    sqlx::query!(
        "insert into app_user (email, display_name, roles, password_hash)
         select format('scale-candidate-%s@attest.example', lpad(k::text, 5, '0')), names[k],
                '{candidate}'::role[], $2
           from generate_series(1, cardinality($1::text[])) k, (select $1::text[] as names) n
         union all
         select format('scale-assessor-%s@attest.example', lpad(k::text, 2, '0')),
                format('Scale Assessor %s', lpad(k::text, 2, '0')), '{assessor}'::role[], $2
           from generate_series(1, $3::int) k
         union all
         select 'scale-iqa@attest.example', 'Scale Quality Assurer', '{iqa}'::role[], $2
         on conflict do nothing",
        names,
        hash,
        i32::try_from(assessors).unwrap_or(i32::MAX)
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The scale cohort, on the newest TECIT50761, from 180 days before `now` to 185 days after;
/// returns its id.
pub async fn insert_scale_cohort(
    conn: &mut PgConnection,
    name: &str,
    now: OffsetDateTime,
) -> sqlx::Result<Uuid> {
    sqlx::query_scalar!(
        "insert into cohort (standard_id, name, starts_on, ends_on)
         select standard_id, $1, ($2::timestamptz)::date - 180, ($2::timestamptz)::date + 185
           from standard where urn = 'TECIT50761' order by created_at desc limit 1
         returning cohort_id",
        name,
        now
    )
    .fetch_one(conn)
    .await
}

/// Enrols scale candidates 1 to `n` in the cohort at `now`, each with an assessor and the
/// scale IQA.
pub async fn enrol_scale_candidates(
    conn: &mut PgConnection,
    cohort: Uuid,
    n: u32,
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    // Candidate k goes to assessor ceil(k / 1000); `n` of the candidate is k.
    sqlx::query!(
        "insert into enrolment (cohort_id, candidate_id, assessor_id, iqa_id, created_at)
         select $1, c.user_id, a.user_id, q.user_id, $3
           from generate_series(1, $2::int) k
           join app_user c on c.email = format('scale-candidate-%s@attest.example', lpad(k::text, 5, '0'))
           join app_user a on a.email = format('scale-assessor-%s@attest.example',
                                               lpad(((k - 1) / 1000 + 1)::text, 2, '0'))
           join app_user q on q.email = 'scale-iqa@attest.example'",
        cohort,
        i32::try_from(n).unwrap_or(i32::MAX),
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Makes the temporary table `scale_class`, dropped at commit: each enrolment of the cohort
/// with its assessor, its IQA and `k`, the number in its candidate's address, which says what
/// point they stand at.
pub async fn create_scale_class(conn: &mut PgConnection, cohort: Uuid) -> sqlx::Result<()> {
    sqlx::query(
        "create temporary table scale_class on commit drop as
         select e.enrolment_id, e.assessor_id, e.iqa_id,
                substring(u.email from 'scale-candidate-(\\d+)@')::int as k
           from enrolment e join app_user u on u.user_id = e.candidate_id
          where e.cohort_id = $1",
    )
    .bind(cohort)
    .execute(conn)
    .await?;
    Ok(())
}

/// Version 1 of an item per title of `titles` for every enrolment of `scale_class`, as drafts
/// made at `now`, without claims.
pub async fn insert_draft_items(
    conn: &mut PgConnection,
    titles: &[String],
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query("insert into evidence (evidence_id, item_id, version, enrolment_id, title, statement, method,
                               activity_on, created_at, updated_at)
         select id, id, 1, enrolment_id, ($1::text[])[i],
                'I led this piece of work from planning to delivery. I set out the approach with the team, '
                || 'agreed the risks with the service owner, and recorded what we changed and why.',
                (array['observation', 'product', 'professional_discussion', 'question_and_answer',
                       'reflective_account'])[1 + i % 5]::assessment_method,
                ($2::timestamptz)::date - 60 + i, $2, $2
           from (select gen_random_uuid() as id, s.enrolment_id, i
                   from scale_class s cross join generate_series(1, cardinality($1::text[])) i) e")
    .bind(titles)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// The claims of the items of `scale_class`: the item with the i-th title of `titles` claims
/// the criteria whose place in the cohort's standard is i, i + `titles.len()`, and so on.
pub async fn insert_draft_claims(
    conn: &mut PgConnection,
    cohort: Uuid,
    titles: &[String],
) -> sqlx::Result<()> {
    sqlx::query("insert into evidence_claim (evidence_id, criterion_id, note)
         select ev.evidence_id, c.criterion_id, ''
           from evidence ev
           join scale_class s using (enrolment_id)
           join cohort co on co.cohort_id = $1
           join (select criterion_id, standard_id,
                        row_number() over (partition by standard_id order by kind, position) as place
                   from criterion) c on c.standard_id = co.standard_id
          where (c.place - 1) % cardinality($2::text[]) + 1 = array_position($2::text[], ev.title)")
    .bind(cohort)
    .bind(titles)
    .execute(conn)
    .await?;
    Ok(())
}

/// A draft version to declare: its evidence id, item id, version, title, statement, method,
/// activity date, and the codes of its claims in the standard's order.
pub type DraftVersion = (
    Uuid,
    ItemId,
    i32,
    String,
    String,
    Option<AssessmentMethod>,
    Option<Date>,
    Vec<String>,
);

/// Every draft version of `scale_class`, except those of candidates who have not started
/// (point 0).
pub async fn drafts_to_declare(conn: &mut PgConnection) -> sqlx::Result<Vec<DraftVersion>> {
    sqlx::query_as(
        "select ev.evidence_id, ev.item_id, ev.version, ev.title, ev.statement, ev.method, ev.activity_on,
                array(select c.code from evidence_claim cl join criterion c using (criterion_id)
                       where cl.evidence_id = ev.evidence_id order by c.kind, c.position)
           from evidence ev join scale_class s using (enrolment_id)
          where ev.state = 'draft' and s.k % 10 <> 0",
    )
    .fetch_all(conn)
    .await
}

/// Submits the versions `ids` with their declaration digests `digests` (in the same order),
/// version v 30 - 5v days before `now`, give or take some minutes by its id.
pub async fn submit_versions(
    conn: &mut PgConnection,
    ids: &[Uuid],
    digests: &[Vec<u8>],
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    // Version 1 was submitted 25 days ago and judged two days later; revisions 20 days ago.
    sqlx::query!(
        "update evidence ev
            set state = 'submitted', declaration_sha256 = d.digest,
                submitted_at = $3::timestamptz - interval '30 days' + (ev.version * interval '5 days')
                               + (hashtext(ev.evidence_id::text) % 1000) * interval '1 minute',
                updated_at = $3
           from unnest($1::uuid[], $2::bytea[]) as d(evidence_id, digest)
          where ev.evidence_id = d.evidence_id",
        ids,
        digests,
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The judgements of the submitted items of `scale_class`, two days after each was submitted,
/// by the candidate's point: none at 0, 1 and 2; at 3, all but the item titled
/// `unjudged_title`; at 4 and 5, the item titled `not_met_title` not met (not sufficient,
/// with feedback); every other claim met on all five checks.
pub async fn insert_judgements(
    conn: &mut PgConnection,
    not_met_title: &str,
    unjudged_title: &str,
) -> sqlx::Result<()> {
    sqlx::query("insert into judgement (evidence_id, criterion_id, assessor_id, met, feedback,
                                valid, authentic, current, sufficient, reliable, created_at)
         select cl.evidence_id, cl.criterion_id, s.assessor_id, j.met,
                case when j.met then '' else 'Say which tools you chose and why, and show the result.' end,
                true, true, true, j.met, true, ev.submitted_at + interval '2 days'
           from evidence_claim cl
           join evidence ev using (evidence_id)
           join scale_class s using (enrolment_id)
           cross join lateral (
               select not (s.k % 10 in (4, 5) and ev.title = $1) as met
           ) j
          where ev.state = 'submitted' and s.k % 10 not in (0, 1, 2)
            and not (s.k % 10 = 3 and ev.title = $2)")
    .bind(not_met_title)
    .bind(unjudged_title)
    .execute(conn)
    .await?;
    Ok(())
}

/// Version 2, as a draft made at `now`, of the item titled `title` of the candidates at point
/// 5: version 1 with a sentence added to its statement, without claims.
pub async fn insert_revisions(
    conn: &mut PgConnection,
    now: OffsetDateTime,
    title: &str,
) -> sqlx::Result<()> {
    sqlx::query("insert into evidence (evidence_id, item_id, version, enrolment_id, title, statement, method,
                               activity_on, created_at, updated_at)
         select gen_random_uuid(), ev.item_id, 2, ev.enrolment_id, ev.title,
                ev.statement || ' Revised: I added the tool comparison and the results of the change.',
                ev.method, ev.activity_on, $1, $1
           from evidence ev join scale_class s using (enrolment_id)
          where s.k % 10 = 5 and ev.title = $2")
    .bind(now)
    .bind(title)
    .execute(conn)
    .await?;
    Ok(())
}

/// Gives every version 2 of the candidates at point 5 the claims of its version 1.
pub async fn copy_claims_to_revisions(conn: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query(
        "insert into evidence_claim (evidence_id, criterion_id, note)
         select v2.evidence_id, cl.criterion_id, cl.note
           from evidence v2
           join scale_class s using (enrolment_id)
           join evidence v1 on v1.item_id = v2.item_id and v1.version = 1
           join evidence_claim cl on cl.evidence_id = v1.evidence_id
          where v2.version = 2 and s.k % 10 = 5",
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The enrolments of `scale_class` at points 7, 8 and 9, in id order: each with its assessor
/// and its candidate's number k.
pub async fn enrolments_to_sign_off(
    conn: &mut PgConnection,
) -> sqlx::Result<Vec<(Uuid, Uuid, i32)>> {
    sqlx::query_as(
        "select enrolment_id, assessor_id, k from scale_class where k % 10 in (7, 8, 9) order by enrolment_id",
    )
    .fetch_all(conn)
    .await
}

/// Sign-offs made three days before `now`, one per place of the slices (all of one length):
/// the enrolment, its assessor, the basis and its digest, and whether it is sampled for IQA
/// review.
pub async fn insert_sign_offs(
    conn: &mut PgConnection,
    enrolments: &[Uuid],
    assessors: &[Uuid],
    bases: &[serde_json::Value],
    digests: &[Vec<u8>],
    sampled: &[bool],
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "insert into sign_off (enrolment_id, assessor_id, signed_at, basis, basis_sha256, sampled, sample_reason)
         select t.enrolment_id, t.assessor_id, $6::timestamptz - interval '3 days', t.basis, t.digest, t.sampled,
                case when t.sampled then 'chosen at random (demo)' else 'not chosen at random (demo)' end
           from unnest($1::uuid[], $2::uuid[], $3::jsonb[], $4::bytea[], $5::bool[])
                as t(enrolment_id, assessor_id, basis, digest, sampled)",
        enrolments,
        assessors,
        bases,
        digests,
        sampled,
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The IQA's reviews, a day before `now`, of the sign-offs of the candidates at point 8 (who
/// agrees) and 9 (who disagrees and sets actions).
pub async fn insert_reviews(conn: &mut PgConnection, now: OffsetDateTime) -> sqlx::Result<()> {
    sqlx::query("insert into review (sign_off_id, iqa_id, decision, actions, reviewed_at)
         select so.sign_off_id, s.iqa_id,
                case when s.k % 10 = 8 then 'agree' else 'disagree' end::review_decision,
                case when s.k % 10 = 8 then ''
                     else 'Check the witness statement for PC4 and record a professional discussion on K7.' end,
                $1::timestamptz - interval '1 day'
           from sign_off so join scale_class s using (enrolment_id)
          where s.k % 10 in (8, 9)")
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Withdraws every fiftieth candidate of the cohort (those with k % 50 = 23) at `now`.
pub async fn withdraw_every_fiftieth(
    conn: &mut PgConnection,
    cohort: Uuid,
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query(
        "update enrolment e set withdrawn_at = $2, withdrawn_reason = 'Left the employer (demo)'
           from scale_class s
          where s.enrolment_id = e.enrolment_id and e.cohort_id = $1 and s.k % 50 = 23",
    )
    .bind(cohort)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Fresh statistics of the tables the scale load fills.
pub async fn analyze_loaded_tables(conn: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::raw_sql(
        "analyze app_user, enrolment, evidence, evidence_claim, judgement, sign_off, review",
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The enrolments of a cohort, in id order.
pub async fn enrolment_ids(conn: &mut PgConnection, cohort: Uuid) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        "select enrolment_id from enrolment where cohort_id = $1 order by enrolment_id",
        cohort
    )
    .fetch_all(conn)
    .await
}

/// Vacuums and analyses the whole database (outside any transaction, which `vacuum` cannot
/// run in).
pub async fn vacuum_analyze(conn: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::raw_sql("vacuum (analyze)").execute(conn).await?;
    Ok(())
}
