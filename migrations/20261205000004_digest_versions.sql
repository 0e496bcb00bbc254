-- Digests over JSON are now made over RFC 8785 canonical JSON (version 2). Each digest records
-- the form it was made in, so the ones made before (version 1: serde_json's sorted, compact
-- output) are still checked as they were made; no stored digest or chain hash is rewritten.
-- Existing rows take version 1 as the column is added; new rows get 2.

alter table audit_event add column digest_version smallint not null default 1
    constraint audit_event_digest_version check (digest_version in (1, 2));
alter table audit_event alter column digest_version set default 2;

alter table standard add column content_digest_version smallint not null default 1
    constraint standard_content_digest_version check (content_digest_version in (1, 2));
alter table standard alter column content_digest_version set default 2;

alter table sign_off add column basis_digest_version smallint not null default 1
    constraint sign_off_basis_digest_version check (basis_digest_version in (1, 2));
alter table sign_off alter column basis_digest_version set default 2;

alter table evidence add column declaration_digest_version smallint not null default 1
    constraint evidence_declaration_digest_version check (declaration_digest_version in (1, 2));
alter table evidence alter column declaration_digest_version set default 2;

-- Sealing may not change the form an event is hashed in either.
create or replace function audit_event_is_append_only() returns trigger
language plpgsql as $$
begin
    if tg_op = 'UPDATE' and old.hash is null and new.hash is not null
       and (old.audit_event_id, old.occurred_at, old.actor_user_id, old.actor, old.action,
            old.entity_type, old.entity_id, old.client_ip, old.detail, old.digest_version)
           is not distinct from
           (new.audit_event_id, new.occurred_at, new.actor_user_id, new.actor, new.action,
            new.entity_type, new.entity_id, new.client_ip, new.detail, new.digest_version) then
        return new;
    end if;
    raise exception 'audit events are append-only';
end;
$$;
