//! Queries of the signing keys.

use sqlx::PgConnection;
use time::OffsetDateTime;

use super::PublicKey;

/// The active key's `kid` and sealed private key.
pub async fn active(conn: &mut PgConnection) -> sqlx::Result<Option<(String, Vec<u8>)>> {
    let row = sqlx::query!(
        "select kid, private_sealed from signing_key where retired_at is null and algorithm = 'EdDSA'"
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| (r.kid, r.private_sealed)))
}

pub async fn insert(
    conn: &mut PgConnection,
    kid: &str,
    public_key: &[u8],
    private_sealed: &[u8],
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "insert into signing_key (kid, algorithm, public_key, private_sealed, created_at)
         values ($1, 'EdDSA', $2, $3, $4)",
        kid,
        public_key,
        private_sealed,
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Retires the active key `now`; returns its `kid`, if there was one.
pub async fn retire_active(
    conn: &mut PgConnection,
    now: OffsetDateTime,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!(
        "update signing_key set retired_at = $1 where retired_at is null and algorithm = 'EdDSA'
         returning kid",
        now
    )
    .fetch_optional(conn)
    .await
}

/// Every public key, newest first.
pub async fn published(conn: &mut PgConnection) -> sqlx::Result<Vec<PublicKey>> {
    sqlx::query_as!(
        PublicKey,
        "select kid, public_key, created_at, retired_at from signing_key order by created_at desc, kid"
    )
    .fetch_all(conn)
    .await
}
