-- The audit trail becomes a hash chain: each event carries the hash of the one before it and
-- its own hash = SHA-256(prev_hash || canonical JSON of the event), so a changed, removed or
-- inserted event breaks the chain where it happened (`attest audit verify`). Events written
-- before this migration are sealed in order by `attest` when it next opens the database.

alter table audit_event
    add column prev_hash bytea,
    add column hash bytea,
    add constraint audit_event_hash_length check (hash is null or octet_length(hash) = 32),
    add constraint audit_event_prev_hash_length check (prev_hash is null or octet_length(prev_hash) = 32);

create unique index audit_event_hash_key on audit_event (hash);

-- Sealing legacy events is the one update the chain itself allows: setting a missing hash.
create or replace function audit_event_is_append_only() returns trigger
language plpgsql as $$
begin
    if tg_op = 'UPDATE' and old.hash is null and new.hash is not null
       and (old.audit_event_id, old.occurred_at, old.actor_user_id, old.actor, old.action,
            old.entity_type, old.entity_id, old.client_ip, old.detail)
           is not distinct from
           (new.audit_event_id, new.occurred_at, new.actor_user_id, new.actor, new.action,
            new.entity_type, new.entity_id, new.client_ip, new.detail) then
        return new;
    end if;
    raise exception 'audit events are append-only';
end;
$$;

drop trigger audit_event_no_update_or_delete on audit_event;

create trigger audit_event_no_update_or_delete
    before update or delete on audit_event
    for each row execute function audit_event_is_append_only();
