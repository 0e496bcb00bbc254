//! Queries of the IQA's actions and the assessor's answers.

use std::collections::HashMap;

use sqlx::PgConnection;
use time::OffsetDateTime;

use super::{Answer, Disagreement, IqaAction, OpenSample, Sample};
use crate::identity::UserId;
use crate::ids::{EnrolmentId, EvidenceId, IqaActionId, ReviewId, SampleId, SignOffId};

/// An action's answer from its columns, all present once it is answered.
fn answer_of(
    text: Option<String>,
    at: Option<OffsetDateTime>,
    by: Option<String>,
) -> Option<Answer> {
    match (text, at, by) {
        (Some(text), Some(answered_at), Some(assessor_name)) => Some(Answer {
            text,
            assessor_name,
            answered_at,
        }),
        _ => None,
    }
}

/// What an IQA disagreed with: a sign-off's review or a sample of evidence.
#[derive(Debug, Clone, Copy)]
pub enum ActionsOf {
    Review(ReviewId),
    Sample(SampleId),
}

/// Stores the actions of a disagreement, in the IQA's order.
pub async fn insert(conn: &mut PgConnection, of: ActionsOf, texts: &[String]) -> sqlx::Result<()> {
    let (review, sample) = match of {
        ActionsOf::Review(id) => (Some(id.0), None),
        ActionsOf::Sample(id) => (None, Some(id.0)),
    };
    sqlx::query!(
        "insert into iqa_action (review_id, evidence_sample_id, position, text)
         select $1, $2, t.n, t.text from unnest($3::text[]) with ordinality as t(text, n)",
        review,
        sample,
        texts
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The disagreements on these sign-offs, with their actions and answers, by sign-off.
pub async fn disagreements_on(
    conn: &mut PgConnection,
    sign_offs: &[SignOffId],
) -> sqlx::Result<HashMap<SignOffId, Disagreement>> {
    let ids: Vec<uuid::Uuid> = sign_offs.iter().map(|s| s.0).collect();
    let rows = sqlx::query!(
        r#"select r.sign_off_id as "sign_off_id: SignOffId", r.review_id as "review_id: ReviewId",
                  iqa.display_name as iqa_name, r.reviewed_at,
                  a.iqa_action_id as "action_id: IqaActionId", a.position, a.text,
                  ans.answer as "answer?", ans.answered_at as "answered_at?", who.display_name as "answered_by?"
             from review r
             join app_user iqa on iqa.user_id = r.iqa_id
             join iqa_action a using (review_id)
             left join iqa_action_answer ans using (iqa_action_id)
             left join app_user who on who.user_id = ans.assessor_id
            where r.sign_off_id = any($1) and r.decision = 'disagree'
            order by r.sign_off_id, a.position"#,
        &ids
    )
    .fetch_all(conn)
    .await?;
    let mut found: HashMap<SignOffId, Disagreement> = HashMap::new();
    for row in rows {
        let disagreement = found
            .entry(row.sign_off_id)
            .or_insert_with(|| Disagreement {
                review_id: row.review_id,
                sign_off_id: row.sign_off_id,
                iqa_name: row.iqa_name.clone(),
                reviewed_at: row.reviewed_at,
                actions: Vec::new(),
            });
        disagreement.actions.push(IqaAction {
            id: row.action_id,
            position: row.position,
            text: row.text,
            answer: answer_of(row.answer, row.answered_at, row.answered_by),
        });
    }
    Ok(found)
}

/// The newest sign-off of an enrolment, if an IQA disagreed with it.
pub async fn disagreed_sign_off(
    conn: &mut PgConnection,
    enrolment: EnrolmentId,
) -> sqlx::Result<Option<SignOffId>> {
    sqlx::query_scalar!(
        r#"select sign_off_id as "id!: SignOffId" from latest_sign_off
            where enrolment_id = $1 and decision = 'disagree'"#,
        enrolment.0
    )
    .fetch_optional(conn)
    .await
}

/// For each of these sign-offs, the sign-off of the same enrolment just before it, if there is
/// one: the one whose disagreement the assessor answered before signing again.
pub async fn previous_sign_offs(
    conn: &mut PgConnection,
    sign_offs: &[SignOffId],
) -> sqlx::Result<HashMap<SignOffId, SignOffId>> {
    let ids: Vec<uuid::Uuid> = sign_offs.iter().map(|s| s.0).collect();
    let rows = sqlx::query!(
        r#"select s.sign_off_id as "sign_off_id!: SignOffId", before.sign_off_id as "before!: SignOffId"
             from sign_off s
             cross join lateral (select b.sign_off_id from sign_off b
                                  where b.enrolment_id = s.enrolment_id and b.sequence < s.sequence
                                  order by b.sequence desc limit 1) before
            where s.sign_off_id = any($1)"#,
        &ids
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.sign_off_id, r.before))
        .collect())
}

/// An action with what answering it needs to know: its enrolment, whether it still waits for
/// an answer (a sign-off's while that sign-off is the enrolment's newest; a sample's always),
/// whether it has one, and the evidence sampled when it is a sample's.
pub struct ActionTarget {
    pub enrolment_id: EnrolmentId,
    pub position: i32,
    pub text: String,
    pub open: bool,
    pub answered: bool,
    pub sampled_evidence: Option<EvidenceId>,
}

pub async fn find_target(
    conn: &mut PgConnection,
    action: IqaActionId,
) -> sqlx::Result<Option<ActionTarget>> {
    sqlx::query_as!(
        ActionTarget,
        r#"select coalesce(s.enrolment_id, ev.enrolment_id) as "enrolment_id!: EnrolmentId", a.position, a.text,
                  (a.evidence_sample_id is not null
                   or exists (select 1 from latest_sign_off ls where ls.sign_off_id = s.sign_off_id)) as "open!",
                  exists (select 1 from iqa_action_answer ans where ans.iqa_action_id = a.iqa_action_id) as "answered!",
                  es.evidence_id as "sampled_evidence: EvidenceId"
             from iqa_action a
             left join review r using (review_id)
             left join sign_off s using (sign_off_id)
             left join evidence_sample es using (evidence_sample_id)
             left join evidence ev on ev.evidence_id = es.evidence_id
            where a.iqa_action_id = $1"#,
        action.0
    )
    .fetch_optional(conn)
    .await
}

/// The evidence version to sample, with the people of its enrolment and how many judgements
/// it has; `None` unless it is submitted.
pub struct SampleTarget {
    pub enrolment_id: EnrolmentId,
    pub candidate_id: UserId,
    pub assessor_id: Option<UserId>,
    pub iqa_id: Option<UserId>,
    pub withdrawn: bool,
    pub judgements: i64,
}

pub async fn sample_target(
    conn: &mut PgConnection,
    evidence: EvidenceId,
) -> sqlx::Result<Option<SampleTarget>> {
    sqlx::query_as!(
        SampleTarget,
        r#"select en.enrolment_id as "enrolment_id: EnrolmentId", en.candidate_id as "candidate_id: UserId",
                  en.assessor_id as "assessor_id: UserId", en.iqa_id as "iqa_id: UserId",
                  en.withdrawn_at is not null as "withdrawn!",
                  (select count(*) from judgement j where j.evidence_id = ev.evidence_id) as "judgements!"
             from evidence ev join enrolment en using (enrolment_id)
            where ev.evidence_id = $1 and ev.state = 'submitted'"#,
        evidence.0
    )
    .fetch_optional(conn)
    .await
}

pub async fn insert_sample(
    conn: &mut PgConnection,
    evidence: EvidenceId,
    iqa: UserId,
    assessor: UserId,
    agreed: bool,
    comment: &str,
    at: OffsetDateTime,
) -> sqlx::Result<SampleId> {
    sqlx::query_scalar!(
        r#"insert into evidence_sample (evidence_id, iqa_id, assessor_id, decision, comment, sampled_at)
           values ($1, $2, $3, case when $4 then 'agree' else 'disagree' end::review_decision, $5, $6)
           returning evidence_sample_id as "id: SampleId""#,
        evidence.0,
        iqa.0,
        assessor.0,
        agreed,
        comment,
        at
    )
    .fetch_one(conn)
    .await
}

/// Whose samples to read.
#[derive(Debug, Clone, Copy)]
pub enum SampleScope {
    /// Of every version of this version's item.
    ItemOf(EvidenceId),
    /// Of all of an enrolment's evidence.
    Enrolment(EnrolmentId),
}

/// The samples of `scope`, oldest first, with their actions and answers.
pub async fn samples(conn: &mut PgConnection, scope: SampleScope) -> sqlx::Result<Vec<Sample>> {
    let (item_of, enrolment) = match scope {
        SampleScope::ItemOf(id) => (Some(id.0), None),
        SampleScope::Enrolment(id) => (None, Some(id.0)),
    };
    let rows = sqlx::query!(
        r#"select es.evidence_sample_id as "id: SampleId", es.evidence_id as "evidence_id: EvidenceId",
                  iqa.display_name as iqa_name, es.decision = 'agree' as "agreed!", es.comment, es.sampled_at,
                  a.iqa_action_id as "action_id?: IqaActionId", a.position as "position?", a.text as "text?",
                  ans.answer as "answer?", ans.answered_at as "answered_at?", who.display_name as "answered_by?"
             from evidence_sample es
             join evidence ev on ev.evidence_id = es.evidence_id
             join app_user iqa on iqa.user_id = es.iqa_id
             left join iqa_action a on a.evidence_sample_id = es.evidence_sample_id
             left join iqa_action_answer ans on ans.iqa_action_id = a.iqa_action_id
             left join app_user who on who.user_id = ans.assessor_id
            where ($1::uuid is null or ev.item_id = (select item_id from evidence where evidence_id = $1))
              and ($2::uuid is null or ev.enrolment_id = $2)
            order by es.sampled_at, es.evidence_sample_id, a.position"#,
        item_of,
        enrolment
    )
    .fetch_all(conn)
    .await?;
    let mut samples: Vec<Sample> = Vec::new();
    for row in rows {
        if samples.last().is_none_or(|s| s.id != row.id) {
            samples.push(Sample {
                id: row.id,
                evidence_id: row.evidence_id,
                iqa_name: row.iqa_name.clone(),
                agreed: row.agreed,
                comment: row.comment.clone(),
                sampled_at: row.sampled_at,
                actions: Vec::new(),
            });
        }
        let (Some(id), Some(position), Some(text)) = (row.action_id, row.position, row.text) else {
            continue;
        };
        let answer = answer_of(row.answer, row.answered_at, row.answered_by);
        if let Some(sample) = samples.last_mut() {
            sample.actions.push(IqaAction {
                id,
                position,
                text,
                answer,
            });
        }
    }
    Ok(samples)
}

/// How many actions on the enrolment's sampled evidence wait for an answer.
pub async fn unanswered_on_samples(
    conn: &mut PgConnection,
    enrolment: EnrolmentId,
) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"select count(*) as "n!"
             from iqa_action a
             join evidence_sample es using (evidence_sample_id)
             join evidence ev on ev.evidence_id = es.evidence_id
            where ev.enrolment_id = $1
              and not exists (select 1 from iqa_action_answer ans where ans.iqa_action_id = a.iqa_action_id)"#,
        enrolment.0
    )
    .fetch_one(conn)
    .await
}

/// Stores the answer to an action; `false` when it has one already.
pub async fn insert_answer(
    conn: &mut PgConnection,
    action: IqaActionId,
    assessor: UserId,
    answer: &str,
    at: OffsetDateTime,
) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "insert into iqa_action_answer (iqa_action_id, assessor_id, answer, answered_at)
         values ($1, $2, $3, $4) on conflict (iqa_action_id) do nothing",
        action.0,
        assessor.0,
        answer,
        at
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Sampled evidence of an enrolment whose actions wait for an answer, with how many wait.
pub async fn open_sample_actions(
    conn: &mut PgConnection,
    enrolment: EnrolmentId,
) -> sqlx::Result<Vec<OpenSample>> {
    sqlx::query_as!(
        OpenSample,
        r#"select ev.evidence_id as "evidence_id: EvidenceId", ev.title, count(*) as "waiting!"
             from iqa_action a
             join evidence_sample es using (evidence_sample_id)
             join evidence ev on ev.evidence_id = es.evidence_id
            where ev.enrolment_id = $1
              and not exists (select 1 from iqa_action_answer ans where ans.iqa_action_id = a.iqa_action_id)
            group by ev.evidence_id, ev.title
            order by min(es.sampled_at)"#,
        enrolment.0
    )
    .fetch_all(conn)
    .await
}
