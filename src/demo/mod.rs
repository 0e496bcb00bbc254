//! `attest demo`: a cohort on TECIT50761 with a candidate at every status, for a newcomer to
//! click through. Everything after the accounts is done through the portal's own routes, as
//! its users would do it (forms, uploads, judgements, sign-offs, reviews), so the demo data
//! passes every rule and leaves the same audit trail as real use.

mod db;
pub mod scale;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};

use anyhow::{Context, bail};
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::json;
use tower::ServiceExt;
use uuid::Uuid;

use crate::accounts::model::{DisplayName, Email};
use crate::audit::{self, Actor, NewAuditEvent};
use crate::auth::session;
use crate::identity::{Role, UserId};
use crate::state::AppState;

/// The name the demo cohort goes by; its presence means the demo has been made.
pub const COHORT: &str = "Lead DevOps — demo cohort";
/// The password of every demo account.
pub const PASSWORD: &str = "practise-portal-2026";

/// A demo account.
pub struct Account {
    pub email: &'static str,
    pub name: &'static str,
    pub role: Role,
    /// What this person shows in the demo.
    pub shows: &'static str,
}

const fn account(
    email: &'static str,
    name: &'static str,
    role: Role,
    shows: &'static str,
) -> Account {
    Account {
        email,
        name,
        role,
        shows,
    }
}

pub const ADMIN: Account = account(
    "admin@attest.example",
    "Alex Morgan",
    Role::Admin,
    "runs the cohort; reports and exports",
);
const PRIYA: Account = account(
    "priya.shah@attest.example",
    "Priya Shah",
    Role::Assessor,
    "assessor",
);
const TOM: Account = account(
    "tom.becker@attest.example",
    "Tom Becker",
    Role::Assessor,
    "trainee assessor: every sign-off is sampled",
);
const GRACE: Account = account(
    "grace.okafor@attest.example",
    "Grace Okafor",
    Role::Iqa,
    "internal quality assurer",
);

/// What the demo does with a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    NotStarted,
    Drafting,
    Awaiting,
    Mixed,
    Revised,
    PartlyMet,
    Ready,
    Competent,
    Verified,
}

struct Candidate {
    account: Account,
    stage: Stage,
    /// Assessed by Tom (trainee) rather than Priya.
    by_trainee: bool,
}

const fn candidate(
    email: &'static str,
    name: &'static str,
    shows: &'static str,
    stage: Stage,
    by_trainee: bool,
) -> Candidate {
    Candidate {
        account: account(email, name, Role::Candidate, shows),
        stage,
        by_trainee,
    }
}

// Verified ones come first: the first sign-off of each assessor is always sampled for review.
const CANDIDATES: [Candidate; 12] = [
    candidate(
        "kofi.asante@attest.example",
        "Kofi Asante",
        "verified",
        Stage::Verified,
        false,
    ),
    candidate(
        "lena.novak@attest.example",
        "Lena Novak",
        "verified",
        Stage::Verified,
        true,
    ),
    candidate(
        "isaac.mensah@attest.example",
        "Isaac Mensah",
        "competent, awaiting IQA",
        Stage::Competent,
        false,
    ),
    candidate(
        "julia.rossi@attest.example",
        "Julia Rossi",
        "competent, sampled for IQA",
        Stage::Competent,
        true,
    ),
    candidate(
        "george.li@attest.example",
        "George Li",
        "ready for sign-off",
        Stage::Ready,
        false,
    ),
    candidate(
        "hana.sato@attest.example",
        "Hana Sato",
        "ready for sign-off",
        Stage::Ready,
        true,
    ),
    candidate(
        "farah.haddad@attest.example",
        "Farah Haddad",
        "in progress: 16 met, 5 to evidence",
        Stage::PartlyMet,
        false,
    ),
    candidate(
        "ella.fischer@attest.example",
        "Ella Fischer",
        "in progress: not met, revised, awaiting",
        Stage::Revised,
        true,
    ),
    candidate(
        "daniel.kim@attest.example",
        "Daniel Kim",
        "in progress: met, not met and awaiting",
        Stage::Mixed,
        false,
    ),
    candidate(
        "chloe.evans@attest.example",
        "Chloe Evans",
        "in progress: awaiting judgement",
        Stage::Awaiting,
        true,
    ),
    candidate(
        "ben.carter@attest.example",
        "Ben Carter",
        "not started: a draft saved",
        Stage::Drafting,
        false,
    ),
    candidate(
        "amara.nwosu@attest.example",
        "Amara Nwosu",
        "not started",
        Stage::NotStarted,
        true,
    ),
];

/// A piece of evidence of the demo portfolio.
struct Piece {
    title: &'static str,
    method: &'static str,
    activity_on: &'static str,
    statement: &'static str,
    codes: &'static [&'static str],
    file_name: &'static str,
}

const PIECES: [Piece; 5] = [
    Piece {
        title: "DevOps strategy and business case for the payments platform",
        method: "product",
        activity_on: "2026-09-14",
        statement: "I wrote the two-year DevOps strategy for the payments platform and presented it to the \
            digital board. It sets targets for deployment frequency, lead time and change failure rate, \
            names the teams and skills we need, and makes the business case for a platform team of six.\n\n\
            The attached paper is the version the board approved, with the resourcing plan and the \
            benefits we will measure each quarter.",
        codes: &["PC1", "PC2", "PC3", "PC4", "K1", "K2", "K3", "K7"],
        file_name: "devops-strategy-board-paper.pdf",
    },
    Piece {
        title: "Conference talk and internal community of practice",
        method: "witness_testimony",
        activity_on: "2026-10-02",
        statement: "I spoke at DevOpsDays London about how we moved from monthly to daily releases, and I \
            started our internal DevOps community of practice, which now meets every fortnight.\n\n\
            My head of engineering's testimony describes the talk, the questions I took, and how the \
            community has spread trunk-based development to three more teams.",
        codes: &["PC5", "PC6", "K4", "K11"],
        file_name: "witness-testimony-head-of-engineering.txt",
    },
    Piece {
        title: "Incident review: checkout outage of 3 October",
        method: "professional_discussion",
        activity_on: "2026-10-03",
        statement: "A failed database migration took checkout down for 47 minutes. I led the response, \
            escalated to the supplier, and chaired the blameless review.\n\n\
            We discussed the risks I found (migrations without rollback, one person holding the runbook), \
            what I changed (expand-and-contract migrations, paired on-call) and how I kept the supplier \
            and the customer service team informed.",
        codes: &["PC7", "K5", "K6", "K10"],
        file_name: "incident-review-checkout.pdf",
    },
    Piece {
        title: "Quality improvement programme for the delivery pipeline",
        method: "observation",
        activity_on: "2026-10-20",
        statement: "My assessor observed the monthly pipeline review I run with the team leads. We look \
            at the DORA measures, pick one bottleneck and agree an experiment.\n\n\
            This month we cut the test stage from 38 to 14 minutes by running suites in parallel, and \
            agreed the standard every service's pipeline must meet before it reaches production.",
        codes: &["PC8", "PC9", "K8"],
        file_name: "pipeline-review-notes.pdf",
    },
    Piece {
        title: "Reflective account: integrating the new fraud service",
        method: "reflective_account",
        activity_on: "2026-11-05",
        statement: "Integrating the fraud-scoring service changed how three teams release. I reflect on \
            what went well (contract tests agreed early), what did not (we underestimated the load on \
            the shared staging environment), and what I would do differently next time.",
        codes: &["K9", "K12"],
        file_name: "reflective-account-fraud-service.txt",
    },
];

/// What `attest demo` did.
pub enum Outcome {
    Created,
    AlreadyThere,
}

/// Makes the demo cohort unless it is there already.
pub async fn run(state: &AppState) -> anyhow::Result<Outcome> {
    if db::cohort_exists(&mut *state.pool.acquire().await?, COHORT).await? {
        return Ok(Outcome::AlreadyThere);
    }
    let users = create_accounts(state).await?;
    let router = crate::app(state.clone());
    let person = |account: &Account| Person {
        router: router.clone(),
        state: state.clone(),
        user: users[account.email],
        cookie: String::new(),
    };

    let mut admin = person(&ADMIN);
    admin.sign_in().await?;
    admin
        .post_form(
            &format!("/admin/users/{}", users[TOM.email].0),
            &[("name", TOM.name), ("role", "assessor"), ("trainee", "yes")],
        )
        .await?;
    let standard = db::newest_demo_standard(&mut *state.pool.acquire().await?).await?;
    let standard_id = standard.to_string();
    let location = admin
        .post_form(
            "/admin/cohorts",
            &[
                ("name", COHORT),
                ("standard_id", &standard_id),
                ("starts_on", "2026-09-01"),
                ("ends_on", "2027-07-31"),
            ],
        )
        .await?;
    let cohort = location.trim_start_matches("/admin/cohorts/").to_owned();
    let ids: Vec<String> = CANDIDATES
        .iter()
        .map(|c| users[c.account.email].0.to_string())
        .collect();
    let mut fields: Vec<(&str, &str)> = ids.iter().map(|id| ("candidate", id.as_str())).collect();
    admin
        .post_form(&format!("/admin/cohorts/{cohort}/enrolments"), &fields)
        .await?;
    let cohort_id: Uuid = cohort.parse().context("the cohort's address")?;
    let enrolments =
        db::enrolments_by_candidate(&mut *state.pool.acquire().await?, cohort_id).await?;
    let grace = users[GRACE.email].0.to_string();
    for trainee in [false, true] {
        let assessor = if trainee { &TOM } else { &PRIYA };
        let assessor = users[assessor.email].0.to_string();
        let chosen: Vec<String> = CANDIDATES
            .iter()
            .filter(|c| c.by_trainee == trainee)
            .map(|c| enrolments[&users[c.account.email]].to_string())
            .collect();
        fields = chosen.iter().map(|e| ("enrolment", e.as_str())).collect();
        fields.push(("assessor", &assessor));
        fields.push(("iqa", &grace));
        admin
            .post_form(&format!("/admin/cohorts/{cohort}/assignments"), &fields)
            .await?;
    }

    let criteria = db::criteria_by_code(&mut *state.pool.acquire().await?, standard).await?;
    let mut assessors = [person(&PRIYA), person(&TOM)];
    for a in &mut assessors {
        a.sign_in().await?;
    }
    let mut iqa = person(&GRACE);
    iqa.sign_in().await?;
    for c in &CANDIDATES {
        let enrolment = enrolments[&users[c.account.email]];
        let mut candidate = person(&c.account);
        candidate.sign_in().await?;
        let assessor = &assessors[usize::from(c.by_trainee)];
        play(c.stage, &candidate, assessor, &iqa, enrolment, &criteria).await?;
    }
    Ok(Outcome::Created)
}

/// Takes one candidate to their stage.
async fn play(
    stage: Stage,
    candidate: &Person,
    assessor: &Person,
    iqa: &Person,
    enrolment: Uuid,
    criteria: &HashMap<String, Uuid>,
) -> anyhow::Result<()> {
    let new = format!("/enrolments/{enrolment}/evidence/new");
    let submitted = match stage {
        Stage::NotStarted => 0,
        Stage::Drafting => {
            candidate
                .evidence(&new, &PIECES[0], criteria, "save")
                .await?;
            0
        }
        Stage::Awaiting => 2,
        Stage::Mixed | Stage::PartlyMet => 3,
        Stage::Revised | Stage::Ready | Stage::Competent | Stage::Verified => 5,
    };
    let mut evidence = Vec::new();
    for piece in &PIECES[..submitted] {
        evidence.push(candidate.evidence(&new, piece, criteria, "submit").await?);
    }
    let judged = match stage {
        Stage::Awaiting => 0,
        Stage::Mixed => 2,
        _ => evidence.len(),
    };
    for (n, (piece, id)) in PIECES.iter().zip(&evidence).enumerate().take(judged) {
        // Daniel's second piece and Ella's last fall short on one criterion.
        let short = match stage {
            Stage::Mixed if n == 1 => Some("K6"),
            Stage::Revised if n == 4 => Some("K12"),
            _ => None,
        };
        assessor.judge(id, piece, criteria, short).await?;
    }
    if stage == Stage::Revised {
        let last = evidence.last().context("Ella's last piece")?;
        let draft = candidate
            .post_form(&format!("/evidence/{last}/revise"), &[])
            .await?;
        let revised = Piece {
            statement: "Integrating the fraud-scoring service changed how three teams release. \
                I reflect on what went well, what did not, and what I would do differently.\n\n\
                As my assessor asked, I have added how I now apply continuous improvement: a \
                retrospective after every integration, with one change we try and measure the next time.",
            ..PIECES[4]
        };
        candidate
            .evidence(&draft, &revised, criteria, "submit")
            .await?;
    }
    if matches!(stage, Stage::Competent | Stage::Verified) {
        assessor
            .post_form(
                &format!("/enrolments/{enrolment}/sign-off"),
                &[("declaration", "yes")],
            )
            .await?;
    }
    if stage == Stage::Verified {
        let sign_off =
            db::newest_sign_off(&mut *iqa.state.pool.acquire().await?, enrolment).await?;
        iqa.post_form(
            &format!("/sign-offs/{sign_off}/review"),
            &[("decision", "agree")],
        )
        .await?;
    }
    Ok(())
}

/// The demo accounts, each with [`PASSWORD`], created as `attest user add` would.
async fn create_accounts(state: &AppState) -> anyhow::Result<HashMap<&'static str, UserId>> {
    let hash = state.passwords.hash(PASSWORD).await?;
    let mut tx = state.pool.begin().await?;
    let mut users = HashMap::new();
    for account in accounts() {
        let email = Email::parse(account.email).map_err(anyhow::Error::msg)?;
        let name = DisplayName::parse(account.name).map_err(anyhow::Error::msg)?;
        let id = crate::accounts::create_from_command(
            &mut tx,
            &email,
            &name,
            &[account.role],
            Some(&hash),
            "demo",
        )
        .await
        .with_context(|| format!("cannot create the demo account {}", account.email))?;
        users.insert(account.email, id);
    }
    tx.commit().await?;
    Ok(users)
}

/// Someone using the portal: their session cookie, and the routes they go through.
struct Person {
    router: Router,
    state: AppState,
    user: UserId,
    cookie: String,
}

impl Person {
    /// A session for this person, recorded as a sign-in by the demo (no password is typed).
    async fn sign_in(&mut self) -> anyhow::Result<()> {
        let mut tx = self.state.pool.begin().await?;
        let cookie = session::start(
            &mut tx,
            &self.state.settings,
            self.user,
            self.state.clock.now(),
        )
        .await?;
        audit::record(
            &mut tx,
            NewAuditEvent {
                actor: &Actor::cli(),
                action: "auth.login_succeeded",
                entity_type: "user",
                entity_id: self.user.to_string(),
                detail: json!({ "via": "demo" }),
            },
        )
        .await?;
        tx.commit().await?;
        self.cookie = format!("{}={}", cookie.name(), cookie.value());
        Ok(())
    }

    async fn send(
        &self,
        method: Method,
        uri: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> anyhow::Result<(StatusCode, Option<String>, String)> {
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::COOKIE, &self.cookie)
            .header("sec-fetch-site", "same-origin");
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        let mut request = request.body(Body::from(body))?;
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))));
        let response = self.router.clone().oneshot(request).await?;
        let status = response.status();
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(str::to_owned);
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await?;
        Ok((
            status,
            location,
            String::from_utf8_lossy(&body).into_owned(),
        ))
    }

    /// The form token of this person's pages.
    async fn form_token(&self) -> anyhow::Result<String> {
        let (_, _, page) = self.send(Method::GET, "/account", None, Vec::new()).await?;
        let marker = "name=\"csrf_token\" value=\"";
        let start = page.find(marker).context("a form token on /account")? + marker.len();
        let end = page[start..].find('"').context("the end of the token")?;
        Ok(page[start..start + end].to_owned())
    }

    /// Posts a form as the page would; the portal must answer with a redirect, whose
    /// address is returned.
    async fn post_form(&self, uri: &str, fields: &[(&str, &str)]) -> anyhow::Result<String> {
        let token = self.form_token().await?;
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("csrf_token", &token)
            .extend_pairs(fields)
            .finish();
        let answer = self
            .send(
                Method::POST,
                uri,
                Some("application/x-www-form-urlencoded"),
                body.into_bytes(),
            )
            .await?;
        redirected(uri, answer)
    }

    /// Creates (or, for a revision's draft address, completes) a piece of evidence with its
    /// file, and saves or submits it; returns the evidence id.
    async fn evidence(
        &self,
        uri: &str,
        piece: &Piece,
        criteria: &HashMap<String, Uuid>,
        action: &str,
    ) -> anyhow::Result<String> {
        let uri = if uri.starts_with("/evidence/") {
            format!("{}/edit", uri.trim_end_matches("/edit"))
        } else {
            uri.to_owned()
        };
        let token = self.form_token().await?;
        let boundary = "attest-demo-boundary-51c0";
        let mut body = Vec::new();
        let mut text = |name: &str, value: &str| {
            body.extend_from_slice(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                    .as_bytes(),
            );
        };
        text("csrf_token", &token);
        text("title", piece.title);
        text("method", piece.method);
        text("activity_on", piece.activity_on);
        text("statement", piece.statement);
        for code in piece.codes {
            text("claim", &criteria[*code].to_string());
        }
        text("declaration", "yes");
        text("action", action);
        let is_revision = uri.ends_with("/edit");
        if !is_revision {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\n\
                     Content-Type: application/octet-stream\r\n\r\n",
                    piece.file_name
                )
                .as_bytes(),
            );
            body.extend_from_slice(&file_for(piece));
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let answer = self
            .send(
                Method::POST,
                &uri,
                Some(&format!("multipart/form-data; boundary={boundary}")),
                body,
            )
            .await?;
        let location = redirected(&uri, answer)?;
        Ok(location
            .trim_start_matches("/evidence/")
            .trim_end_matches("/edit")
            .to_owned())
    }

    /// Judges every claim of a piece met, with all five checks, except `short`.
    async fn judge(
        &self,
        evidence: &str,
        piece: &Piece,
        criteria: &HashMap<String, Uuid>,
        short: Option<&str>,
    ) -> anyhow::Result<()> {
        let mut fields: Vec<(String, String)> = Vec::new();
        for code in piece.codes {
            let id = criteria[*code];
            if short == Some(*code) {
                fields.push((format!("decision-{id}"), "not_met".into()));
                fields.push((
                    format!("feedback-{id}"),
                    "Good account of what happened. Please add how you apply continuous \
                     improvement afterwards: what you measure and what you changed as a result."
                        .into(),
                ));
            } else {
                fields.push((format!("decision-{id}"), "met".into()));
                for check in ["valid", "authentic", "current", "sufficient", "reliable"] {
                    fields.push((format!("check-{id}"), check.into()));
                }
            }
        }
        let borrowed: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.post_form(&format!("/evidence/{evidence}/judgements"), &borrowed)
            .await?;
        Ok(())
    }
}

fn redirected(
    uri: &str,
    (status, location, body): (StatusCode, Option<String>, String),
) -> anyhow::Result<String> {
    match (status, location) {
        (StatusCode::SEE_OTHER, Some(location)) => Ok(location),
        _ => {
            let excerpt: String = body.chars().take(400).collect();
            bail!("{uri} answered {status}: {excerpt}")
        }
    }
}

/// A small file for a piece of evidence: a one-page PDF or a text file, by its name.
fn file_for(piece: &Piece) -> Vec<u8> {
    let first_paragraph = piece.statement.split("\n\n").next().unwrap_or_default();
    if piece.file_name.ends_with(".pdf") {
        pdf(piece.title, first_paragraph)
    } else {
        format!("{}\r\n\r\n{}\r\n", piece.title, piece.statement).into_bytes()
    }
}

/// A valid one-page PDF showing a title and a paragraph, in Helvetica.
fn pdf(title: &str, text: &str) -> Vec<u8> {
    let escape = |s: &str| {
        s.chars()
            .filter(char::is_ascii)
            .collect::<String>()
            .replace('\\', "\\\\")
            .replace('(', "\\(")
            .replace(')', "\\)")
    };
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if line.len() + word.len() > 80 {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    let mut content = format!("BT /F1 16 Tf 56 780 Td ({}) Tj ET\n", escape(title));
    for (n, l) in lines.iter().enumerate() {
        content.push_str(&format!(
            "BT /F1 11 Tf 56 {} Td ({}) Tj ET\n",
            750 - 16 * n,
            escape(l)
        ));
    }
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>".to_owned(),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
        format!("<< /Length {} >>\nstream\n{content}endstream", content.len()),
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (n, object) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{object}\nendobj\n", n + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// The accounts, for printing.
pub fn accounts() -> Vec<&'static Account> {
    [&ADMIN, &PRIYA, &TOM, &GRACE]
        .into_iter()
        .chain(CANDIDATES.iter().map(|c| &c.account))
        .collect()
}
