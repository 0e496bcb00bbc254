//! Queries of the standards domain.

use sqlx::PgConnection;
use sqlx::types::Json;
use time::Date;

use super::model::{Criterion, CriterionId, CriterionKind, Standard, StandardId};
use super::parser::{ParsedCriterion, ParsedStandard};

/// A line of the standards list.
#[derive(Debug, Clone)]
pub struct StandardSummary {
    pub urn: String,
    pub version: String,
    pub title: String,
    pub performance_count: i64,
    pub knowledge_count: i64,
}

/// Every standard at its newest version, by title.
pub async fn list_latest(conn: &mut PgConnection) -> sqlx::Result<Vec<StandardSummary>> {
    sqlx::query_as!(
        StandardSummary,
        r#"
        select distinct on (s.urn)
               s.urn, s.version, s.title,
               count(*) filter (where c.kind = 'performance') as "performance_count!",
               count(*) filter (where c.kind = 'knowledge') as "knowledge_count!"
          from standard s
          join criterion c using (standard_id)
         group by s.standard_id
         order by s.urn, s.created_at desc
        "#
    )
    .fetch_all(conn)
    .await
    .map(|mut list| {
        list.sort_by(|a, b| a.title.cmp(&b.title));
        list
    })
}

/// The id of the newest version of the standard with this URN.
pub async fn latest_id_by_urn(
    conn: &mut PgConnection,
    urn: &str,
) -> sqlx::Result<Option<StandardId>> {
    sqlx::query_scalar!(
        r#"select standard_id as "id: StandardId" from standard
            where urn = $1 order by created_at desc limit 1"#,
        urn
    )
    .fetch_optional(conn)
    .await
}

/// One stored version of a standard.
pub async fn find(conn: &mut PgConnection, id: StandardId) -> sqlx::Result<Standard> {
    let r = sqlx::query!(
        r#"
        select standard_id as "id: StandardId", urn, version, title, overview,
               metadata as "metadata: Json<Vec<(String, String)>>", review_due_on
          from standard
         where standard_id = $1
        "#,
        id as StandardId
    )
    .fetch_one(conn)
    .await?;
    Ok(Standard {
        id: r.id,
        urn: r.urn,
        version: r.version,
        title: r.title,
        overview: r.overview,
        metadata: r.metadata.0,
        review_due_on: r.review_due_on,
    })
}

/// The criteria of a standard: performance criteria first, each kind in published order.
pub async fn list_criteria(
    conn: &mut PgConnection,
    standard: StandardId,
) -> sqlx::Result<Vec<Criterion>> {
    sqlx::query_as!(
        Criterion,
        r#"
        select criterion_id as "id: CriterionId", kind as "kind: CriterionKind", code, position, text
          from criterion
         where standard_id = $1
         order by kind, position
        "#,
        standard as StandardId
    )
    .fetch_all(conn)
    .await
}

/// Stores a parsed standard's row, without its criteria, unless its URN and version is already
/// present: its id, or `None` when it was. `on conflict do nothing` keeps two processes
/// starting at once from failing each other.
pub async fn insert_standard_if_absent(
    conn: &mut PgConnection,
    parsed: &ParsedStandard,
    approved_on: Option<Date>,
    review_due_on: Option<Date>,
    digest: &[u8; 32],
) -> sqlx::Result<Option<StandardId>> {
    sqlx::query_scalar!(
        r#"
        insert into standard (urn, version, title, overview, metadata, approved_on, review_due_on, content_sha256)
        values ($1, $2, $3, $4, $5, $6, $7, $8)
        on conflict (urn, version) do nothing
        returning standard_id as "id: StandardId"
        "#,
        parsed.urn,
        parsed.version,
        parsed.title,
        &parsed.overview,
        Json(&parsed.metadata) as _,
        approved_on,
        review_due_on,
        digest.as_slice(),
    )
    .fetch_optional(conn)
    .await
}

/// The id and content digest (SHA-256) of the standard with this URN and version, and the
/// form of JSON the digest was made over.
pub async fn find_id_and_digest(
    conn: &mut PgConnection,
    urn: &str,
    version: &str,
) -> sqlx::Result<(StandardId, Vec<u8>, i16)> {
    let r = sqlx::query!(
        r#"select standard_id as "id: StandardId", content_sha256, content_digest_version
             from standard where urn = $1 and version = $2"#,
        urn,
        version
    )
    .fetch_one(conn)
    .await?;
    Ok((r.id, r.content_sha256, r.content_digest_version))
}

/// Stores one criterion of the standard `id`.
pub async fn insert_criterion(
    conn: &mut PgConnection,
    id: StandardId,
    criterion: &ParsedCriterion,
) -> sqlx::Result<()> {
    sqlx::query!(
        "insert into criterion (standard_id, kind, code, position, text) values ($1, $2, $3, $4, $5)",
        id as StandardId,
        criterion.kind as CriterionKind,
        criterion.code(),
        criterion.position,
        criterion.text,
    )
    .execute(conn)
    .await?;
    Ok(())
}
