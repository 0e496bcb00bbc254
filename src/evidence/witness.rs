//! Witness testimony: the candidate names a witness to a submitted piece of evidence (name,
//! email, role at work) and passes them a single-use link, valid 14 days. The witness, who
//! has no account, reads the statement on the link's page, confirms it or corrects it, and
//! signs with their typed name; the answer is kept with its time and address, audited, and
//! shown on the evidence as "confirmed by witness".

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use sqlx::PgConnection;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::db::{self, NewWitnessRequest, WitnessTarget};
use super::views::EvidenceShowPage;
use crate::accounts::model::{DisplayName, Email};
use crate::audit::{self, Actor, NewAuditEvent};
use crate::auth::csrf::CsrfForm;
use crate::auth::submissions;
use crate::cohorts::db as cohorts_db;
use crate::crypto::{random_token, sha256};
use crate::error::{AppError, AppResult};
use crate::forms::FormErrors;
use crate::identity::{CurrentUser, Viewer};
use crate::ids::EvidenceId;
use crate::standards::cache::Standards;
use crate::state::AppState;
use crate::web::client_ip::ClientIp;
use crate::web::flash;
use crate::web::layout::Layout;

/// How long a witness's link lasts.
pub const LINK_LIFETIME: Duration = Duration::days(14);
/// The longest role, corrections or signature kept.
const ROLE_MAX_CHARS: usize = 200;
const CORRECTIONS_MAX_CHARS: usize = 5_000;

/// The witness as the candidate names them.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct WitnessForm {
    #[serde(default)]
    pub witness_name: String,
    #[serde(default)]
    pub witness_email: String,
    #[serde(default)]
    pub witness_role: String,
    /// The form's one-time key (see `auth::submissions`).
    #[serde(default)]
    pub submission_key: String,
}

/// A witness link just made: shown once, to the assessor who sends it to the witness.
#[derive(Debug, Clone)]
pub struct IssuedWitnessLink {
    pub url: String,
    pub witness_name: String,
}

/// Names a witness to version `id` as `who`, its candidate, in the caller's transaction: stores
/// the request with its audit event (the assessor then makes the witness's link), or returns
/// the form's problems (nothing written). Only a current, submitted version of an enrolment
/// that is not withdrawn.
pub async fn name_witness(
    conn: &mut PgConnection,
    who: Viewer<'_>,
    by: &Actor,
    id: EvidenceId,
    form: &WitnessForm,
    now: OffsetDateTime,
) -> AppResult<Result<String, FormErrors>> {
    let evidence = db::find_visible(&mut *conn, id, who)
        .await?
        .filter(|e| e.candidate_id == who.id)
        .ok_or(AppError::NotFound)?;
    let active = cohorts_db::find_visible(&mut *conn, evidence.enrolment_id, who)
        .await?
        .is_some_and(|e| !e.is_withdrawn());
    if evidence.is_draft() || evidence.superseded || !active {
        return Err(AppError::Conflict(
            "Only the current, submitted version of a piece of evidence can be confirmed by a witness.".into(),
        ));
    }
    let mut errors = FormErrors::default();
    let name = errors.check("witness_name", DisplayName::parse(&form.witness_name));
    let email = errors.check("witness_email", Email::parse(&form.witness_email));
    let role = form
        .witness_role
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if role.is_empty() {
        errors.add(
            "witness_role",
            "Say what the witness's role is, such as team lead",
        );
    } else if role.chars().count() > ROLE_MAX_CHARS {
        errors.add("witness_role", "Keep the role under 200 characters");
    }
    let (Some(name), Some(email)) = (name, email) else {
        return Ok(Err(errors));
    };
    if !errors.is_empty() {
        return Ok(Err(errors));
    }
    let request = db::insert_witness_request(
        &mut *conn,
        &NewWitnessRequest {
            evidence: id,
            name: name.as_str(),
            email: email.as_str(),
            role: &role,
            requested_by: who.id,
            requested_at: now,
        },
    )
    .await?;
    audit::record(
        conn,
        NewAuditEvent {
            actor: by,
            action: "witness.named",
            entity_type: "evidence",
            entity_id: id.to_string(),
            detail: json!({
                "witness_request_id": request,
                "witness_name": name.as_str(),
                "witness_email": email.as_str(),
                "witness_role": role,
            }),
        },
    )
    .await?;
    Ok(Ok(name.as_str().to_owned()))
}

/// `POST /evidence/{id}/witness`: the candidate names a witness.
pub async fn request(
    State(state): State<AppState>,
    standards: Standards,
    ClientIp(ip): ClientIp,
    user: CurrentUser,
    layout: Layout,
    Path(id): Path<EvidenceId>,
    CsrfForm(form): CsrfForm<WitnessForm>,
) -> AppResult<Response> {
    let mut tx = state.pool.begin().await?;
    let by = Actor::user(&user, ip);
    let now = state.clock.now();
    let claimed = submissions::claim_form(
        &mut tx,
        &form.submission_key,
        user.id,
        now,
        "This witness was named already.",
    );
    let submission = match claimed.await? {
        Ok(first) => first,
        Err(repeat) => return Ok(repeat),
    };
    match name_witness(&mut tx, user.viewer(), &by, id, &form, now).await? {
        Ok(name) => {
            let to = format!("/evidence/{id}#witnesses");
            submission.led_to(&mut tx, &to).await?;
            tx.commit().await?;
            Ok(flash::redirect(
                &to,
                &format!(
                    "{name} is named as a witness. Your assessor sends them a link to confirm the statement."
                ),
            ))
        }
        Err(errors) => {
            drop(tx);
            let mut page =
                EvidenceShowPage::build(&state, &standards, &user, layout, id, None).await?;
            page.witness_errors = errors;
            page.witness_typed = form;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}

/// Makes a new single-use link for witness request `request` of version `id`, as `who`, the
/// enrolment's assessor, in the caller's transaction, replacing any earlier link, with its
/// audit event. The candidate never sees it: the assessor sends it to the witness.
pub async fn make_link(
    conn: &mut PgConnection,
    who: Viewer<'_>,
    by: &Actor,
    id: EvidenceId,
    request: Uuid,
    base_url: &str,
    now: OffsetDateTime,
) -> AppResult<IssuedWitnessLink> {
    let evidence = db::find_visible(&mut *conn, id, who)
        .await?
        .ok_or(AppError::NotFound)?;
    let enrolment = cohorts_db::find_visible(&mut *conn, evidence.enrolment_id, who)
        .await?
        .filter(|e| e.assessed_by(who) && !e.is_candidate(who.id))
        .ok_or(AppError::NotFound)?;
    if evidence.superseded || enrolment.is_withdrawn() {
        return Err(AppError::Conflict(
            "The evidence was revised or the enrolment withdrawn: the witness would confirm what no longer counts.".into(),
        ));
    }
    let token = random_token(32);
    let expires_at = now + LINK_LIFETIME;
    let made = db::make_witness_link(
        &mut *conn,
        id,
        request,
        &sha256(token.as_bytes()),
        who.id,
        now,
        expires_at,
    )
    .await?;
    let Some(witness_name) = made else {
        return Err(AppError::Conflict(
            "This witness has answered already, or was never named on this evidence.".into(),
        ));
    };
    audit::record(
        conn,
        NewAuditEvent {
            actor: by,
            action: "witness.link_made",
            entity_type: "evidence",
            entity_id: id.to_string(),
            detail: json!({ "witness_request_id": request, "expires_at": expires_at.unix_timestamp() }),
        },
    )
    .await?;
    Ok(IssuedWitnessLink {
        url: format!("{}/witness/{token}", base_url.trim_end_matches('/')),
        witness_name,
    })
}

/// `POST /evidence/{id}/witness/{request}/link`: the assessor makes the witness's link.
pub async fn link(
    State(state): State<AppState>,
    standards: Standards,
    ClientIp(ip): ClientIp,
    user: CurrentUser,
    layout: Layout,
    Path((id, request)): Path<(EvidenceId, Uuid)>,
    CsrfForm(_): CsrfForm<crate::auth::EmptyForm>,
) -> AppResult<Response> {
    let mut tx = state.pool.begin().await?;
    let by = Actor::user(&user, ip);
    let base = &state.settings.base_url;
    let now = state.clock.now();
    let issued = make_link(&mut tx, user.viewer(), &by, id, request, base, now).await?;
    tx.commit().await?;
    let mut page = EvidenceShowPage::build(&state, &standards, &user, layout, id, None).await?;
    page.issued_witness_link = Some(issued);
    Ok(page.into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "evidence/witness.html")]
pub struct WitnessPage {
    pub layout: Layout,
    pub target: WitnessTarget,
    pub form: AnswerForm,
    pub errors: FormErrors,
}

#[derive(Template, WebTemplate)]
#[template(path = "evidence/witness_done.html")]
pub struct WitnessDonePage {
    pub layout: Layout,
    /// What the page says: thanks, or why the link cannot be used.
    pub heading: &'static str,
    pub message: &'static str,
}

impl WitnessDonePage {
    fn unusable(layout: Layout, target: &WitnessTarget, now: OffsetDateTime) -> Self {
        let message = if target.answered_at.is_some() {
            "This link has been used: the statement was confirmed already. Each link works once."
        } else if target.closed {
            "This statement has been revised, or the candidate's enrolment has ended: there is nothing to confirm now."
        } else if target.expires_at.is_none_or(|at| at <= now) {
            "This link has expired: links last 14 days. Ask the assessor for a new one."
        } else {
            "This link cannot be used."
        };
        Self {
            layout,
            heading: "This link cannot be used",
            message,
        }
    }
}

/// Whether the link's request can still be answered at `now`: unanswered, unexpired, and of
/// a current version of an enrolment that goes on.
fn open(target: &WitnessTarget, now: OffsetDateTime) -> bool {
    target.answered_at.is_none() && !target.closed && target.expires_at.is_some_and(|at| at > now)
}

/// The page refusing a link that cannot be answered now: to the candidate, signed in (a
/// witness confirms someone else's evidence), 403; once used, expired or closed, 410. `None`
/// when the witness may answer.
fn refusal(
    user: Option<&axum::Extension<CurrentUser>>,
    target: &WitnessTarget,
    layout: &Layout,
    now: OffsetDateTime,
) -> Option<Response> {
    if user.is_some_and(|u| u.id == target.candidate_id) {
        let page = WitnessDonePage {
            layout: layout.clone(),
            heading: "This link is for your witness",
            message: "You are signed in as the candidate: only the witness confirms your evidence. Your assessor sends them this link.",
        };
        return Some((StatusCode::FORBIDDEN, page).into_response());
    }
    (!open(target, now)).then(|| {
        let page = WitnessDonePage::unusable(layout.clone(), target, now);
        (StatusCode::GONE, page).into_response()
    })
}

/// The request a witness's token names, or 404 (the same for a token that never existed).
async fn target_of(conn: &mut PgConnection, token: &str, lock: bool) -> AppResult<WitnessTarget> {
    if token.len() > 128 {
        return Err(AppError::NotFound);
    }
    db::find_witness_target(conn, &sha256(token.as_bytes()), lock)
        .await?
        .ok_or(AppError::NotFound)
}

/// `GET /witness/{token}`: the statement to confirm, for the witness.
pub async fn show(
    State(state): State<AppState>,
    user: Option<axum::Extension<CurrentUser>>,
    layout: Layout,
    Path(token): Path<String>,
) -> AppResult<Response> {
    let mut conn = state.pool.acquire().await?;
    let target = target_of(&mut conn, &token, false).await?;
    if let Some(refused) = refusal(user.as_ref(), &target, &layout, state.clock.now()) {
        return Ok(refused);
    }
    Ok(WitnessPage {
        layout,
        target,
        form: AnswerForm::default(),
        errors: FormErrors::default(),
    }
    .into_response())
}

/// The witness's answer as typed.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AnswerForm {
    /// `confirmed` or `corrected`.
    #[serde(default)]
    pub answer: String,
    #[serde(default)]
    pub corrections: String,
    #[serde(default)]
    pub signed_name: String,
}

impl AnswerForm {
    /// Confirmed as written (`true`) or with corrections (`false`), and the corrections and
    /// signature trimmed; or the problems.
    fn read(&self) -> Result<(bool, String, String), FormErrors> {
        let mut errors = FormErrors::default();
        let corrections = self.corrections.trim().to_owned();
        let confirmed = match self.answer.as_str() {
            "confirmed" => Some(true),
            "corrected" => Some(false),
            _ => {
                errors.add(
                    "answer",
                    "Choose whether the statement is accurate as written",
                );
                None
            }
        };
        if confirmed == Some(false) && corrections.is_empty() {
            errors.add("corrections", "Write what should be corrected");
        }
        // Confirmed as written means no corrections: anything typed there is not kept.
        let corrections = if confirmed == Some(true) {
            String::new()
        } else {
            corrections
        };
        if corrections.chars().count() > CORRECTIONS_MAX_CHARS {
            errors.add("corrections", "Keep the corrections under 5,000 characters");
        }
        let signed_name = self
            .signed_name
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if signed_name.is_empty() {
            errors.add("signed_name", "Type your full name to sign");
        } else if signed_name.chars().count() > ROLE_MAX_CHARS {
            errors.add("signed_name", "Keep your name under 200 characters");
        }
        match confirmed {
            Some(confirmed) if errors.is_empty() => Ok((confirmed, corrections, signed_name)),
            _ => Err(errors),
        }
    }
}

/// `POST /witness/{token}`: the witness confirms or corrects, and signs.
pub async fn answer(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    user: Option<axum::Extension<CurrentUser>>,
    layout: Layout,
    Path(token): Path<String>,
    CsrfForm(form): CsrfForm<AnswerForm>,
) -> AppResult<Response> {
    let mut tx = state.pool.begin().await?;
    // Locked: the same link sent twice at once is answered once.
    let target = target_of(&mut tx, &token, true).await?;
    let now = state.clock.now();
    if let Some(refused) = refusal(user.as_ref(), &target, &layout, now) {
        return Ok(refused);
    }
    let (confirmed, corrections, signed_name) = match form.read() {
        Ok(answer) => answer,
        Err(errors) => {
            drop(tx);
            let page = WitnessPage {
                layout,
                target,
                form,
                errors,
            };
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    db::answer_witness_request(
        &mut tx,
        target.request_id,
        confirmed,
        &corrections,
        &signed_name,
        ip,
        now,
    )
    .await?;
    audit::record(
        &mut tx,
        NewAuditEvent {
            actor: &Actor::witness(&signed_name, ip),
            action: if confirmed {
                "witness.confirmed"
            } else {
                "witness.corrected"
            },
            entity_type: "evidence",
            entity_id: target.evidence_id.to_string(),
            detail: json!({
                "witness_request_id": target.request_id,
                "enrolment_id": target.enrolment_id,
                "signed_name": signed_name,
                "corrections": corrections,
            }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(WitnessDonePage {
        layout,
        heading: "Thank you",
        message: if confirmed {
            "Your confirmation is recorded with your signature. You can close this page."
        } else {
            "Your corrections are recorded with your signature; the assessor reads them beside the statement. You can close this page."
        },
    }
    .into_response())
}
