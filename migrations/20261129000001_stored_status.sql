-- Competency status stored as it changes. The inputs of the status rule get one definition
-- each (the views), and the rule's results are kept per enrolment and per enrolment × criterion,
-- rewritten in the same transaction as every change that can move them, so pages, exports and
-- reports read rows instead of recomputing. The rule itself lives in `assessments/status.rs`;
-- `attest` fills the rows of enrolments that have none when it opens the database (existing
-- databases are backfilled there), and `attest status verify` recomputes and compares.

-- The current submitted version of each evidence item: no later version of it is submitted.
-- (A plain filter rather than DISTINCT ON, so a condition on enrolment_id reaches the index.)
create view current_evidence as
select e.*
  from evidence e
 where e.state = 'submitted'
   and not exists (select 1 from evidence later
                    where later.item_id = e.item_id and later.state = 'submitted'
                      and later.version > e.version);

-- The judgement of each (evidence version, criterion) claim that counts: the latest one.
create view latest_judgement as
select j.*
  from judgement j
 where not exists (select 1 from judgement later
                    where later.evidence_id = j.evidence_id and later.criterion_id = j.criterion_id
                      and (later.created_at, later.judgement_id) > (j.created_at, j.judgement_id));

-- The newest sign-off of each enrolment, with the IQA's review of it if there is one.
create view latest_sign_off as
select s.sign_off_id, s.sequence, s.enrolment_id, s.assessor_id, s.signed_at, s.sampled,
       s.sample_reason, r.review_id, r.iqa_id as reviewer_id, r.decision, r.actions, r.reviewed_at
  from sign_off s
  left join review r using (sign_off_id)
 where not exists (select 1 from sign_off later
                    where later.enrolment_id = s.enrolment_id and later.sequence > s.sequence);

-- The sign-off that stands: the newest, unless an IQA disagreed with it (which withdraws it).
create view standing_sign_off as
select * from latest_sign_off where decision is distinct from 'disagree';

create type criterion_status as enum ('not_started', 'awaiting', 'met', 'not_met');

create type enrolment_status as enum (
    'not_started', 'in_progress', 'ready_for_sign_off', 'competent', 'verified', 'withdrawn'
);

-- One row per enrolment: its status and the figures pages list and sort by.
create table enrolment_progress (
    enrolment_id uuid primary key references enrolment,
    -- Copies of the enrolment's cohort, people, withdrawal and candidate's name, so that a
    -- caseload or a cohort report is one index range of this table.
    cohort_id uuid not null references cohort,
    candidate_id uuid not null references app_user,
    assessor_id uuid references app_user,
    iqa_id uuid references app_user,
    withdrawn boolean not null,
    -- lower(display name) of the candidate: the order of caseloads and reports.
    candidate_sort_name text not null,
    status enrolment_status not null,
    performance_met integer not null,
    performance_total integer not null,
    knowledge_met integer not null,
    knowledge_total integer not null,
    -- Criteria whose status is awaiting / not met.
    criteria_awaiting integer not null,
    criteria_not_met integer not null,
    -- Claims of current versions that have no judgement yet, and when the oldest of them was
    -- submitted; `next_evidence_id` is that version: what the assessor should open next.
    claims_awaiting integer not null,
    oldest_awaiting_at timestamptz,
    next_evidence_id uuid references evidence,
    -- The latest submission or judgement of any version.
    last_activity_at timestamptz,
    standing_sign_off_id uuid references sign_off,
    -- Of the standing sign-off: when and by whom; when and by whom the IQA countersigned it.
    signed_off_at timestamptz,
    signed_off_by uuid references app_user,
    verified_at timestamptz,
    verified_by uuid references app_user,
    -- Every criterion's status in the standard's order (as in enrolment_criterion_status): a
    -- report or export reads one row per enrolment.
    criteria_statuses criterion_status[] not null,
    computed_at timestamptz not null default clock_timestamp(),
    constraint enrolment_progress_counts_valid check (
        performance_met between 0 and performance_total
        and knowledge_met between 0 and knowledge_total
        and criteria_awaiting >= 0 and criteria_not_met >= 0 and claims_awaiting >= 0
    ),
    constraint enrolment_progress_waiting_has_time check (
        (claims_awaiting = 0) = (oldest_awaiting_at is null)
        and (claims_awaiting = 0) = (next_evidence_id is null)
    )
);

-- Caseloads: an assessor's active enrolments, longest-waiting first, then by name.
create index enrolment_progress_caseload_idx
    on enrolment_progress (assessor_id, oldest_awaiting_at, candidate_sort_name, enrolment_id)
    include (cohort_id, status, claims_awaiting)
    where not withdrawn;

-- Cohort reports, by name (their filters read from the index too).
create index enrolment_progress_report_idx
    on enrolment_progress (cohort_id, candidate_sort_name, enrolment_id)
    include (assessor_id, status);

-- One row per enrolment × criterion of its standard.
create table enrolment_criterion_status (
    enrolment_id uuid not null references enrolment_progress on delete cascade,
    criterion_id uuid not null references criterion,
    status criterion_status not null,
    -- The claims of current versions on this criterion by their latest judgement.
    claims_met integer not null,
    claims_not_met integer not null,
    claims_awaiting integer not null,
    -- When the oldest unjudged claim on it was submitted.
    oldest_awaiting_at timestamptz,
    primary key (enrolment_id, criterion_id),
    constraint enrolment_criterion_status_counts_valid check (
        claims_met >= 0 and claims_not_met >= 0 and claims_awaiting >= 0
        and (claims_awaiting = 0) = (oldest_awaiting_at is null)
    )
);

-- How many enrolments of each cohort stand at each status with each assessor, and their claims
-- waiting: the summaries of reports, caseloads and the admin's home without counting rows.
-- Kept by the same function as the rows above, by differences, in the same transaction.
create table enrolment_count (
    cohort_id uuid not null references cohort,
    assessor_id uuid references app_user,
    status enrolment_status not null,
    withdrawn boolean not null,
    enrolments integer not null,
    claims_awaiting integer not null,
    -- (No check that they stay at or above zero: an insert that will meet its conflict and
    -- subtract is checked as the negative row it proposes. `attest status verify` recounts.)
    constraint enrolment_count_key unique nulls not distinct (cohort_id, assessor_id, status, withdrawn)
);

create index enrolment_count_assessor_idx on enrolment_count (assessor_id);
