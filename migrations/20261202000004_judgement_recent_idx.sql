-- The newest judgements first: what interim sampling offers the IQA, read from the top.
create index judgement_created_idx on judgement (created_at desc);
