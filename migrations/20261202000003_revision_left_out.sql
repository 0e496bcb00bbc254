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
