-- A revision number per enrolment that moves whenever anything its portfolio page, or its
-- row of a caseload or a cohort report, shows changes, so that a serving process can keep
-- those pages' records in memory and check with one short read that they are still current
-- (src/kept.rs). Moved by triggers, so no way of making a change can forget it. Revisions are
-- drawn from one sequence: a larger one is always a later change, so the largest revision of
-- a cohort's (or an assessor's) enrolments moves whenever any of them changes.

create sequence enrolment_revision_seq;
alter table enrolment_progress add column revision bigint not null default 0;
create index enrolment_progress_cohort_revision_idx on enrolment_progress (cohort_id, revision);
create index enrolment_progress_assessor_revision_idx on enrolment_progress (assessor_id, revision);

-- Any change to the stored status moves it (an update that changes nothing does not).
create function enrolment_progress_revise() returns trigger
language plpgsql as $$
begin
    if new is distinct from old then
        new.revision := nextval('enrolment_revision_seq');
    end if;
    return new;
end
$$;

create trigger enrolment_progress_revised before update on enrolment_progress
    for each row execute function enrolment_progress_revise();

-- Moves the revision of `enrolments`, locking them in one order as status refreshes do, so
-- that this cannot deadlock with them.
create function revise_enrolments(enrolments uuid[]) returns void
language plpgsql as $$
begin
    perform 1 from enrolment_progress
      where enrolment_id = any(enrolments)
      order by enrolment_id
      for no key update;
    update enrolment_progress set revision = nextval('enrolment_revision_seq')
     where enrolment_id = any(enrolments);
end
$$;

-- Each function below reads the rows a statement changed (its transition table, named
-- `changed` by every trigger) and revises their enrolments; one per way of reaching them.
create function revise_by_enrolment() returns trigger
language plpgsql as $$
begin
    perform revise_enrolments(array(select distinct enrolment_id from changed));
    return null;
end
$$;

create function revise_by_evidence() returns trigger
language plpgsql as $$
begin
    perform revise_enrolments(array(
        select distinct ev.enrolment_id from changed c join evidence ev using (evidence_id)));
    return null;
end
$$;

create function revise_by_review() returns trigger
language plpgsql as $$
begin
    perform revise_enrolments(array(
        select distinct so.enrolment_id from changed c join sign_off so using (sign_off_id)));
    return null;
end
$$;

-- An IQA action belongs to a review (of a sign-off) or to a sample (of evidence).
create function revise_by_iqa_action() returns trigger
language plpgsql as $$
begin
    perform revise_enrolments(array(
        select so.enrolment_id
          from changed c join review r using (review_id) join sign_off so using (sign_off_id)
        union
        select ev.enrolment_id
          from changed c join evidence_sample es using (evidence_sample_id)
          join evidence ev on ev.evidence_id = es.evidence_id));
    return null;
end
$$;

create function revise_by_iqa_answer() returns trigger
language plpgsql as $$
begin
    perform revise_enrolments(array(
        select so.enrolment_id
          from changed c join iqa_action a using (iqa_action_id)
          join review r using (review_id) join sign_off so using (sign_off_id)
        union
        select ev.enrolment_id
          from changed c join iqa_action a using (iqa_action_id)
          join evidence_sample es using (evidence_sample_id)
          join evidence ev on ev.evidence_id = es.evidence_id));
    return null;
end
$$;

-- Evidence and its claims change while drafted; the rest is append-only.
create trigger evidence_inserted_revises after insert on evidence
    referencing new table as changed for each statement execute function revise_by_enrolment();
create trigger evidence_updated_revises after update on evidence
    referencing new table as changed for each statement execute function revise_by_enrolment();
create trigger evidence_deleted_revises after delete on evidence
    referencing old table as changed for each statement execute function revise_by_enrolment();

create trigger claim_inserted_revises after insert on evidence_claim
    referencing new table as changed for each statement execute function revise_by_evidence();
create trigger claim_updated_revises after update on evidence_claim
    referencing new table as changed for each statement execute function revise_by_evidence();
create trigger claim_deleted_revises after delete on evidence_claim
    referencing old table as changed for each statement execute function revise_by_evidence();

create trigger judgement_revises after insert on judgement
    referencing new table as changed for each statement execute function revise_by_evidence();
create trigger sample_revises after insert on evidence_sample
    referencing new table as changed for each statement execute function revise_by_evidence();
create trigger met_history_revises after insert on enrolment_met_history
    referencing new table as changed for each statement execute function revise_by_enrolment();
create trigger sign_off_revises after insert on sign_off
    referencing new table as changed for each statement execute function revise_by_enrolment();
create trigger review_revises after insert on review
    referencing new table as changed for each statement execute function revise_by_review();
create trigger iqa_action_revises after insert on iqa_action
    referencing new table as changed for each statement execute function revise_by_iqa_action();
create trigger iqa_answer_revises after insert on iqa_action_answer
    referencing new table as changed for each statement execute function revise_by_iqa_answer();

-- The pages show the names of the people in the enrolment and its IQA's conversation, and
-- of its cohort.
create function revise_by_person() returns trigger
language plpgsql as $$
begin
    perform revise_enrolments(array(
        select enrolment_id from enrolment_progress
         where new.user_id in (candidate_id, assessor_id, iqa_id)));
    return null;
end
$$;

create trigger person_renamed_revises after update of display_name on app_user
    for each row when (old.display_name is distinct from new.display_name)
    execute function revise_by_person();

create function revise_by_cohort() returns trigger
language plpgsql as $$
begin
    perform revise_enrolments(array(
        select enrolment_id from enrolment_progress where cohort_id = new.cohort_id));
    return null;
end
$$;

create trigger cohort_renamed_revises after update of name on cohort
    for each row when (old.name is distinct from new.name)
    execute function revise_by_cohort();
