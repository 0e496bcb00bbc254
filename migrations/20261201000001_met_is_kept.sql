-- Met is kept: a criterion met on an earlier version of an evidence item stays met when the
-- item is revised, unless the assessor reverses that judgement with a reason. A reversal is a
-- judgement like any other on the earlier version's claim (not met, the reason as its
-- feedback), marked as a reversal so pages and the audit trail can say so.
alter table judgement add column reverses_kept boolean not null default false;
alter table judgement add constraint judgement_reversal_is_not_met check (not (reverses_kept and met));

-- The view's columns were fixed when it was made: made again, it has the new one too.
create or replace view latest_judgement as
select j.*
  from judgement j
 where not exists (select 1 from judgement later
                    where later.evidence_id = j.evidence_id and later.criterion_id = j.criterion_id
                      and (later.created_at, later.judgement_id) > (j.created_at, j.judgement_id));

-- Every claim of a submitted version, and whether a later submitted version of its item has
-- superseded it: what the status rule reads (a superseded claim counts only while met).
create view submitted_claim as
select ev.enrolment_id, ev.evidence_id, ev.item_id, ev.version, ev.submitted_at, ec.criterion_id,
       exists (select 1 from evidence later
                where later.item_id = ev.item_id and later.state = 'submitted'
                  and later.version > ev.version) as superseded
  from evidence ev
  join evidence_claim ec using (evidence_id)
 where ev.state = 'submitted';

-- Which version of the rule the stored statuses were worked out by. Those stored before were
-- by version 1; `attest` works them out again by the rule it carries when it opens the
-- database (one process at a time, the old rows readable meanwhile), then records the version.
create table status_rule (
    version integer not null,
    only_one boolean primary key default true,
    constraint status_rule_one_row check (only_one)
);
insert into status_rule (version) values (1);
