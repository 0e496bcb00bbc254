-- Every change of an enrolment's status moved one row of enrolment_count, the row of its
-- cohort, assessor and status, and held that row's lock until its commit: an assessor's
-- judgements (and any bulk client's) queued one behind another on it. Each group is now
-- spread over 16 slots, an enrolment's changes going to the slot its id picks, so changes of
-- different enrolments seldom meet. Readers sum a group's slots; one slot's figures mean
-- nothing alone.

alter table enrolment_count add column slot smallint not null default 0;
alter table enrolment_count drop constraint enrolment_count_key;
alter table enrolment_count add constraint enrolment_count_key
    unique nulls not distinct (cohort_id, assessor_id, status, withdrawn, slot);
alter table enrolment_count alter column slot drop default;
