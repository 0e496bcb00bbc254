-- Witness testimony: the candidate names a witness to a piece of evidence; the assessor makes
-- the witness a single-use link (valid 14 days) and sends it to them, so the candidate never
-- holds it. The witness reads the statement, confirms it or corrects it, and signs with their
-- typed name. Only the SHA-256 of the link's token is kept; a new link replaces the last. The
-- answer is written once, with its time and the address it came from.
create table witness_request (
    witness_request_id uuid primary key default gen_random_uuid(),
    evidence_id uuid not null references evidence,
    witness_name text not null,
    witness_email text not null,
    -- The witness's role at work: what makes them a witness to this.
    witness_role text not null,
    requested_by uuid not null references app_user,
    requested_at timestamptz not null,
    -- The link, once the assessor has made it.
    token_sha256 bytea,
    link_made_by uuid references app_user,
    link_made_at timestamptz,
    expires_at timestamptz,
    answered_at timestamptz,
    -- True: confirmed as written; false: confirmed with the corrections given.
    confirmed boolean,
    corrections text not null default '',
    signed_name text,
    answered_ip inet,
    constraint witness_request_token_key unique (token_sha256),
    constraint witness_request_token_length check (octet_length(token_sha256) = 32),
    constraint witness_request_link_whole check (
        (token_sha256 is null) = (expires_at is null)
        and (token_sha256 is null) = (link_made_at is null)
        and (token_sha256 is null) = (link_made_by is null)
    ),
    constraint witness_request_answered_by_link check (answered_at is null or token_sha256 is not null),
    constraint witness_request_named check (
        btrim(witness_name) <> '' and btrim(witness_email) <> '' and btrim(witness_role) <> ''
    ),
    constraint witness_request_answer_whole check (
        (answered_at is null) = (confirmed is null)
        and (answered_at is null) = (signed_name is null)
        and (signed_name is null or btrim(signed_name) <> '')
        and (confirmed is distinct from false or btrim(corrections) <> '')
    )
);

create index witness_request_evidence_idx on witness_request (evidence_id, requested_at);

-- An answer is final: once given, the row does not change again.
create function witness_answer_is_final() returns trigger
language plpgsql as $$
begin
    if old.answered_at is not null then
        raise exception 'a witness''s answer is final';
    end if;
    return new;
end;
$$;

create trigger witness_answer_is_final before update on witness_request
    for each row execute function witness_answer_is_final();
create trigger witness_request_is_kept before delete on witness_request
    for each row execute function record_is_append_only();
