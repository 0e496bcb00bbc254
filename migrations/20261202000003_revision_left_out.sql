-- The claims a revision draft left out because they were met on the version it revises. Met
-- is kept, so the candidate need not claim them again; but when such a criterion is no longer
-- met by the time the revision is submitted (the assessor re-judged or reversed it meanwhile),
-- the submission claims it again, with its note, so it goes back to the assessor.
create table revision_left_out (
    evidence_id uuid not null references evidence on delete cascade,
    criterion_id uuid not null references criterion,
    note text not null default '',
    primary key (evidence_id, criterion_id)
);

-- Those left out and no longer met: what a submission claims again.
create view revision_no_longer_met as
select lo.evidence_id, lo.criterion_id, lo.note
  from revision_left_out lo
  join evidence d on d.evidence_id = lo.evidence_id
  join evidence revised on revised.item_id = d.item_id and revised.version = d.version - 1
 where not exists (select 1 from latest_judgement lj
                    where lj.evidence_id = revised.evidence_id
                      and lj.criterion_id = lo.criterion_id and lj.met);
