//! Page structs of evidence and the portfolio.

use askama::Template;
use askama_web::WebTemplate;
use time::OffsetDateTime;
use uuid::Uuid;

use super::db::{self, Claim, Comment, Evidence, EvidenceFile, VersionSummary, WitnessRequest};
use super::model::{AssessmentMethod, EvidenceFields};
use super::witness::{IssuedWitnessLink, WitnessForm};
use crate::cohorts::db as cohorts_db;
use crate::cohorts::db::Enrolment;
use crate::error::AppError;
use crate::error::AppResult;
use crate::evidence::db::LatestJudgement;
use crate::evidence::judgements::{JudgementInput, VACSR};
use crate::forms::FormErrors;
use crate::identity::CurrentUser;
use crate::ids::{EvidenceId, IqaActionId};
use crate::iqa_actions::{Sample, SampleForm};
use crate::standards::cache::Standards;
use crate::standards::model::CriterionKind;
use crate::state::AppState;
use crate::status::model::{CriterionStatus, EnrolmentStatus};
use crate::web::layout::{Layout, Section};

/// A criterion checkbox of the evidence form.
#[derive(Debug, Clone)]
pub struct ClaimChoice {
    pub id: Uuid,
    pub code: String,
    pub text: String,
    pub checked: bool,
    pub note: String,
    /// Met on the version this draft revises: it stays met without being claimed again.
    pub met_before: bool,
    /// Left out of this revision as met, and no longer met: submitting claims it again.
    pub claimed_again: bool,
}

/// A judgement of the version a draft revises, shown on the revise form.
#[derive(Debug, Clone)]
pub struct EarlierJudgement {
    pub code: String,
    pub judgement: LatestJudgement,
}

/// An assessment method option.
#[derive(Debug, Clone)]
pub struct MethodChoice {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "evidence/form.html")]
pub struct EvidenceFormPage {
    pub layout: Layout,
    pub enrolment: Enrolment,
    /// The draft being edited; `None` for new evidence.
    pub evidence: Option<Evidence>,
    pub fields: EvidenceFields,
    pub methods: Vec<MethodChoice>,
    pub performance: Vec<ClaimChoice>,
    pub knowledge: Vec<ClaimChoice>,
    pub files: Vec<EvidenceFile>,
    /// For a revision: the judgements of the version it revises, in criterion order.
    pub earlier: Vec<EarlierJudgement>,
    /// For a revision or a record: the conversation on the piece so far.
    pub comments: Vec<Comment>,
    pub errors: FormErrors,
    /// The form was refused, but what it held is saved in the draft.
    pub draft_saved: bool,
    pub max_file_mib: u64,
    pub max_evidence_mib: u64,
    /// A record the assessor writes, for the candidate to confirm.
    pub record: bool,
}

impl EvidenceFormPage {
    /// The form as the assessor's, for a record: only the methods an assessor records.
    pub fn for_record(mut self) -> Self {
        self.record = true;
        self.methods.retain(|m| {
            AssessmentMethod::RECORDED
                .iter()
                .any(|r| r.as_str() == m.value)
        });
        self
    }

    pub async fn build(
        state: &AppState,
        layout: Layout,
        enrolment: &Enrolment,
        evidence: Option<&Evidence>,
        fields: &EvidenceFields,
        errors: FormErrors,
    ) -> AppResult<Self> {
        let mut conn = state.pool.acquire().await?;
        let criteria = db::criteria_for_enrolment(&mut conn, enrolment.id).await?;
        let files = match evidence {
            Some(e) => db::list_files(&mut conn, e.id).await?,
            None => Vec::new(),
        };
        let revised = match evidence {
            Some(e) if e.version > 1 => {
                db::submitted_version(&mut conn, e.item_id, e.version - 1).await?
            }
            _ => None,
        };
        let judgements = match revised {
            Some(id) => db::latest_judgements(&mut conn, id).await?,
            None => Vec::new(),
        };
        let no_longer_met = match (evidence, revised) {
            (Some(e), Some(_)) => db::no_longer_met(&mut conn, e.id).await?,
            _ => Vec::new(),
        };
        // A revision and a record being corrected show the conversation so far.
        let comments = match (evidence, revised) {
            (Some(e), Some(_)) => db::comments_of_item(&mut conn, e.item_id).await?,
            (Some(e), None) if e.is_record() => db::comments_of_item(&mut conn, e.item_id).await?,
            _ => Vec::new(),
        };
        let earlier: Vec<EarlierJudgement> = criteria
            .iter()
            .filter_map(|c| {
                let judgement = judgements.iter().find(|j| j.criterion_id == c.id)?;
                Some(EarlierJudgement {
                    code: c.code.clone(),
                    judgement: judgement.clone(),
                })
            })
            .collect();
        let choices = |kind: CriterionKind| -> Vec<ClaimChoice> {
            criteria
                .iter()
                .filter(|c| c.kind == kind)
                .map(|c| {
                    let claim = fields.claims.iter().find(|(id, _)| *id == c.id);
                    ClaimChoice {
                        id: c.id,
                        code: c.code.clone(),
                        text: c.text.clone(),
                        checked: claim.is_some(),
                        note: claim.map(|(_, n)| n.clone()).unwrap_or_default(),
                        met_before: earlier.iter().any(|e| e.code == c.code && e.judgement.met),
                        claimed_again: claim.is_none()
                            && no_longer_met.iter().any(|id| id.0 == c.id),
                    }
                })
                .collect()
        };
        Ok(Self {
            layout: layout.section(Section::Home),
            enrolment: enrolment.clone(),
            evidence: evidence.cloned(),
            methods: AssessmentMethod::ALL
                .into_iter()
                .map(|m| MethodChoice {
                    value: m.as_str(),
                    label: m.label(),
                    selected: fields.method == m.as_str(),
                })
                .collect(),
            performance: choices(CriterionKind::Performance),
            knowledge: choices(CriterionKind::Knowledge),
            fields: fields.clone(),
            files,
            earlier,
            comments,
            errors,
            draft_saved: false,
            max_file_mib: state.settings.max_file_bytes / (1024 * 1024),
            max_evidence_mib: state.settings.max_evidence_bytes / (1024 * 1024),
            record: false,
        })
        .map(|page| {
            if evidence.is_some_and(Evidence::is_record) {
                page.for_record()
            } else {
                page
            }
        })
    }

    /// Where the form posts to.
    pub fn action(&self) -> String {
        match &self.evidence {
            Some(e) => format!("/evidence/{}/edit", e.id),
            None if self.record => format!("/enrolments/{}/records/new", self.enrolment.id),
            None => format!("/enrolments/{}/evidence/new", self.enrolment.id),
        }
    }
}

/// A claim of the evidence with its latest judgement.
#[derive(Debug, Clone)]
pub struct ClaimRow {
    pub claim: Claim,
    pub judgement: Option<LatestJudgement>,
}

impl ClaimRow {
    /// The VACSR checks the latest judgement ticked, in words.
    pub fn checks_text(&self) -> String {
        self.judgement.as_ref().map_or_else(String::new, |j| {
            VACSR
                .iter()
                .zip(j.checks)
                .filter(|(_, c)| *c)
                .map(|((_, label), _)| *label)
                .collect::<Vec<_>>()
                .join(", ")
        })
    }
}

/// The judging form, for the enrolment's assessor: the claims not judged yet first, and those
/// judged already (to judge again) apart.
#[derive(Debug, Clone)]
pub struct JudgingForm {
    pub rows: Vec<(Claim, JudgementInput)>,
    pub judged_rows: Vec<(Claim, JudgementInput)>,
    /// Overall feedback on the piece as typed into a refused form.
    pub overall: String,
    pub errors: FormErrors,
    /// How many judgements the version had when the form was drawn: a second submission of
    /// the same form then writes nothing.
    pub seen: i64,
}

#[derive(Template, WebTemplate)]
#[template(path = "evidence/show.html")]
pub struct EvidenceShowPage {
    pub layout: Layout,
    pub enrolment: Enrolment,
    pub evidence: Evidence,
    pub claims: Vec<ClaimRow>,
    pub files: Vec<EvidenceFile>,
    pub versions: Vec<VersionSummary>,
    pub is_candidate: bool,
    pub can_revise: bool,
    /// The viewer is the assessor and the version superseded: its met claims can be reversed.
    pub may_reverse: bool,
    pub open_draft: Option<EvidenceId>,
    pub judging: Option<JudgingForm>,
    /// For the assessor once every claim of this version is judged: the version to judge next.
    pub next_to_judge: Option<EvidenceId>,
    pub vacsr: [(&'static str, &'static str); 5],
    /// The conversation on the piece, over all its versions, oldest first.
    pub comments: Vec<Comment>,
    /// The viewer takes part in the conversation (candidate, assessor or IQA of the enrolment)
    /// and the version is submitted.
    pub may_comment: bool,
    /// A refused comment's problems and text.
    pub comment_errors: FormErrors,
    pub comment_typed: String,
    /// The witnesses asked to confirm this version, with their answers.
    pub witness_requests: Vec<WitnessRequest>,
    /// The viewer is the candidate and the version current: they may name a witness.
    pub may_request_witness: bool,
    /// The viewer is the enrolment's assessor: they make the witnesses' links.
    pub may_judge_witness: bool,
    /// A witness link just made, shown this once.
    pub issued_witness_link: Option<IssuedWitnessLink>,
    /// A refused witness form's problems and what was typed.
    pub witness_errors: FormErrors,
    pub witness_typed: WitnessForm,
    /// For the candidate, a record sent to them to confirm: the digest of what they read.
    pub confirm_digest: Option<String>,
    pub confirm_errors: FormErrors,
    /// The viewer writes this draft record (the enrolment's assessor).
    pub may_edit_record: bool,
    /// The IQA's samples of the item's versions, oldest first, with their actions.
    pub samples: Vec<Sample>,
    /// The viewer is the enrolment's IQA and the version has judgements to sample.
    pub may_sample: bool,
    /// A refused sample form's problems and what was typed.
    pub sample_errors: FormErrors,
    pub sample_typed: SampleForm,
    /// The viewer is the enrolment's assessor: they answer the samples' actions.
    pub may_answer_samples: bool,
    /// The action whose answer was refused, its problems and the answer typed.
    pub answer_refused: Option<(IqaActionId, FormErrors, String)>,
    pub now: OffsetDateTime,
}

impl EvidenceShowPage {
    /// The problems of a refused answer to `action`, if it was refused.
    pub fn answer_errors(&self, action: &IqaActionId) -> Option<&FormErrors> {
        self.answer_refused
            .as_ref()
            .filter(|(a, ..)| a == action)
            .map(|(_, e, _)| e)
    }

    /// The answer typed to `action` in a refused form.
    pub fn answer_typed(&self, action: &IqaActionId) -> &str {
        self.answer_refused
            .as_ref()
            .filter(|(a, ..)| a == action)
            .map_or("", |(.., typed)| typed.as_str())
    }

    /// How far the assessor has got with a submitted version, in words; `None` for a draft.
    pub fn assessment_state(&self) -> Option<&'static str> {
        if self.evidence.is_draft() {
            return self
                .evidence
                .is_record()
                .then_some(if self.evidence.sent_at.is_none() {
                    "Draft record, not sent yet"
                } else if self.is_candidate {
                    "Waiting for you to confirm"
                } else {
                    "Waiting for the candidate to confirm"
                });
        }
        let judged = self.claims.iter().filter(|c| c.judgement.is_some()).count();
        Some(if judged == 0 {
            "Awaiting assessment"
        } else if judged < self.claims.len() {
            "Partly assessed"
        } else {
            "Assessed"
        })
    }
}

impl EvidenceShowPage {
    /// The page of evidence `id` as `user` may see it; `typed` carries a refused judging form.
    pub async fn build(
        state: &AppState,
        standards: &Standards,
        user: &CurrentUser,
        layout: Layout,
        id: EvidenceId,
        typed: Option<(Vec<JudgementInput>, FormErrors)>,
    ) -> AppResult<Self> {
        let shown = ShownEvidence::read(state, standards, user, id).await?;
        Ok(shown.into_page(layout, user, typed, state.clock.now()))
    }
}

/// What the evidence page is drawn from, as read for one viewer.
struct ShownEvidence {
    evidence: Evidence,
    enrolment: Enrolment,
    /// The viewer is the enrolment's candidate: they see drafts and may revise.
    is_candidate: bool,
    claims: Vec<Claim>,
    judgements: Vec<LatestJudgement>,
    files: Vec<EvidenceFile>,
    versions: Vec<VersionSummary>,
    /// The draft revising this evidence's item; looked up only for the candidate.
    open_draft: Option<EvidenceId>,
    /// What the assessor should judge next, once this version is all judged.
    next_to_judge: Option<EvidenceId>,
    comments: Vec<Comment>,
    witness_requests: Vec<WitnessRequest>,
    samples: Vec<Sample>,
}

impl ShownEvidence {
    /// Reads evidence `id` and its enrolment, if `user` may see them, with its claims, their
    /// latest judgements, its files and the versions of its item `user` may see, all on one
    /// connection.
    async fn read(
        state: &AppState,
        standards: &Standards,
        user: &CurrentUser,
        id: EvidenceId,
    ) -> AppResult<Self> {
        let mut conn = state.pool.acquire().await?;
        let evidence = db::find_visible(&mut conn, id, user.viewer())
            .await?
            .ok_or(AppError::NotFound)?;
        let enrolment = cohorts_db::find_visible(&mut conn, evidence.enrolment_id, user.viewer())
            .await?
            .ok_or(AppError::NotFound)?;
        let is_candidate = enrolment.is_candidate(user.id);
        let claims = db::list_claims(&mut conn, id).await?;
        let judgements = db::latest_judgements(&mut conn, id).await?;
        let files = db::list_files(&mut conn, id).await?;
        let standard = standards.version(&mut conn, enrolment.standard_id).await?;
        let versions = db::list_for_enrolment(
            &mut conn,
            enrolment.id,
            user.id,
            Some(evidence.item_id),
            &standard,
        )
        .await?;
        let open_draft = if is_candidate {
            db::open_draft_of_item(&mut conn, evidence.item_id).await?
        } else {
            None
        };
        let comments = db::comments_of_item(&mut conn, evidence.item_id).await?;
        let witness_requests = db::witness_requests(&mut conn, id).await?;
        let samples = crate::iqa_actions::db::samples(
            &mut conn,
            crate::iqa_actions::db::SampleScope::ItemOf(id),
        )
        .await?;
        let all_judged = claims
            .iter()
            .all(|c| judgements.iter().any(|j| j.criterion_id == c.criterion_id));
        let next_to_judge = if enrolment.assessed_by(user.viewer()) && !is_candidate && all_judged {
            crate::status::db::next_to_judge(&mut conn, user.id, enrolment.id, id).await?
        } else {
            None
        };
        Ok(Self {
            evidence,
            enrolment,
            is_candidate,
            claims,
            judgements,
            files,
            versions,
            open_draft,
            next_to_judge,
            comments,
            witness_requests,
            samples,
        })
    }

    /// The page, with the judging form when `user` may judge; `typed` refills that form.
    fn into_page(
        self,
        layout: Layout,
        user: &CurrentUser,
        typed: Option<(Vec<JudgementInput>, FormErrors)>,
        now: OffsetDateTime,
    ) -> EvidenceShowPage {
        let judging = self.may_judge(user).then(|| {
            judging_form_for(
                &self.claims,
                &self.judgements,
                typed,
                self.judgements_recorded(),
            )
        });
        let can_revise = self.can_revise();
        let may_reverse = self.may_reverse(user);
        let may_judge_now = self.may_judge(user);
        let may_comment = self.may_comment(user);
        let may_request_witness = self.is_candidate
            && !self.enrolment.is_withdrawn()
            && !self.evidence.is_draft()
            && !self.evidence.superseded;
        let confirm_digest = (self.is_candidate
            && self.evidence.is_draft()
            && self.evidence.sent_at.is_some()
            && !self.enrolment.is_withdrawn())
        .then(|| {
            crate::crypto::hex(&super::actions::current_digest(
                &self.evidence,
                &self.claims,
                &self.files,
            ))
        });
        let may_sample = self.enrolment.quality_assured_by(user.viewer())
            && !self.enrolment.is_withdrawn()
            && !self.is_candidate
            && self.enrolment.assessor_id != Some(user.id)
            && !self.evidence.is_draft()
            && !self.judgements.is_empty();
        let may_answer_samples =
            self.enrolment.assessed_by(user.viewer()) && !self.enrolment.is_withdrawn();
        let may_edit_record = self.evidence.is_record()
            && self.evidence.is_draft()
            && self.enrolment.assessed_by(user.viewer())
            && !self.enrolment.is_withdrawn();
        EvidenceShowPage {
            layout,
            can_revise,
            may_reverse,
            open_draft: self.open_draft,
            is_candidate: self.is_candidate,
            claims: claim_rows(self.claims, &self.judgements),
            enrolment: self.enrolment,
            evidence: self.evidence,
            files: self.files,
            versions: self.versions,
            judging,
            next_to_judge: self.next_to_judge,
            vacsr: VACSR,
            may_comment,
            comments: self.comments,
            comment_errors: FormErrors::default(),
            comment_typed: String::new(),
            witness_requests: self.witness_requests,
            may_request_witness,
            may_judge_witness: may_reverse || may_judge_now,
            issued_witness_link: None,
            witness_errors: FormErrors::default(),
            witness_typed: WitnessForm::default(),
            confirm_digest,
            confirm_errors: FormErrors::default(),
            may_edit_record,
            samples: self.samples,
            may_sample,
            sample_errors: FormErrors::default(),
            sample_typed: SampleForm::default(),
            may_answer_samples,
            answer_refused: None,
            now,
        }
    }

    /// How many judgements the version has had: each is of one of its claims.
    fn judgements_recorded(&self) -> i64 {
        self.judgements.iter().map(|j| j.count).sum()
    }

    /// `user` is the enrolment's assessor (and not its candidate), and the evidence is a
    /// submitted version of an enrolment that is not withdrawn.
    fn assesses_submitted(&self, user: &CurrentUser) -> bool {
        self.enrolment.assessed_by(user.viewer())
            && !self.is_candidate
            && !self.evidence.is_draft()
            && !self.enrolment.is_withdrawn()
    }

    /// `user` is the enrolment's candidate, assessor or IQA, the enrolment is not withdrawn and
    /// the version is submitted, or a record sent to the candidate to confirm.
    fn may_comment(&self, user: &CurrentUser) -> bool {
        let on_it = self.is_candidate
            || self.enrolment.assessed_by(user.viewer())
            || self.enrolment.quality_assured_by(user.viewer());
        on_it && self.evidence.in_conversation() && !self.enrolment.is_withdrawn()
    }

    /// The assessor may judge a current version.
    fn may_judge(&self, user: &CurrentUser) -> bool {
        self.assesses_submitted(user) && !self.evidence.superseded
    }

    /// The assessor may reverse what a superseded version met (its met is kept).
    fn may_reverse(&self, user: &CurrentUser) -> bool {
        self.assesses_submitted(user) && self.evidence.superseded
    }

    /// The candidate may start a revision: the evidence is their own (not a record their
    /// assessor made), a submitted, current version of an enrolment that is not withdrawn, and
    /// no revision of it is open already.
    fn can_revise(&self) -> bool {
        self.is_candidate
            && !self.evidence.is_record()
            && !self.enrolment.is_withdrawn()
            && !self.evidence.is_draft()
            && !self.evidence.superseded
            && self.open_draft.is_none()
    }
}

/// The judging form for `claims`, each row refilled from what was `typed` for its criterion
/// (left for later when nothing was), with the errors that refused it. Claims `judgements`
/// already decide go apart.
fn judging_form_for(
    claims: &[Claim],
    judgements: &[LatestJudgement],
    typed: Option<(Vec<JudgementInput>, FormErrors)>,
    seen: i64,
) -> JudgingForm {
    let (inputs, errors) = typed.unwrap_or_default();
    let (judged_rows, rows) = claims
        .iter()
        .map(|c| {
            let input = inputs
                .iter()
                .find(|i| i.criterion_id == c.criterion_id)
                .cloned()
                .unwrap_or_default();
            (c.clone(), input)
        })
        .partition(|(c, _)| judgements.iter().any(|j| j.criterion_id == c.criterion_id));
    JudgingForm {
        rows,
        judged_rows,
        overall: String::new(),
        errors,
        seen,
    }
}

/// Each claim with the latest judgement of its criterion, if it has one.
fn claim_rows(claims: Vec<Claim>, judgements: &[LatestJudgement]) -> Vec<ClaimRow> {
    claims
        .into_iter()
        .map(|claim| {
            let judgement = judgements
                .iter()
                .find(|j| j.criterion_id == claim.criterion_id)
                .cloned();
            ClaimRow { claim, judgement }
        })
        .collect()
}

/// A current version claiming a criterion, for the portfolio.
#[derive(Debug, Clone)]
pub struct CurrentClaim {
    pub evidence_id: EvidenceId,
    pub title: String,
    pub version: i32,
    /// A superseded version whose met judgement is kept.
    pub kept: bool,
}

/// A criterion of the portfolio with its stored status and the current versions claiming it.
#[derive(Debug, Clone)]
pub struct PortfolioCriterion {
    pub kind: CriterionKind,
    pub code: String,
    pub text: String,
    pub status: CriterionStatus,
    pub evidence: Vec<CurrentClaim>,
}

/// The criteria met week by week, drawn as a line.
#[derive(Debug, Clone)]
pub struct ProgressChart {
    /// The `points` of the SVG polyline, and the last of them, marked.
    pub points: String,
    pub last_point: (String, String),
    /// Each week's Monday and the criteria met at its end, oldest first.
    pub weeks: Vec<(time::Date, i32)>,
    /// Criteria in all: the top of the chart.
    pub total: i32,
}

impl ProgressChart {
    /// The left and right of the plot, and its bottom and top, in the SVG's units.
    const LEFT: f64 = 40.0;
    const RIGHT: f64 = 500.0;
    const BOTTOM: f64 = 140.0;
    const TOP: f64 = 20.0;

    /// The chart of `weeks` out of `total` criteria; `None` with nothing to draw.
    pub fn new(weeks: Vec<(time::Date, i32)>, total: i32) -> Option<Self> {
        if weeks.is_empty() || total <= 0 {
            return None;
        }
        let step = (Self::RIGHT - Self::LEFT) / (weeks.len().max(2) - 1) as f64;
        let at: Vec<(String, String)> = weeks
            .iter()
            .enumerate()
            .map(|(n, (_, met))| {
                let x = Self::LEFT + step * n as f64;
                let y =
                    Self::BOTTOM - (Self::BOTTOM - Self::TOP) * f64::from(*met) / f64::from(total);
                (format!("{x:.1}"), format!("{y:.1}"))
            })
            .collect();
        let points = at
            .iter()
            .map(|(x, y)| format!("{x},{y}"))
            .collect::<Vec<_>>()
            .join(" ");
        Some(Self {
            last_point: at.last().cloned().unwrap_or_default(),
            points,
            weeks,
            total,
        })
    }

    /// The week the chart starts and the week it ends.
    pub fn span(&self) -> (time::Date, time::Date) {
        (
            self.weeks.first().map_or(time::Date::MIN, |w| w.0),
            self.weeks.last().map_or(time::Date::MIN, |w| w.0),
        )
    }
}

/// The portfolio of an enrolment.
#[derive(Debug, Clone, Template, WebTemplate)]
#[template(path = "evidence/portfolio.html")]
pub struct PortfolioPage {
    pub layout: Layout,
    pub enrolment: Enrolment,
    pub performance: Vec<PortfolioCriterion>,
    pub knowledge: Vec<PortfolioCriterion>,
    /// (met, total) performance criteria and knowledge items.
    pub pc: (usize, usize),
    pub k: (usize, usize),
    pub status: EnrolmentStatus,
    pub versions: Vec<VersionSummary>,
    pub is_candidate: bool,
    pub can_add: bool,
    pub can_withdraw: bool,
    /// The viewer is the enrolment's assessor.
    pub is_assessor: bool,
    /// The viewer is the enrolment's assessor, every criterion is met and no IQA action waits.
    pub can_sign_off: bool,
    /// The IQA's disagreement with the newest sign-off, with its actions and the answers.
    pub disagreement: Option<crate::iqa_actions::Disagreement>,
    /// Criteria met week by week, once any history is kept.
    pub progress_chart: Option<ProgressChart>,
    /// Sampled evidence whose IQA actions wait for the assessor's answers.
    pub open_samples: Vec<crate::iqa_actions::OpenSample>,
    /// Problems of the withdrawal form.
    pub errors: FormErrors,
}

impl PortfolioPage {
    /// Records the assessor sent that wait for the candidate's confirmation.
    pub fn records_to_confirm(&self) -> usize {
        self.versions
            .iter()
            .filter(|v| v.record && v.sent && v.state == super::model::EvidenceState::Draft)
            .count()
    }
}

/// Whether browsers show a file of this type themselves: images (except HEIC, which most
/// cannot show) and PDFs.
pub fn previewable(content_type: &str) -> bool {
    (content_type.starts_with("image/") && content_type != "image/heif")
        || content_type == "application/pdf"
}

/// Bytes in words: "2.4 MiB".
pub fn size_text(bytes: &i64) -> String {
    let bytes = *bytes as f64;
    if bytes >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", bytes / 1024.0 / 1024.0)
    } else if bytes >= 1024.0 {
        format!("{:.0} KiB", bytes / 1024.0)
    } else {
        format!("{bytes} bytes")
    }
}

/// A method in words, or a dash.
pub fn method_text(method: &Option<AssessmentMethod>) -> &'static str {
    method.map_or("Not given", AssessmentMethod::label)
}

/// A timestamp as people read it, in UTC.
pub fn when(at: &Option<time::OffsetDateTime>) -> String {
    at.map(|t| format!("{} {:02}:{:02} UTC", t.date(), t.hour(), t.minute()))
        .unwrap_or_default()
}

/// A moment as people read it, in UTC.
pub fn at(moment: &time::OffsetDateTime) -> String {
    when(&Some(*moment))
}
