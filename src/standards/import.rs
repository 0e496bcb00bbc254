//! Loading a parsed standard into the database, once per URN and version.

use serde_json::json;
use sqlx::PgConnection;

use super::db;
use super::model::{MonthEnd, StandardId, parse_published_date};
use super::parser::ParsedStandard;
use crate::audit::{self, Actor, NewAuditEvent};

/// The standard bundled with every build: "Lead DevOps activities".
pub const BUNDLED_TEXT: &str = include_str!("TECIT50761.txt");

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportOutcome {
    Created(StandardId),
    /// The same URN and version with the same content was already loaded; nothing changed.
    Unchanged(StandardId),
}

/// Why an import was refused.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(
        "{urn} version {version} is already loaded with different content; \
         a changed standard must carry a new version number"
    )]
    DifferentContent { urn: String, version: String },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Stores a standard and its criteria unless that URN and version is already present.
///
/// Run it inside a transaction: the standard, its criteria and the audit event land together.
pub async fn import(
    conn: &mut PgConnection,
    parsed: &ParsedStandard,
    actor: &Actor,
) -> Result<ImportOutcome, ImportError> {
    let digest = content_sha256(parsed);
    let approved_on = parsed
        .metadata_value("Date Approved")
        .and_then(|d| parse_published_date(d, MonthEnd::First));
    let review_due_on = parsed
        .metadata_value("Indicative Review Date")
        .and_then(|d| parse_published_date(d, MonthEnd::Last));

    let inserted =
        db::insert_standard_if_absent(&mut *conn, parsed, approved_on, review_due_on, &digest)
            .await?;

    let Some(id) = inserted else {
        let (existing, stored_digest) =
            db::find_id_and_digest(&mut *conn, &parsed.urn, &parsed.version).await?;
        if stored_digest != digest.as_slice() {
            return Err(ImportError::DifferentContent {
                urn: parsed.urn.clone(),
                version: parsed.version.clone(),
            });
        }
        return Ok(ImportOutcome::Unchanged(existing));
    };

    for criterion in &parsed.criteria {
        db::insert_criterion(&mut *conn, id, criterion).await?;
    }

    audit::record(
        conn,
        NewAuditEvent {
            actor,
            action: "standard.imported",
            entity_type: "standard",
            entity_id: id.0.to_string(),
            detail: json!({
                "urn": parsed.urn,
                "version": parsed.version,
                "criteria": parsed.criteria.len(),
                "content_sha256": crate::crypto::hex(&digest),
            }),
        },
    )
    .await?;
    Ok(ImportOutcome::Created(id))
}

/// Loads the bundled standard if it is absent. Called on every start of the portal.
pub async fn ensure_bundled(conn: &mut PgConnection) -> Result<ImportOutcome, ImportError> {
    let parsed =
        super::parser::parse(BUNDLED_TEXT).expect("the bundled standard parses (unit-tested)");
    import(conn, &parsed, &Actor::system()).await
}

/// SHA-256 over the parsed content, so the same text imported twice is recognised whatever
/// its line endings or spacing.
fn content_sha256(parsed: &ParsedStandard) -> [u8; 32] {
    let canonical = json!({
        "urn": parsed.urn,
        "version": parsed.version,
        "title": parsed.title,
        "overview": parsed.overview,
        "criteria": parsed.criteria.iter().map(|c| (c.code(), &c.text)).collect::<Vec<_>>(),
        "metadata": parsed.metadata,
    });
    crate::crypto::sha256(canonical.to_string().as_bytes())
}
