-- A revision number per enrolment that moves whenever anything its portfolio page, or its
-- row of a caseload or a cohort report, shows changes, and a count of such changes per cohort
-- and per assessor, so that a serving process can keep those pages' records in memory and
-- check with one short read that they are still current (src/kept.rs). Moved by triggers, so
-- no way of making a change can forget them.

alter table enrolment_progress add column revision bigint not null default 0;

-- Changes to the enrolments of a cohort, or of an assessor's caseload (`scope_id`: a cohort's
-- or a user's id), spread over slots by enrolment as the cohort counts are, so that changes of
-- different enrolments seldom wait for each other's commits. Each committed change adds to one
-- slot, so the sum over a scope's slots moves with every change, whatever order transactions
-- commit in; an enrolment leaving a caseload counts as a change to it.
create table revision_count (
    scope_id uuid not null,
    slot smallint not null,
    changes bigint not null,
    primary key (scope_id, slot)
);

-- Any change to the stored status moves it (an update that changes nothing does not).
create function enrolment_progress_revise() returns trigger
language plpgsql as $$
begin
    if new is distinct from old then
        new.revision := old.revision + 1;
    end if;
    return new;
end
$$;

create trigger enrolment_progress_revised before update on enrolment_progress
    for each row execute function enrolment_progress_revise();

-- The slot of the counts that enrolment `id`'s changes go to, as `status::db::count_slot`
-- picks it for the cohort counts: by the last byte of its id, which is random.
create function count_slot(id uuid) returns smallint
language sql immutable as $$
    select (get_byte(uuid_send(id), 15) % 16)::smallint
$$;

-- Adds one change per pair of `scopes` and `slots` to the counts (scopes without an id, as an
-- enrolment without an assessor has, are skipped), locking the counts in one order. PL/pgSQL,
-- not SQL: its plan is kept between calls, and every judgement calls it.
create function add_revision_counts(scopes uuid[], slots smallint[]) returns void
language plpgsql as $$
begin
    insert into revision_count (scope_id, slot, changes)
    select scope_id, slot, count(*)
      from unnest(scopes, slots) as c(scope_id, slot)
     where scope_id is not null
     group by 1, 2
     order by 1, 2
    on conflict (scope_id, slot) do update set changes = revision_count.changes + excluded.changes;
end
$$;

-- Each function below reads the rows a statement changed (its transition table, named
-- `changed` by every trigger, and `gone` for what an update replaced) and counts them against
-- their cohorts and assessors.
create function count_progress_inserted() returns trigger
language plpgsql as $$
begin
    perform add_revision_counts(array_agg(s.scope_id), array_agg(count_slot(c.enrolment_id)))
       from changed c cross join lateral (values (c.cohort_id), (c.assessor_id)) s(scope_id);
    return null;
end
$$;

-- An update counts only where the row changed (its revision moved), for the cohort and
-- assessor it had and those it has.
create function count_progress_updated() returns trigger
language plpgsql as $$
begin
    perform add_revision_counts(array_agg(s.scope_id), array_agg(count_slot(c.enrolment_id)))
       from changed c
       join gone g using (enrolment_id)
       cross join lateral (
           select distinct scope_id
             from (values (c.cohort_id), (c.assessor_id), (g.cohort_id), (g.assessor_id)) v(scope_id)
       ) s
      where c.revision <> g.revision;
    return null;
end
$$;

-- The cohort counts (the report's summary, a caseload's totals) change with the stored status,
-- and are also rewritten alone when `attest status verify --repair` recounts them.
create function count_counts_changed() returns trigger
language plpgsql as $$
begin
    perform add_revision_counts(array_agg(s.scope_id), array_agg(c.slot))
       from changed c cross join lateral (values (c.cohort_id), (c.assessor_id)) s(scope_id);
    return null;
end
$$;

create trigger counts_inserted_count after insert on enrolment_count
    referencing new table as changed for each statement execute function count_counts_changed();
create trigger counts_updated_count after update on enrolment_count
    referencing new table as changed for each statement execute function count_counts_changed();
create trigger counts_deleted_count after delete on enrolment_count
    referencing old table as changed for each statement execute function count_counts_changed();

create trigger progress_inserted_counts after insert on enrolment_progress
    referencing new table as changed for each statement execute function count_progress_inserted();
create trigger progress_updated_counts after update on enrolment_progress
    referencing old table as gone new table as changed
    for each statement execute function count_progress_updated();

-- Moves the revision of `enrolments`, locking them in one order as status refreshes do, so
-- that this cannot deadlock with them.
create function revise_enrolments(enrolments uuid[]) returns void
language plpgsql as $$
begin
    perform 1 from enrolment_progress
      where enrolment_id = any(enrolments)
      order by enrolment_id
      for no key update;
    update enrolment_progress set revision = revision + 1 where enrolment_id = any(enrolments);
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

-- The enrolments of the IQA actions `action_ids`: an IQA action belongs to a review (of a sign-off) or to a
-- sample (of evidence).
create function enrolments_of_iqa_actions(action_ids uuid[]) returns uuid[]
language sql stable as $$
    select array(
        select so.enrolment_id
          from iqa_action a join review r using (review_id) join sign_off so using (sign_off_id)
         where a.iqa_action_id = any(action_ids)
        union
        select ev.enrolment_id
          from iqa_action a join evidence_sample es using (evidence_sample_id)
          join evidence ev on ev.evidence_id = es.evidence_id
         where a.iqa_action_id = any(action_ids))
$$;

-- For actions and their answers alike: both name the action.
create function revise_by_iqa_action() returns trigger
language plpgsql as $$
begin
    perform revise_enrolments(enrolments_of_iqa_actions(array(select iqa_action_id from changed)));
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

create trigger sample_revises after insert on evidence_sample
    referencing new table as changed for each statement execute function revise_by_evidence();
-- Judgements, sign-offs, reviews and met history are written only with a refresh of the
-- stored status, which always moves the revision (it stamps `computed_at`): no trigger of
-- their own, so that judging pays for one revision, not three.
create trigger iqa_action_revises after insert on iqa_action
    referencing new table as changed for each statement execute function revise_by_iqa_action();
create trigger iqa_answer_revises after insert on iqa_action_answer
    referencing new table as changed for each statement execute function revise_by_iqa_action();

-- The pages show the names of the people in the enrolment and its IQA's conversation, and
-- of its cohort.
create function revise_by_person() returns trigger
language plpgsql as $$
begin
    perform revise_enrolments(array(
        select enrolment_id from enrolment_progress
         where new.user_id in (candidate_id, assessor_id, iqa_id, signed_off_by, verified_by)
        union
        -- People who have left the enrolment still show where they reviewed, sampled or answered.
        select so.enrolment_id from review r join sign_off so using (sign_off_id)
         where r.iqa_id = new.user_id
        union
        select ev.enrolment_id from evidence_sample es join evidence ev using (evidence_id)
         where new.user_id in (es.iqa_id, es.assessor_id)
        union
        select unnest(enrolments_of_iqa_actions(array(
            select iqa_action_id from iqa_action_answer where assessor_id = new.user_id)))));
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
