//! `attest demo`: a cohort on TECIT50761 with a candidate at every status, for a newcomer to
//! click through. Every step is taken through the same domain functions the portal's forms
//! call (the cohort, enrolments, evidence with its files, judgements, sign-offs, reviews), as
//! the person who would take it, so the demo data passes every rule and each change has the
//! audit event it would have in real use (nobody signs in, so there are no sign-in events).

mod db;
pub mod scale;

use std::collections::HashMap;

use anyhow::{Context, bail};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::accounts::model::{DisplayName, Email};
use crate::assessments::{judging, sign_off};
use crate::audit::Actor;
use crate::cohorts::{self, model::NewCohort};
use crate::evidence::actions::{self, Draft, Limits, Revision};
use crate::evidence::judgements::JudgementInput;
use crate::evidence::model::EvidenceFields;
use crate::forms::FormErrors;
use crate::identity::{Role, UserId, Viewer};
use crate::ids::{EnrolmentId, EvidenceId};
use crate::quality::{self, ReviewForm};
use crate::state::AppState;
use crate::users::{self, ProfileChange};

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
    /// Signed off, then the IQA disagreed: actions wait for the assessor.
    Disagreed,
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
        "ready again: the IQA disagreed, two actions to answer",
        Stage::Disagreed,
        true,
    ),
    candidate(
        "farah.haddad@attest.example",
        "Farah Haddad",
        "in progress: 16 met, an observation record to confirm",
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

/// The observation the assessor records of Farah's pipeline review, for her to confirm.
const OBSERVATION: Piece = Piece {
    title: "Observation: monthly pipeline review",
    method: "observation",
    activity_on: "2026-10-20",
    statement: "I observed Farah chair the monthly pipeline review with four team leads (45 minutes, \
        on site).\n\n\
        She opened with the DORA measures for the month, led the group to the slowest stage (tests, \
        38 minutes), and had the leads agree one experiment: run the suites in parallel. She set an \
        owner and a date, and closed by agreeing the standard every service's pipeline must meet \
        before production. She handled a disagreement about flaky tests calmly and kept to time.",
    codes: &["PC8", "PC9", "K8"],
    file_name: "observation-notes-pipeline-review.pdf",
};

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
    let person = |account: &Account| Person {
        id: users[account.email],
        roles: [account.role],
        actor: Actor::person(users[account.email], account.email, None),
    };
    let admin = person(&ADMIN);
    let mut tx = state.pool.begin().await?;
    make_trainee(&mut tx, &admin, users[TOM.email], state.clock.now()).await?;
    let standard = crate::standards::db::latest_id_by_urn(&mut tx, "TECIT50761")
        .await?
        .context("the standard TECIT50761 is loaded")?;
    let new_cohort = NewCohort::parse(COHORT, "2026-09-01", "2027-07-31").map_err(refused)?;
    let cohort = cohorts::create_cohort(&mut tx, &admin.actor, standard, &new_cohort)
        .await?
        .context("a cohort of the demo's name exists")?;
    let candidates: Vec<UserId> = CANDIDATES.iter().map(|c| users[c.account.email]).collect();
    cohorts::enrol_candidates(&mut tx, &admin.actor, cohort, &candidates, "picked").await?;
    let enrolments = db::enrolments_by_candidate(&mut tx, cohort).await?;
    for trainee in [false, true] {
        let assessor = if trainee { &TOM } else { &PRIYA };
        let chosen: Vec<Uuid> = CANDIDATES
            .iter()
            .filter(|c| c.by_trainee == trainee)
            .map(|c| enrolments[&users[c.account.email]].0)
            .collect();
        let assignment = cohorts::Assignment {
            enrolments: &chosen,
            assessor: Some(users[assessor.email]),
            iqa: Some(users[GRACE.email]),
        };
        cohorts::assign_staff(&mut tx, &admin.actor, cohort, &assignment)
            .await?
            .map_err(|names| anyhow::anyhow!("cannot assign {}", names.join(", ")))?;
    }
    let criteria = db::criteria_by_code(&mut tx, standard).await?;
    tx.commit().await?;

    let people = People {
        state,
        assessors: [person(&PRIYA), person(&TOM)],
        iqa: person(&GRACE),
        criteria: &criteria,
    };
    for c in &CANDIDATES {
        let enrolment = enrolments[&users[c.account.email]];
        let candidate = person(&c.account);
        people.play(c, &candidate, enrolment).await?;
    }
    Ok(Outcome::Created)
}

/// Makes the demo's second assessor a trainee, as an admin would on their account page.
async fn make_trainee(
    conn: &mut PgConnection,
    admin: &Person,
    id: UserId,
    now: time::OffsetDateTime,
) -> anyhow::Result<()> {
    let user = crate::accounts::db::find(&mut *conn, id)
        .await?
        .context("the trainee's account")?;
    let change = ProfileChange {
        name: DisplayName::parse(&user.name).map_err(anyhow::Error::msg)?,
        roles: user.roles.clone(),
        trainee: true,
    };
    users::change_profile(conn, &admin.actor, &user, &change, now)
        .await?
        .map_err(refused)
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

/// Someone in the demo: their account and role, and how the audit trail names them.
struct Person {
    id: UserId,
    roles: [Role; 1],
    actor: Actor,
}

impl Person {
    fn viewer(&self) -> Viewer<'_> {
        Viewer {
            id: self.id,
            roles: &self.roles,
        }
    }
}

/// The people who act on every candidate's work, and the criteria they claim and judge.
struct People<'a> {
    state: &'a AppState,
    /// Priya, then Tom (the trainee).
    assessors: [Person; 2],
    iqa: Person,
    criteria: &'a HashMap<String, Uuid>,
}

impl People<'_> {
    /// Takes one candidate to their stage, each step in its own transaction as a request
    /// of the portal would make it.
    async fn play(
        &self,
        c: &Candidate,
        candidate: &Person,
        enrolment: EnrolmentId,
    ) -> anyhow::Result<()> {
        let stage = c.stage;
        let assessor = &self.assessors[usize::from(c.by_trainee)];
        let submitted = match stage {
            Stage::NotStarted => 0,
            Stage::Drafting => {
                self.write_evidence(candidate, enrolment, &PIECES[0], false)
                    .await?;
                0
            }
            Stage::Awaiting => 2,
            Stage::Mixed | Stage::PartlyMet => 3,
            Stage::Revised
            | Stage::Ready
            | Stage::Disagreed
            | Stage::Competent
            | Stage::Verified => 5,
        };
        let mut evidence = Vec::new();
        for piece in &PIECES[..submitted] {
            evidence.push(
                self.write_evidence(candidate, enrolment, piece, true)
                    .await?,
            );
        }
        let judged = match stage {
            Stage::Awaiting => 0,
            Stage::Mixed => 2,
            _ => evidence.len(),
        };
        for (n, id) in evidence.iter().enumerate().take(judged) {
            // Daniel's second piece and Ella's last fall short on one criterion.
            let short = match stage {
                Stage::Mixed if n == 1 => Some("K6"),
                Stage::Revised if n == 4 => Some("K12"),
                _ => None,
            };
            self.judge(assessor, *id, short).await?;
        }
        if stage == Stage::PartlyMet {
            self.record_observation(assessor, enrolment).await?;
        }
        if stage == Stage::Revised {
            let last = evidence.last().context("Ella's last piece")?;
            self.revise(candidate, enrolment, *last).await?;
        }
        let mut signed = None;
        if matches!(stage, Stage::Disagreed | Stage::Competent | Stage::Verified) {
            let mut tx = self.state.pool.begin().await?;
            let percent = self.state.settings.iqa_sample_percent;
            let clock = &self.state.clock;
            let (_, id) = sign_off::sign_off(
                &mut tx,
                assessor.viewer(),
                &assessor.actor,
                enrolment,
                percent,
                clock,
            )
            .await?;
            tx.commit().await?;
            signed = Some(id);
        }
        if let (Stage::Verified | Stage::Disagreed, Some(id)) = (stage, signed) {
            let mut tx = self.state.pool.begin().await?;
            let agree = if stage == Stage::Verified {
                ReviewForm {
                    decision: "agree".into(),
                    actions: String::new(),
                    submission_key: String::new(),
                }
            } else {
                ReviewForm {
                    decision: "disagree".into(),
                    actions:
                        "Observe PC1 in person: the documents alone do not show Hana leading.\n\
                              Ask for a witness statement from the service owner for PC6."
                            .into(),
                    submission_key: String::new(),
                }
            };
            let iqa = &self.iqa;
            quality::review_sign_off(
                &mut tx,
                iqa.viewer(),
                &iqa.actor,
                id,
                &agree,
                &self.state.clock,
            )
            .await?
            .map_err(refused)?;
            tx.commit().await?;
        }
        Ok(())
    }

    /// A new piece of evidence with its file, saved as a draft or submitted; returns its id.
    async fn write_evidence(
        &self,
        candidate: &Person,
        enrolment: EnrolmentId,
        piece: &Piece,
        submit: bool,
    ) -> anyhow::Result<EvidenceId> {
        let mut tx = self.state.pool.begin().await?;
        let id = actions::start_draft(&mut tx, enrolment).await?;
        let limits = Limits::of(&self.state.settings);
        actions::attach_file(&mut tx, id, piece.file_name, file_for(piece), limits).await?;
        let draft = Draft {
            by: &candidate.actor,
            enrolment,
            id,
            existing: None,
        };
        let fields = self.fields(piece);
        let added = [piece.file_name.to_owned()];
        if submit {
            actions::submit_draft(&mut tx, &draft, &fields, &added, &self.state.clock)
                .await?
                .map_err(refused)?;
        } else {
            let now = self.state.clock.now();
            actions::save_draft(&mut tx, &draft, &fields, &added, now).await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// The assessor records an observation and sends it to the candidate to confirm.
    async fn record_observation(
        &self,
        assessor: &Person,
        enrolment: EnrolmentId,
    ) -> anyhow::Result<EvidenceId> {
        let mut tx = self.state.pool.begin().await?;
        let id = actions::start_record(&mut tx, enrolment, assessor.id).await?;
        let limits = Limits::of(&self.state.settings);
        let piece = &OBSERVATION;
        actions::attach_file(&mut tx, id, piece.file_name, file_for(piece), limits).await?;
        let draft = Draft {
            by: &assessor.actor,
            enrolment,
            id,
            existing: None,
        };
        let fields = self.fields(piece);
        let added = [piece.file_name.to_owned()];
        let now = self.state.clock.now();
        actions::send_record(&mut tx, &draft, &fields, &added, now)
            .await?
            .map_err(refused)?;
        tx.commit().await?;
        Ok(id)
    }

    /// The evidence form of a piece, as the candidate fills it in, with the declaration.
    fn fields(&self, piece: &Piece) -> EvidenceFields {
        EvidenceFields {
            title: piece.title.into(),
            statement: piece.statement.into(),
            method: piece.method.into(),
            activity_on: piece.activity_on.into(),
            claims: piece
                .codes
                .iter()
                .map(|code| (self.criteria[*code], String::new()))
                .collect(),
            declaration: true,
        }
    }

    /// Ella revises her last piece as her assessor asked, and submits version 2.
    async fn revise(
        &self,
        candidate: &Person,
        enrolment: EnrolmentId,
        evidence: EvidenceId,
    ) -> anyhow::Result<()> {
        let mut tx = self.state.pool.begin().await?;
        let who = candidate.viewer();
        let Revision::Started { draft: id, .. } =
            actions::revise(&mut tx, who, &candidate.actor, evidence).await?
        else {
            bail!("Ella's last piece could not be revised");
        };
        tx.commit().await?;
        // The submission is a request of its own, as in the portal.
        let mut tx = self.state.pool.begin().await?;
        crate::evidence::db::lock_own_draft(&mut tx, id, candidate.id)
            .await?
            .context("Ella's draft")?;
        let existing = crate::evidence::db::find_visible(&mut tx, id, who)
            .await?
            .context("Ella's revision")?;
        let draft = Draft {
            by: &candidate.actor,
            enrolment,
            id,
            existing: Some(&existing),
        };
        let revised = Piece {
            statement: "Integrating the fraud-scoring service changed how three teams release. \
                I reflect on what went well, what did not, and what I would do differently.\n\n\
                As my assessor asked, I have added how I now apply continuous improvement: a \
                retrospective after every integration, with one change we try and measure the next time.",
            ..PIECES[4]
        };
        let fields = self.fields(&revised);
        actions::submit_draft(&mut tx, &draft, &fields, &[], &self.state.clock)
            .await?
            .map_err(refused)?;
        tx.commit().await?;
        Ok(())
    }

    /// Judges every claim of evidence version `id` met, with all five checks, except `short`.
    async fn judge(
        &self,
        assessor: &Person,
        id: EvidenceId,
        short: Option<&str>,
    ) -> anyhow::Result<()> {
        let read = |claims: &[(Uuid, String)]| {
            let inputs = claims
                .iter()
                .map(|(criterion_id, code)| {
                    let met = short != Some(code.as_str());
                    JudgementInput {
                        criterion_id: *criterion_id,
                        code: code.clone(),
                        met: Some(met),
                        feedback: if met {
                            String::new()
                        } else {
                            "Good account of what happened. Please add how you apply continuous \
                             improvement afterwards: what you measure and what you changed as a result."
                                .into()
                        },
                        checks: [met; 5],
                    }
                })
                .collect();
            (inputs, FormErrors::default())
        };
        let mut tx = self.state.pool.begin().await?;
        match judging::judge_version(
            &mut tx,
            assessor.viewer(),
            &assessor.actor,
            id,
            None,
            if short.is_some() {
                "A clear, honest account overall. One criterion needs more: see its feedback."
            } else {
                ""
            },
            read,
        )
        .await?
        {
            judging::Judging::Saved(_) => {}
            judging::Judging::Refused(_, errors) => return Err(refused(errors)),
            judging::Judging::AlreadyJudged => bail!("the demo judged a version twice"),
        }
        tx.commit().await?;
        Ok(())
    }
}

/// A form's problems, as an error of the demo: its data broke a rule it should keep.
#[expect(clippy::needless_pass_by_value, reason = "used as map_err(refused)")]
fn refused(errors: FormErrors) -> anyhow::Error {
    anyhow::anyhow!("the demo's data was refused: {errors:?}")
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
