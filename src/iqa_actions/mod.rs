//! The IQA's actions: when an internal quality assurer disagrees with a sign-off, or with the
//! judgements of a piece of evidence they sampled on the way (interim sampling), each thing the
//! assessor must do is an action of its own. The assessor answers each (what was done) before
//! signing the enrolment off (again); the candidate, the assessor and the IQA see the actions
//! and answers on the portfolio, the evidence, the sign-off page and the quality page.

pub mod db;

use serde_json::json;
use sqlx::PgConnection;
use time::OffsetDateTime;

use crate::audit::{self, Actor, NewAuditEvent};
use crate::cohorts::db as cohorts_db;
use crate::error::{AppError, AppResult};
use crate::forms::FormErrors;
use crate::identity::Viewer;
use crate::ids::{EnrolmentId, EvidenceId, IqaActionId, ReviewId, SampleId, SignOffId};

/// The longest action or answer kept.
pub const TEXT_MAX_CHARS: usize = 5_000;

/// The assessor's answer to an action.
#[derive(Debug, Clone)]
pub struct Answer {
    pub text: String,
    pub assessor_name: String,
    pub answered_at: OffsetDateTime,
}

/// One action of a disagreement, with its answer once given.
#[derive(Debug, Clone)]
pub struct IqaAction {
    pub id: IqaActionId,
    pub position: i32,
    pub text: String,
    pub answer: Option<Answer>,
}

/// An IQA's disagreement with a sign-off and its actions, in the IQA's order.
#[derive(Debug, Clone)]
pub struct Disagreement {
    pub review_id: ReviewId,
    pub sign_off_id: SignOffId,
    pub iqa_name: String,
    pub reviewed_at: OffsetDateTime,
    pub actions: Vec<IqaAction>,
}

impl Disagreement {
    /// How many actions wait for an answer.
    pub fn unanswered(&self) -> usize {
        self.actions.iter().filter(|a| a.answer.is_none()).count()
    }
}

/// An IQA's sample of a judged evidence version: agreement with its judgements, or a
/// disagreement with actions for the assessor.
#[derive(Debug, Clone)]
pub struct Sample {
    pub id: SampleId,
    pub evidence_id: EvidenceId,
    pub iqa_name: String,
    pub agreed: bool,
    pub comment: String,
    pub sampled_at: OffsetDateTime,
    pub actions: Vec<IqaAction>,
}

impl Sample {
    /// How many actions wait for an answer.
    pub fn unanswered(&self) -> usize {
        self.actions.iter().filter(|a| a.answer.is_none()).count()
    }
}

/// Sampled evidence whose actions wait for the assessor's answers.
#[derive(Debug, Clone)]
pub struct OpenSample {
    pub evidence_id: EvidenceId,
    pub title: String,
    pub waiting: i64,
}

/// What an IQA typed to sample a piece of evidence.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct SampleForm {
    /// `agree` or `disagree`.
    #[serde(default)]
    pub decision: String,
    #[serde(default)]
    pub comment: String,
    /// What the assessor must do, one a line; needed to disagree.
    #[serde(default)]
    pub actions: String,
    /// The form's one-time key (see `auth::submissions`).
    #[serde(default)]
    pub submission_key: String,
}

impl SampleForm {
    /// Whether the IQA agrees, or the form's problems.
    fn check(&self) -> Result<bool, FormErrors> {
        let mut errors = FormErrors::default();
        let agreed = match self.decision.as_str() {
            "agree" => Some(true),
            "disagree" => Some(false),
            _ => {
                errors.add("sample-decision", "Choose agree or disagree");
                None
            }
        };
        if agreed == Some(false) && split_actions(&self.actions).is_empty() {
            errors.add(
                "sample-actions",
                "Say what the assessor must do when you disagree: one action a line",
            );
        }
        if self.actions.chars().count() > TEXT_MAX_CHARS {
            errors.add("sample-actions", "Keep the actions under 5,000 characters");
        }
        if self.comment.trim().chars().count() > TEXT_MAX_CHARS {
            errors.add("sample-comment", "Keep the comment under 5,000 characters");
        }
        match agreed {
            Some(agreed) if errors.is_empty() => Ok(agreed),
            _ => Err(errors),
        }
    }
}

/// Records `who`'s sample of judged evidence version `evidence`, in the caller's transaction,
/// with its actions and audit event; or returns the form's problems (nothing written). Not
/// found unless `who` is the IQA of the enrolment (and neither its candidate nor its assessor)
/// and the version is submitted; conflict while nothing of it is judged.
pub async fn record_sample(
    conn: &mut PgConnection,
    who: Viewer<'_>,
    by: &Actor,
    evidence: EvidenceId,
    form: &SampleForm,
    now: OffsetDateTime,
) -> AppResult<Result<(), FormErrors>> {
    let target = db::sample_target(&mut *conn, evidence)
        .await?
        .filter(|t| t.iqa_id == Some(who.id) && t.candidate_id != who.id)
        .ok_or(AppError::NotFound)?;
    let Some(assessor) = target.assessor_id.filter(|a| *a != who.id) else {
        return Err(AppError::NotFound);
    };
    // Shared with judging and answering, exclusive for a sign-off: they take turns.
    cohorts_db::lock_for_assessment(&mut *conn, target.enrolment_id).await?;
    if target.withdrawn {
        return Err(AppError::Conflict(
            "This enrolment is withdrawn: its records are kept as they are.".into(),
        ));
    }
    if target.judgements == 0 {
        return Err(AppError::Conflict(
            "Nothing of this evidence is judged yet: sample it once the assessor has judged it."
                .into(),
        ));
    }
    let agreed = match form.check() {
        Ok(agreed) => agreed,
        Err(errors) => return Ok(Err(errors)),
    };
    let actions = if agreed {
        Vec::new()
    } else {
        split_actions(&form.actions)
    };
    let comment = form.comment.trim();
    let sample =
        db::insert_sample(&mut *conn, evidence, who.id, assessor, agreed, comment, now).await?;
    db::insert(&mut *conn, db::ActionsOf::Sample(sample), &actions).await?;
    audit::record(
        conn,
        NewAuditEvent {
            actor: by,
            action: if agreed {
                "evidence.sample_agreed"
            } else {
                "evidence.sample_disagreed"
            },
            entity_type: "evidence",
            entity_id: evidence.to_string(),
            detail: json!({
                "sample_id": sample,
                "enrolment_id": target.enrolment_id,
                "assessor_id": assessor,
                "comment": comment,
                "actions": actions,
            }),
        },
    )
    .await?;
    Ok(Ok(()))
}

/// The actions in an IQA's text: one a line, blank lines and surrounding spaces dropped.
pub fn split_actions(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The disagreement with the enrolment's newest sign-off, if an IQA disagreed with it: the
/// actions its assessor must answer before signing off again.
pub async fn open_disagreement(
    conn: &mut PgConnection,
    enrolment: EnrolmentId,
) -> sqlx::Result<Option<Disagreement>> {
    let Some(sign_off) = db::disagreed_sign_off(&mut *conn, enrolment).await? else {
        return Ok(None);
    };
    Ok(db::disagreements_on(conn, &[sign_off])
        .await?
        .remove(&sign_off))
}

/// Answers action `action` of enrolment `enrolment` as `who`, its assessor, in the caller's
/// transaction: stores the answer and its audit event, or returns the answer's problems
/// (nothing written). Not found unless the action is the enrolment's and `who` assesses it;
/// conflict once the action is answered or a newer sign-off has replaced its disagreement.
/// An action on sampled evidence stays open until it is answered; its evidence is returned.
pub async fn answer(
    conn: &mut PgConnection,
    who: Viewer<'_>,
    by: &Actor,
    enrolment: EnrolmentId,
    action: IqaActionId,
    text: &str,
    now: OffsetDateTime,
) -> AppResult<Result<Option<EvidenceId>, FormErrors>> {
    let assessed = cohorts_db::find_visible(&mut *conn, enrolment, who)
        .await?
        .filter(|e| e.assessed_by(who) && !e.is_candidate(who.id))
        .ok_or(AppError::NotFound)?;
    // Shared with judging, exclusive for a sign-off: an answer and a sign-off take turns.
    cohorts_db::lock_for_assessment(&mut *conn, assessed.id).await?;
    let target = db::find_target(&mut *conn, action)
        .await?
        .filter(|t| t.enrolment_id == enrolment)
        .ok_or(AppError::NotFound)?;
    if assessed.is_withdrawn() {
        return Err(AppError::Conflict(
            "This enrolment is withdrawn: its records are kept as they are.".into(),
        ));
    }
    if !target.open {
        return Err(AppError::Conflict(
            "The enrolment was signed off again since this action: it needs no answer now.".into(),
        ));
    }
    if target.answered {
        return Err(AppError::Conflict(
            "This action has been answered already.".into(),
        ));
    }
    let text = text.trim();
    let mut errors = FormErrors::default();
    if text.is_empty() {
        errors.add(
            format!("answer-{action}"),
            format!("Say what was done about action {}", target.position),
        );
    } else if text.chars().count() > TEXT_MAX_CHARS {
        errors.add(
            format!("answer-{action}"),
            "Keep the answer under 5,000 characters",
        );
    }
    if !errors.is_empty() {
        return Ok(Err(errors));
    }
    if !db::insert_answer(&mut *conn, action, who.id, text, now).await? {
        return Err(AppError::Conflict(
            "This action has been answered already.".into(),
        ));
    }
    audit::record(
        conn,
        NewAuditEvent {
            actor: by,
            action: "iqa_action.answered",
            entity_type: "enrolment",
            entity_id: enrolment.to_string(),
            detail: json!({
                "iqa_action_id": action,
                "position": target.position,
                "action": target.text,
                "answer": text,
                "sampled_evidence": target.sampled_evidence,
            }),
        },
    )
    .await?;
    Ok(Ok(target.sampled_evidence))
}

#[cfg(test)]
mod tests {
    use super::split_actions;

    #[test]
    fn each_line_that_is_not_blank_is_an_action() {
        assert_eq!(
            split_actions("  Re-check PC4 \r\n\r\nAsk for a witness\n  \n"),
            ["Re-check PC4", "Ask for a witness"]
        );
        assert!(split_actions(" \n\r\n").is_empty());
    }
}
