//! `attest demo --scale N`: a second cohort of N candidates for trying the portal at a real
//! centre's size. Rows are written with set-based statements (a row at a time through the
//! routes would take hours), but they are the rows the portal itself would write: submitted
//! evidence carries its real declaration digest, judgements satisfy the VACSR and feedback
//! rules, sign-offs rest on their real basis, statuses are stored by the rule in
//! `status::model`, and one audit event records the whole load, in one transaction.
//!
//! Each candidate has ten evidence items claiming the 21 criteria between them, and stands at
//! one of ten points by the last digit of their number: not started (drafts only), awaiting
//! every judgement (two in ten), awaiting one item, one criterion not met, a not-met item
//! revised and awaiting, ready for sign-off, competent, verified, and signed off then withdrawn
//! by an IQA disagreement; and one in fifty (of those awaiting one item) is withdrawn.

use anyhow::bail;
use serde_json::json;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::db;
use crate::assessments::sign_off;
use crate::audit::{self, Actor, NewAuditEvent};
use crate::evidence::model::{DeclaredContent, DraftContent};
use crate::ids::EnrolmentId;
use crate::state::AppState;
use crate::status::db as status_db;

/// Candidates per assessor.
pub const PER_ASSESSOR: u32 = 1_000;
/// Evidence items per candidate.
const ITEMS: i32 = 10;

/// The name of the scale cohort of `n` candidates.
pub fn cohort_name(n: u32) -> String {
    format!("Lead DevOps — scale cohort of {n}")
}

/// What was made.
#[derive(Debug)]
pub enum Outcome {
    Created { assessors: u32 },
    AlreadyThere,
}

/// The titles of the ten items, in the order of the criteria they claim.
const TITLES: [&str; ITEMS as usize] = [
    "Release pipeline redesign",
    "Incident review of the March outage",
    "Infrastructure as code for the test estate",
    "Team runbook for deployments",
    "Monitoring and alerting plan",
    "Mentoring a junior engineer",
    "Cost review of cloud accounts",
    "Security patching process",
    "Capacity plan for peak season",
    "Retrospective on the migration",
];

const FIRST_NAMES: [&str; 24] = [
    "Aisha", "Ben", "Chloe", "Dev", "Ella", "Finn", "Grace", "Hamza", "Isla", "Jack", "Kiran",
    "Leah", "Mohammed", "Nia", "Oliver", "Poppy", "Rhys", "Sofia", "Tom", "Uma", "Vikram",
    "Willow", "Yusuf", "Zara",
];
const SURNAMES: [&str; 20] = [
    "Ahmed", "Brown", "Campbell", "Davies", "Evans", "Fraser", "Green", "Hughes", "Iqbal", "Jones",
    "Khan", "Lewis", "Murphy", "Nowak", "O'Brien", "Patel", "Roberts", "Singh", "Taylor", "Walker",
];

/// Adds the scale cohort of `n` candidates, unless it is there already.
pub async fn run(state: &AppState, n: u32, password: &str) -> anyhow::Result<Outcome> {
    if n == 0 {
        bail!("--scale needs at least one candidate");
    }
    let name = cohort_name(n);
    let mut tx = state.pool.begin().await?;
    // Two runs at once: the second waits here, then finds the cohort.
    db::lock_name(&mut tx, &name).await?;
    if db::cohort_exists(&mut tx, &name).await? {
        return Ok(Outcome::AlreadyThere);
    }
    // One hash for every scale account: hashing ten thousand passwords would take minutes,
    // and these accounts share one published password anyway.
    let hash = state.passwords.hash(password).await?;
    let assessors = n.div_ceil(PER_ASSESSOR);
    let now = state.clock.now();
    let cohort = people_and_enrolments(&mut tx, &name, n, assessors, &hash, now).await?;
    evidence(&mut tx, cohort, now).await?;
    // The planner sees this transaction's own rows only once they are analysed: without it,
    // every statement below is planned for empty tables.
    db::analyze_loaded_tables(&mut tx).await?;
    // Version 1 of every item is submitted and judged before the revisions are made.
    declare(&mut tx, now).await?;
    judgements(&mut tx).await?;
    revisions(&mut tx, now).await?;
    declare(&mut tx, now).await?;
    sign_offs(&mut tx, now).await?;
    // Every fiftieth candidate left the programme.
    db::withdraw_every_fiftieth(&mut tx, cohort, now).await?;
    db::analyze_loaded_tables(&mut tx).await?;
    let ids = db::enrolment_ids(&mut tx, cohort).await?;
    for chunk in ids.chunks(500) {
        status_db::refresh_many(&mut tx, chunk).await?;
    }
    audit::record(
        &mut tx,
        NewAuditEvent {
            actor: &Actor::cli(),
            action: "demo.scale_cohort_created",
            entity_type: "cohort",
            entity_id: cohort.to_string(),
            detail: json!({ "name": name, "candidates": n, "assessors": assessors, "items_each": ITEMS }),
        },
    )
    .await?;
    tx.commit().await?;
    // Planner statistics and the visibility map for the new rows, so the first pages are
    // planned well and read from indexes alone.
    db::vacuum_analyze(&mut *state.pool.acquire().await?).await?;
    Ok(Outcome::Created { assessors })
}

/// The accounts, the cohort and its enrolments; returns the cohort.
async fn people_and_enrolments(
    conn: &mut PgConnection,
    name: &str,
    n: u32,
    assessors: u32,
    hash: &str,
    now: OffsetDateTime,
) -> sqlx::Result<Uuid> {
    let names: Vec<String> = (0..n as usize)
        .map(|i| {
            format!(
                "{} {}",
                FIRST_NAMES[i % FIRST_NAMES.len()],
                SURNAMES[(i / FIRST_NAMES.len()) % SURNAMES.len()]
            )
        })
        .collect();
    db::insert_scale_accounts(&mut *conn, &names, hash, assessors).await?;
    let cohort = db::insert_scale_cohort(&mut *conn, name, now).await?;
    db::enrol_scale_candidates(&mut *conn, cohort, n, now).await?;
    // Which point each candidate stands at, by the number in their address.
    db::create_scale_class(conn, cohort).await?;
    Ok(cohort)
}

/// Ten draft items per candidate, claiming the 21 criteria between them (item i claims the
/// criteria whose place in the standard is i, i + 10 and i + 20).
async fn evidence(conn: &mut PgConnection, cohort: Uuid, now: OffsetDateTime) -> sqlx::Result<()> {
    let titles: Vec<String> = TITLES.iter().map(|t| (*t).to_owned()).collect();
    db::insert_draft_items(&mut *conn, &titles, now).await?;
    db::insert_draft_claims(conn, cohort, &titles).await
}

/// Submits every draft version of the cohort with its real declaration digest, except those of
/// candidates who have not started.
async fn declare(conn: &mut PgConnection, now: OffsetDateTime) -> sqlx::Result<()> {
    let rows = db::drafts_to_declare(&mut *conn).await?;
    let mut ids = Vec::with_capacity(rows.len());
    let mut digests = Vec::with_capacity(rows.len());
    for (evidence_id, item_id, version, title, statement, method, activity_on, codes) in rows {
        let content = DraftContent {
            title,
            statement,
            method,
            activity_on,
        };
        let claims: Vec<(String, String)> = codes.into_iter().map(|c| (c, String::new())).collect();
        let digest = DeclaredContent {
            item_id,
            version,
            content: &content,
            claims: &claims,
            files: &[],
        }
        .sha256();
        ids.push(evidence_id);
        digests.push(digest.to_vec());
    }
    db::submit_versions(conn, &ids, &digests, now).await
}

/// The judgements of version 1 of every item, by each point's pattern.
async fn judgements(conn: &mut PgConnection) -> sqlx::Result<()> {
    db::insert_judgements(conn, TITLES[0], TITLES[TITLES.len() - 1]).await
}

/// Candidates at point 5 revise the item judged not met: version 2, claiming the same criteria.
async fn revisions(conn: &mut PgConnection, now: OffsetDateTime) -> sqlx::Result<()> {
    db::insert_revisions(&mut *conn, now, TITLES[0]).await?;
    db::copy_claims_to_revisions(conn).await
}

/// Sign-offs on their real basis for points 7, 8 and 9; the IQA agrees with those at 8 and
/// disagrees with those at 9.
async fn sign_offs(conn: &mut PgConnection, now: OffsetDateTime) -> sqlx::Result<()> {
    let chosen = db::enrolments_to_sign_off(&mut *conn).await?;
    let mut ids = Vec::with_capacity(chosen.len());
    let mut assessors = Vec::with_capacity(chosen.len());
    let mut bases = Vec::with_capacity(chosen.len());
    let mut digests = Vec::with_capacity(chosen.len());
    let mut sampled = Vec::with_capacity(chosen.len());
    for (enrolment, assessor, k) in chosen {
        let basis = crate::assessments::db::sign_off_basis(conn, EnrolmentId(enrolment)).await?;
        ids.push(enrolment);
        assessors.push(assessor);
        digests.push(sign_off::basis_sha256(&basis).to_vec());
        bases.push(json!(basis));
        sampled.push(k % 10 != 7);
    }
    db::insert_sign_offs(
        &mut *conn, &ids, &assessors, &bases, &digests, &sampled, now,
    )
    .await?;
    db::insert_reviews(conn, now).await
}
