-- Interim sampling: an IQA samples judged evidence at any time, not only at sign-off, and
-- agrees with the judgements or disagrees with actions for the assessor, who answers each.
create table evidence_sample (
    evidence_sample_id uuid primary key default gen_random_uuid(),
    -- The version sampled, with its judgements as they stood.
    evidence_id uuid not null references evidence,
    iqa_id uuid not null references app_user,
    -- Whose judgements were sampled: the enrolment's assessor at the time.
    assessor_id uuid not null references app_user,
    decision review_decision not null,
    -- What the IQA says about the judgements; actions are rows of iqa_action.
    comment text not null default '',
    sampled_at timestamptz not null,
    constraint evidence_sample_comment_length check (length(comment) <= 5000)
);

create index evidence_sample_evidence_idx on evidence_sample (evidence_id);
create index evidence_sample_assessor_idx on evidence_sample (assessor_id);

create trigger evidence_sample_is_append_only before update or delete on evidence_sample
    for each row execute function record_is_append_only();

-- An action belongs to a disagreement with a sign-off or with a sampled piece of evidence.
alter table iqa_action
    alter column review_id drop not null,
    add column evidence_sample_id uuid references evidence_sample,
    add constraint iqa_action_of_one_disagreement check (num_nonnulls(review_id, evidence_sample_id) = 1),
    add constraint iqa_action_sample_position_key unique (evidence_sample_id, position);

create index iqa_action_sample_idx on iqa_action (evidence_sample_id) where evidence_sample_id is not null;

-- A cohort's sampling plan: how much of each assessor's judged evidence the IQAs mean to
-- sample, and the methods and criteria the samples must cover between them.
create table sampling_plan (
    cohort_id uuid primary key references cohort,
    updated_by uuid not null references app_user,
    updated_at timestamptz not null
);

create table sampling_plan_assessor (
    cohort_id uuid not null references sampling_plan on delete cascade,
    assessor_id uuid not null references app_user,
    percent integer not null,
    primary key (cohort_id, assessor_id),
    constraint sampling_plan_percent_range check (percent between 0 and 100)
);

create table sampling_plan_method (
    cohort_id uuid not null references sampling_plan on delete cascade,
    method assessment_method not null,
    primary key (cohort_id, method)
);

create table sampling_plan_criterion (
    cohort_id uuid not null references sampling_plan on delete cascade,
    criterion_id uuid not null references criterion,
    primary key (cohort_id, criterion_id)
);
