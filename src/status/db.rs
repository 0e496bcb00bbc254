//! Queries of the stored competency status: reading the rule's inputs, rewriting the stored
//! rows, and reading them back. The rule itself is [`super::model::Sources::evaluate`].

use std::collections::HashMap;

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::model::{
    ClaimSource, CriterionProgress, CriterionSource, CriterionState, CriterionStatus,
    EnrolmentState, EnrolmentStatus, Sources, StandingSignOff,
};
use crate::identity::UserId;
use crate::ids::{CohortId, EnrolmentId, EvidenceId, SignOffId};
use crate::standards::model::CriterionKind;

/// Locks the stored status of an enrolment until the transaction ends: two changes of one
/// enrolment then recompute one after the other, the second seeing the first.
pub async fn lock(conn: &mut PgConnection, enrolment: EnrolmentId) -> sqlx::Result<()> {
    sqlx::query!(
        "select enrolment_id from enrolment_progress where enrolment_id = $1 for no key update",
        enrolment.0
    )
    .fetch_optional(conn)
    .await?;
    Ok(())
}

/// Recomputes the status of one enrolment from its records and stores it, under its lock.
pub async fn refresh(conn: &mut PgConnection, enrolment: EnrolmentId) -> sqlx::Result<()> {
    refresh_many(conn, &[enrolment.0]).await?;
    Ok(())
}

/// Recomputes and stores the status of many enrolments (an assignment of many, a bulk load),
/// locking them in one order so that two such changes cannot deadlock, and moves the cohort
/// counts by the differences.
pub async fn refresh_many(
    conn: &mut PgConnection,
    enrolments: &[Uuid],
) -> sqlx::Result<Vec<EnrolmentState>> {
    let mut ids = enrolments.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let before = sqlx::query!(
        r#"select enrolment_id, cohort_id as "cohort_id: CohortId", assessor_id as "assessor_id: UserId",
                  status as "status: EnrolmentStatus", withdrawn, claims_awaiting,
                  performance_met + knowledge_met as "met!"
             from enrolment_progress where enrolment_id = any($1)
            order by enrolment_id for no key update"#,
        &ids
    )
    .fetch_all(&mut *conn)
    .await?;
    let states: Vec<EnrolmentState> = sources(conn, &ids)
        .await?
        .iter()
        .map(Sources::evaluate)
        .collect();
    let met_before: HashMap<Uuid, i32> = before.iter().map(|b| (b.enrolment_id, b.met)).collect();
    store(conn, &states, &met_before).await?;
    let moved: Vec<&EnrolmentState> = states
        .iter()
        .filter(|s| met_before.get(&s.enrolment_id.0) != Some(&s.criteria_met()))
        .collect();
    record_met(conn, &moved).await?;
    let mut counts = CountChanges::default();
    for old in before {
        let change = (-1, -i64::from(old.claims_awaiting));
        counts.add(
            old.enrolment_id,
            old.cohort_id,
            old.assessor_id,
            old.status,
            old.withdrawn,
            change,
        );
    }
    for new in &states {
        let change = (1, i64::from(new.claims_awaiting));
        counts.add(
            new.enrolment_id.0,
            new.cohort_id,
            new.assessor_id,
            new.status,
            new.withdrawn,
            change,
        );
    }
    counts.apply(conn).await?;
    Ok(states)
}

/// Appends the number of criteria met of each of these enrolments to their history.
async fn record_met(conn: &mut PgConnection, moved: &[&EnrolmentState]) -> sqlx::Result<()> {
    if moved.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        "insert into enrolment_met_history (enrolment_id, at, criteria_met, criteria_total)
         select t.enrolment_id, now(), t.met, t.total from unnest($1::uuid[], $2::int[], $3::int[]) as t(enrolment_id, met, total)",
        &moved.iter().map(|s| s.enrolment_id.0).collect::<Vec<_>>(),
        &moved.iter().map(|s| s.criteria_met()).collect::<Vec<_>>(),
        &moved
            .iter()
            .map(|s| s.performance_total + s.knowledge_total)
            .collect::<Vec<_>>(),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// How many rows each group of the cohort counts is spread over, so that changes of different
/// enrolments of one group seldom wait for each other's commits.
const COUNT_SLOTS: u8 = 16;

/// The slot of the cohort counts that enrolment `id`'s changes go to: picked by its id, whose
/// last byte is random.
pub fn count_slot(id: Uuid) -> i16 {
    i16::from(id.as_bytes()[15] % COUNT_SLOTS)
}

/// A group of the cohort counts, and one of its slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct CountGroup {
    cohort_id: CohortId,
    assessor_id: Option<UserId>,
    status: &'static str,
    withdrawn: bool,
    slot: i16,
}

/// Changes to the cohort counts, summed by group: (enrolments, claims waiting).
#[derive(Default)]
struct CountChanges(std::collections::BTreeMap<CountGroup, (i64, i64)>);

impl CountChanges {
    fn add(
        &mut self,
        enrolment_id: Uuid,
        cohort_id: CohortId,
        assessor_id: Option<UserId>,
        status: EnrolmentStatus,
        withdrawn: bool,
        change: (i64, i64),
    ) {
        let group = CountGroup {
            cohort_id,
            assessor_id,
            status: status.as_str(),
            withdrawn,
            slot: count_slot(enrolment_id),
        };
        let entry = self.0.entry(group).or_default();
        entry.0 += change.0;
        entry.1 += change.1;
    }

    /// Applies the changes that are not zero, in the groups' order (two transactions moving
    /// the same groups lock them in the same order).
    async fn apply(self, conn: &mut PgConnection) -> sqlx::Result<()> {
        let changed: Vec<_> = self.0.into_iter().filter(|(_, d)| *d != (0, 0)).collect();
        if changed.is_empty() {
            return Ok(());
        }
        let clamp = |n: i64| i32::try_from(n).unwrap_or(if n < 0 { i32::MIN } else { i32::MAX });
        sqlx::query!(
            "insert into enrolment_count (cohort_id, assessor_id, status, withdrawn, slot, enrolments, claims_awaiting)
             select t.cohort_id, t.assessor_id, t.status::enrolment_status, t.withdrawn, t.slot, t.enrolments, t.claims
               from unnest($1::uuid[], $2::uuid[], $3::text[], $4::bool[], $5::smallint[], $6::int[], $7::int[])
                    with ordinality as t(cohort_id, assessor_id, status, withdrawn, slot, enrolments, claims, n)
              order by t.n
             on conflict (cohort_id, assessor_id, status, withdrawn, slot) do update
                set enrolments = enrolment_count.enrolments + excluded.enrolments,
                    claims_awaiting = enrolment_count.claims_awaiting + excluded.claims_awaiting",
            &changed.iter().map(|(g, _)| g.cohort_id.0).collect::<Vec<_>>(),
            &changed
                .iter()
                .map(|(g, _)| g.assessor_id.map(|a| a.0))
                .collect::<Vec<_>>() as &[Option<Uuid>],
            &changed.iter().map(|(g, _)| g.status.to_owned()).collect::<Vec<_>>(),
            &changed.iter().map(|(g, _)| g.withdrawn).collect::<Vec<_>>(),
            &changed.iter().map(|(g, _)| g.slot).collect::<Vec<_>>(),
            &changed.iter().map(|(_, (e, _))| clamp(*e)).collect::<Vec<_>>(),
            &changed.iter().map(|(_, (_, c))| clamp(*c)).collect::<Vec<_>>(),
        )
        .execute(conn)
        .await?;
        Ok(())
    }
}

/// A cohort count that differs from what the stored rows give.
#[derive(Debug, Clone)]
pub struct CountDifference {
    pub cohort_id: CohortId,
    pub assessor_id: Option<UserId>,
    pub status: String,
    pub withdrawn: bool,
    /// (enrolments, claims waiting) as stored in the count.
    pub kept: (i64, i64),
    /// The same, counted from the stored rows.
    pub counted: (i64, i64),
}

/// The cohort counts that differ from the stored rows.
pub async fn count_differences(conn: &mut PgConnection) -> sqlx::Result<Vec<CountDifference>> {
    let rows = sqlx::query!(
        r#"with counted as (
               select cohort_id, assessor_id, status, withdrawn, count(*) as enrolments,
                      sum(claims_awaiting) as claims
                 from enrolment_progress group by cohort_id, assessor_id, status, withdrawn
           ), kept as (
               select cohort_id, assessor_id, status, withdrawn, sum(enrolments) as enrolments,
                      sum(claims_awaiting) as claims_awaiting
                 from enrolment_count group by cohort_id, assessor_id, status, withdrawn
           )
           select coalesce(k.cohort_id, c.cohort_id) as "cohort_id!: CohortId",
                  coalesce(k.assessor_id, c.assessor_id) as "assessor_id: UserId",
                  coalesce(k.status, c.status)::text as "status!", coalesce(k.withdrawn, c.withdrawn) as "withdrawn!",
                  coalesce(k.enrolments, 0)::bigint as "kept_enrolments!", coalesce(k.claims_awaiting, 0)::bigint as "kept_claims!",
                  coalesce(c.enrolments, 0)::bigint as "counted_enrolments!", coalesce(c.claims, 0)::bigint as "counted_claims!"
             from kept k
             full join counted c
               on c.cohort_id = k.cohort_id and c.assessor_id is not distinct from k.assessor_id
              and c.status = k.status and c.withdrawn = k.withdrawn
            where (coalesce(k.enrolments, 0), coalesce(k.claims_awaiting, 0))
                  <> (coalesce(c.enrolments, 0), coalesce(c.claims, 0))"#
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| CountDifference {
            cohort_id: r.cohort_id,
            assessor_id: r.assessor_id,
            status: r.status,
            withdrawn: r.withdrawn,
            kept: (r.kept_enrolments, r.kept_claims),
            counted: (r.counted_enrolments, r.counted_claims),
        })
        .collect())
}

/// Rewrites the cohort counts from the stored rows.
pub async fn recount(conn: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query!("lock table enrolment_count in exclusive mode")
        .execute(&mut *conn)
        .await?;
    sqlx::query!("delete from enrolment_count")
        .execute(&mut *conn)
        .await?;
    sqlx::query!(
        "insert into enrolment_count (cohort_id, assessor_id, status, withdrawn, slot, enrolments, claims_awaiting)
         select cohort_id, assessor_id, status, withdrawn, 0, count(*), sum(claims_awaiting)
           from enrolment_progress group by cohort_id, assessor_id, status, withdrawn"
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Recomputes the enrolments of a candidate, whose name orders caseloads and reports.
pub async fn refresh_for_candidate(conn: &mut PgConnection, candidate: UserId) -> sqlx::Result<()> {
    let ids = sqlx::query_scalar!(
        "select enrolment_id from enrolment where candidate_id = $1",
        candidate.0
    )
    .fetch_all(&mut *conn)
    .await?;
    if !ids.is_empty() {
        refresh_many(conn, &ids).await?;
    }
    Ok(())
}

/// What the rule needs of each enrolment, read from its records in one statement: a row per
/// criterion and claim, the enrolment's own columns repeated on each.
pub async fn sources(conn: &mut PgConnection, enrolments: &[Uuid]) -> sqlx::Result<Vec<Sources>> {
    let rows = sqlx::query!(
        r#"with head as materialized (
               select e.enrolment_id, e.cohort_id, e.candidate_id, e.assessor_id, e.iqa_id,
                      e.withdrawn_at is not null as withdrawn, u.display_name as candidate_name,
                      lower(u.display_name) as candidate_sort_name,
                      coalesce(act.anything_submitted, false) as anything_submitted,
                      ss.sign_off_id, ss.signed_at, ss.assessor_id as signed_by, ss.reviewed_at, ss.reviewer_id,
                      ss.decision::text as decision,
                      exists (select 1 from latest_sign_off ls
                               where ls.enrolment_id = e.enrolment_id and ls.decision = 'disagree') as iqa_disagreed,
                      act.last_activity_at
                 from enrolment e
                 join app_user u on u.user_id = e.candidate_id
                 -- The enrolment's evidence, read once: whether any is submitted, and the
                 -- newest submission or judgement of it.
                 left join lateral (
                      select bool_or(ev.state = 'submitted') as anything_submitted,
                             greatest(max(ev.submitted_at), max(newest.at)) as last_activity_at
                        from evidence ev
                       cross join lateral (select max(j.created_at) as at from judgement j
                                            where j.evidence_id = ev.evidence_id) newest
                       where ev.enrolment_id = e.enrolment_id) act on true
                 left join standing_sign_off ss on ss.enrolment_id = e.enrolment_id
                where e.enrolment_id = any($1)
           )
           select h.enrolment_id as "enrolment_id!: EnrolmentId", h.cohort_id as "cohort_id!: CohortId",
                  h.candidate_id as "candidate_id!: UserId", h.assessor_id as "assessor_id: UserId",
                  h.iqa_id as "iqa_id: UserId", h.withdrawn as "withdrawn!", h.candidate_name as "candidate_name!",
                  h.candidate_sort_name as "candidate_sort_name!",
                  h.anything_submitted as "anything_submitted!", h.iqa_disagreed as "iqa_disagreed!",
                  h.sign_off_id as "sign_off_id?: SignOffId", h.signed_at as "signed_at?",
                  h.signed_by as "signed_by?: UserId", h.reviewed_at as "reviewed_at?",
                  h.reviewer_id as "reviewer_id?: UserId", h.decision as "decision?",
                  h.last_activity_at,
                  c.criterion_id as "criterion_id?", c.kind as "kind?: CriterionKind",
                  cl.evidence_id as "evidence_id?: EvidenceId", cl.submitted_at as "submitted_at?",
                  cl.superseded as "superseded?", lj.met as "met?"
             from head h
             join cohort co using (cohort_id)
             left join criterion c on c.standard_id = co.standard_id
             left join submitted_claim cl
                    on cl.enrolment_id = h.enrolment_id and cl.criterion_id = c.criterion_id
             left join latest_judgement lj
                    on lj.evidence_id = cl.evidence_id and lj.criterion_id = cl.criterion_id
            order by h.enrolment_id, c.kind, c.position, cl.submitted_at, cl.evidence_id"#,
        enrolments
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut all: Vec<Sources> = Vec::new();
    for row in rows {
        if all
            .last()
            .is_none_or(|s| s.enrolment_id != row.enrolment_id)
        {
            all.push(Sources {
                enrolment_id: row.enrolment_id,
                cohort_id: row.cohort_id,
                candidate_id: row.candidate_id,
                assessor_id: row.assessor_id,
                iqa_id: row.iqa_id,
                candidate_name: row.candidate_name.clone(),
                candidate_sort_name: row.candidate_sort_name.clone(),
                withdrawn: row.withdrawn,
                anything_submitted: row.anything_submitted,
                iqa_disagreed: row.iqa_disagreed,
                standing_sign_off: match (row.sign_off_id, row.signed_at, row.signed_by) {
                    (Some(sign_off_id), Some(signed_at), Some(signed_by)) => {
                        Some(StandingSignOff {
                            sign_off_id,
                            signed_at,
                            signed_by,
                            verified: match (
                                row.decision.as_deref(),
                                row.reviewed_at,
                                row.reviewer_id,
                            ) {
                                (Some("agree"), Some(at), Some(by)) => Some((at, by)),
                                _ => None,
                            },
                        })
                    }
                    _ => None,
                },
                last_activity_at: row.last_activity_at,
                criteria: Vec::new(),
            });
        }
        let (Some(sources), Some(criterion_id), Some(kind)) =
            (all.last_mut(), row.criterion_id, row.kind)
        else {
            continue;
        };
        if sources
            .criteria
            .last()
            .is_none_or(|c| c.criterion_id != criterion_id)
        {
            sources.criteria.push(CriterionSource {
                criterion_id,
                kind,
                claims: Vec::new(),
            });
        }
        if let (Some(evidence_id), Some(submitted_at), Some(superseded), Some(criterion)) = (
            row.evidence_id,
            row.submitted_at,
            row.superseded,
            sources.criteria.last_mut(),
        ) {
            criterion.claims.push(ClaimSource {
                evidence_id,
                submitted_at,
                superseded,
                judgement: row.met,
            });
        }
    }
    Ok(all)
}

/// Writes the stored rows of these states, replacing what was there; `stored_before` holds
/// the enrolments that had stored rows already, with the criteria they had met (the others
/// have no criterion rows to remove).
async fn store(
    conn: &mut PgConnection,
    states: &[EnrolmentState],
    stored_before: &HashMap<Uuid, i32>,
) -> sqlx::Result<()> {
    if states.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&EnrolmentState) -> i32| states.iter().map(f).collect::<Vec<i32>>();
    let optional_id =
        |f: fn(&EnrolmentState) -> Option<Uuid>| states.iter().map(f).collect::<Vec<_>>();
    let optional_time =
        |f: fn(&EnrolmentState) -> Option<OffsetDateTime>| states.iter().map(f).collect::<Vec<_>>();
    let ids: Vec<Uuid> = states.iter().map(|s| s.enrolment_id.0).collect();
    sqlx::query!(
        r#"insert into enrolment_progress
               (enrolment_id, cohort_id, candidate_id, assessor_id, iqa_id, withdrawn, candidate_sort_name,
                candidate_name, iqa_disagreed, status, performance_met, performance_total, knowledge_met, knowledge_total,
                criteria_awaiting, criteria_not_met, claims_awaiting, oldest_awaiting_at,
                next_evidence_id, last_activity_at, standing_sign_off_id, signed_off_at, signed_off_by,
                verified_at, verified_by, criteria_statuses, computed_at)
           select t.enrolment_id, t.cohort_id, t.candidate_id, t.assessor_id, t.iqa_id, t.withdrawn,
                  t.candidate_sort_name, t.candidate_name, t.iqa_disagreed, t.status::enrolment_status, t.performance_met, t.performance_total,
                  t.knowledge_met, t.knowledge_total, t.criteria_awaiting, t.criteria_not_met,
                  t.claims_awaiting, t.oldest_awaiting_at, t.next_evidence_id, t.last_activity_at,
                  t.standing_sign_off_id, t.signed_off_at, t.signed_off_by, t.verified_at, t.verified_by,
                  string_to_array(t.criteria_statuses, ',')::criterion_status[], clock_timestamp()
             from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::bool[], $7::text[],
                         $8::text[], $9::int[], $10::int[], $11::int[], $12::int[], $13::int[], $14::int[],
                         $15::int[], $16::timestamptz[], $17::uuid[], $18::timestamptz[], $19::uuid[],
                         $20::timestamptz[], $21::uuid[], $22::timestamptz[], $23::uuid[], $24::text[],
                         $25::text[], $26::bool[])
                  as t(enrolment_id, cohort_id, candidate_id, assessor_id, iqa_id, withdrawn, candidate_sort_name,
                       status, performance_met, performance_total, knowledge_met, knowledge_total,
                       criteria_awaiting, criteria_not_met, claims_awaiting, oldest_awaiting_at,
                       next_evidence_id, last_activity_at, standing_sign_off_id, signed_off_at, signed_off_by,
                       verified_at, verified_by, criteria_statuses, candidate_name, iqa_disagreed)
           on conflict (enrolment_id) do update set
               cohort_id = excluded.cohort_id, candidate_id = excluded.candidate_id,
               assessor_id = excluded.assessor_id, iqa_id = excluded.iqa_id,
               withdrawn = excluded.withdrawn, candidate_sort_name = excluded.candidate_sort_name,
               candidate_name = excluded.candidate_name, iqa_disagreed = excluded.iqa_disagreed, status = excluded.status, performance_met = excluded.performance_met,
               performance_total = excluded.performance_total, knowledge_met = excluded.knowledge_met,
               knowledge_total = excluded.knowledge_total, criteria_awaiting = excluded.criteria_awaiting,
               criteria_not_met = excluded.criteria_not_met, claims_awaiting = excluded.claims_awaiting,
               oldest_awaiting_at = excluded.oldest_awaiting_at, next_evidence_id = excluded.next_evidence_id,
               last_activity_at = excluded.last_activity_at,
               standing_sign_off_id = excluded.standing_sign_off_id, signed_off_at = excluded.signed_off_at,
               signed_off_by = excluded.signed_off_by, verified_at = excluded.verified_at,
               verified_by = excluded.verified_by,
               criteria_statuses = excluded.criteria_statuses, computed_at = excluded.computed_at"#,
        &ids,
        &states.iter().map(|s| s.cohort_id.0).collect::<Vec<_>>(),
        &states.iter().map(|s| s.candidate_id.0).collect::<Vec<_>>(),
        &optional_id(|s| s.assessor_id.map(|a| a.0)) as &[Option<Uuid>],
        &optional_id(|s| s.iqa_id.map(|i| i.0)) as &[Option<Uuid>],
        &states.iter().map(|s| s.withdrawn).collect::<Vec<_>>(),
        &states
            .iter()
            .map(|s| s.candidate_sort_name.clone())
            .collect::<Vec<_>>(),
        &states
            .iter()
            .map(|s| s.status.as_str().to_owned())
            .collect::<Vec<_>>(),
        &column(|s| s.performance_met),
        &column(|s| s.performance_total),
        &column(|s| s.knowledge_met),
        &column(|s| s.knowledge_total),
        &column(|s| s.criteria_awaiting),
        &column(|s| s.criteria_not_met),
        &column(|s| s.claims_awaiting),
        &optional_time(|s| s.oldest_awaiting_at) as &[Option<OffsetDateTime>],
        &optional_id(|s| s.next_evidence_id.map(|e| e.0)) as &[Option<Uuid>],
        &optional_time(|s| s.last_activity_at) as &[Option<OffsetDateTime>],
        &optional_id(|s| s.standing_sign_off.as_ref().map(|o| o.sign_off_id.0)) as &[Option<Uuid>],
        &optional_time(|s| s.standing_sign_off.as_ref().map(|o| o.signed_at)) as &[Option<OffsetDateTime>],
        &optional_id(|s| s.standing_sign_off.as_ref().map(|o| o.signed_by.0)) as &[Option<Uuid>],
        &optional_time(|s| s.standing_sign_off.as_ref().and_then(|o| o.verified).map(|v| v.0))
            as &[Option<OffsetDateTime>],
        &optional_id(|s| s.standing_sign_off.as_ref().and_then(|o| o.verified).map(|v| v.1.0))
            as &[Option<Uuid>],
        // One text per enrolment (a two-dimensional array cannot be ragged): "met,awaiting,…".
        &states
            .iter()
            .map(|s| {
                s.criteria_statuses
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect::<Vec<_>>(),
        &states
            .iter()
            .map(|s| s.candidate_name.clone())
            .collect::<Vec<_>>(),
        &states.iter().map(|s| s.iqa_disagreed).collect::<Vec<_>>(),
    )
    .execute(&mut *conn)
    .await?;

    // Only criteria with something claimed on them are stored; one that has gone back to
    // untouched loses its row.
    let all = states
        .iter()
        .flat_map(|s| s.criteria.iter().map(move |c| (s.enrolment_id.0, c)));
    let (untouched, criteria): (Vec<_>, Vec<(Uuid, &CriterionState)>) =
        all.partition(|(_, c)| c.is_untouched());
    let gone: Vec<(Uuid, Uuid)> = untouched
        .iter()
        .filter(|(enrolment, _)| stored_before.contains_key(enrolment))
        .map(|(enrolment, c)| (*enrolment, c.criterion_id))
        .collect();
    if criteria.is_empty() && gone.is_empty() {
        return Ok(());
    }
    let pick =
        |f: fn(&CriterionState) -> i32| criteria.iter().map(|(_, c)| f(c)).collect::<Vec<i32>>();
    sqlx::query!(
        r#"with gone as (
               delete from enrolment_criterion_status s
                using unnest($8::uuid[], $9::uuid[]) as g(enrolment_id, criterion_id)
                where s.enrolment_id = g.enrolment_id and s.criterion_id = g.criterion_id
           )
           insert into enrolment_criterion_status
               (enrolment_id, criterion_id, status, claims_met, claims_not_met, claims_awaiting, oldest_awaiting_at)
           select t.enrolment_id, t.criterion_id, t.status::criterion_status, t.claims_met, t.claims_not_met,
                  t.claims_awaiting, t.oldest_awaiting_at
             from unnest($1::uuid[], $2::uuid[], $3::text[], $4::int[], $5::int[], $6::int[], $7::timestamptz[])
                  as t(enrolment_id, criterion_id, status, claims_met, claims_not_met, claims_awaiting, oldest_awaiting_at)
           on conflict (enrolment_id, criterion_id) do update set
               status = excluded.status, claims_met = excluded.claims_met,
               claims_not_met = excluded.claims_not_met, claims_awaiting = excluded.claims_awaiting,
               oldest_awaiting_at = excluded.oldest_awaiting_at
           where (enrolment_criterion_status.status, enrolment_criterion_status.claims_met,
                  enrolment_criterion_status.claims_not_met, enrolment_criterion_status.claims_awaiting,
                  enrolment_criterion_status.oldest_awaiting_at)
                 is distinct from
                 (excluded.status, excluded.claims_met, excluded.claims_not_met,
                  excluded.claims_awaiting, excluded.oldest_awaiting_at)"#,
        &criteria.iter().map(|(e, _)| *e).collect::<Vec<_>>(),
        &criteria.iter().map(|(_, c)| c.criterion_id).collect::<Vec<_>>(),
        &criteria
            .iter()
            .map(|(_, c)| c.status.as_str().to_owned())
            .collect::<Vec<_>>(),
        &pick(|c| c.claims_met),
        &pick(|c| c.claims_not_met),
        &pick(|c| c.claims_awaiting),
        &criteria
            .iter()
            .map(|(_, c)| c.oldest_awaiting_at)
            .collect::<Vec<_>>() as &[Option<OffsetDateTime>],
        &gone.iter().map(|(e, _)| *e).collect::<Vec<_>>(),
        &gone.iter().map(|(_, c)| *c).collect::<Vec<_>>(),
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The stored states of these enrolments, in enrolment id order; an enrolment without stored
/// rows is missing from the answer.
pub async fn stored(
    conn: &mut PgConnection,
    enrolments: &[Uuid],
) -> sqlx::Result<Vec<EnrolmentState>> {
    let rows = sqlx::query!(
        r#"select enrolment_id, cohort_id as "cohort_id: CohortId", candidate_id as "candidate_id: UserId",
                  assessor_id as "assessor_id: UserId", iqa_id as "iqa_id: UserId", withdrawn, candidate_name,
                  candidate_sort_name, iqa_disagreed, status as "status: EnrolmentStatus", performance_met, performance_total,
                  knowledge_met, knowledge_total, criteria_awaiting, criteria_not_met, claims_awaiting,
                  oldest_awaiting_at, next_evidence_id as "next_evidence_id: EvidenceId", last_activity_at,
                  standing_sign_off_id as "standing_sign_off_id: SignOffId",
                  signed_off_at, signed_off_by as "signed_off_by: UserId", verified_at, verified_by as "verified_by: UserId",
                  criteria_statuses as "criteria_statuses: Vec<CriterionStatus>"
             from enrolment_progress
            where enrolment_id = any($1)
            order by enrolment_id"#,
        enrolments
    )
    .fetch_all(&mut *conn)
    .await?;
    // A criterion without a row is untouched.
    let criteria = sqlx::query!(
        r#"select p.enrolment_id, c.criterion_id,
                  coalesce(s.status, 'not_started') as "status!: CriterionStatus",
                  coalesce(s.claims_met, 0) as "claims_met!", coalesce(s.claims_not_met, 0) as "claims_not_met!",
                  coalesce(s.claims_awaiting, 0) as "claims_awaiting!", s.oldest_awaiting_at as "oldest_awaiting_at?"
             from enrolment_progress p
             join cohort co using (cohort_id)
             join criterion c on c.standard_id = co.standard_id
             left join enrolment_criterion_status s
                    on s.enrolment_id = p.enrolment_id and s.criterion_id = c.criterion_id
            where p.enrolment_id = any($1)
            order by p.enrolment_id, c.kind, c.position"#,
        enrolments
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut by_enrolment: HashMap<Uuid, Vec<CriterionState>> = HashMap::new();
    for c in criteria {
        by_enrolment
            .entry(c.enrolment_id)
            .or_default()
            .push(CriterionState {
                criterion_id: c.criterion_id,
                status: c.status,
                claims_met: c.claims_met,
                claims_not_met: c.claims_not_met,
                claims_awaiting: c.claims_awaiting,
                oldest_awaiting_at: c.oldest_awaiting_at,
            });
    }
    Ok(rows
        .into_iter()
        .map(|r| EnrolmentState {
            criteria: by_enrolment.remove(&r.enrolment_id).unwrap_or_default(),
            enrolment_id: EnrolmentId(r.enrolment_id),
            cohort_id: r.cohort_id,
            candidate_id: r.candidate_id,
            assessor_id: r.assessor_id,
            iqa_id: r.iqa_id,
            withdrawn: r.withdrawn,
            candidate_name: r.candidate_name,
            candidate_sort_name: r.candidate_sort_name,
            iqa_disagreed: r.iqa_disagreed,
            status: r.status,
            performance_met: r.performance_met,
            performance_total: r.performance_total,
            knowledge_met: r.knowledge_met,
            knowledge_total: r.knowledge_total,
            criteria_awaiting: r.criteria_awaiting,
            criteria_not_met: r.criteria_not_met,
            claims_awaiting: r.claims_awaiting,
            oldest_awaiting_at: r.oldest_awaiting_at,
            next_evidence_id: r.next_evidence_id,
            last_activity_at: r.last_activity_at,
            standing_sign_off: match (r.standing_sign_off_id, r.signed_off_at, r.signed_off_by) {
                (Some(sign_off_id), Some(signed_at), Some(signed_by)) => Some(StandingSignOff {
                    sign_off_id,
                    signed_at,
                    signed_by,
                    verified: r.verified_at.zip(r.verified_by),
                }),
                _ => None,
            },
            criteria_statuses: r.criteria_statuses,
        })
        .collect())
}

/// An enrolment's stored status and figures, as pages show them.
#[derive(Debug, Clone)]
pub struct Progress {
    pub enrolment_id: EnrolmentId,
    pub status: EnrolmentStatus,
    pub performance_met: i32,
    pub performance_total: i32,
    pub knowledge_met: i32,
    pub knowledge_total: i32,
    pub criteria_awaiting: i32,
    pub criteria_not_met: i32,
    pub standing_sign_off_id: Option<SignOffId>,
    /// An IQA disagreed with the newest sign-off: its actions wait for the assessor.
    pub iqa_disagreed: bool,
    /// Each criterion's status, in criterion order.
    pub criteria_statuses: Vec<CriterionStatus>,
}

impl Progress {
    /// Criteria met, of all criteria.
    pub fn met(&self) -> (i32, i32) {
        (
            self.performance_met + self.knowledge_met,
            self.performance_total + self.knowledge_total,
        )
    }
}

/// The stored progress of these enrolments, in enrolment id order.
pub async fn progress_of(
    conn: &mut PgConnection,
    enrolments: &[Uuid],
) -> sqlx::Result<Vec<Progress>> {
    sqlx::query_as!(
        Progress,
        r#"select enrolment_id, status as "status: EnrolmentStatus", performance_met, performance_total,
                  knowledge_met, knowledge_total, criteria_awaiting, criteria_not_met,
                  standing_sign_off_id as "standing_sign_off_id: SignOffId", iqa_disagreed,
                  criteria_statuses as "criteria_statuses: Vec<CriterionStatus>"
             from enrolment_progress
            where enrolment_id = any($1)
            order by enrolment_id"#,
        enrolments
    )
    .fetch_all(conn)
    .await
}

/// The evidence version assessor `assessor` should judge next, other than `except`: the
/// oldest waiting of enrolment `enrolment` first, then the oldest waiting of their caseload.
pub async fn next_to_judge(
    conn: &mut PgConnection,
    assessor: UserId,
    enrolment: EnrolmentId,
    except: EvidenceId,
) -> sqlx::Result<Option<EvidenceId>> {
    sqlx::query_scalar!(
        r#"select next_evidence_id as "id!: EvidenceId" from enrolment_progress
            where assessor_id = $1 and not withdrawn and next_evidence_id is not null
              and next_evidence_id <> $3
            order by enrolment_id = $2 desc, oldest_awaiting_at, candidate_sort_name, enrolment_id
            limit 1"#,
        assessor.0,
        enrolment.0,
        except.0
    )
    .fetch_optional(conn)
    .await
}

/// The stored progress of one enrolment.
pub async fn find(
    conn: &mut PgConnection,
    enrolment: EnrolmentId,
) -> sqlx::Result<Option<Progress>> {
    Ok(progress_of(conn, &[enrolment.0]).await?.pop())
}

/// The criteria of an enrolment with their stored statuses, in criterion order.
pub async fn criteria(
    conn: &mut PgConnection,
    enrolment: EnrolmentId,
) -> sqlx::Result<Vec<CriterionProgress>> {
    sqlx::query_as!(
        CriterionProgress,
        r#"select c.criterion_id, c.kind as "kind: CriterionKind", c.code, c.text,
                  coalesce(s.status, 'not_started') as "status!: CriterionStatus"
             from enrolment en
             join cohort co using (cohort_id)
             join criterion c on c.standard_id = co.standard_id
             left join enrolment_criterion_status s
                    on s.enrolment_id = en.enrolment_id and s.criterion_id = c.criterion_id
            where en.enrolment_id = $1
            order by c.kind, c.position"#,
        enrolment.0
    )
    .fetch_all(conn)
    .await
}

/// Enrolment ids after `after` (all from the start when `None`), `limit` of them in id order.
pub async fn enrolment_ids_after(
    conn: &mut PgConnection,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        "select enrolment_id from enrolment where $1::uuid is null or enrolment_id > $1
          order by enrolment_id limit $2",
        after,
        limit
    )
    .fetch_all(conn)
    .await
}

/// The version of the status rule the stored rows were worked out by.
pub async fn rule_version(conn: &mut PgConnection) -> sqlx::Result<i32> {
    sqlx::query_scalar!("select version from status_rule")
        .fetch_one(conn)
        .await
}

pub async fn set_rule_version(conn: &mut PgConnection, version: i32) -> sqlx::Result<()> {
    sqlx::query!("update status_rule set version = $1", version)
        .execute(conn)
        .await?;
    Ok(())
}

/// One process at a time brings the stored statuses up to date when it opens the database:
/// a session lock, released by [`unlock_upkeep`] or when the connection ends.
const UPKEEP_LOCK: i64 = 0x5747_A7E5;

pub async fn lock_upkeep(conn: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query!("select pg_advisory_lock($1)", UPKEEP_LOCK)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn unlock_upkeep(conn: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query_scalar!("select pg_advisory_unlock($1)", UPKEEP_LOCK)
        .fetch_one(conn)
        .await?;
    Ok(())
}

/// Enrolments that have no stored status yet (created before statuses were stored).
pub async fn without_stored_status(conn: &mut PgConnection) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        "select e.enrolment_id from enrolment e
          where not exists (select 1 from enrolment_progress p where p.enrolment_id = e.enrolment_id)
          order by e.enrolment_id"
    )
    .fetch_all(conn)
    .await
}

/// How many active enrolments of each cohort stand at each status.
#[derive(Debug, Clone)]
pub struct StatusCount {
    pub cohort_id: CohortId,
    pub status: EnrolmentStatus,
    pub count: i64,
}

pub async fn counts_by_cohort(conn: &mut PgConnection) -> sqlx::Result<Vec<StatusCount>> {
    sqlx::query_as!(
        StatusCount,
        r#"select cohort_id, status as "status: EnrolmentStatus", sum(enrolments)::bigint as "count!"
             from enrolment_count
            where not withdrawn
            group by cohort_id, status"#
    )
    .fetch_all(conn)
    .await
}
