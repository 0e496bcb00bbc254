//! File storage in PostgreSQL: content-addressed (SHA-256) blobs in chunks of 1 MiB.
//!
//! A file is written while its upload streams in, one chunk at a time, each chunk a short
//! statement of its own: no transaction or connection is held at the client's pace. Until its
//! end the file is a pending upload; then one statement names it by its SHA-256, or keeps the
//! identical file stored already and drops the new chunks. The caller links the finished file
//! to evidence in a short transaction of its own. What is never linked (an upload abandoned
//! halfway, refused, or cut off by a crash) is removed by [`sweep`]; the whole file is never in
//! memory.

mod db;

use std::collections::HashSet;
use std::sync::{LazyLock, Mutex};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::ids::BlobId;

/// Bytes a chunk row holds.
pub const CHUNK_SIZE: usize = 1024 * 1024;
/// Bytes kept from the start of a file to tell its type.
const SNIFF_SIZE: usize = 64 * 1024;

/// A file type that evidence may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileType {
    pub mime: &'static str,
    /// The type in words, for messages and lists.
    pub label: &'static str,
}

const ALLOWED: &[FileType] = &[
    FileType {
        mime: "application/pdf",
        label: "PDF",
    },
    FileType {
        mime: "image/png",
        label: "PNG image",
    },
    FileType {
        mime: "image/jpeg",
        label: "JPEG image",
    },
    FileType {
        mime: "image/gif",
        label: "GIF image",
    },
    FileType {
        mime: "image/webp",
        label: "WebP image",
    },
    FileType {
        mime: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        label: "Word document",
    },
    FileType {
        mime: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        label: "Excel workbook",
    },
    FileType {
        mime: "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        label: "PowerPoint presentation",
    },
    FileType {
        mime: "application/vnd.oasis.opendocument.text",
        label: "OpenDocument text",
    },
    FileType {
        mime: "application/vnd.oasis.opendocument.spreadsheet",
        label: "OpenDocument spreadsheet",
    },
    FileType {
        mime: "application/vnd.oasis.opendocument.presentation",
        label: "OpenDocument presentation",
    },
    FileType {
        // HEIC and HEIF: what phone cameras save photos as.
        mime: "image/heif",
        label: "HEIC photo",
    },
    FileType {
        mime: "video/mp4",
        label: "MP4 video",
    },
    FileType {
        // MOV: what iPhones record video as.
        mime: "video/quicktime",
        label: "MOV video",
    },
    FileType {
        mime: "video/webm",
        label: "WebM video",
    },
    FileType {
        mime: "audio/mpeg",
        label: "MP3 audio",
    },
    FileType {
        mime: "audio/m4a",
        label: "M4A audio",
    },
];

const PLAIN_TEXT: FileType = FileType {
    mime: "text/plain; charset=utf-8",
    label: "text",
};
const CSV: FileType = FileType {
    mime: "text/csv; charset=utf-8",
    label: "CSV",
};

/// The sentence shown when a file's type is not accepted.
pub const ALLOWED_TYPES_TEXT: &str = "PDF, PNG, JPEG, GIF, WebP, HEIC, plain text, CSV, Word, Excel, \
     PowerPoint, OpenDocument, MP4, MOV, WebM, MP3 or M4A";

/// Tells a file's type from its first bytes. The name only decides between plain text and CSV
/// once the bytes have shown the file is text.
pub fn sniff(head: &[u8], file_name: &str) -> Option<FileType> {
    if let Some(kind) = infer::get(head) {
        return ALLOWED.iter().find(|t| t.mime == kind.mime_type()).copied();
    }
    if !is_plain_text(head) {
        return None;
    }
    if file_name.to_ascii_lowercase().ends_with(".csv") {
        Some(CSV)
    } else {
        Some(PLAIN_TEXT)
    }
}

/// UTF-8 text without control characters, and not markup a browser would run (HTML, SVG, XML).
fn is_plain_text(head: &[u8]) -> bool {
    let text = match std::str::from_utf8(head) {
        Ok(text) => text,
        // The sniffed prefix may end inside a multi-byte character.
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return false,
    };
    let starts_like_markup = text
        .trim_start_matches('\u{feff}')
        .trim_start()
        .starts_with('<');
    !text.is_empty()
        && !starts_like_markup
        && !text
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\u{c}'))
}

/// A file stored by [`BlobWriter::finish`].
#[derive(Debug, Clone)]
pub struct StoredBlob {
    pub blob_id: BlobId,
    pub sha256: [u8; 32],
    pub size: u64,
    pub file_type: FileType,
}

/// Why a file was not stored.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("the file is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the file is empty")]
    Empty,
    #[error("the file's type is not accepted")]
    TypeNotAllowed,
    /// Chunks of the upload were swept while it sent nothing for an hour.
    #[error("the upload was idle too long and its start was removed")]
    Expired,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Why streaming a file into storage stopped.
#[derive(Debug, thiserror::Error)]
pub enum StreamError<E> {
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error("the upload could not be read")]
    Source(E),
}

impl<E> From<sqlx::Error> for StreamError<E> {
    fn from(error: sqlx::Error) -> Self {
        Self::Blob(BlobError::Database(error))
    }
}

/// Uploads of this process with chunks written and the file not yet finished or dropped:
/// what a stopping server drops before it exits, so that it leaves nothing half stored.
static UNFINISHED: LazyLock<Mutex<HashSet<BlobId>>> = LazyLock::new(Mutex::default);

fn unfinished() -> std::sync::MutexGuard<'static, HashSet<BlobId>> {
    UNFINISHED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Writes one file into storage as its bytes arrive.
pub struct BlobWriter {
    blob_id: BlobId,
    seq: i32,
    hasher: Sha256,
    size: u64,
    limit: u64,
    buffer: Vec<u8>,
    head: Vec<u8>,
    /// Whether chunks are written and the file is neither finished nor dropped.
    unfinished: bool,
    /// The pool chunks were written through, to drop them with if the writer is abandoned.
    pool: Option<PgPool>,
}

impl Drop for BlobWriter {
    /// An upload abandoned halfway (its client went away, its request was ended) drops its
    /// chunks at once, in a task of its own; what that misses, the sweeper takes.
    fn drop(&mut self) {
        if !self.unfinished {
            return;
        }
        let blob_id = self.blob_id;
        // Written in the caller's transaction (no pool), its rollback drops it; with no runtime
        // left, the sweeper will.
        let (Some(pool), Ok(runtime)) = (self.pool.take(), tokio::runtime::Handle::try_current())
        else {
            unfinished().remove(&blob_id);
            return;
        };
        runtime.spawn(async move {
            if let Err(e) = discard_by_id(&pool, blob_id).await {
                tracing::warn!(error = %e, "an abandoned upload is left to the sweeper");
            }
            unfinished().remove(&blob_id);
        });
    }
}

async fn discard_by_id(pool: &PgPool, blob_id: BlobId) -> sqlx::Result<bool> {
    db::discard(&mut *pool.acquire().await?, blob_id).await
}

/// Drops the chunks of every upload of this process that is still unfinished: for a server
/// whose requests have all ended. Returns how many it dropped; one it cannot reach the
/// database for is left to the sweeper.
pub async fn discard_unfinished(pool: &PgPool) -> sqlx::Result<usize> {
    let ids: Vec<BlobId> = unfinished().iter().copied().collect();
    let mut dropped = 0;
    let mut failure = None;
    for blob_id in &ids {
        match discard_by_id(pool, *blob_id).await {
            Ok(claimed) => dropped += usize::from(claimed),
            Err(e) => failure = Some(e),
        }
        unfinished().remove(blob_id);
    }
    match failure {
        Some(e) if dropped == 0 => Err(e),
        _ => Ok(dropped),
    }
}

impl BlobWriter {
    /// A writer for a file of at most `limit` bytes.
    pub fn new(limit: u64) -> Self {
        Self {
            blob_id: BlobId(Uuid::now_v7()),
            seq: 0,
            hasher: Sha256::new(),
            size: 0,
            limit,
            buffer: Vec::with_capacity(CHUNK_SIZE),
            head: Vec::with_capacity(SNIFF_SIZE),
            unfinished: false,
            pool: None,
        }
    }

    /// Notes, before its first chunk is written, that the file is under way.
    fn begin(&mut self) {
        if !self.unfinished {
            self.unfinished = true;
            unfinished().insert(self.blob_id);
        }
    }

    /// Notes that the file is finished, or dropped.
    fn end(&mut self) {
        if self.unfinished {
            self.unfinished = false;
            unfinished().remove(&self.blob_id);
        }
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Counts, hashes and buffers the next bytes of the file.
    fn take(&mut self, bytes: &[u8]) -> Result<(), BlobError> {
        self.size += bytes.len() as u64;
        if self.size > self.limit {
            return Err(BlobError::TooLarge { limit: self.limit });
        }
        self.hasher.update(bytes);
        let wanted = SNIFF_SIZE.saturating_sub(self.head.len()).min(bytes.len());
        self.head.extend_from_slice(&bytes[..wanted]);
        self.buffer.extend_from_slice(bytes);
        Ok(())
    }

    /// Writes the whole of `source` into the file, each chunk a short statement on a
    /// connection taken from `pool` for it alone. While one chunk is being written, the next
    /// one is already read from the source, so the upload and the database work at once.
    pub async fn write_stream<S, E>(
        &mut self,
        pool: &PgPool,
        source: &mut S,
    ) -> Result<(), StreamError<E>>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
    {
        self.pool = Some(pool.clone());
        let mut ended = false;
        loop {
            while self.buffer.len() < CHUNK_SIZE && !ended {
                match source.next().await {
                    Some(bytes) => self.take(&bytes.map_err(StreamError::Source)?)?,
                    None => ended = true,
                }
            }
            if self.buffer.len() < CHUNK_SIZE {
                // The rest is written by `finish`.
                return Ok(());
            }
            let overflow = self.buffer.split_off(CHUNK_SIZE);
            let chunk = std::mem::replace(&mut self.buffer, overflow);
            self.begin();
            let (blob_id, seq) = (self.blob_id, self.seq);
            let store = async move {
                let mut conn = pool.acquire().await?;
                db::insert_chunk(&mut conn, blob_id, seq, chunk).await
            };
            self.seq += 1;
            tokio::pin!(store);
            // A failure of the source waits for the write in flight, so that `discard` comes
            // after it and leaves nothing behind.
            let mut failure = None;
            loop {
                tokio::select! {
                    stored = &mut store => {
                        stored?;
                        break;
                    }
                    next = source.next(), if failure.is_none() && !ended && self.buffer.len() < CHUNK_SIZE => {
                        match next {
                            Some(Ok(bytes)) => {
                                if let Err(e) = self.take(&bytes) {
                                    failure = Some(StreamError::Blob(e));
                                }
                            }
                            Some(Err(e)) => failure = Some(StreamError::Source(e)),
                            None => ended = true,
                        }
                    }
                }
            }
            if let Some(failure) = failure {
                return Err(failure);
            }
        }
    }

    /// Writes `bytes`, a whole file in memory, through `conn` (in the caller's transaction,
    /// when it has one).
    pub async fn write_all(
        &mut self,
        conn: &mut PgConnection,
        bytes: &[u8],
    ) -> Result<(), BlobError> {
        for piece in bytes.chunks(CHUNK_SIZE) {
            self.take(piece)?;
            if self.buffer.len() == CHUNK_SIZE {
                self.flush(conn).await?;
            }
        }
        Ok(())
    }

    async fn flush(&mut self, conn: &mut PgConnection) -> sqlx::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        self.begin();
        let chunk = std::mem::take(&mut self.buffer);
        db::insert_chunk(conn, self.blob_id, self.seq, chunk).await?;
        self.seq += 1;
        Ok(())
    }

    /// Ends the file: checks its type, and names it by its SHA-256, keeping instead an
    /// identical file stored already. A file refused here leaves nothing stored.
    pub async fn finish(
        mut self,
        conn: &mut PgConnection,
        file_name: &str,
    ) -> Result<StoredBlob, BlobError> {
        if self.size == 0 {
            return Err(BlobError::Empty);
        }
        let Some(file_type) = sniff(&self.head, file_name) else {
            self.discard(conn).await?;
            return Err(BlobError::TypeNotAllowed);
        };
        self.flush(conn).await?;
        let sha256: [u8; 32] = std::mem::take(&mut self.hasher).finalize().into();
        let size = i64::try_from(self.size).unwrap_or(i64::MAX);
        let finished =
            db::finish(conn, self.blob_id, self.seq, &sha256, size, file_type.mime).await?;
        // Named, or taken by the sweeper: either way no longer this process's to drop.
        self.end();
        let blob_id = finished.ok_or(BlobError::Expired)?;
        Ok(StoredBlob {
            blob_id,
            sha256,
            size: self.size,
            file_type,
        })
    }

    /// Drops what was written of an unfinished file.
    pub async fn discard(&mut self, conn: &mut PgConnection) -> sqlx::Result<()> {
        if self.seq == 0 {
            return Ok(());
        }
        db::discard(conn, self.blob_id).await?;
        self.end();
        Ok(())
    }
}

/// Streams `source` into storage as a file of at most `limit` bytes, each chunk a short
/// statement of its own. Returns the bytes read with the stored file, or why storage refused
/// it (and then kept nothing of it); fails only when the source does.
pub async fn store_stream<S, E>(
    pool: &PgPool,
    file_name: &str,
    source: &mut S,
    limit: u64,
) -> Result<(u64, Result<StoredBlob, BlobError>), E>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    let _in_flight = crate::metrics::metrics().upload();
    let mut writer = BlobWriter::new(limit);
    let written = writer.write_stream(pool, source).await;
    let size = writer.size();
    let stored = match written {
        Ok(()) => match pool.acquire().await {
            Ok(mut conn) => writer.finish(&mut conn, file_name).await,
            Err(e) => Err(e.into()),
        },
        Err(failure) => {
            // What was written is dropped now; if the database cannot be reached for that,
            // the sweeper drops it later.
            if let Err(e) = discard_with(pool, &mut writer).await {
                tracing::warn!(error = %e, "an unfinished upload is left to the sweeper");
            }
            match failure {
                StreamError::Blob(e) => Err(e),
                StreamError::Source(e) => return Err(e),
            }
        }
    };
    Ok((size, stored))
}

async fn discard_with(pool: &PgPool, writer: &mut BlobWriter) -> sqlx::Result<()> {
    writer.discard(&mut *pool.acquire().await?).await
}

/// How long storage keeps what no evidence holds: an upload that has written nothing for
/// `abandoned_after`, and a finished file that no evidence refers to and no upload has used for
/// `unreferenced_after`.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub abandoned_after: time::Duration,
    pub unreferenced_after: time::Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            abandoned_after: time::Duration::hours(1),
            unreferenced_after: time::Duration::hours(24),
        }
    }
}

/// What [`sweep`] removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepCounts {
    pub abandoned_uploads: i64,
    pub unreferenced_files: i64,
    pub chunks: i64,
}

/// Removes, as of `now`, abandoned uploads and files no evidence refers to, with their chunks,
/// a batch at a time in short statements; safe to run in several processes at once.
pub async fn sweep(
    pool: &PgPool,
    now: OffsetDateTime,
    retention: Retention,
) -> sqlx::Result<SweepCounts> {
    let mut counts = SweepCounts::default();
    loop {
        let swept = db::sweep_abandoned_uploads(
            &mut *pool.acquire().await?,
            now - retention.abandoned_after,
        )
        .await?;
        counts.abandoned_uploads += swept.files;
        counts.chunks += swept.chunks;
        if swept.files < db::SWEEP_BATCH {
            break;
        }
    }
    loop {
        let unused_since = now - retention.unreferenced_after;
        let swept = db::sweep_unreferenced_blobs(&mut *pool.acquire().await?, unused_since).await?;
        counts.unreferenced_files += swept.files;
        counts.chunks += swept.chunks;
        if swept.files < db::SWEEP_BATCH {
            break;
        }
    }
    crate::metrics::metrics().swept(
        counts.abandoned_uploads,
        counts.unreferenced_files,
        counts.chunks,
    );
    Ok(counts)
}

/// How long a reader may take nothing before its download is ended.
pub const READER_IDLE: std::time::Duration = std::time::Duration::from_secs(60);

/// What a stored file is expected to be: the blob, its size and SHA-256 as recorded when it
/// was stored.
#[derive(Debug, Clone)]
pub struct Stored {
    pub blob_id: BlobId,
    pub size_bytes: i64,
    pub sha256: Vec<u8>,
}

/// Why a stored file could not be read out.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Its bytes are not those stored: a chunk changed, went missing or was added.
    #[error("stored file {blob_id} is damaged: {reason}")]
    Damaged {
        blob_id: BlobId,
        reason: &'static str,
    },
}

/// The bytes of a stored file, chunk by chunk, each read on a connection taken for that chunk
/// only, while the client takes them: one slow reader never holds a connection. The bytes are
/// hashed as they go, and the chunk that completes the file is sent only if the whole matches
/// its recorded size and SHA-256; otherwise the stream ends with [`ReadError::Damaged`] in
/// its place (so a download fails rather than ends cleanly), the damage is logged and counted,
/// and an integrity event is recorded in the audit trail.
pub fn read(
    pool: PgPool,
    stored: Stored,
) -> impl Stream<Item = Result<Bytes, ReadError>> + Send + 'static {
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Bytes, ReadError>>(2);
    tokio::spawn(async move {
        let _in_flight = crate::metrics::metrics().download();
        let mut check = Integrity::new(&stored);
        for seq in 0.. {
            let next = match pool.acquire().await {
                Ok(mut conn) => db::chunk(&mut conn, stored.blob_id, seq).await,
                Err(error) => Err(error),
            };
            let item = match next {
                Ok(data) => match check.next(data) {
                    Ok(Some(data)) => Ok(Bytes::from(data)),
                    Ok(None) => break,
                    Err(reason) => {
                        report_damage(&pool, &stored, reason).await;
                        Err(ReadError::Damaged {
                            blob_id: stored.blob_id,
                            reason,
                        })
                    }
                },
                Err(error) => Err(error.into()),
            };
            let failed = item.is_err();
            match tokio::time::timeout(READER_IDLE, sender.send(item)).await {
                Ok(Ok(())) if !failed => {}
                // Gone, stalled, or told of a failure: nothing more to send.
                _ => break,
            }
        }
    });
    crate::web::download::receiver_stream(receiver)
}

/// The running check of a file read out chunk by chunk.
struct Integrity<'a> {
    stored: &'a Stored,
    hasher: Sha256,
    read: i64,
    done: bool,
}

impl<'a> Integrity<'a> {
    fn new(stored: &'a Stored) -> Self {
        Self {
            stored,
            hasher: Sha256::new(),
            read: 0,
            done: false,
        }
    }

    /// Takes the next chunk (`None`: there is none): `Ok(Some)` to send it, `Ok(None)` at a
    /// clean end, `Err` with what is wrong.
    fn next(&mut self, chunk: Option<Vec<u8>>) -> Result<Option<Vec<u8>>, &'static str> {
        let Some(chunk) = chunk else {
            return if self.done {
                Ok(None)
            } else {
                Err("chunks are missing")
            };
        };
        if self.done {
            return Err("there are more chunks than the file's size");
        }
        self.hasher.update(&chunk);
        self.read += i64::try_from(chunk.len()).unwrap_or(i64::MAX);
        if self.read > self.stored.size_bytes {
            return Err("there are more bytes than the file's size");
        }
        if self.read == self.stored.size_bytes {
            self.done = true;
            let digest: [u8; 32] = self.hasher.clone().finalize().into();
            if digest.as_slice() != self.stored.sha256.as_slice() {
                return Err("the bytes do not match the file's SHA-256");
            }
        }
        Ok(Some(chunk))
    }
}

/// The damaged files this process has recorded in the audit trail: each once, however often
/// it is asked for.
static DAMAGE_RECORDED: LazyLock<Mutex<HashSet<BlobId>>> = LazyLock::new(Mutex::default);

/// Logs, counts and records in the audit trail (once per file and process) that a stored file
/// was found damaged.
async fn report_damage(pool: &PgPool, stored: &Stored, reason: &'static str) {
    tracing::error!(
        blob = %stored.blob_id.0,
        sha256 = %crate::crypto::hex(&stored.sha256),
        reason,
        "A STORED FILE IS DAMAGED: its bytes are not those that were stored; restore it from a backup"
    );
    crate::metrics::metrics().file_damaged();
    let first = DAMAGE_RECORDED
        .lock()
        .map(|mut recorded| recorded.insert(stored.blob_id))
        .unwrap_or(true);
    if !first {
        return;
    }
    let recorded = async {
        let mut tx = pool.begin().await?;
        crate::audit::record(
            &mut tx,
            crate::audit::NewAuditEvent {
                actor: &crate::audit::Actor::system(),
                action: "blob.damaged",
                entity_type: "blob",
                entity_id: stored.blob_id.0.to_string(),
                detail: serde_json::json!({
                    "sha256": crate::crypto::hex(&stored.sha256),
                    "size_bytes": stored.size_bytes,
                    "reason": reason,
                }),
            },
        )
        .await?;
        tx.commit().await
    };
    if let Err(error) = recorded.await {
        tracing::error!(error = %error, "recording a damaged file in the audit trail failed");
    }
}

/// Where a stored file is used, in words (each evidence file that holds it).
pub async fn uses(conn: &mut PgConnection, blob_id: BlobId) -> sqlx::Result<Vec<String>> {
    db::uses(conn, blob_id).await
}

/// Reads every stored file through and checks it against its size and SHA-256, without
/// recording anything; returns the damaged ones with what is wrong. (`attest blobs verify`)
pub async fn verify_all(pool: &PgPool) -> sqlx::Result<(u64, Vec<(Stored, &'static str)>)> {
    let mut conn = pool.acquire().await?;
    let all = db::all_stored(&mut conn).await?;
    let mut damaged = Vec::new();
    for stored in &all {
        let mut check = Integrity::new(stored);
        for seq in 0.. {
            let chunk = db::chunk(&mut conn, stored.blob_id, seq).await?;
            match check.next(chunk) {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(reason) => {
                    damaged.push((stored.clone(), reason));
                    break;
                }
            }
        }
    }
    Ok((u64::try_from(all.len()).unwrap_or(u64::MAX), damaged))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_told_by_content_not_name() {
        let pdf = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj";
        assert_eq!(
            sniff(pdf, "notes.txt").map(|t| t.mime),
            Some("application/pdf")
        );
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        assert_eq!(sniff(png, "photo.pdf").map(|t| t.mime), Some("image/png"));
        assert_eq!(
            sniff(b"name,email\nAnn,ann@example.org\n", "people.csv"),
            Some(CSV)
        );
        assert_eq!(
            sniff("Réflexion écrite\r\n".as_bytes(), "account.txt"),
            Some(PLAIN_TEXT)
        );
    }

    #[test]
    fn phone_photos_and_videos_are_accepted() {
        let heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic\0\0\0\0";
        assert_eq!(
            sniff(heic, "IMG_0001.HEIC").map(|t| t.mime),
            Some("image/heif")
        );
        let heif = b"\0\0\0\x18ftypmif1\0\0\0\0mif1heic\0\0\0\0";
        assert_eq!(
            sniff(heif, "photo.heif").map(|t| t.label),
            Some("HEIC photo")
        );
        let mov = b"\0\0\0\x14ftypqt  \0\0\0\0qt  \0\0\0\x08wide";
        assert_eq!(
            sniff(mov, "IMG_0002.MOV").map(|t| t.mime),
            Some("video/quicktime")
        );
    }

    #[test]
    fn executables_markup_and_binary_junk_are_refused() {
        let elf = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0>\0";
        assert_eq!(sniff(elf, "report.pdf"), None);
        assert_eq!(sniff(b"MZ\x90\0\x03\0\0\0\x04\0", "report.pdf"), None);
        assert_eq!(
            sniff(
                b"<!DOCTYPE html><html><script>alert(1)</script>",
                "page.pdf"
            ),
            None
        );
        assert_eq!(
            sniff(
                b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script/></svg>",
                "x.png"
            ),
            None
        );
        assert_eq!(
            sniff(b"\xef\xbb\xbf  <?xml version=\"1.0\"?><svg/>", "x.txt"),
            None
        );
        assert_eq!(
            sniff(b"PK\x03\x04\x14\0\0\0\x08\0", "archive.docx"),
            None,
            "a bare zip is not a document"
        );
        assert_eq!(sniff(b"text with a \0 NUL byte", "x.txt"), None);
    }

    #[test]
    fn a_text_prefix_cut_inside_a_character_is_still_text() {
        let mut head = "é".repeat(10).into_bytes();
        head.pop();
        assert!(is_plain_text(&head));
    }
}
