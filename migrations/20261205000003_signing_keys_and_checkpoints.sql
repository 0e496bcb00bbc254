-- The portal's signing keys, and signed checkpoints of the audit chain.

-- A key pair per row: the private half sealed with the key from configuration. One key of an
-- algorithm is active at a time; retired keys stay, published, so that what they signed can
-- still be checked. Keys are never deleted and never changed, but for being retired once.
create table signing_key (
    kid text primary key,
    algorithm text not null constraint signing_key_algorithm check (algorithm in ('EdDSA')),
    public_key bytea not null,
    private_sealed bytea not null,
    created_at timestamptz not null,
    retired_at timestamptz
);
create unique index signing_key_one_active on signing_key (algorithm) where retired_at is null;

create function signing_key_is_kept() returns trigger
language plpgsql as $$
begin
    if tg_op = 'UPDATE' and old.retired_at is null and new.retired_at is not null
       and (to_jsonb(new) - 'retired_at') = (to_jsonb(old) - 'retired_at') then
        return new;
    end if;
    raise exception 'signing keys are kept as they are (a key may only be retired)';
end;
$$;

create trigger signing_key_is_kept before update or delete on signing_key
    for each row execute function signing_key_is_kept();
create trigger signing_key_is_not_emptied before truncate on signing_key
    for each statement execute function refuse_truncate();

-- A signed statement that the chain had `events` events ending in `head_hash` at `made_at`.
-- A later chain must still hold that prefix: a truncated or rewritten tail cannot hide.
create table audit_checkpoint (
    audit_checkpoint_id bigint generated always as identity primary key,
    events bigint not null constraint audit_checkpoint_events_positive check (events > 0),
    head_hash bytea not null constraint audit_checkpoint_head_length check (octet_length(head_hash) = 32),
    made_at timestamptz not null,
    kid text not null references signing_key,
    signature bytea not null
);
create index audit_checkpoint_events_idx on audit_checkpoint (events);

create trigger audit_checkpoint_is_append_only before update or delete on audit_checkpoint
    for each row execute function record_is_append_only();
create trigger audit_checkpoint_is_not_emptied before truncate on audit_checkpoint
    for each statement execute function refuse_truncate();
