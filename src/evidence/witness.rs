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

use super::db::{self, NewWitnessRequest, WitnessTarget};
use super::views::EvidenceShowPage;
use crate::accounts::model::{DisplayName, Email};
use crate::audit::{self, Actor, NewAuditEvent};
use crate::auth::csrf::CsrfForm;
use crate::cohorts::db as cohorts_db;
use crate::crypto::{random_token, sha256};
use crate::error::{AppError, AppResult};
use crate::forms::FormErrors;
use crate::identity::{CurrentUser, Viewer};
use crate::ids::EvidenceId;
use crate::standards::cache::Standards;
use crate::state::AppState;
use crate::web::client_ip::ClientIp;
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
}

/// A witness request just made: its link is shown once, to the candidate who passes it on.
#[derive(Debug, Clone)]
pub struct IssuedWitnessLink {
    pub url: String,
    pub witness_name: String,
}

/// Names a witness to version `id` as `who`, its candidate, in the caller's transaction: stores
/// the request (the token's SHA-256 only) with its audit event and returns the link; or the
/// form's problems (nothing written). Only a current, submitted version of an enrolment that is
/// not withdrawn.
pub async fn request_witness(
    conn: &mut PgConnection,
    who: Viewer<'_>,
    by: &Actor,
    id: EvidenceId,
    form: &WitnessForm,
    base_url: &str,
    now: OffsetDateTime,
) -> AppResult<Result<IssuedWitnessLink, FormErrors>> {
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
    let token = random_token(32);
    let request = db::insert_witness_request(
        &mut *conn,
        &NewWitnessRequest {
            evidence: id,
            name: name.as_str(),
            email: email.as_str(),
            role: &role,
            token_sha256: &sha256(token.as_bytes()),
            requested_by: who.id,
            requested_at: now,
            expires_at: now + LINK_LIFETIME,
        },
    )
    .await?;
    audit::record(
        conn,
        NewAuditEvent {
            actor: by,
            action: "witness.requested",
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
    Ok(Ok(IssuedWitnessLink {
        url: format!("{}/witness/{token}", base_url.trim_end_matches('/')),
        witness_name: name.as_str().to_owned(),
    }))
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
    let base = &state.settings.base_url;
    match request_witness(&mut tx, user.viewer(), &by, id, &form, base, now).await? {
        Ok(link) => {
            tx.commit().await?;
            let mut page =
                EvidenceShowPage::build(&state, &standards, &user, layout, id, None).await?;
            page.issued_witness_link = Some(link);
            Ok(page.into_response())
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
        } else if target.expires_at <= now {
            "This link has expired: links last 14 days. Ask the candidate for a new one."
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

/// Whether the link's request can still be answered at `now`.
fn open(target: &WitnessTarget, now: OffsetDateTime) -> bool {
    target.answered_at.is_none() && target.expires_at > now
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
    layout: Layout,
    Path(token): Path<String>,
) -> AppResult<Response> {
    let mut conn = state.pool.acquire().await?;
    let target = target_of(&mut conn, &token, false).await?;
    let now = state.clock.now();
    if !open(&target, now) {
        let page = WitnessDonePage::unusable(layout, &target, now);
        return Ok((StatusCode::GONE, page).into_response());
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
    layout: Layout,
    Path(token): Path<String>,
    CsrfForm(form): CsrfForm<AnswerForm>,
) -> AppResult<Response> {
    let mut tx = state.pool.begin().await?;
    // Locked: the same link sent twice at once is answered once.
    let target = target_of(&mut tx, &token, true).await?;
    let now = state.clock.now();
    if !open(&target, now) {
        let page = WitnessDonePage::unusable(layout, &target, now);
        return Ok((StatusCode::GONE, page).into_response());
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
