-- How many criteria of each enrolment were met, each time that number changed: what the
-- progress-over-time charts draw. Written by the same function as the stored status, in the
-- same transaction.
create table enrolment_met_history (
    history_id bigint generated always as identity primary key,
    enrolment_id uuid not null references enrolment,
    at timestamptz not null,
    criteria_met integer not null,
    criteria_total integer not null,
    constraint enrolment_met_history_counts_valid check (criteria_met between 0 and criteria_total)
);

create index enrolment_met_history_enrolment_idx on enrolment_met_history (enrolment_id, at);
