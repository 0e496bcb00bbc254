//! The competency status rule, computed here and nowhere else.
//!
//! Per criterion of an enrolment, over the claims of the *current* submitted version of each
//! evidence item (superseded versions and drafts do not count):
//! - `not_started`: no claim;
//! - `met`: the latest judgement of at least one claim is met (met wins);
//! - `awaiting`: some claim has no judgement yet;
//! - `not_met`: every claim is judged and none is met.
//!
//! Per enrolment: `not_started` (nothing submitted), `in_progress`, `ready_for_sign_off` (every
//! criterion met), `competent` (signed off), `verified` (signed off and countersigned).

use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::standards::model::CriterionKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CriterionStatus {
    NotStarted,
    Awaiting,
    Met,
    NotMet,
}

impl CriterionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotStarted => "not_started",
            Self::Awaiting => "awaiting",
            Self::Met => "met",
            Self::NotMet => "not_met",
        }
    }

    /// The status in words, for pages.
    pub fn label(self) -> &'static str {
        match self {
            Self::NotStarted => "Not started",
            Self::Awaiting => "Awaiting assessment",
            Self::Met => "Met",
            Self::NotMet => "Not met",
        }
    }
}

/// The latest judgement of one claim, if it has one: `Some(true)` met, `Some(false)` not met.
pub type ClaimJudgement = Option<bool>;

/// The status of a criterion from the judgements of the claims on it.
pub fn criterion_status(claims: &[ClaimJudgement]) -> CriterionStatus {
    if claims.is_empty() {
        CriterionStatus::NotStarted
    } else if claims.contains(&Some(true)) {
        CriterionStatus::Met
    } else if claims.contains(&None) {
        CriterionStatus::Awaiting
    } else {
        CriterionStatus::NotMet
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EnrolmentStatus {
    NotStarted,
    InProgress,
    ReadyForSignOff,
    Competent,
    Verified,
    /// Withdrawn before sign-off; its records stay.
    Withdrawn,
}

impl EnrolmentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotStarted => "not_started",
            Self::InProgress => "in_progress",
            Self::ReadyForSignOff => "ready_for_sign_off",
            Self::Competent => "competent",
            Self::Verified => "verified",
            Self::Withdrawn => "withdrawn",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::NotStarted => "Not started",
            Self::InProgress => "In progress",
            Self::ReadyForSignOff => "Ready for sign-off",
            Self::Competent => "Competent",
            Self::Verified => "Verified",
            Self::Withdrawn => "Withdrawn",
        }
    }
}

/// Where the sign-off of an enrolment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignOffState {
    None,
    SignedOff,
    Countersigned,
}

/// The status of an enrolment from its criteria, whether anything was submitted, and its
/// sign-off.
pub fn enrolment_status(
    criteria: &[CriterionStatus],
    anything_submitted: bool,
    sign_off: SignOffState,
    withdrawn: bool,
) -> EnrolmentStatus {
    match sign_off {
        SignOffState::Countersigned => EnrolmentStatus::Verified,
        SignOffState::SignedOff => EnrolmentStatus::Competent,
        SignOffState::None if withdrawn => EnrolmentStatus::Withdrawn,
        SignOffState::None if !anything_submitted => EnrolmentStatus::NotStarted,
        SignOffState::None
            if !criteria.is_empty() && criteria.iter().all(|c| *c == CriterionStatus::Met) =>
        {
            EnrolmentStatus::ReadyForSignOff
        }
        SignOffState::None => EnrolmentStatus::InProgress,
    }
}

/// One criterion of an enrolment with its status.
#[derive(Debug, Clone)]
pub struct CriterionProgress {
    pub criterion_id: Uuid,
    pub kind: CriterionKind,
    pub code: String,
    pub text: String,
    pub status: CriterionStatus,
}

/// Everything the status of one enrolment rests on.
#[derive(Debug, Clone)]
pub struct Progress {
    pub criteria: Vec<CriterionProgress>,
    pub anything_submitted: bool,
    pub status: EnrolmentStatus,
    pub sign_off: SignOffState,
    pub withdrawn: bool,
}

impl Progress {
    /// How many criteria of `kind` are met, and how many there are.
    pub fn met_of(&self, kind: CriterionKind) -> (usize, usize) {
        let of_kind = self.criteria.iter().filter(|c| c.kind == kind);
        let total = of_kind.clone().count();
        (
            of_kind.filter(|c| c.status == CriterionStatus::Met).count(),
            total,
        )
    }

    pub fn count(&self, status: CriterionStatus) -> usize {
        self.criteria.iter().filter(|c| c.status == status).count()
    }
}

/// The progress of one enrolment, in one query.
pub async fn progress(conn: &mut PgConnection, enrolment_id: Uuid) -> sqlx::Result<Progress> {
    let mut all = progress_of_many(conn, &[enrolment_id]).await?;
    Ok(all.remove(&enrolment_id).unwrap_or(Progress {
        criteria: Vec::new(),
        anything_submitted: false,
        status: EnrolmentStatus::NotStarted,
        sign_off: SignOffState::None,
        withdrawn: false,
    }))
}

/// The progress of many enrolments (a caseload, a whole cohort), in one query.
pub async fn progress_of_many(
    conn: &mut PgConnection,
    enrolments: &[Uuid],
) -> sqlx::Result<std::collections::HashMap<Uuid, Progress>> {
    let rows = sqlx::query!(
        r#"
        with current_version as (
            select distinct on (e.item_id) e.evidence_id, e.enrolment_id
              from evidence e
             where e.enrolment_id = any($1) and e.state = 'submitted'
             order by e.item_id, e.version desc
        ),
        claim as (
            select cv.enrolment_id, cl.criterion_id,
                   (select j.met from judgement j
                     where j.evidence_id = cl.evidence_id and j.criterion_id = cl.criterion_id
                     order by j.created_at desc, j.judgement_id desc limit 1) as latest_met
              from evidence_claim cl
              join current_version cv using (evidence_id)
        ),
        submitted as (
            select enrolment_id, count(*) as n from current_version group by enrolment_id
        ),
        standing as (
            select distinct on (so.enrolment_id) so.enrolment_id,
                   case r.decision when 'agree' then 'countersigned' when 'disagree' then 'none' else 'signed_off' end
                       as state
              from sign_off so left join review r using (sign_off_id)
             where so.enrolment_id = any($1)
             order by so.enrolment_id, so.sequence desc
        )
        select en.enrolment_id, c.criterion_id, c.kind as "kind: CriterionKind", c.code, c.text,
               count(cl.criterion_id) filter (where cl.latest_met) as "met!",
               count(cl.criterion_id) filter (where not cl.latest_met) as "not_met!",
               count(cl.criterion_id) filter (where cl.latest_met is null) as "unjudged!",
               coalesce(max(s.n), 0) as "submitted!",
               bool_or(en.withdrawn_at is not null) as "withdrawn!",
               max(st.state) as sign_off
          from enrolment en
          join cohort co using (cohort_id)
          join criterion c on c.standard_id = co.standard_id
          left join claim cl on cl.enrolment_id = en.enrolment_id and cl.criterion_id = c.criterion_id
          left join submitted s on s.enrolment_id = en.enrolment_id
          left join standing st on st.enrolment_id = en.enrolment_id
         where en.enrolment_id = any($1)
         group by en.enrolment_id, c.criterion_id
         order by en.enrolment_id, c.kind, c.position
        "#,
        enrolments
    )
    .fetch_all(conn)
    .await?;
    let count = |n: i64| usize::try_from(n).unwrap_or(0);
    let mut all: std::collections::HashMap<Uuid, Progress> = std::collections::HashMap::new();
    for r in rows {
        let claims: Vec<ClaimJudgement> = std::iter::repeat_n(Some(true), count(r.met))
            .chain(std::iter::repeat_n(Some(false), count(r.not_met)))
            .chain(std::iter::repeat_n(None, count(r.unjudged)))
            .collect();
        let progress = all.entry(r.enrolment_id).or_insert_with(|| Progress {
            criteria: Vec::new(),
            anything_submitted: r.submitted > 0,
            withdrawn: r.withdrawn,
            status: EnrolmentStatus::NotStarted,
            sign_off: match r.sign_off.as_deref() {
                Some("signed_off") => SignOffState::SignedOff,
                Some("countersigned") => SignOffState::Countersigned,
                _ => SignOffState::None,
            },
        });
        progress.criteria.push(CriterionProgress {
            criterion_id: r.criterion_id,
            kind: r.kind,
            code: r.code,
            text: r.text,
            status: criterion_status(&claims),
        });
    }
    for progress in all.values_mut() {
        let statuses: Vec<CriterionStatus> = progress.criteria.iter().map(|c| c.status).collect();
        progress.status = enrolment_status(
            &statuses,
            progress.anything_submitted,
            progress.sign_off,
            progress.withdrawn,
        );
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use CriterionStatus::{Awaiting, Met, NotMet, NotStarted};

    #[test]
    fn a_criterion_nobody_claims_is_not_started() {
        assert_eq!(criterion_status(&[]), NotStarted);
    }

    #[test]
    fn a_claim_without_a_judgement_awaits_assessment() {
        assert_eq!(criterion_status(&[None]), Awaiting);
        assert_eq!(criterion_status(&[Some(false), None]), Awaiting);
    }

    #[test]
    fn one_met_claim_of_two_makes_it_met() {
        assert_eq!(criterion_status(&[Some(false), Some(true)]), Met);
        assert_eq!(
            criterion_status(&[None, Some(true)]),
            Met,
            "met wins over awaiting"
        );
    }

    #[test]
    fn every_claim_judged_and_none_met_is_not_met() {
        assert_eq!(criterion_status(&[Some(false)]), NotMet);
        assert_eq!(criterion_status(&[Some(false), Some(false)]), NotMet);
    }

    #[test]
    fn an_enrolment_moves_from_not_started_to_verified() {
        assert_eq!(
            enrolment_status(&[NotStarted, NotStarted], false, SignOffState::None, false),
            EnrolmentStatus::NotStarted
        );
        assert_eq!(
            enrolment_status(&[Awaiting, NotStarted], true, SignOffState::None, false),
            EnrolmentStatus::InProgress
        );
        assert_eq!(
            enrolment_status(&[Met, NotMet], true, SignOffState::None, false),
            EnrolmentStatus::InProgress
        );
        assert_eq!(
            enrolment_status(&[Met, Met], true, SignOffState::None, false),
            EnrolmentStatus::ReadyForSignOff
        );
        assert_eq!(
            enrolment_status(&[Met, Met], true, SignOffState::SignedOff, false),
            EnrolmentStatus::Competent
        );
        assert_eq!(
            enrolment_status(&[Met, Met], true, SignOffState::Countersigned, false),
            EnrolmentStatus::Verified
        );
    }

    #[test]
    fn a_withdrawn_enrolment_is_withdrawn_unless_already_signed_off() {
        assert_eq!(
            enrolment_status(&[Met, Awaiting], true, SignOffState::None, true),
            EnrolmentStatus::Withdrawn
        );
        assert_eq!(
            enrolment_status(&[Met, Met], true, SignOffState::None, true),
            EnrolmentStatus::Withdrawn
        );
        assert_eq!(
            enrolment_status(&[Met, Met], true, SignOffState::SignedOff, true),
            EnrolmentStatus::Competent
        );
    }
}
