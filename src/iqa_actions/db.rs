//! Queries of the IQA's actions and the assessor's answers.

use std::collections::HashMap;

use sqlx::PgConnection;
use time::OffsetDateTime;

use super::{Answer, Disagreement, IqaAction};
use crate::identity::UserId;
use crate::ids::{EnrolmentId, IqaActionId, ReviewId, SignOffId};

/// Stores the actions of review `review`, in the IQA's order.
pub async fn insert(
    conn: &mut PgConnection,
    review: ReviewId,
    texts: &[String],
) -> sqlx::Result<()> {
    sqlx::query!(
        "insert into iqa_action (review_id, position, text)
         select $1, t.n, t.text from unnest($2::text[]) with ordinality as t(text, n)",
        review.0,
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
            answer: match (row.answer, row.answered_at, row.answered_by) {
                (Some(text), Some(at), Some(by)) => Some(Answer {
                    text,
                    assessor_name: by,
                    answered_at: at,
                }),
                _ => None,
            },
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

/// An action with what answering it needs to know: its enrolment, whether its disagreement is
/// on the enrolment's newest sign-off, and whether it has an answer.
pub struct ActionTarget {
    pub enrolment_id: EnrolmentId,
    pub position: i32,
    pub text: String,
    pub on_newest_sign_off: bool,
    pub answered: bool,
}

pub async fn find_target(
    conn: &mut PgConnection,
    action: IqaActionId,
) -> sqlx::Result<Option<ActionTarget>> {
    sqlx::query_as!(
        ActionTarget,
        r#"select s.enrolment_id as "enrolment_id: EnrolmentId", a.position, a.text,
                  exists (select 1 from latest_sign_off ls where ls.sign_off_id = s.sign_off_id) as "on_newest_sign_off!",
                  exists (select 1 from iqa_action_answer ans where ans.iqa_action_id = a.iqa_action_id) as "answered!"
             from iqa_action a
             join review r using (review_id)
             join sign_off s using (sign_off_id)
            where a.iqa_action_id = $1"#,
        action.0
    )
    .fetch_optional(conn)
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
