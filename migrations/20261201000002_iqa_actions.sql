-- The actions of an IQA's disagreement, one row each, and the assessor's answer to each (what
-- was done). The assessor answers every action of the latest disagreement before signing the
-- enrolment off again, and the IQA reads the answers when reviewing that next sign-off.
create table iqa_action (
    iqa_action_id uuid primary key default gen_random_uuid(),
    review_id uuid not null references review,
    -- Its place in the IQA's list, from 1.
    position integer not null,
    text text not null,
    constraint iqa_action_position_key unique (review_id, position),
    constraint iqa_action_text_present check (btrim(text) <> '')
);

create table iqa_action_answer (
    iqa_action_id uuid primary key references iqa_action,
    assessor_id uuid not null references app_user,
    answer text not null,
    answered_at timestamptz not null,
    constraint iqa_action_answer_present check (btrim(answer) <> '')
);

create trigger iqa_action_is_append_only before update or delete on iqa_action
    for each row execute function record_is_append_only();
create trigger iqa_action_answer_is_append_only before update or delete on iqa_action_answer
    for each row execute function record_is_append_only();

-- The disagreements made before: an action per line that is not blank.
insert into iqa_action (review_id, position, text)
select r.review_id, row_number() over (partition by r.review_id order by l.n), btrim(l.line, E' \t\r\f\v')
  from review r
 cross join lateral regexp_split_to_table(r.actions, E'\r?\n') with ordinality as l(line, n)
 where r.decision = 'disagree' and btrim(l.line, E' \t\r\f\v') <> '';
