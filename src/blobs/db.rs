//! Queries of file storage: the chunks of a file, the pending upload that owns them while the
//! file is written, and the blob row that names a finished file by its SHA-256.

use sqlx::PgConnection;
use time::OffsetDateTime;

use crate::ids::BlobId;

/// Stores chunk `seq` (counted from 0) of the file being written as `blob_id`, and marks its
/// pending upload as written now.
pub async fn insert_chunk(
    conn: &mut PgConnection,
    blob_id: BlobId,
    seq: i32,
    data: Vec<u8>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "with pending as (
             insert into pending_upload (blob_id) values ($1)
             on conflict (blob_id) do update set written_at = now()
         )
         insert into blob_chunk (blob_id, seq, data) values ($1, $2, $3)",
        blob_id.0,
        seq,
        data
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Ends the pending upload `blob_id`, whose `chunks` chunks are all written, as a file with
/// this SHA-256, size and content type. An identical file stored already is kept instead, and
/// the new chunks are dropped. Returns the id of the file kept, now marked as just used; `None`
/// (and nothing changed) when the sweeper has taken the upload, or chunks of it are missing.
///
/// The pending row is claimed (deleted) first: the sweeper skips a row that is locked, and
/// once it has taken the row this finds none, so the two never both act on one upload.
pub async fn finish(
    conn: &mut PgConnection,
    blob_id: BlobId,
    chunks: i32,
    sha256: &[u8],
    size: i64,
    content_type: &str,
) -> sqlx::Result<Option<BlobId>> {
    sqlx::query_scalar!(
        r#"with ended as (
               delete from pending_upload
                where blob_id = $1 and (select count(*) from blob_chunk where blob_id = $1) = $2
               returning blob_id
           ), named as (
               insert into blob (blob_id, sha256, size_bytes, content_type)
               select blob_id, $3, $4, $5 from ended
               on conflict (sha256) do update set used_at = now()
               returning blob_id
           ), dropped as (
               delete from blob_chunk
                where blob_id = $1 and exists (select from named where blob_id <> $1)
           )
           select blob_id as "blob_id!: BlobId" from named"#,
        blob_id.0,
        i64::from(chunks),
        sha256,
        size,
        content_type
    )
    .fetch_optional(conn)
    .await
}

/// Drops an unfinished upload, its pending row and its chunks, if this claims the pending row:
/// when `finish` has named the file meanwhile (or is naming it, and holds the row), nothing is
/// dropped. Returns whether it dropped the upload.
pub async fn discard(conn: &mut PgConnection, blob_id: BlobId) -> sqlx::Result<bool> {
    let dropped = sqlx::query_scalar!(
        r#"with ended as (delete from pending_upload where blob_id = $1 returning blob_id),
                chunks as (delete from blob_chunk where blob_id in (select blob_id from ended))
           select count(*) as "claimed!" from ended"#,
        blob_id.0
    )
    .fetch_one(conn)
    .await?;
    Ok(dropped > 0)
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

/// Every stored file's id, size and SHA-256, in the order they were stored.
pub async fn all_stored(conn: &mut PgConnection) -> sqlx::Result<Vec<super::Stored>> {
    sqlx::query_as!(
        super::Stored,
        r#"select blob_id as "blob_id: BlobId", size_bytes, sha256 from blob order by created_at, blob_id"#
    )
    .fetch_all(conn)
    .await
}

/// Where a stored file is used, in words: each evidence file that holds it, with the
/// evidence, its version and the candidate.
pub async fn uses(conn: &mut PgConnection, blob_id: BlobId) -> sqlx::Result<Vec<String>> {
    let rows = sqlx::query!(
        r#"select f.file_name, e.evidence_id, e.title, e.version, u.display_name as candidate
             from evidence_file f
             join evidence e using (evidence_id)
             join enrolment en using (enrolment_id)
             join app_user u on u.user_id = en.candidate_id
            where f.blob_id = $1
            order by e.evidence_id"#,
        blob_id.0
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            format!(
                "\"{}\" in \"{}\" version {} of {} (/evidence/{})",
                r.file_name, r.title, r.version, r.candidate, r.evidence_id
            )
        })
        .collect())
}

/// How many files one sweep statement removes (up to a thousand chunks of 50 MiB files, well
/// within the statement timeout); the sweeper repeats it until fewer are left.
pub const SWEEP_BATCH: i64 = 20;

/// What one sweep statement removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Pending uploads, or blobs.
    pub files: i64,
    pub chunks: i64,
}

/// Removes up to [`SWEEP_BATCH`] pending uploads with no chunk written since `idle_since`,
/// with their chunks. The conditions stand in the outer statement too, so that a row changed
/// since the batch was chosen is judged again as it now is; rows locked by an upload that is
/// finishing, or by another process's sweep, are skipped.
pub async fn sweep_abandoned_uploads(
    conn: &mut PgConnection,
    idle_since: OffsetDateTime,
) -> sqlx::Result<Swept> {
    let row = sqlx::query!(
        r#"with ended as (
               delete from pending_upload
                where written_at < $1
                  and blob_id in (select blob_id from pending_upload
                                   where written_at < $1 order by written_at limit $2
                                     for update skip locked)
               returning blob_id
           ), chunks as (
               delete from blob_chunk where blob_id in (select blob_id from ended) returning 1
           )
           select (select count(*) from ended) as "files!", (select count(*) from chunks) as "chunks!""#,
        idle_since,
        SWEEP_BATCH
    )
    .fetch_one(conn)
    .await?;
    Ok(Swept {
        files: row.files,
        chunks: row.chunks,
    })
}

/// Removes up to [`SWEEP_BATCH`] blobs that no evidence refers to and no upload has used since
/// `unused_since`, with their chunks. As above, the conditions are judged again on a row an
/// upload has just found (and so marked used), and locked rows are skipped.
pub async fn sweep_unreferenced_blobs(
    conn: &mut PgConnection,
    unused_since: OffsetDateTime,
) -> sqlx::Result<Swept> {
    let row = sqlx::query!(
        r#"with gone as (
               delete from blob
                where used_at < $1
                  and not exists (select from evidence_file f where f.blob_id = blob.blob_id)
                  and blob_id in (select b.blob_id from blob b
                                   where b.used_at < $1
                                     and not exists (select from evidence_file f
                                                      where f.blob_id = b.blob_id)
                                   order by b.used_at limit $2
                                   for update skip locked)
               returning blob_id
           ), chunks as (
               delete from blob_chunk where blob_id in (select blob_id from gone) returning 1
           )
           select (select count(*) from gone) as "files!", (select count(*) from chunks) as "chunks!""#,
        unused_since,
        SWEEP_BATCH
    )
    .fetch_one(conn)
    .await?;
    Ok(Swept {
        files: row.files,
        chunks: row.chunks,
    })
}
