-- Uploads write their chunks in short statements of their own as the bytes arrive, and only
-- the finished file is linked to evidence, in one short transaction at the end. So no upload
-- holds a transaction, or a connection, at its client's pace.

-- A file still being written. Its chunks name it until the blob row that names the file by
-- its SHA-256 is written; one the client abandoned is swept once it has been idle an hour.
create table pending_upload (
    blob_id uuid primary key,
    -- When its last chunk was written.
    written_at timestamptz not null default now()
);

create index pending_upload_written_idx on pending_upload (written_at);

-- A chunk now belongs to a pending upload or to a blob.
alter table blob_chunk drop constraint blob_chunk_blob_id_fkey;

-- When an upload last found this file stored, or stored it. A blob no evidence refers to is
-- swept only a grace period after that, so a file an upload has just found, and is about to
-- link, is never taken from under it.
alter table blob add column used_at timestamptz not null default now();

create index blob_used_idx on blob (used_at);

-- The sweeper asks of every old blob whether any evidence refers to it.
create index evidence_file_blob_idx on evidence_file (blob_id);
