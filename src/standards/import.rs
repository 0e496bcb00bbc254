//! Loading a parsed standard into the database, once per URN and version.

use serde_json::json;
use sqlx::PgConnection;

use super::db;
use super::model::{MonthEnd, StandardId, parse_published_date};
use super::parser::ParsedStandard;
use crate::audit::{self, Actor, NewAuditEvent};
use crate::crypto::JsonDigest;

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
    let digest = content_sha256(parsed, JsonDigest::CURRENT);
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
        let (existing, stored_digest, form) =
            db::find_id_and_digest(&mut *conn, &parsed.urn, &parsed.version).await?;
        // Compared in the form the stored digest was made in.
        let form = JsonDigest::from_stored(form).unwrap_or(JsonDigest::CURRENT);
        if stored_digest != content_sha256(parsed, form).as_slice() {
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

/// SHA-256 over the parsed content as canonical JSON in `form`, so the same text imported
/// twice is recognised whatever its line endings or spacing.
fn content_sha256(parsed: &ParsedStandard, form: JsonDigest) -> [u8; 32] {
    let canonical = json!({
        "urn": parsed.urn,
        "version": parsed.version,
        "title": parsed.title,
        "overview": parsed.overview,
        "criteria": parsed.criteria.iter().map(|c| (c.code(), &c.text)).collect::<Vec<_>>(),
        "metadata": parsed.metadata,
    });
    form.sha256(&canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_standard_has_the_same_digest_in_either_form() {
        // The digest stored when the bundled standard was first imported, before RFC 8785:
        // its content has no number that the two forms print differently.
        let parsed = super::super::parser::parse(BUNDLED_TEXT).expect("parses");
        for form in [JsonDigest::SortedKeys, JsonDigest::Rfc8785] {
            assert_eq!(
                crate::crypto::hex(&content_sha256(&parsed, form)),
                "68d8a59c291373a1ccaccfc948209d9914c1694ac683ed5738f5104f63e92660"
            );
        }
    }
}
