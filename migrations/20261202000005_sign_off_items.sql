-- The items of each sign-off's basis as rows: the criterion, its kind, and the evidence version
-- (with its method) it rests on. The basis itself stays the signed record; these rows are read
-- by the IQA's coverage grid and the sampling plan, which otherwise unpack every basis on every
-- page. Written by the database as each sign-off is inserted, so no writer can forget them.
create table sign_off_item (
    sign_off_id uuid not null references sign_off,
    criterion_id uuid not null references criterion,
    kind criterion_kind not null,
    evidence_id uuid references evidence,
    method assessment_method,
    primary key (sign_off_id, criterion_id)
);

create index sign_off_item_evidence_idx on sign_off_item (evidence_id);

create function sign_off_items_of(sign_off_row sign_off) returns setof sign_off_item
language sql stable as $$
    select sign_off_row.sign_off_id, c.criterion_id, c.kind, ev.evidence_id, ev.method
      from jsonb_array_elements(sign_off_row.basis) as item
      join enrolment e on e.enrolment_id = sign_off_row.enrolment_id
      join cohort co on co.cohort_id = e.cohort_id
      join criterion c on c.standard_id = co.standard_id and c.code = item ->> 'criterion'
      left join evidence ev on ev.evidence_id = (item ->> 'evidence_id')::uuid
$$;

create function sign_off_items_written() returns trigger
language plpgsql as $$
begin
    insert into sign_off_item select * from sign_off_items_of(new);
    return null;
end;
$$;

create trigger sign_off_items_written after insert on sign_off
    for each row execute function sign_off_items_written();

create trigger sign_off_item_is_append_only before update or delete on sign_off_item
    for each row execute function record_is_append_only();

insert into sign_off_item select i.* from sign_off s cross join lateral sign_off_items_of(s) i;
