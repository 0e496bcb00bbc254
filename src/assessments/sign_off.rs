//! Sign-off: the enrolment's assessor declares the candidate competent once every criterion is
//! met. The sign-off stores the exact set it rests on (criterion → judgement → evidence version
//! → file hashes) and its SHA-256, and is refused unless every criterion is met at that moment,
//! checked under a lock on the enrolment in the transaction that writes it.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgConnection;
use time::OffsetDateTime;

use crate::audit::{self, Actor, NewAuditEvent};
use crate::auth::csrf::CsrfForm;
use crate::auth::submissions;
use crate::clock::Clock;
use crate::cohorts::db::{self as cohorts_db, Enrolment};
use crate::error::{AppError, AppResult};
use crate::evidence::views::EvidenceShowPage;
use crate::forms::FormErrors;
use crate::identity::{CurrentUser, UserId, Viewer};
use crate::ids::{EnrolmentId, EvidenceId, IqaActionId, JudgementId, SignOffId};
use crate::iqa_actions::{self, Disagreement};
use crate::standards::cache::Standards;
use crate::state::AppState;
use crate::status::model::EnrolmentStatus;
use crate::web::client_ip::ClientIp;
use crate::web::flash;
use crate::web::layout::Layout;

/// The words the assessor signs.
pub const DECLARATION: &str = "I confirm the candidate has demonstrated competence against every performance criterion \
     and knowledge requirement of this standard, and that the evidence is valid, authentic, current, sufficient and reliable.";

/// One criterion of the basis: the judgement that met it, on which evidence version.
#[derive(Debug, Clone, Serialize)]
pub struct BasisItem {
    pub criterion: String,
    #[serde(skip)]
    pub text: String,
    /// `None` while the criterion is not met.
    pub judgement_id: Option<JudgementId>,
    pub evidence_id: Option<EvidenceId>,
    pub evidence_title: Option<String>,
    pub evidence_version: Option<i32>,
    pub declaration_sha256: Option<String>,
    /// SHA-256 of every file of that version, hex.
    pub files: Vec<String>,
}

impl BasisItem {
    pub fn is_met(&self) -> bool {
        self.judgement_id.is_some()
    }
}

/// SHA-256 over the RFC 8785 canonical JSON of the basis.
pub fn basis_sha256(basis: &[BasisItem]) -> [u8; 32] {
    crate::crypto::canonical_sha256(&json!(basis))
}

#[derive(Template, WebTemplate)]
#[template(path = "assessments/sign_off.html")]
pub struct SignOffPage {
    pub layout: Layout,
    pub enrolment: Enrolment,
    pub basis: Vec<BasisItem>,
    pub met: usize,
    pub already_signed: bool,
    /// The IQA's disagreement with the newest sign-off: each action is answered here before
    /// the enrolment can be signed off again.
    pub disagreement: Option<Disagreement>,
    /// Sampled evidence whose IQA actions wait for answers, on the evidence's pages.
    pub open_samples: Vec<iqa_actions::OpenSample>,
    pub declaration: &'static str,
    pub errors: FormErrors,
    /// Answers as typed into a refused answer form: (action, text).
    pub typed_answer: Option<(IqaActionId, String)>,
}

impl SignOffPage {
    /// Actions that wait for an answer.
    pub fn unanswered(&self) -> usize {
        self.disagreement
            .as_ref()
            .map_or(0, Disagreement::unanswered)
    }

    pub fn typed_answer_of(&self, id: &IqaActionId) -> &str {
        self.typed_answer
            .as_ref()
            .filter(|(a, _)| a == id)
            .map_or("", |(_, text)| text.as_str())
    }
}

/// The enrolment if `user` is its assessor (and not its candidate).
async fn as_assessor(
    conn: &mut PgConnection,
    id: EnrolmentId,
    user: Viewer<'_>,
) -> AppResult<Enrolment> {
    cohorts_db::find_visible(conn, id, user)
        .await?
        .filter(|e| e.assessed_by(user) && !e.is_candidate(user.id))
        .ok_or(AppError::NotFound)
}

async fn page(
    state: &AppState,
    user: &CurrentUser,
    layout: Layout,
    id: EnrolmentId,
    errors: FormErrors,
    typed_answer: Option<(IqaActionId, String)>,
) -> AppResult<SignOffPage> {
    let mut conn = state.pool.acquire().await?;
    let enrolment = as_assessor(&mut conn, id, user.viewer()).await?;
    let basis = super::db::sign_off_basis(&mut conn, id).await?;
    Ok(SignOffPage {
        layout,
        met: basis.iter().filter(|b| b.is_met()).count(),
        already_signed: super::db::standing_sign_off(&mut conn, id).await?.is_some(),
        disagreement: iqa_actions::open_disagreement(&mut conn, id).await?,
        open_samples: iqa_actions::db::open_sample_actions(&mut conn, id).await?,
        enrolment,
        basis,
        declaration: DECLARATION,
        errors,
        typed_answer,
    })
}

/// `GET /enrolments/{id}/sign-off`.
pub async fn show(
    State(state): State<AppState>,
    user: CurrentUser,
    layout: Layout,
    Path(id): Path<EnrolmentId>,
) -> AppResult<SignOffPage> {
    page(&state, &user, layout, id, FormErrors::default(), None).await
}

#[derive(Debug, Deserialize)]
pub struct SignOffForm {
    #[serde(default)]
    declaration: String,
}

/// `POST /enrolments/{id}/sign-off`.
pub async fn sign(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    user: CurrentUser,
    layout: Layout,
    Path(id): Path<EnrolmentId>,
    CsrfForm(form): CsrfForm<SignOffForm>,
) -> AppResult<Response> {
    if form.declaration != "yes" {
        return declaration_unconfirmed(&state, &user, layout, id).await;
    }
    let mut tx = state.pool.begin().await?;
    let by = Actor::user(&user, ip);
    let percent = state.settings.iqa_sample_percent;
    let (enrolment, _) = sign_off(&mut tx, user.viewer(), &by, id, percent, &state.clock).await?;
    tx.commit().await?;
    Ok(flash::redirect(
        &format!("/enrolments/{id}"),
        &format!("{} is signed off as competent.", enrolment.candidate_name),
    ))
}

/// Signs off enrolment `id` as competent, as `who`, its assessor, in the caller's transaction:
/// refused unless no sign-off stands and its stored status is ready for one. Stores the basis,
/// decides whether it is sampled for IQA review (`sample_percent` at random, beyond the rules),
/// and writes the enrolment's status and the audit event. Returns the enrolment and the
/// sign-off's id.
pub async fn sign_off(
    conn: &mut PgConnection,
    who: Viewer<'_>,
    by: &Actor,
    id: EnrolmentId,
    sample_percent: u8,
    clock: &Clock,
) -> AppResult<(Enrolment, SignOffId)> {
    let enrolment = lock_unsigned_enrolment(&mut *conn, id, who).await?;
    ensure_ready_for_sign_off(&mut *conn, &enrolment).await?;
    let after_disagreement = ensure_iqa_actions_answered(&mut *conn, &enrolment).await?;
    let sampling = Sampling {
        percent: sample_percent,
        after_disagreement,
    };
    let sign_off = store_sign_off(&mut *conn, &enrolment, who.id, sampling, clock.now()).await?;
    crate::status::db::refresh(&mut *conn, id).await?;
    audit_sign_off(conn, by, id, &sign_off).await?;
    Ok((enrolment, sign_off.id))
}

/// The sign-off page again, with 422 and the problem: the declaration was not confirmed.
async fn declaration_unconfirmed(
    state: &AppState,
    user: &CurrentUser,
    layout: Layout,
    id: EnrolmentId,
) -> AppResult<Response> {
    let mut errors = FormErrors::default();
    errors.add("declaration", "Confirm the declaration to sign off");
    let page = page(state, user, layout, id, errors, None).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

#[derive(Debug, Deserialize)]
pub struct AnswerForm {
    #[serde(default)]
    answer: String,
    #[serde(default)]
    submission_key: String,
}

/// `POST /enrolments/{id}/iqa-actions/{action}/answer`: the assessor says what was done,
/// about a sign-off's action on the sign-off page, about a sample's on the evidence's page.
pub async fn answer(
    State(state): State<AppState>,
    standards: Standards,
    ClientIp(ip): ClientIp,
    user: CurrentUser,
    layout: Layout,
    Path((id, action)): Path<(EnrolmentId, IqaActionId)>,
    CsrfForm(form): CsrfForm<AnswerForm>,
) -> AppResult<Response> {
    let mut tx = state.pool.begin().await?;
    let by = Actor::user(&user, ip);
    let now = state.clock.now();
    let claimed = submissions::claim_form(
        &mut tx,
        &form.submission_key,
        user.id,
        now,
        "This answer was recorded already.",
    );
    let submission = match claimed.await? {
        Ok(first) => first,
        Err(repeat) => return Ok(repeat),
    };
    match iqa_actions::answer(&mut tx, user.viewer(), &by, id, action, &form.answer, now).await? {
        Ok(sampled) => {
            let (to, message) = match sampled {
                Some(evidence) => (
                    format!("/evidence/{evidence}#samples"),
                    "Answer recorded. The IQA reads it with their sample.",
                ),
                None => (
                    format!("/enrolments/{id}/sign-off"),
                    "Answer recorded. The IQA sees it when reviewing your next sign-off.",
                ),
            };
            submission.led_to(&mut tx, &to).await?;
            tx.commit().await?;
            Ok(flash::redirect(&to, message))
        }
        Err(errors) => {
            drop(tx);
            let sampled = {
                let mut conn = state.pool.acquire().await?;
                iqa_actions::db::find_target(&mut conn, action)
                    .await?
                    .and_then(|t| t.sampled_evidence)
            };
            if let Some(evidence) = sampled {
                let mut page =
                    EvidenceShowPage::build(&state, &standards, &user, layout, evidence, None)
                        .await?;
                page.answer_refused = Some((action, errors, form.answer));
                return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
            }
            let typed = Some((action, form.answer));
            let page = page(&state, &user, layout, id, errors, typed).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}

/// Locks enrolment `id` (`for update`) and returns it if `user` is its assessor, it is not
/// withdrawn and no sign-off stands for it. The first lock a sign-off takes.
async fn lock_unsigned_enrolment(
    conn: &mut PgConnection,
    id: EnrolmentId,
    user: Viewer<'_>,
) -> AppResult<Enrolment> {
    // One sign-off at a time per enrolment: the second of two racing requests waits here and
    // then finds the first one's sign-off.
    if !cohorts_db::lock_for_sign_off(conn, id).await? {
        return Err(AppError::NotFound);
    }
    let enrolment = as_assessor(conn, id, user).await?;
    if enrolment.is_withdrawn() {
        return Err(AppError::Conflict("This enrolment is withdrawn.".into()));
    }
    if super::db::standing_sign_off(conn, id).await?.is_some() {
        return Err(AppError::Conflict(format!(
            "{} is already signed off.",
            enrolment.candidate_name
        )));
    }
    Ok(enrolment)
}

/// Refuses the sign-off unless the enrolment's stored status is ready for it. Takes the status
/// lock (held until the transaction ends), after [`lock_unsigned_enrolment`].
async fn ensure_ready_for_sign_off(
    conn: &mut PgConnection,
    enrolment: &Enrolment,
) -> AppResult<()> {
    // Readiness is the stored status, read under the lock every change of it takes.
    crate::status::db::lock(conn, enrolment.id).await?;
    let progress = crate::status::db::find(conn, enrolment.id).await?;
    let (met, of) = progress
        .as_ref()
        .map_or((0, 0), crate::status::db::Progress::met);
    if progress.is_none_or(|p| p.status != EnrolmentStatus::ReadyForSignOff) {
        return Err(AppError::Conflict(format!(
            "Only {met} of {of} criteria are met, so {} cannot be signed off yet.",
            enrolment.candidate_name
        )));
    }
    Ok(())
}

/// Refuses the sign-off while an action of the IQA's disagreement with sampled evidence or
/// with the previous sign-off has no answer. Read under the enrolment's exclusive lock, which
/// answering shares. Returns whether the IQA disagreed with the previous sign-off.
async fn ensure_iqa_actions_answered(
    conn: &mut PgConnection,
    enrolment: &Enrolment,
) -> AppResult<bool> {
    let on_samples = iqa_actions::db::unanswered_on_samples(&mut *conn, enrolment.id).await?;
    if on_samples > 0 {
        return Err(AppError::Conflict(format!(
            "Answer each of the IQA's actions on sampled evidence before signing {} off: {on_samples} still {} an answer, on the evidence's page.",
            enrolment.candidate_name,
            if on_samples == 1 { "needs" } else { "need" }
        )));
    }
    let Some(disagreement) = iqa_actions::open_disagreement(conn, enrolment.id).await? else {
        return Ok(false);
    };
    let waiting = disagreement.unanswered();
    if waiting > 0 {
        return Err(AppError::Conflict(format!(
            "Answer each of the IQA's actions before signing {} off again: {waiting} still {} an answer.",
            enrolment.candidate_name,
            if waiting == 1 { "needs" } else { "need" }
        )));
    }
    Ok(true)
}

/// What decides whether a new sign-off is sampled beyond the assessor's record.
#[derive(Debug, Clone, Copy)]
struct Sampling {
    /// The share sampled at random, in percent.
    percent: u8,
    /// The IQA disagreed with the previous sign-off of the enrolment.
    after_disagreement: bool,
}

/// A sign-off just stored, with what its audit event records of it.
struct StoredSignOff {
    id: SignOffId,
    basis_sha256: [u8; 32],
    sampled: bool,
    sample_reason: String,
}

/// Stores the sign-off of `enrolment` by assessor `assessor_id` on the basis that stands now,
/// deciding whether it is sampled for IQA review.
async fn store_sign_off(
    conn: &mut PgConnection,
    enrolment: &Enrolment,
    assessor_id: UserId,
    sampling: Sampling,
    now: OffsetDateTime,
) -> sqlx::Result<StoredSignOff> {
    let basis = super::db::sign_off_basis(conn, enrolment.id).await?;
    let digest = basis_sha256(&basis);
    let (sampled, reason) = sampled(conn, enrolment, assessor_id, sampling).await?;
    let id = super::db::insert_sign_off(
        conn,
        super::db::NewSignOff {
            enrolment_id: enrolment.id,
            assessor_id,
            signed_at: now,
            basis: &basis,
            basis_sha256: &digest,
            sampled,
            sample_reason: &reason,
        },
    )
    .await?;
    Ok(StoredSignOff {
        id,
        basis_sha256: digest,
        sampled,
        sample_reason: reason,
    })
}

/// Records the sign-off of enrolment `enrolment_id` in the audit chain, with the declaration
/// signed and the digest of its basis.
async fn audit_sign_off(
    conn: &mut PgConnection,
    actor: &Actor,
    enrolment_id: EnrolmentId,
    sign_off: &StoredSignOff,
) -> sqlx::Result<()> {
    audit::record(
        conn,
        NewAuditEvent {
            actor,
            action: "enrolment.signed_off",
            entity_type: "enrolment",
            entity_id: enrolment_id.to_string(),
            detail: json!({
                "sign_off_id": sign_off.id,
                "declaration": DECLARATION,
                "basis_sha256": crate::crypto::hex(&sign_off.basis_sha256),
                "sampled": sign_off.sampled,
                "sample_reason": sign_off.sample_reason,
            }),
        },
    )
    .await
}

/// Whether a new sign-off is sampled for IQA review, and why: one made after an IQA disagreed,
/// the first of each assessor in each cohort and every one of a trainee assessor always are;
/// after that, a random `percent` of them.
async fn sampled(
    conn: &mut PgConnection,
    enrolment: &Enrolment,
    assessor: UserId,
    sampling: Sampling,
) -> sqlx::Result<(bool, String)> {
    let percent = sampling.percent;
    if sampling.after_disagreement {
        return Ok((
            true,
            "the IQA disagreed with the previous sign-off: the answers to the actions are checked"
                .into(),
        ));
    }
    let earlier = super::db::count_assessor_sign_offs(conn, assessor, enrolment.cohort_id).await?;
    if earlier == 0 {
        return Ok((true, "the assessor's first sign-off in this cohort".into()));
    }
    let trainee = super::db::is_trainee_assessor(conn, assessor).await?;
    if trainee {
        return Ok((
            true,
            "the assessor is a trainee: every sign-off is sampled".into(),
        ));
    }
    let mut byte = [0u8; 1];
    getrandom::fill(&mut byte).expect("the operating system's random generator is available");
    let sampled = u32::from(byte[0]) * 100 < u32::from(percent) * 256;
    let reason = if sampled {
        format!("chosen at random ({percent}% of sign-offs)")
    } else {
        format!("not chosen at random ({percent}% of sign-offs)")
    };
    Ok((sampled, reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_basis_digest_is_over_rfc_8785_json() {
        let basis = [BasisItem {
            criterion: "PC1".into(),
            text: "not part of the digest".into(),
            judgement_id: None,
            evidence_id: None,
            evidence_title: Some("Runbook".into()),
            evidence_version: Some(1),
            declaration_sha256: Some("ab".into()),
            files: vec!["cd".into()],
        }];
        // `sha256sum` of [{"criterion":"PC1","declaration_sha256":"ab","evidence_id":null,
        // "evidence_title":"Runbook","evidence_version":1,"files":["cd"],"judgement_id":null}]
        assert_eq!(
            crate::crypto::hex(&basis_sha256(&basis)),
            "cc9e4d7f5f7c1c248565d6c73c7cd041f735399bd1472acdd279a7e3d23edc2d"
        );
    }
}
