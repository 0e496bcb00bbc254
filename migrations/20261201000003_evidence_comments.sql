-- The conversation on a piece of evidence: comments between its candidate, assessor and IQA,
-- kept for every version of the piece (each comment names the version it was written on).
-- An assessor's overall feedback when judging is one of them.
create table evidence_comment (
    comment_id uuid primary key default gen_random_uuid(),
    item_id uuid not null,
    evidence_id uuid not null references evidence,
    author_id uuid not null references app_user,
    -- The author's part in the enrolment when they wrote it.
    author_part text not null,
    body text not null,
    created_at timestamptz not null default clock_timestamp(),
    constraint evidence_comment_part_known check (author_part in ('candidate', 'assessor', 'iqa')),
    constraint evidence_comment_body_present check (btrim(body) <> '' and char_length(body) <= 5000)
);

create index evidence_comment_item_idx on evidence_comment (item_id, created_at);

create trigger evidence_comment_is_append_only before update or delete on evidence_comment
    for each row execute function record_is_append_only();
