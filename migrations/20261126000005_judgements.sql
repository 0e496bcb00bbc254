-- Assessors' judgements of the criteria that evidence claims. Append-only: a later judgement
-- of the same (evidence version, criterion) supersedes the earlier one, which stays.

create table judgement (
    judgement_id uuid primary key default gen_random_uuid(),
    evidence_id uuid not null,
    criterion_id uuid not null,
    assessor_id uuid not null references app_user,
    met boolean not null,
    -- Required when not met: what the candidate must add or change.
    feedback text not null default '',
    -- The VACSR checks: all five are required for met.
    valid boolean not null,
    authentic boolean not null,
    current boolean not null,
    sufficient boolean not null,
    reliable boolean not null,
    created_at timestamptz not null default clock_timestamp(),
    constraint judgement_claim_fkey foreign key (evidence_id, criterion_id) references evidence_claim,
    constraint judgement_met_needs_vacsr check (not met or (valid and authentic and current and sufficient and reliable)),
    constraint judgement_not_met_needs_feedback check (met or btrim(feedback) <> '')
);

create index judgement_claim_idx on judgement (evidence_id, criterion_id, created_at desc);

create function judgement_is_append_only() returns trigger
language plpgsql as $$
begin
    raise exception 'judgements are append-only';
end;
$$;

create trigger judgement_is_append_only
    before update or delete on judgement
    for each row execute function judgement_is_append_only();
