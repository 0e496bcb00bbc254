-- Changes append their audit event without waiting for the chain: a writer inserts the event
-- unsealed (no hashes) and commits. One sealer at a time then links the events that have
-- become visible into the chain, in the order it finds them; `chain_seq` is that order and the
-- order `attest audit verify` walks. Before this, every change held one lock from its audit
-- event to its commit, so all writes queued behind each other.

alter table audit_event add column chain_seq bigint;

-- Events sealed so far were chained in id order.
alter table audit_event disable trigger audit_event_no_update_or_delete;
update audit_event e
   set chain_seq = sealed.n
  from (select audit_event_id, row_number() over (order by audit_event_id) as n
          from audit_event where hash is not null) sealed
 where e.audit_event_id = sealed.audit_event_id;
alter table audit_event enable trigger audit_event_no_update_or_delete;

alter table audit_event
    add constraint audit_event_sealed_whole
        check ((hash is null) = (prev_hash is null) and (hash is null) = (chain_seq is null));

create unique index audit_event_chain_seq_key on audit_event (chain_seq);
-- What the sealer looks for, many times a second.
create index audit_event_unsealed_idx on audit_event (audit_event_id) where hash is null;
