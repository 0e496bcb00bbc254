//! `attest demo --scale N`: a second cohort of N candidates for trying the portal at a real
//! centre's size. Rows are written with set-based statements (a row at a time through the
//! routes would take hours), but they are the rows the portal itself would write: submitted
//! evidence carries its real declaration digest, judgements satisfy the VACSR and feedback
//! rules, sign-offs rest on their real basis, statuses are stored by the rule in
//! `assessments::status`, and one audit event records the whole load, in one transaction.
//!
//! Each candidate has ten evidence items claiming the 21 criteria between them, and stands at
//! one of ten points by the last digit of their number: not started (drafts only), awaiting
//! every judgement (two in ten), awaiting one item, one criterion not met, a not-met item
//! revised and awaiting, ready for sign-off, competent, verified, and signed off then withdrawn
//! by an IQA disagreement; and one in fifty (of those awaiting one item) is withdrawn.

use anyhow::bail;
use serde_json::json;
use sqlx::PgConnection;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::assessments::{db as assessments_db, sign_off};
use crate::audit::{self, Actor, NewAuditEvent};
use crate::evidence::model::{AssessmentMethod, DeclaredContent, DraftContent};
use crate::state::AppState;

/// Candidates per assessor.
pub const PER_ASSESSOR: u32 = 1_000;
/// Evidence items per candidate.
const ITEMS: i32 = 10;

/// The name of the scale cohort of `n` candidates.
pub fn cohort_name(n: u32) -> String {
    format!("Lead DevOps — scale cohort of {n}")
}

/// What was made.
#[derive(Debug)]
pub enum Outcome {
    Created { assessors: u32 },
    AlreadyThere,
}

/// The titles of the ten items, in the order of the criteria they claim.
const TITLES: [&str; ITEMS as usize] = [
    "Release pipeline redesign",
    "Incident review of the March outage",
    "Infrastructure as code for the test estate",
    "Team runbook for deployments",
    "Monitoring and alerting plan",
    "Mentoring a junior engineer",
    "Cost review of cloud accounts",
    "Security patching process",
    "Capacity plan for peak season",
    "Retrospective on the migration",
];

const FIRST_NAMES: [&str; 24] = [
    "Aisha", "Ben", "Chloe", "Dev", "Ella", "Finn", "Grace", "Hamza", "Isla", "Jack", "Kiran",
    "Leah", "Mohammed", "Nia", "Oliver", "Poppy", "Rhys", "Sofia", "Tom", "Uma", "Vikram",
    "Willow", "Yusuf", "Zara",
];
const SURNAMES: [&str; 20] = [
    "Ahmed", "Brown", "Campbell", "Davies", "Evans", "Fraser", "Green", "Hughes", "Iqbal", "Jones",
    "Khan", "Lewis", "Murphy", "Nowak", "O'Brien", "Patel", "Roberts", "Singh", "Taylor", "Walker",
];

/// Adds the scale cohort of `n` candidates, unless it is there already.
///
/// The statements that read the temporary table `scale_class` (which candidate stands where)
/// are checked when the tests run this, not at compile time: the checked macros cannot see a
/// table made at run time.
pub async fn run(state: &AppState, n: u32, password: &str) -> anyhow::Result<Outcome> {
    if n == 0 {
        bail!("--scale needs at least one candidate");
    }
    let name = cohort_name(n);
    let mut tx = state.pool.begin().await?;
    // Two runs at once: the second waits here, then finds the cohort.
    sqlx::query!("select pg_advisory_xact_lock(hashtext($1))", name)
        .execute(&mut *tx)
        .await?;
    if sqlx::query_scalar!(
        r#"select exists (select 1 from cohort where name = $1) as "exists!""#,
        name
    )
    .fetch_one(&mut *tx)
    .await?
    {
        return Ok(Outcome::AlreadyThere);
    }
    // One hash for every scale account: hashing ten thousand passwords would take minutes,
    // and these accounts share one published password anyway.
    let hash = state.passwords.hash(password).await?;
    let assessors = n.div_ceil(PER_ASSESSOR);
    let now = state.clock.now();
    let cohort = people_and_enrolments(&mut tx, &name, n, assessors, &hash, now).await?;
    evidence(&mut tx, cohort, now).await?;
    // The planner sees this transaction's own rows only once they are analysed: without it,
    // every statement below is planned for empty tables.
    analyze(&mut tx).await?;
    // Version 1 of every item is submitted and judged before the revisions are made.
    declare(&mut tx, now).await?;
    judgements(&mut tx).await?;
    revisions(&mut tx, now).await?;
    declare(&mut tx, now).await?;
    sign_offs(&mut tx, now).await?;
    withdrawals(&mut tx, cohort, now).await?;
    analyze(&mut tx).await?;
    let ids = sqlx::query_scalar!(
        "select enrolment_id from enrolment where cohort_id = $1 order by enrolment_id",
        cohort
    )
    .fetch_all(&mut *tx)
    .await?;
    for chunk in ids.chunks(500) {
        assessments_db::refresh_many(&mut tx, chunk).await?;
    }
    audit::record(
        &mut tx,
        NewAuditEvent {
            actor: &Actor::cli(),
            action: "demo.scale_cohort_created",
            entity_type: "cohort",
            entity_id: cohort.to_string(),
            detail: json!({ "name": name, "candidates": n, "assessors": assessors, "items_each": ITEMS }),
        },
    )
    .await?;
    tx.commit().await?;
    // Planner statistics and the visibility map for the new rows, so the first pages are
    // planned well and read from indexes alone.
    sqlx::raw_sql("vacuum (analyze)")
        .execute(&state.pool)
        .await?;
    Ok(Outcome::Created { assessors })
}

/// The accounts, the cohort and its enrolments; returns the cohort.
async fn people_and_enrolments(
    conn: &mut PgConnection,
    name: &str,
    n: u32,
    assessors: u32,
    hash: &str,
    now: OffsetDateTime,
) -> sqlx::Result<Uuid> {
    let names: Vec<String> = (0..n as usize)
        .map(|i| {
            format!(
                "{} {}",
                FIRST_NAMES[i % FIRST_NAMES.len()],
                SURNAMES[(i / FIRST_NAMES.len()) % SURNAMES.len()]
            )
        })
        .collect();
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
        &names,
        hash,
        i32::try_from(assessors).unwrap_or(i32::MAX)
    )
    .execute(&mut *conn)
    .await?;
    let cohort = sqlx::query_scalar!(
        "insert into cohort (standard_id, name, starts_on, ends_on)
         select standard_id, $1, ($2::timestamptz)::date - 180, ($2::timestamptz)::date + 185
           from standard where urn = 'TECIT50761' order by created_at desc limit 1
         returning cohort_id",
        name,
        now
    )
    .fetch_one(&mut *conn)
    .await?;
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
    .execute(&mut *conn)
    .await?;
    // Which point each candidate stands at, by the number in their address.
    sqlx::query(
        "create temporary table scale_class on commit drop as
         select e.enrolment_id, e.assessor_id, e.iqa_id,
                substring(u.email from 'scale-candidate-(\\d+)@')::int as k
           from enrolment e join app_user u on u.user_id = e.candidate_id
          where e.cohort_id = $1",
    )
    .bind(cohort)
    .execute(&mut *conn)
    .await?;
    Ok(cohort)
}

/// Ten draft items per candidate, claiming the 21 criteria between them (item i claims the
/// criteria whose place in the standard is i, i + 10 and i + 20).
async fn evidence(conn: &mut PgConnection, cohort: Uuid, now: OffsetDateTime) -> sqlx::Result<()> {
    let titles: Vec<String> = TITLES.iter().map(|t| (*t).to_owned()).collect();
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
    .bind(&titles)
    .bind(now)
    .execute(&mut *conn)
    .await?;
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
    .bind(&titles)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Submits every draft version of the cohort with its real declaration digest, except those of
/// candidates who have not started.
async fn declare(conn: &mut PgConnection, now: OffsetDateTime) -> sqlx::Result<()> {
    type Row = (
        Uuid,
        Uuid,
        i32,
        String,
        String,
        Option<AssessmentMethod>,
        Option<Date>,
        Vec<String>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "select ev.evidence_id, ev.item_id, ev.version, ev.title, ev.statement, ev.method, ev.activity_on,
                array(select c.code from evidence_claim cl join criterion c using (criterion_id)
                       where cl.evidence_id = ev.evidence_id order by c.kind, c.position)
           from evidence ev join scale_class s using (enrolment_id)
          where ev.state = 'draft' and s.k % 10 <> 0",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut ids = Vec::with_capacity(rows.len());
    let mut digests = Vec::with_capacity(rows.len());
    for (evidence_id, item_id, version, title, statement, method, activity_on, codes) in rows {
        let content = DraftContent {
            title,
            statement,
            method,
            activity_on,
        };
        let claims: Vec<(String, String)> = codes.into_iter().map(|c| (c, String::new())).collect();
        let digest = DeclaredContent {
            item_id,
            version,
            content: &content,
            claims: &claims,
            files: &[],
        }
        .sha256();
        ids.push(evidence_id);
        digests.push(digest.to_vec());
    }
    // Version 1 was submitted 25 days ago and judged two days later; revisions 20 days ago.
    sqlx::query!(
        "update evidence ev
            set state = 'submitted', declaration_sha256 = d.digest,
                submitted_at = $3::timestamptz - interval '30 days' + (ev.version * interval '5 days')
                               + (hashtext(ev.evidence_id::text) % 1000) * interval '1 minute',
                updated_at = $3
           from unnest($1::uuid[], $2::bytea[]) as d(evidence_id, digest)
          where ev.evidence_id = d.evidence_id",
        &ids,
        &digests,
        now
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The judgements of version 1 of every item, by each point's pattern.
async fn judgements(conn: &mut PgConnection) -> sqlx::Result<()> {
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
    .bind(TITLES[0])
    .bind(TITLES[TITLES.len() - 1])
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Candidates at point 5 revise the item judged not met: version 2, claiming the same criteria.
async fn revisions(conn: &mut PgConnection, now: OffsetDateTime) -> sqlx::Result<()> {
    sqlx::query("insert into evidence (evidence_id, item_id, version, enrolment_id, title, statement, method,
                               activity_on, created_at, updated_at)
         select gen_random_uuid(), ev.item_id, 2, ev.enrolment_id, ev.title,
                ev.statement || ' Revised: I added the tool comparison and the results of the change.',
                ev.method, ev.activity_on, $1, $1
           from evidence ev join scale_class s using (enrolment_id)
          where s.k % 10 = 5 and ev.title = $2")
    .bind(now)
    .bind(TITLES[0])
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "insert into evidence_claim (evidence_id, criterion_id, note)
         select v2.evidence_id, cl.criterion_id, cl.note
           from evidence v2
           join scale_class s using (enrolment_id)
           join evidence v1 on v1.item_id = v2.item_id and v1.version = 1
           join evidence_claim cl on cl.evidence_id = v1.evidence_id
          where v2.version = 2 and s.k % 10 = 5",
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Sign-offs on their real basis for points 7, 8 and 9; the IQA agrees with those at 8 and
/// disagrees with those at 9.
async fn sign_offs(conn: &mut PgConnection, now: OffsetDateTime) -> sqlx::Result<()> {
    let chosen: Vec<(Uuid, Uuid, i32)> = sqlx::query_as(
        "select enrolment_id, assessor_id, k from scale_class where k % 10 in (7, 8, 9) order by enrolment_id",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut ids = Vec::with_capacity(chosen.len());
    let mut assessors = Vec::with_capacity(chosen.len());
    let mut bases = Vec::with_capacity(chosen.len());
    let mut digests = Vec::with_capacity(chosen.len());
    let mut sampled = Vec::with_capacity(chosen.len());
    for (enrolment, assessor, k) in chosen {
        let basis = sign_off::basis(conn, enrolment).await?;
        ids.push(enrolment);
        assessors.push(assessor);
        digests.push(sign_off::basis_sha256(&basis).to_vec());
        bases.push(json!(basis));
        sampled.push(k % 10 != 7);
    }
    sqlx::query!(
        "insert into sign_off (enrolment_id, assessor_id, signed_at, basis, basis_sha256, sampled, sample_reason)
         select t.enrolment_id, t.assessor_id, $6::timestamptz - interval '3 days', t.basis, t.digest, t.sampled,
                case when t.sampled then 'chosen at random (demo)' else 'not chosen at random (demo)' end
           from unnest($1::uuid[], $2::uuid[], $3::jsonb[], $4::bytea[], $5::bool[])
                as t(enrolment_id, assessor_id, basis, digest, sampled)",
        &ids,
        &assessors,
        &bases,
        &digests,
        &sampled,
        now
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query("insert into review (sign_off_id, iqa_id, decision, actions, reviewed_at)
         select so.sign_off_id, s.iqa_id,
                case when s.k % 10 = 8 then 'agree' else 'disagree' end::review_decision,
                case when s.k % 10 = 8 then ''
                     else 'Check the witness statement for PC4 and record a professional discussion on K7.' end,
                $1::timestamptz - interval '1 day'
           from sign_off so join scale_class s using (enrolment_id)
          where s.k % 10 in (8, 9)")
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Every fiftieth candidate left the programme.
async fn withdrawals(
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
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Fresh statistics of the tables this load fills.
async fn analyze(conn: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::raw_sql(
        "analyze app_user, enrolment, evidence, evidence_claim, judgement, sign_off, review",
    )
    .execute(conn)
    .await?;
    Ok(())
}
