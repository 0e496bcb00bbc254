-- Cohorts and enrolments, evidence with its versions, claims and files, and the file store.

create table cohort (
    cohort_id uuid primary key default gen_random_uuid(),
    standard_id uuid not null references standard,
    name text not null,
    starts_on date not null,
    ends_on date not null,
    created_at timestamptz not null default now(),
    constraint cohort_name_present check (btrim(name) <> '' and length(name) <= 200),
    constraint cohort_ends_after_start check (ends_on >= starts_on)
);

create unique index cohort_name_key on cohort (lower(name));

-- One candidate on one standard in one cohort, with the assessor and IQA who work with them.
create table enrolment (
    enrolment_id uuid primary key default gen_random_uuid(),
    cohort_id uuid not null references cohort,
    candidate_id uuid not null references app_user,
    assessor_id uuid references app_user,
    iqa_id uuid references app_user,
    created_at timestamptz not null default now(),
    -- A withdrawn enrolment keeps all its records; it only stops counting as active.
    withdrawn_at timestamptz,
    withdrawn_reason text,
    constraint enrolment_cohort_candidate_key unique (cohort_id, candidate_id),
    constraint enrolment_assessor_is_not_candidate check (assessor_id is distinct from candidate_id),
    constraint enrolment_iqa_is_not_candidate check (iqa_id is distinct from candidate_id),
    constraint enrolment_withdrawal_has_reason check ((withdrawn_at is null) = (withdrawn_reason is null))
);

create index enrolment_candidate_idx on enrolment (candidate_id);
create index enrolment_assessor_idx on enrolment (assessor_id);
create index enrolment_iqa_idx on enrolment (iqa_id);

create type assessment_method as enum (
    'observation', 'product', 'professional_discussion', 'question_and_answer',
    'witness_testimony', 'reflective_account', 'recognition_of_prior_learning'
);

create type evidence_state as enum ('draft', 'submitted');

-- One version of one item of a candidate's portfolio. Versions of an item share `item_id`;
-- a submitted version never changes, and a later submitted version supersedes it.
create table evidence (
    evidence_id uuid primary key default gen_random_uuid(),
    item_id uuid not null,
    version integer not null,
    enrolment_id uuid not null references enrolment,
    state evidence_state not null default 'draft',
    title text not null default '',
    -- Plain text, kept exactly as written.
    statement text not null default '',
    method assessment_method,
    activity_on date,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    submitted_at timestamptz,
    -- SHA-256 over the submitted content, claims and file hashes: what "my own work" covered.
    declaration_sha256 bytea,
    constraint evidence_item_version_key unique (item_id, version),
    constraint evidence_version_positive check (version > 0),
    constraint evidence_submission_complete check (
        state = 'draft'
        or (submitted_at is not null and octet_length(declaration_sha256) = 32
            and btrim(title) <> '' and method is not null and activity_on is not null)
    )
);

create index evidence_enrolment_idx on evidence (enrolment_id);

-- Submitted versions are the record: no update or delete reaches them.
create function evidence_submitted_is_immutable() returns trigger
language plpgsql as $$
begin
    if old.state = 'submitted' then
        raise exception 'submitted evidence % cannot be changed', old.evidence_id;
    end if;
    return case when tg_op = 'DELETE' then old else new end;
end;
$$;

create trigger evidence_submitted_is_immutable
    before update or delete on evidence
    for each row execute function evidence_submitted_is_immutable();

-- The criteria an evidence version claims to cover.
create table evidence_claim (
    evidence_id uuid not null references evidence on delete cascade,
    criterion_id uuid not null references criterion,
    -- Where in the evidence: page, timestamp, section.
    note text not null default '',
    primary key (evidence_id, criterion_id)
);

-- Stored files, content-addressed: one row per distinct SHA-256.
create table blob (
    blob_id uuid primary key,
    sha256 bytea not null,
    size_bytes bigint not null,
    -- Sniffed from the bytes, never taken from the name or the browser.
    content_type text not null,
    created_at timestamptz not null default now(),
    constraint blob_sha256_key unique (sha256),
    constraint blob_sha256_length check (octet_length(sha256) = 32),
    constraint blob_size_positive check (size_bytes > 0)
);

-- The bytes, about 1 MiB a row. Chunks are written while the upload streams in and the blob
-- row only at its end, in the same transaction: hence the deferred key.
create table blob_chunk (
    blob_id uuid not null references blob on delete cascade deferrable initially deferred,
    seq integer not null,
    data bytea not null,
    primary key (blob_id, seq)
);

-- Evidence files are mostly compressed already (PDF, JPEG, MP4, Office): store them as they are.
alter table blob_chunk alter column data set storage external;

create table evidence_file (
    evidence_file_id uuid primary key default gen_random_uuid(),
    evidence_id uuid not null references evidence on delete cascade,
    blob_id uuid not null references blob,
    -- For display only, cleaned of path parts and control characters; storage never uses it.
    file_name text not null,
    -- The moment of the upload itself (not of its transaction), so files keep their order.
    created_at timestamptz not null default clock_timestamp(),
    constraint evidence_file_name_present check (btrim(file_name) <> '')
);

create index evidence_file_evidence_idx on evidence_file (evidence_id);

-- Claims and files of submitted evidence are as immutable as the evidence itself.
create function evidence_part_of_submitted_is_immutable() returns trigger
language plpgsql as $$
declare
    target uuid := case when tg_op = 'INSERT' then new.evidence_id else old.evidence_id end;
begin
    if exists (select 1 from evidence where evidence_id = target and state = 'submitted') then
        raise exception 'parts of submitted evidence % cannot be changed', target;
    end if;
    return case when tg_op = 'DELETE' then old else new end;
end;
$$;

create trigger evidence_claim_of_submitted_is_immutable
    before insert or update or delete on evidence_claim
    for each row execute function evidence_part_of_submitted_is_immutable();

create trigger evidence_file_of_submitted_is_immutable
    before insert or update or delete on evidence_file
    for each row execute function evidence_part_of_submitted_is_immutable();
