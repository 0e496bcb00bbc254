//! `attest status verify`: recomputes every enrolment's status from its records with the rule
//! and compares it with what is stored, and the cohort counts with the stored rows; `--repair`
//! rewrites what differs, with an audit event.

use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use super::db;
use super::model::{EnrolmentState, Sources};
use crate::audit::{self, Actor, NewAuditEvent};
use crate::ids::EnrolmentId;

/// Enrolments compared per round trip.
const BATCH: i64 = 500;

/// One stored value that differs from the recomputed one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub enrolment_id: EnrolmentId,
    /// The criterion's id, or empty for a field of the enrolment.
    pub criterion: String,
    pub field: &'static str,
    pub stored: String,
    pub computed: String,
}

/// What a verification found.
#[derive(Debug, Default)]
pub struct Outcome {
    pub checked: usize,
    /// Enrolments whose stored status differs (or is missing).
    pub wrong: Vec<Uuid>,
    /// The first differences found, at most [`Outcome::SHOWN`].
    pub mismatches: Vec<Mismatch>,
    /// Cohort counts that differ from the stored rows, in words.
    pub wrong_counts: Vec<String>,
    pub repaired: bool,
}

impl Outcome {
    /// Whether everything stored matched.
    pub fn is_clean(&self) -> bool {
        self.wrong.is_empty() && self.wrong_counts.is_empty()
    }
}

impl Outcome {
    pub const SHOWN: usize = 20;
}

/// Compares every enrolment's stored status with the rule's answer over its records, and
/// rewrites the wrong ones when `repair` is set.
pub async fn verify(pool: &PgPool, repair: bool) -> sqlx::Result<Outcome> {
    let mut outcome = Outcome::default();
    let mut after: Option<Uuid> = None;
    loop {
        // One snapshot per batch, so records and stored rows are read as of one moment.
        let mut tx = pool.begin().await?;
        crate::db::set_read_only_snapshot(&mut tx).await?;
        let ids = db::enrolment_ids_after(&mut tx, after, BATCH).await?;
        let Some(last) = ids.last().copied() else {
            break;
        };
        let computed: Vec<EnrolmentState> = db::sources(&mut tx, &ids)
            .await?
            .iter()
            .map(Sources::evaluate)
            .collect();
        let stored = db::stored(&mut tx, &ids).await?;
        tx.commit().await?;
        for state in &computed {
            outcome.checked += 1;
            let differences = match stored.iter().find(|s| s.enrolment_id == state.enrolment_id) {
                Some(kept) => kept.differences(state),
                None => vec![(
                    String::new(),
                    "status",
                    "missing".to_owned(),
                    state.status.as_str().to_owned(),
                )],
            };
            if differences.is_empty() {
                continue;
            }
            outcome.wrong.push(state.enrolment_id.0);
            for (criterion, field, stored, computed) in differences {
                if outcome.mismatches.len() < Outcome::SHOWN {
                    outcome.mismatches.push(Mismatch {
                        enrolment_id: state.enrolment_id,
                        criterion,
                        field,
                        stored,
                        computed,
                    });
                }
            }
        }
        after = Some(last);
    }
    {
        let mut conn = pool.acquire().await?;
        outcome.wrong_counts = db::count_differences(&mut conn)
            .await?
            .into_iter()
            .map(|d| {
                format!(
                    "cohort {} assessor {} {}{}: stored {} enrolments and {} claims waiting, counted {} and {}",
                    d.cohort_id,
                    d.assessor_id.map_or_else(|| "none".to_owned(), |a| a.to_string()),
                    d.status,
                    if d.withdrawn { " withdrawn" } else { "" },
                    d.kept.0,
                    d.kept.1,
                    d.counted.0,
                    d.counted.1
                )
            })
            .collect();
    }
    if repair && !outcome.is_clean() {
        let mut tx = pool.begin().await?;
        for chunk in outcome.wrong.chunks(500) {
            db::refresh_many(&mut tx, chunk).await?;
        }
        // The counts follow from the rows just made right.
        db::recount(&mut tx).await?;
        audit::record(
            &mut tx,
            NewAuditEvent {
                actor: &Actor::cli(),
                action: "status.repaired",
                entity_type: "enrolment_status",
                entity_id: outcome.wrong.len().to_string(),
                detail: json!({ "enrolments": outcome.wrong, "counts": outcome.wrong_counts }),
            },
        )
        .await?;
        tx.commit().await?;
        outcome.repaired = true;
    }
    Ok(outcome)
}

/// The version of the status rule in [`super::model`]: raised whenever the rule changes, so
/// that statuses stored by an older rule are worked out again.
pub const RULE_VERSION: i32 = 2;

/// What opening the database did to the stored statuses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Upkeep {
    /// Enrolments that had no stored status and now have one.
    pub filled: usize,
    /// Enrolments worked out again because the rule changed.
    pub recomputed: usize,
}

/// Brings the stored statuses up to date when the database is opened, after the migrations,
/// one process at a time: stores the status of enrolments that have none, and works out every
/// status again when the rows were made by an older rule. The rows stay readable meanwhile.
pub async fn bring_up_to_date(pool: &PgPool) -> sqlx::Result<Upkeep> {
    let mut guard = pool.acquire().await?;
    db::lock_upkeep(&mut guard).await?;
    let done = upkeep(pool, &mut guard).await;
    db::unlock_upkeep(&mut guard).await?;
    done
}

async fn upkeep(pool: &PgPool, conn: &mut sqlx::PgConnection) -> sqlx::Result<Upkeep> {
    let filled = fill_missing(pool).await?;
    let mut recomputed = 0;
    let stored_by = db::rule_version(conn).await?;
    if stored_by < RULE_VERSION {
        let mut after = None;
        loop {
            let ids = db::enrolment_ids_after(conn, after, 500).await?;
            let Some(last) = ids.last().copied() else {
                break;
            };
            let mut tx = pool.begin().await?;
            db::refresh_many(&mut tx, &ids).await?;
            tx.commit().await?;
            recomputed += ids.len();
            after = Some(last);
        }
        let mut tx = pool.begin().await?;
        db::set_rule_version(&mut tx, RULE_VERSION).await?;
        // A database with no enrolments (a new one) has no status the new rule changed.
        if recomputed > 0 {
            audit::record(
            &mut tx,
            NewAuditEvent {
                actor: &Actor::system(),
                action: "status.rule_applied",
                entity_type: "status_rule",
                entity_id: RULE_VERSION.to_string(),
                detail: json!({ "from": stored_by, "to": RULE_VERSION, "enrolments": recomputed }),
            },
        )
        .await?;
        }
        tx.commit().await?;
    }
    Ok(Upkeep { filled, recomputed })
}

/// Stores the status of every enrolment that has none: those of a database from before
/// statuses were stored.
pub async fn fill_missing(pool: &PgPool) -> sqlx::Result<usize> {
    let mut conn = pool.acquire().await?;
    let missing = db::without_stored_status(&mut conn).await?;
    drop(conn);
    for chunk in missing.chunks(500) {
        let mut tx = pool.begin().await?;
        db::refresh_many(&mut tx, chunk).await?;
        tx.commit().await?;
    }
    Ok(missing.len())
}
