-- The caseload page is read from its index alone: the candidate's name, the next version to
-- judge and whether an IQA disagreed with the latest sign-off (their actions are then looked up
-- for that row only) are kept with each enrolment's stored progress and in the caseload index.
alter table enrolment_progress
    add column candidate_name text,
    add column iqa_disagreed boolean not null default false;

update enrolment_progress p
   set candidate_name = u.display_name
  from app_user u
 where u.user_id = p.candidate_id;

update enrolment_progress p
   set iqa_disagreed = true
  from latest_sign_off ls
 where ls.enrolment_id = p.enrolment_id and ls.decision = 'disagree';

alter table enrolment_progress alter column candidate_name set not null;

drop index enrolment_progress_caseload_idx;
create index enrolment_progress_caseload_idx
    on enrolment_progress (assessor_id, oldest_awaiting_at, candidate_sort_name, enrolment_id)
    include (cohort_id, status, claims_awaiting, next_evidence_id, candidate_name, iqa_disagreed)
    where not withdrawn;
