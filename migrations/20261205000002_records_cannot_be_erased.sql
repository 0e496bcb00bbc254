-- What has been submitted, decided or recorded cannot be erased or rewritten in place, not even
-- in bulk: stored files' bytes are write-once, a file that submitted evidence refers to keeps
-- its chunks, and TRUNCATE (which fires no row trigger) is refused on every table that holds a
-- record. Caches, sessions and sign-in attempts may still be emptied.

-- A chunk is written once. It is deleted only with a file no submitted evidence refers to: an
-- abandoned upload, a duplicate of a file stored already, or a file the sweeper removes.
create function blob_chunk_is_kept() returns trigger
language plpgsql as $$
begin
    if tg_op = 'UPDATE' then
        raise exception 'stored file chunks are write-once';
    end if;
    if exists (select 1 from evidence_file f join evidence e using (evidence_id)
                where f.blob_id = old.blob_id and e.state = 'submitted') then
        raise exception 'the chunks of a file of submitted evidence cannot be deleted';
    end if;
    return old;
end;
$$;

create trigger blob_chunk_is_kept before update or delete on blob_chunk
    for each row execute function blob_chunk_is_kept();

-- A stored file is named by its SHA-256, size and type for good; only when it was last used
-- changes. (Deleting one that evidence refers to is refused by the foreign key.)
create function blob_is_kept() returns trigger
language plpgsql as $$
begin
    if (to_jsonb(new) - 'used_at') is distinct from (to_jsonb(old) - 'used_at') then
        raise exception 'a stored file''s name, size and type cannot change';
    end if;
    return new;
end;
$$;

create trigger blob_is_kept before update on blob
    for each row execute function blob_is_kept();

create function refuse_truncate() returns trigger
language plpgsql as $$
begin
    raise exception 'table % holds records and cannot be emptied', tg_table_name;
end;
$$;

do $$
declare
    record_table text;
begin
    foreach record_table in array array[
        'audit_event', 'app_user', 'standard', 'criterion', 'cohort', 'enrolment',
        'evidence', 'evidence_claim', 'evidence_file', 'evidence_comment', 'evidence_sample',
        'blob', 'blob_chunk', 'judgement', 'sign_off', 'sign_off_item', 'review',
        'iqa_action', 'iqa_action_answer', 'witness_request', 'sampling_plan',
        'sampling_plan_assessor', 'sampling_plan_criterion', 'sampling_plan_method',
        'second_factor', 'recovery_code'
    ] loop
        execute format(
            'create trigger %I before truncate on %I for each statement execute function refuse_truncate()',
            record_table || '_is_not_emptied', record_table);
    end loop;
end;
$$;
