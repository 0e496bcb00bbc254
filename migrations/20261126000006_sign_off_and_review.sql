-- Assessors' sign-offs and internal quality assurers' reviews of them. Both append-only: an
-- IQA's disagreement withdraws a sign-off by a review row, never by changing the sign-off.

create type review_decision as enum ('agree', 'disagree');

create table sign_off (
    sign_off_id uuid primary key default gen_random_uuid(),
    -- Orders sign-offs even when two carry the same time.
    sequence bigint generated always as identity,
    enrolment_id uuid not null references enrolment,
    assessor_id uuid not null references app_user,
    signed_at timestamptz not null,
    -- Criterion -> judgement -> evidence version -> file hashes the sign-off rests on.
    basis jsonb not null,
    -- SHA-256 over the canonical JSON of `basis`: later tampering with any of it shows.
    basis_sha256 bytea not null,
    -- Chosen for IQA sampling when signed, and why (or why not).
    sampled boolean not null,
    sample_reason text not null,
    constraint sign_off_basis_sha256_length check (octet_length(basis_sha256) = 32)
);

create index sign_off_enrolment_idx on sign_off (enrolment_id, sequence desc);

create table review (
    review_id uuid primary key default gen_random_uuid(),
    sign_off_id uuid not null references sign_off,
    iqa_id uuid not null references app_user,
    decision review_decision not null,
    -- What the assessor must do, when the IQA disagrees.
    actions text not null default '',
    reviewed_at timestamptz not null,
    constraint review_one_per_sign_off unique (sign_off_id),
    constraint review_disagreement_has_actions check (decision = 'agree' or btrim(actions) <> '')
);

create function record_is_append_only() returns trigger
language plpgsql as $$
begin
    raise exception '% rows are append-only', tg_table_name;
end;
$$;

create trigger sign_off_is_append_only before update or delete on sign_off
    for each row execute function record_is_append_only();
create trigger review_is_append_only before update or delete on review
    for each row execute function record_is_append_only();
