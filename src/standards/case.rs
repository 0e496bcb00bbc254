//! Standards as 1EdTech CASE packages: a `CFDocument` for the standard, a `CFItem` per
//! criterion (`humanCodingScheme` PC1…K12, `fullStatement`), and `isChildOf` associations.
//! A package this module writes reads back into exactly the same standard.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::model::{Criterion, CriterionKind, Standard};
use super::parser::{ParsedCriterion, ParsedStandard};

/// A stable identifier for a part of the package: the same standard always gets the same ones.
fn identifier(parts: &[&str]) -> String {
    let digest = crate::crypto::sha256(format!("attest-case/{}", parts.join("/")).as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .to_string()
}

fn item_type(kind: CriterionKind) -> &'static str {
    match kind {
        CriterionKind::Performance => "Performance criterion",
        CriterionKind::Knowledge => "Knowledge and understanding",
    }
}

/// The CASE package of a stored standard; `base` is the portal's address, for the URIs.
pub fn export(standard: &Standard, criteria: &[Criterion], base: &str) -> serde_json::Value {
    let document_id = identifier(&[&standard.urn, &standard.version]);
    let document_uri = format!("{base}/standards/{}/case.json", standard.urn);
    let notes: Vec<String> = standard
        .metadata
        .iter()
        .map(|(k, v)| format!("{k}\t{v}"))
        .collect();
    let items: Vec<serde_json::Value> = criteria
        .iter()
        .map(|c| {
            json!({
                "identifier": identifier(&[&standard.urn, &standard.version, &c.code]),
                "uri": format!("{document_uri}#{}", c.code),
                "CFDocumentURI": { "title": standard.title, "identifier": document_id, "uri": document_uri },
                "fullStatement": c.text,
                "humanCodingScheme": c.code,
                "listEnumeration": c.position.to_string(),
                "CFItemType": item_type(c.kind),
                "language": "en",
            })
        })
        .collect();
    let associations: Vec<serde_json::Value> = criteria
        .iter()
        .map(|c| {
            let item = identifier(&[&standard.urn, &standard.version, &c.code]);
            json!({
                "identifier": identifier(&[&standard.urn, &standard.version, &c.code, "isChildOf"]),
                "associationType": "isChildOf",
                "originNodeURI": { "title": c.code, "identifier": item, "uri": format!("{document_uri}#{}", c.code) },
                "destinationNodeURI": { "title": standard.title, "identifier": document_id, "uri": document_uri },
            })
        })
        .collect();
    json!({
        "CFDocument": {
            "identifier": document_id,
            "uri": document_uri,
            "title": standard.title,
            "humanCodingScheme": standard.urn,
            "version": standard.version,
            "description": standard.overview.join("\n\n"),
            "notes": notes.join("\n"),
            "language": "en",
            "adoptionStatus": "Adopted",
            "creator": standard.metadata.iter().find(|(k, _)| k == "Developed by").map_or("", |(_, v)| v.as_str()),
        },
        "CFItems": items,
        "CFAssociations": associations,
    })
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    title: String,
    human_coding_scheme: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    notes: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Item {
    full_statement: String,
    human_coding_scheme: String,
}

#[derive(Debug, Deserialize)]
struct Package {
    #[serde(rename = "CFDocument")]
    document: Document,
    #[serde(rename = "CFItems")]
    items: Vec<Item>,
}

/// Reads a CASE package back into a standard. Items are placed by their codes (PC…, K…).
///
/// # Errors
/// A sentence saying what is missing or wrong.
pub fn import(text: &str) -> Result<ParsedStandard, String> {
    let package: Package =
        serde_json::from_str(text).map_err(|e| format!("not a CASE package: {e}"))?;
    let mut criteria = Vec::new();
    for item in package.items {
        let code = item.human_coding_scheme.trim();
        let (kind, number) = if let Some(n) = code.strip_prefix("PC") {
            (CriterionKind::Performance, n)
        } else if let Some(n) = code.strip_prefix('K') {
            (CriterionKind::Knowledge, n)
        } else {
            return Err(format!("item {code:?} has no PC or K code"));
        };
        let position: i32 = number
            .parse()
            .map_err(|_| format!("item {code:?} has no number"))?;
        criteria.push(ParsedCriterion {
            kind,
            position,
            text: item.full_statement,
        });
    }
    criteria.sort_by_key(|c| (c.kind != CriterionKind::Performance, c.position));
    for kind in [CriterionKind::Performance, CriterionKind::Knowledge] {
        let positions: Vec<i32> = criteria
            .iter()
            .filter(|c| c.kind == kind)
            .map(|c| c.position)
            .collect();
        if positions.is_empty()
            || positions
                .iter()
                .enumerate()
                .any(|(i, p)| usize::try_from(*p).ok() != Some(i + 1))
        {
            return Err(format!(
                "the {} items are not numbered 1, 2, 3…",
                kind.label()
            ));
        }
    }
    let metadata: Vec<(String, String)> = package
        .document
        .notes
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    Ok(ParsedStandard {
        urn: package.document.human_coding_scheme,
        version: package.document.version.unwrap_or_else(|| "1".into()),
        title: package.document.title,
        overview: package
            .document
            .description
            .split("\n\n")
            .map(str::to_owned)
            .filter(|p| !p.is_empty())
            .collect(),
        criteria,
        metadata,
    })
}
