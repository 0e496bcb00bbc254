//! Queries of the stored competency status: reading the rule's inputs, rewriting the stored
//! rows, and reading them back. The rule itself is [`Sources::evaluate`].

use std::collections::HashMap;

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::caseload::CaseRow;
use super::status::{
    ClaimSource, CriterionProgress, CriterionSource, CriterionState, CriterionStatus,
    EnrolmentState, EnrolmentStatus, SignOffState, Sources,
};
use crate::standards::model::CriterionKind;

/// Locks the stored status of an enrolment until the transaction ends: two changes of one
/// enrolment then recompute one after the other, the second seeing the first. Take it before
/// the audit chain's lock (so before [`crate::audit::record`]).
pub async fn lock(conn: &mut PgConnection, enrolment: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "select enrolment_id from enrolment_progress where enrolment_id = $1 for no key update",
        enrolment
    )
    .fetch_optional(conn)
    .await?;
    Ok(())
}

/// Recomputes the status of one enrolment from its records and stores it, under its lock.
pub async fn refresh(conn: &mut PgConnection, enrolment: Uuid) -> sqlx::Result<EnrolmentState> {
    let mut states = refresh_many(conn, &[enrolment]).await?;
    Ok(states.pop().unwrap_or_else(|| unreachable_state(enrolment)))
}

/// An enrolment that vanished between its change and its refresh cannot happen inside one
/// transaction; a state that says nothing is the harmless answer.
fn unreachable_state(enrolment: Uuid) -> EnrolmentState {
    EnrolmentState {
        enrolment_id: enrolment,
        cohort_id: Uuid::nil(),
        assessor_id: None,
        withdrawn: false,
        candidate_sort_name: String::new(),
        status: EnrolmentStatus::NotStarted,
        performance_met: 0,
        performance_total: 0,
        knowledge_met: 0,
        knowledge_total: 0,
        criteria_awaiting: 0,
        criteria_not_met: 0,
        claims_awaiting: 0,
        oldest_awaiting_at: None,
        next_evidence_id: None,
        last_activity_at: None,
        standing_sign_off_id: None,
        criteria_statuses: Vec::new(),
        criteria: Vec::new(),
    }
}

/// Recomputes and stores the status of many enrolments (an assignment of many, a bulk load),
/// locking them in one order so that two such changes cannot deadlock.
pub async fn refresh_many(
    conn: &mut PgConnection,
    enrolments: &[Uuid],
) -> sqlx::Result<Vec<EnrolmentState>> {
    let mut ids = enrolments.to_vec();
    ids.sort_unstable();
    ids.dedup();
    sqlx::query!(
        "select enrolment_id from enrolment_progress where enrolment_id = any($1)
          order by enrolment_id for no key update",
        &ids
    )
    .fetch_all(&mut *conn)
    .await?;
    let states: Vec<EnrolmentState> = sources(conn, &ids)
        .await?
        .iter()
        .map(Sources::evaluate)
        .collect();
    store(conn, &states).await?;
    Ok(states)
}

/// Recomputes the enrolments of a candidate, whose name orders caseloads and reports.
pub async fn refresh_for_candidate(conn: &mut PgConnection, candidate: Uuid) -> sqlx::Result<()> {
    let ids = sqlx::query_scalar!(
        "select enrolment_id from enrolment where candidate_id = $1",
        candidate
    )
    .fetch_all(&mut *conn)
    .await?;
    if !ids.is_empty() {
        refresh_many(conn, &ids).await?;
    }
    Ok(())
}

/// What the rule needs of each enrolment, read from its records.
pub async fn sources(conn: &mut PgConnection, enrolments: &[Uuid]) -> sqlx::Result<Vec<Sources>> {
    let heads = sqlx::query!(
        r#"select e.enrolment_id, e.cohort_id, e.assessor_id, e.withdrawn_at is not null as "withdrawn!",
                  lower(u.display_name) as "candidate_sort_name!",
                  exists (select 1 from evidence ev
                           where ev.enrolment_id = e.enrolment_id and ev.state = 'submitted') as "anything_submitted!",
                  ss.sign_off_id as "standing_sign_off_id?", ss.decision::text as "decision?",
                  greatest((select max(ev.submitted_at) from evidence ev where ev.enrolment_id = e.enrolment_id),
                           (select max(j.created_at) from judgement j join evidence ev using (evidence_id)
                             where ev.enrolment_id = e.enrolment_id)) as last_activity_at
             from enrolment e
             join app_user u on u.user_id = e.candidate_id
             left join standing_sign_off ss on ss.enrolment_id = e.enrolment_id
            where e.enrolment_id = any($1)
            order by e.enrolment_id"#,
        enrolments
    )
    .fetch_all(&mut *conn)
    .await?;
    let claims = sqlx::query!(
        r#"select e.enrolment_id, c.criterion_id, c.kind as "kind: CriterionKind",
                  cl.evidence_id as "evidence_id?", cl.submitted_at as "submitted_at?", lj.met as "met?"
             from enrolment e
             join cohort co using (cohort_id)
             join criterion c on c.standard_id = co.standard_id
             left join (select cv.enrolment_id, cv.submitted_at, ec.evidence_id, ec.criterion_id
                          from current_evidence cv join evidence_claim ec using (evidence_id)) cl
                    on cl.enrolment_id = e.enrolment_id and cl.criterion_id = c.criterion_id
             left join latest_judgement lj
                    on lj.evidence_id = cl.evidence_id and lj.criterion_id = cl.criterion_id
            where e.enrolment_id = any($1)
            order by e.enrolment_id, c.kind, c.position, cl.submitted_at, cl.evidence_id"#,
        enrolments
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut criteria: HashMap<Uuid, Vec<CriterionSource>> = HashMap::new();
    for row in claims {
        let list = criteria.entry(row.enrolment_id).or_default();
        if list
            .last()
            .is_none_or(|c| c.criterion_id != row.criterion_id)
        {
            list.push(CriterionSource {
                criterion_id: row.criterion_id,
                kind: row.kind,
                claims: Vec::new(),
            });
        }
        if let (Some(evidence_id), Some(submitted_at), Some(criterion)) =
            (row.evidence_id, row.submitted_at, list.last_mut())
        {
            criterion.claims.push(ClaimSource {
                evidence_id,
                submitted_at,
                judgement: row.met,
            });
        }
    }
    Ok(heads
        .into_iter()
        .map(|h| Sources {
            criteria: criteria.remove(&h.enrolment_id).unwrap_or_default(),
            enrolment_id: h.enrolment_id,
            cohort_id: h.cohort_id,
            assessor_id: h.assessor_id,
            candidate_sort_name: h.candidate_sort_name,
            withdrawn: h.withdrawn,
            anything_submitted: h.anything_submitted,
            sign_off: match (h.standing_sign_off_id, h.decision.as_deref()) {
                (None, _) => SignOffState::None,
                (Some(_), Some("agree")) => SignOffState::Countersigned,
                (Some(_), _) => SignOffState::SignedOff,
            },
            standing_sign_off_id: h.standing_sign_off_id,
            last_activity_at: h.last_activity_at,
        })
        .collect())
}

/// Writes the stored rows of these states, replacing what was there.
pub async fn store(conn: &mut PgConnection, states: &[EnrolmentState]) -> sqlx::Result<()> {
    if states.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&EnrolmentState) -> i32| states.iter().map(f).collect::<Vec<i32>>();
    let ids: Vec<Uuid> = states.iter().map(|s| s.enrolment_id).collect();
    sqlx::query!(
        r#"insert into enrolment_progress
               (enrolment_id, cohort_id, assessor_id, withdrawn, candidate_sort_name, status,
                performance_met, performance_total, knowledge_met, knowledge_total,
                criteria_awaiting, criteria_not_met, claims_awaiting, oldest_awaiting_at,
                next_evidence_id, last_activity_at, standing_sign_off_id, criteria_statuses, computed_at)
           select t.enrolment_id, t.cohort_id, t.assessor_id, t.withdrawn, t.candidate_sort_name,
                  t.status::enrolment_status, t.performance_met, t.performance_total, t.knowledge_met,
                  t.knowledge_total, t.criteria_awaiting, t.criteria_not_met, t.claims_awaiting,
                  t.oldest_awaiting_at, t.next_evidence_id, t.last_activity_at, t.standing_sign_off_id,
                  string_to_array(t.criteria_statuses, ',')::criterion_status[], clock_timestamp()
             from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::bool[], $5::text[], $6::text[],
                         $7::int[], $8::int[], $9::int[], $10::int[], $11::int[], $12::int[], $13::int[],
                         $14::timestamptz[], $15::uuid[], $16::timestamptz[], $17::uuid[], $18::text[])
                  as t(enrolment_id, cohort_id, assessor_id, withdrawn, candidate_sort_name, status,
                       performance_met, performance_total, knowledge_met, knowledge_total,
                       criteria_awaiting, criteria_not_met, claims_awaiting, oldest_awaiting_at,
                       next_evidence_id, last_activity_at, standing_sign_off_id, criteria_statuses)
           on conflict (enrolment_id) do update set
               cohort_id = excluded.cohort_id, assessor_id = excluded.assessor_id,
               withdrawn = excluded.withdrawn, candidate_sort_name = excluded.candidate_sort_name,
               status = excluded.status, performance_met = excluded.performance_met,
               performance_total = excluded.performance_total, knowledge_met = excluded.knowledge_met,
               knowledge_total = excluded.knowledge_total, criteria_awaiting = excluded.criteria_awaiting,
               criteria_not_met = excluded.criteria_not_met, claims_awaiting = excluded.claims_awaiting,
               oldest_awaiting_at = excluded.oldest_awaiting_at, next_evidence_id = excluded.next_evidence_id,
               last_activity_at = excluded.last_activity_at,
               standing_sign_off_id = excluded.standing_sign_off_id,
               criteria_statuses = excluded.criteria_statuses, computed_at = excluded.computed_at"#,
        &ids,
        &states.iter().map(|s| s.cohort_id).collect::<Vec<_>>(),
        &states.iter().map(|s| s.assessor_id).collect::<Vec<_>>() as &[Option<Uuid>],
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
        &states.iter().map(|s| s.oldest_awaiting_at).collect::<Vec<_>>() as &[Option<OffsetDateTime>],
        &states.iter().map(|s| s.next_evidence_id).collect::<Vec<_>>() as &[Option<Uuid>],
        &states.iter().map(|s| s.last_activity_at).collect::<Vec<_>>() as &[Option<OffsetDateTime>],
        &states.iter().map(|s| s.standing_sign_off_id).collect::<Vec<_>>() as &[Option<Uuid>],
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
    )
    .execute(&mut *conn)
    .await?;

    let criteria: Vec<(Uuid, &CriterionState)> = states
        .iter()
        .flat_map(|s| s.criteria.iter().map(move |c| (s.enrolment_id, c)))
        .collect();
    let pick =
        |f: fn(&CriterionState) -> i32| criteria.iter().map(|(_, c)| f(c)).collect::<Vec<i32>>();
    // A standard's criteria never change, so the rows only ever need updating; the delete
    // covers an enrolment whose rows were written by an older rule.
    sqlx::query!(
        "delete from enrolment_criterion_status s
          where s.enrolment_id = any($1)
            and not (s.criterion_id = any($2))",
        &ids,
        &criteria
            .iter()
            .map(|(_, c)| c.criterion_id)
            .collect::<Vec<_>>()
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        r#"insert into enrolment_criterion_status
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
        r#"select enrolment_id, cohort_id, assessor_id, withdrawn, candidate_sort_name,
                  status as "status: EnrolmentStatus", performance_met, performance_total,
                  knowledge_met, knowledge_total, criteria_awaiting, criteria_not_met, claims_awaiting,
                  oldest_awaiting_at, next_evidence_id, last_activity_at, standing_sign_off_id,
                  criteria_statuses as "criteria_statuses: Vec<CriterionStatus>"
             from enrolment_progress
            where enrolment_id = any($1)
            order by enrolment_id"#,
        enrolments
    )
    .fetch_all(&mut *conn)
    .await?;
    let criteria = sqlx::query!(
        r#"select s.enrolment_id, s.criterion_id, s.status as "status: CriterionStatus",
                  s.claims_met, s.claims_not_met, s.claims_awaiting, s.oldest_awaiting_at
             from enrolment_criterion_status s join criterion c using (criterion_id)
            where s.enrolment_id = any($1)
            order by s.enrolment_id, c.kind, c.position"#,
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
            enrolment_id: r.enrolment_id,
            cohort_id: r.cohort_id,
            assessor_id: r.assessor_id,
            withdrawn: r.withdrawn,
            candidate_sort_name: r.candidate_sort_name,
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
            standing_sign_off_id: r.standing_sign_off_id,
            criteria_statuses: r.criteria_statuses,
        })
        .collect())
}

/// An enrolment's stored status and figures, as pages show them.
#[derive(Debug, Clone)]
pub struct Progress {
    pub enrolment_id: Uuid,
    pub status: EnrolmentStatus,
    pub performance_met: i32,
    pub performance_total: i32,
    pub knowledge_met: i32,
    pub knowledge_total: i32,
    pub criteria_awaiting: i32,
    pub criteria_not_met: i32,
    pub standing_sign_off_id: Option<Uuid>,
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
                  knowledge_met, knowledge_total, criteria_awaiting, criteria_not_met, standing_sign_off_id,
                  criteria_statuses as "criteria_statuses: Vec<CriterionStatus>"
             from enrolment_progress
            where enrolment_id = any($1)
            order by enrolment_id"#,
        enrolments
    )
    .fetch_all(conn)
    .await
}

/// The stored progress of one enrolment.
pub async fn find(conn: &mut PgConnection, enrolment: Uuid) -> sqlx::Result<Option<Progress>> {
    Ok(progress_of(conn, &[enrolment]).await?.pop())
}

/// The criteria of an enrolment with their stored statuses, in criterion order.
pub async fn criteria(
    conn: &mut PgConnection,
    enrolment: Uuid,
) -> sqlx::Result<Vec<CriterionProgress>> {
    sqlx::query_as!(
        CriterionProgress,
        r#"select c.criterion_id, c.kind as "kind: CriterionKind", c.code, c.text,
                  s.status as "status: CriterionStatus"
             from enrolment_criterion_status s join criterion c using (criterion_id)
            where s.enrolment_id = $1
            order by c.kind, c.position"#,
        enrolment
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
    pub cohort_id: Uuid,
    pub status: EnrolmentStatus,
    pub count: i64,
}

pub async fn counts_by_cohort(conn: &mut PgConnection) -> sqlx::Result<Vec<StatusCount>> {
    sqlx::query_as!(
        StatusCount,
        r#"select cohort_id, status as "status: EnrolmentStatus", count(*) as "count!"
             from enrolment_progress
            where not withdrawn
            group by cohort_id, status"#
    )
    .fetch_all(conn)
    .await
}

/// The active enrolments of an assessor's caseload in one cohort at one status.
#[derive(Debug, Clone)]
pub struct CaseloadGroup {
    pub cohort_id: Uuid,
    pub cohort_name: String,
    pub status: EnrolmentStatus,
    pub enrolments: i64,
    pub claims_awaiting: i64,
}

/// The assessor's caseload counted by cohort and status, cohorts by name.
pub async fn caseload_groups(
    conn: &mut PgConnection,
    assessor: Uuid,
) -> sqlx::Result<Vec<CaseloadGroup>> {
    sqlx::query_as!(
        CaseloadGroup,
        r#"select g.cohort_id as "cohort_id!", co.name as cohort_name, g.status as "status!: EnrolmentStatus",
                  g.enrolments as "enrolments!", g.claims_awaiting as "claims_awaiting!"
             from (select p.cohort_id, p.status, count(*) as enrolments, sum(p.claims_awaiting)::bigint as claims_awaiting
                     from enrolment_progress p
                    where p.assessor_id = $1 and not p.withdrawn
                    group by p.cohort_id, p.status) g
             join cohort co using (cohort_id)
            order by lower(co.name), co.cohort_id"#,
        assessor
    )
    .fetch_all(conn)
    .await
}

/// One page of the assessor's active enrolments, longest-waiting first, then by name.
pub async fn caseload_page(
    conn: &mut PgConnection,
    assessor: Uuid,
    cohort: Option<Uuid>,
    status: Option<EnrolmentStatus>,
    limit: usize,
    offset: usize,
) -> sqlx::Result<Vec<CaseRow>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let offset = i64::try_from(offset).unwrap_or(i64::MAX);
    // The page is picked from the index alone; the names and actions are joined to it after.
    sqlx::query_as!(
        CaseRow,
        r#"with page as (
               select p.enrolment_id, p.cohort_id, p.status, p.claims_awaiting, p.oldest_awaiting_at,
                      p.next_evidence_id, p.candidate_sort_name
                 from enrolment_progress p
                where p.assessor_id = $1 and not p.withdrawn
                  and ($2::uuid is null or p.cohort_id = $2)
                  and ($3::text is null or p.status = $3::text::enrolment_status)
                order by p.oldest_awaiting_at, p.candidate_sort_name, p.enrolment_id
                limit $4 offset $5
           )
           select pg.enrolment_id as "enrolment_id!", u.display_name as candidate_name,
                  pg.cohort_id as "cohort_id!", co.name as cohort_name,
                  pg.claims_awaiting::bigint as "awaiting!", pg.oldest_awaiting_at as oldest_waiting,
                  pg.next_evidence_id as next_evidence, pg.status as "status!: EnrolmentStatus",
                  (select ls.actions from latest_sign_off ls
                    where ls.enrolment_id = pg.enrolment_id and ls.decision = 'disagree') as iqa_actions
             from page pg
             join enrolment e using (enrolment_id)
             join app_user u on u.user_id = e.candidate_id
             join cohort co on co.cohort_id = pg.cohort_id
            order by pg.oldest_awaiting_at, pg.candidate_sort_name, pg.enrolment_id"#,
        assessor,
        cohort,
        status.map(EnrolmentStatus::as_str),
        limit,
        offset
    )
    .fetch_all(conn)
    .await
}
