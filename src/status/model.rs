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
//!
//! The result is stored (`enrolment_progress`, `enrolment_criterion_status`) and rewritten by
//! [`crate::status::db::refresh`] in the transaction of every change that can move it:
//! readers read the stored rows, and `attest status verify` compares them with
//! [`Sources::evaluate`] over the records.

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::identity::UserId;
use crate::ids::{CohortId, EnrolmentId, EvidenceId, SignOffId};
use crate::standards::model::CriterionKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, sqlx::Type)]
#[sqlx(type_name = "criterion_status", rename_all = "snake_case")]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, sqlx::Type)]
#[sqlx(type_name = "enrolment_status", rename_all = "snake_case")]
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
    /// Every status, in the order an enrolment moves through them.
    pub const ALL: [Self; 6] = [
        Self::NotStarted,
        Self::InProgress,
        Self::ReadyForSignOff,
        Self::Competent,
        Self::Verified,
        Self::Withdrawn,
    ];

    /// The status named `text` as [`Self::as_str`] writes it (a filter's value).
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

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

/// One criterion of an enrolment with its status, for pages.
#[derive(Debug, Clone)]
pub struct CriterionProgress {
    pub criterion_id: Uuid,
    pub kind: CriterionKind,
    pub code: String,
    pub text: String,
    pub status: CriterionStatus,
}

/// One claim as the rule sees it: the submitted version making it, when that version was
/// submitted, whether a later version of its item superseded it, and the claim's latest
/// judgement.
#[derive(Debug, Clone)]
pub struct ClaimSource {
    pub evidence_id: EvidenceId,
    pub submitted_at: OffsetDateTime,
    pub superseded: bool,
    pub judgement: ClaimJudgement,
}

impl ClaimSource {
    /// Whether the claim counts towards its criterion. Met is kept: a claim of a superseded
    /// version counts while its latest judgement is met (until the assessor reverses it);
    /// otherwise only claims of current versions count.
    pub fn counts(&self) -> bool {
        !self.superseded || self.judgement == Some(true)
    }
}

/// A criterion of the enrolment's standard with the claims of current versions on it.
#[derive(Debug, Clone)]
pub struct CriterionSource {
    pub criterion_id: Uuid,
    pub kind: CriterionKind,
    pub claims: Vec<ClaimSource>,
}

/// Everything the status of one enrolment rests on, as read from its records.
#[derive(Debug, Clone)]
pub struct Sources {
    pub enrolment_id: EnrolmentId,
    pub cohort_id: CohortId,
    pub candidate_id: UserId,
    pub assessor_id: Option<UserId>,
    pub iqa_id: Option<UserId>,
    pub candidate_name: String,
    pub candidate_sort_name: String,
    pub withdrawn: bool,
    pub anything_submitted: bool,
    /// An IQA disagreed with the latest sign-off: their actions wait for the assessor.
    pub iqa_disagreed: bool,
    pub standing_sign_off: Option<StandingSignOff>,
    pub last_activity_at: Option<OffsetDateTime>,
    /// In criterion order.
    pub criteria: Vec<CriterionSource>,
}

/// The sign-off that stands, and its countersignature if the IQA agreed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandingSignOff {
    pub sign_off_id: SignOffId,
    pub signed_at: OffsetDateTime,
    pub signed_by: UserId,
    /// When and by whom it was countersigned.
    pub verified: Option<(OffsetDateTime, UserId)>,
}

/// The stored status of one criterion of an enrolment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CriterionState {
    pub criterion_id: Uuid,
    pub status: CriterionStatus,
    pub claims_met: i32,
    pub claims_not_met: i32,
    pub claims_awaiting: i32,
    pub oldest_awaiting_at: Option<OffsetDateTime>,
}

impl CriterionState {
    /// Nothing claimed on it yet. Such a criterion has no stored row: a missing row reads as
    /// this, so a new enrolment stores none.
    pub fn is_untouched(&self) -> bool {
        self.status == CriterionStatus::NotStarted
            && self.claims_met == 0
            && self.claims_not_met == 0
            && self.claims_awaiting == 0
            && self.oldest_awaiting_at.is_none()
    }
}

/// The stored status of one enrolment with the figures pages list and sort by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolmentState {
    pub enrolment_id: EnrolmentId,
    pub cohort_id: CohortId,
    pub candidate_id: UserId,
    pub assessor_id: Option<UserId>,
    pub iqa_id: Option<UserId>,
    pub withdrawn: bool,
    /// The candidate's name as pages show it, and as lists sort it.
    pub candidate_name: String,
    pub candidate_sort_name: String,
    pub iqa_disagreed: bool,
    pub status: EnrolmentStatus,
    pub performance_met: i32,
    pub performance_total: i32,
    pub knowledge_met: i32,
    pub knowledge_total: i32,
    pub criteria_awaiting: i32,
    pub criteria_not_met: i32,
    pub claims_awaiting: i32,
    pub oldest_awaiting_at: Option<OffsetDateTime>,
    pub next_evidence_id: Option<EvidenceId>,
    pub last_activity_at: Option<OffsetDateTime>,
    pub standing_sign_off: Option<StandingSignOff>,
    /// Each criterion's status, in criterion order, as kept with the enrolment's row.
    pub criteria_statuses: Vec<CriterionStatus>,
    /// In criterion order.
    pub criteria: Vec<CriterionState>,
}

/// Counts that fit the stored `integer` columns.
fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl Sources {
    /// Applies the rule: the status of every criterion and of the enrolment, and the figures
    /// derived from them.
    pub fn evaluate(&self) -> EnrolmentState {
        let mut criteria = Vec::with_capacity(self.criteria.len());
        // The oldest unjudged claim over all criteria: (submitted at, version).
        let mut next: Option<(OffsetDateTime, EvidenceId)> = None;
        for criterion in &self.criteria {
            let counted = criterion.claims.iter().filter(|c| c.counts());
            let judgements: Vec<ClaimJudgement> = counted.clone().map(|c| c.judgement).collect();
            let unjudged = counted.filter(|c| c.judgement.is_none());
            for claim in unjudged.clone() {
                let candidate = (claim.submitted_at, claim.evidence_id);
                if next.is_none_or(|n| candidate < n) {
                    next = Some(candidate);
                }
            }
            criteria.push(CriterionState {
                criterion_id: criterion.criterion_id,
                status: criterion_status(&judgements),
                claims_met: count(judgements.iter().filter(|j| **j == Some(true)).count()),
                claims_not_met: count(judgements.iter().filter(|j| **j == Some(false)).count()),
                claims_awaiting: count(unjudged.clone().count()),
                oldest_awaiting_at: unjudged.map(|c| c.submitted_at).min(),
            });
        }
        let statuses: Vec<CriterionStatus> = criteria.iter().map(|c| c.status).collect();
        let of = |kind: CriterionKind, met_only: bool| {
            count(
                self.criteria
                    .iter()
                    .zip(&statuses)
                    .filter(|(c, s)| c.kind == kind && (!met_only || **s == CriterionStatus::Met))
                    .count(),
            )
        };
        let with_status =
            |status: CriterionStatus| count(statuses.iter().filter(|s| **s == status).count());
        EnrolmentState {
            enrolment_id: self.enrolment_id,
            cohort_id: self.cohort_id,
            candidate_id: self.candidate_id,
            assessor_id: self.assessor_id,
            iqa_id: self.iqa_id,
            withdrawn: self.withdrawn,
            candidate_name: self.candidate_name.clone(),
            candidate_sort_name: self.candidate_sort_name.clone(),
            iqa_disagreed: self.iqa_disagreed,
            status: enrolment_status(
                &statuses,
                self.anything_submitted,
                match &self.standing_sign_off {
                    None => SignOffState::None,
                    Some(s) if s.verified.is_some() => SignOffState::Countersigned,
                    Some(_) => SignOffState::SignedOff,
                },
                self.withdrawn,
            ),
            performance_met: of(CriterionKind::Performance, true),
            performance_total: of(CriterionKind::Performance, false),
            knowledge_met: of(CriterionKind::Knowledge, true),
            knowledge_total: of(CriterionKind::Knowledge, false),
            criteria_awaiting: with_status(CriterionStatus::Awaiting),
            criteria_not_met: with_status(CriterionStatus::NotMet),
            claims_awaiting: criteria.iter().map(|c| c.claims_awaiting).sum(),
            oldest_awaiting_at: next.map(|(at, _)| at),
            next_evidence_id: next.map(|(_, id)| id),
            last_activity_at: self.last_activity_at,
            standing_sign_off: self.standing_sign_off.clone(),
            criteria_statuses: statuses,
            criteria,
        }
    }
}

impl EnrolmentState {
    /// Criteria met, of either kind.
    pub fn criteria_met(&self) -> i32 {
        self.performance_met + self.knowledge_met
    }

    /// Where this state differs from `other`, field by field: `(criterion or "", field,
    /// self's value, other's value)`.
    pub fn differences(&self, other: &Self) -> Vec<(String, &'static str, String, String)> {
        let mut out = Vec::new();
        let mut field = |criterion: String, name: &'static str, a: String, b: String| {
            if a != b {
                out.push((criterion, name, a, b));
            }
        };
        macro_rules! compare {
            ($($name:ident),*) => {
                $(field(String::new(), stringify!($name), format!("{:?}", self.$name), format!("{:?}", other.$name));)*
            };
        }
        compare!(
            cohort_id,
            candidate_id,
            assessor_id,
            iqa_id,
            withdrawn,
            candidate_name,
            candidate_sort_name,
            iqa_disagreed,
            status,
            performance_met,
            performance_total,
            knowledge_met,
            knowledge_total,
            criteria_awaiting,
            criteria_not_met,
            claims_awaiting,
            oldest_awaiting_at,
            next_evidence_id,
            last_activity_at,
            standing_sign_off,
            criteria_statuses
        );
        let mine: std::collections::BTreeMap<Uuid, &CriterionState> =
            self.criteria.iter().map(|c| (c.criterion_id, c)).collect();
        let theirs: std::collections::BTreeMap<Uuid, &CriterionState> =
            other.criteria.iter().map(|c| (c.criterion_id, c)).collect();
        let ids: std::collections::BTreeSet<Uuid> =
            mine.keys().chain(theirs.keys()).copied().collect();
        for id in ids {
            let show = |c: Option<&&CriterionState>| {
                c.map_or_else(
                    || "missing".to_owned(),
                    |c| {
                        format!(
                            "{} (met {}, not met {}, awaiting {}, oldest {:?})",
                            c.status.as_str(),
                            c.claims_met,
                            c.claims_not_met,
                            c.claims_awaiting,
                            c.oldest_awaiting_at
                        )
                    },
                )
            };
            field(
                id.to_string(),
                "criterion",
                show(mine.get(&id)),
                show(theirs.get(&id)),
            );
        }
        out
    }
}

/// The criteria met at the end of each week from the week of `from` to the week of `now`, from
/// a history of (when, criteria met) in time order: each week shows the last number of that week
/// or before it (0 before the history starts). At most `max_weeks`, the latest kept.
pub fn weekly_met(
    history: &[(OffsetDateTime, i32)],
    from: OffsetDateTime,
    now: OffsetDateTime,
    max_weeks: usize,
) -> Vec<(time::Date, i32)> {
    let week_start = |at: OffsetDateTime| {
        let date = at.date();
        date - time::Duration::days(i64::from(date.weekday().number_days_from_monday()))
    };
    let first = week_start(from.min(now));
    let last = week_start(now);
    let weeks = usize::try_from((last - first).whole_weeks()).unwrap_or(0) + 1;
    let skip = weeks.saturating_sub(max_weeks);
    (skip..weeks)
        .map(|n| {
            let start = first + time::Duration::weeks(i64::try_from(n).unwrap_or(0));
            let end = start + time::Duration::weeks(1);
            let met = history
                .iter()
                .take_while(|(at, _)| at.date() < end)
                .last()
                .map_or(0, |(_, met)| *met);
            (start, met)
        })
        .collect()
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

    /// One performance criterion of an enrolment with these claims: (superseded, judgement).
    fn one_criterion(claims: &[(bool, ClaimJudgement)]) -> EnrolmentState {
        let at = OffsetDateTime::UNIX_EPOCH;
        Sources {
            enrolment_id: EnrolmentId(Uuid::nil()),
            cohort_id: CohortId(Uuid::nil()),
            candidate_id: UserId(Uuid::nil()),
            assessor_id: None,
            iqa_id: None,
            candidate_name: String::new(),
            candidate_sort_name: String::new(),
            withdrawn: false,
            anything_submitted: true,
            iqa_disagreed: false,
            standing_sign_off: None,
            last_activity_at: None,
            criteria: vec![CriterionSource {
                criterion_id: Uuid::nil(),
                kind: CriterionKind::Performance,
                claims: claims
                    .iter()
                    .enumerate()
                    .map(|(n, (superseded, judgement))| ClaimSource {
                        evidence_id: EvidenceId(Uuid::from_u128(n as u128 + 1)),
                        submitted_at: at + time::Duration::minutes(n as i64),
                        superseded: *superseded,
                        judgement: *judgement,
                    })
                    .collect(),
            }],
        }
        .evaluate()
    }

    #[test]
    fn met_on_a_superseded_version_is_kept() {
        // Version 1 met; version 2 (current) does not claim it again.
        let state = one_criterion(&[(true, Some(true))]);
        assert_eq!(state.criteria_statuses, [Met]);
        assert_eq!(state.status, EnrolmentStatus::ReadyForSignOff);
        // Version 2 claims it again and is judged not met: met still wins.
        let state = one_criterion(&[(true, Some(true)), (false, Some(false))]);
        assert_eq!(state.criteria_statuses, [Met]);
        assert_eq!(
            (
                state.criteria[0].claims_met,
                state.criteria[0].claims_not_met
            ),
            (1, 1)
        );
    }

    #[test]
    fn a_superseded_claim_not_met_or_unjudged_does_not_count() {
        let state = one_criterion(&[(true, Some(false)), (true, None)]);
        assert_eq!(state.criteria_statuses, [NotStarted]);
        assert_eq!(
            state.claims_awaiting, 0,
            "nobody is asked to judge a superseded version"
        );
        assert_eq!(state.next_evidence_id, None);
        let state = one_criterion(&[(true, Some(false)), (false, None)]);
        assert_eq!(state.criteria_statuses, [Awaiting]);
        assert_eq!(state.next_evidence_id, Some(EvidenceId(Uuid::from_u128(2))));
    }

    #[test]
    fn a_reversed_kept_met_no_longer_counts() {
        // A reversal is the superseded claim's latest judgement: not met.
        let state = one_criterion(&[(true, Some(false)), (false, Some(false))]);
        assert_eq!(state.criteria_statuses, [NotMet]);
        assert_eq!(state.status, EnrolmentStatus::InProgress);
    }

    #[test]
    fn the_weekly_series_keeps_each_weeks_last_number() {
        use time::macros::datetime;
        // Monday 5 October 2026 is the first week.
        let history = [
            (datetime!(2026-10-06 10:00 UTC), 2),
            (datetime!(2026-10-08 10:00 UTC), 5),
            (datetime!(2026-10-21 09:00 UTC), 4),
        ];
        let weeks = weekly_met(
            &history,
            datetime!(2026-10-05 08:00 UTC),
            datetime!(2026-10-27 12:00 UTC),
            52,
        );
        let met: Vec<i32> = weeks.iter().map(|(_, m)| *m).collect();
        assert_eq!(met, [5, 5, 4, 4], "a reversal shows as a drop");
        assert_eq!(weeks[0].0, time::macros::date!(2026 - 10 - 05));
        let latest = weekly_met(
            &history,
            datetime!(2026-10-05 08:00 UTC),
            datetime!(2026-10-27 12:00 UTC),
            2,
        );
        assert_eq!(latest.len(), 2);
        assert_eq!(latest[0].0, time::macros::date!(2026 - 10 - 19));
    }
}
