//! Queries of file storage: the chunks of a file, and the blob row that names them by their
//! SHA-256.

use sqlx::PgConnection;

use crate::ids::BlobId;

/// Stores chunk `seq` (counted from 0) of the file being written as `blob_id`.
pub async fn insert_chunk(
    conn: &mut PgConnection,
    blob_id: BlobId,
    seq: i32,
    data: Vec<u8>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "insert into blob_chunk (blob_id, seq, data) values ($1, $2, $3)",
        blob_id.0,
        seq,
        data
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Names the chunks of `blob_id` as a file with this SHA-256, size and content type: `blob_id`,
/// or `None` (and nothing stored) when a file with the same SHA-256 is stored already.
pub async fn insert_blob(
    conn: &mut PgConnection,
    blob_id: BlobId,
    sha256: &[u8],
    size: i64,
    content_type: &str,
) -> sqlx::Result<Option<BlobId>> {
    sqlx::query_scalar!(
        r#"insert into blob (blob_id, sha256, size_bytes, content_type) values ($1, $2, $3, $4)
             on conflict (sha256) do nothing
             returning blob_id as "blob_id: BlobId""#,
        blob_id.0,
        sha256,
        size,
        content_type
    )
    .fetch_optional(conn)
    .await
}

/// Deletes the chunks written for `blob_id`.
pub async fn delete_chunks(conn: &mut PgConnection, blob_id: BlobId) -> sqlx::Result<()> {
    sqlx::query!("delete from blob_chunk where blob_id = $1", blob_id.0)
        .execute(conn)
        .await?;
    Ok(())
}

/// The id of the stored file with this SHA-256 (an error when there is none).
pub async fn blob_id_by_sha256(conn: &mut PgConnection, sha256: &[u8]) -> sqlx::Result<BlobId> {
    sqlx::query_scalar!(
        r#"select blob_id as "blob_id: BlobId" from blob where sha256 = $1"#,
        sha256
    )
    .fetch_one(conn)
    .await
}

/// The bytes of chunk `seq` (counted from 0) of the file `blob_id`; `None` past its end.
pub async fn chunk(
    conn: &mut PgConnection,
    blob_id: BlobId,
    seq: i32,
) -> sqlx::Result<Option<Vec<u8>>> {
    sqlx::query_scalar!(
        "select data from blob_chunk where blob_id = $1 and seq = $2",
        blob_id.0,
        seq
    )
    .fetch_optional(conn)
    .await
}
