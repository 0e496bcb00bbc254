-- Competency standards and their criteria, plus the append-only audit log.

create type criterion_kind as enum ('performance', 'knowledge');

create table standard (
    standard_id uuid primary key default gen_random_uuid(),
    -- Unique reference number as published (e.g. TECIT50761); one row per published version.
    urn text not null,
    version text not null,
    title text not null,
    -- Overview paragraphs in published order.
    overview text[] not null,
    -- Every "key<TAB>value" line of the published metadata block, in order: [[key, value], …].
    metadata jsonb not null,
    -- Parsed from "Date Approved" / "Indicative Review Date"; null when the text is not a date.
    approved_on date,
    -- Last day of the indicative review month: after it the standard is due for review.
    review_due_on date,
    -- SHA-256 over the parsed content; re-importing identical text is recognised by it.
    content_sha256 bytea not null,
    created_at timestamptz not null default now(),
    constraint standard_urn_version_key unique (urn, version),
    constraint standard_urn_present check (btrim(urn) <> ''),
    constraint standard_version_present check (btrim(version) <> ''),
    constraint standard_title_present check (btrim(title) <> ''),
    constraint standard_metadata_is_array check (jsonb_typeof(metadata) = 'array'),
    constraint standard_content_sha256_length check (octet_length(content_sha256) = 32)
);

create table criterion (
    criterion_id uuid primary key default gen_random_uuid(),
    standard_id uuid not null references standard on delete restrict,
    kind criterion_kind not null,
    -- PC1…, K1…: what candidates and assessors call the criterion.
    code text not null,
    -- 1-based order within its kind, as published.
    position integer not null,
    -- Published text; lettered sub-items stay inside it, one per line.
    text text not null,
    constraint criterion_standard_code_key unique (standard_id, code),
    constraint criterion_standard_kind_position_key unique (standard_id, kind, position),
    constraint criterion_position_positive check (position > 0),
    constraint criterion_text_present check (btrim(text) <> '')
);

create table audit_event (
    audit_event_id bigint generated always as identity primary key,
    occurred_at timestamptz not null default now(),
    -- The signed-in user who acted; null for the command line and the system itself.
    actor_user_id uuid,
    -- Who acted, in words, as they were named at the time ("cli", "system", an email).
    actor text not null,
    -- Dotted verb such as 'standard.imported'.
    action text not null,
    entity_type text not null,
    entity_id text not null,
    client_ip inet,
    -- What changed; never passwords, tokens or cookies.
    detail jsonb not null default '{}'::jsonb,
    constraint audit_event_action_format check (action ~ '^[a-z_]+(\.[a-z_]+)+$')
);

create index audit_event_entity_idx on audit_event (entity_type, entity_id);
create index audit_event_occurred_at_idx on audit_event (occurred_at);

-- Audit rows are append-only: no role may rewrite or remove history through the application.
create function audit_event_is_append_only() returns trigger
language plpgsql as $$
begin
    raise exception 'audit events are append-only';
end;
$$;

create trigger audit_event_no_update_or_delete
    before update or delete on audit_event
    for each statement execute function audit_event_is_append_only();
