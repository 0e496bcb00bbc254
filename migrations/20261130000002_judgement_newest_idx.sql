-- An enrolment's last activity is its newest judgement: found per version from this index
-- (one entry each) rather than by reading every judgement the enrolment ever had.
create index judgement_evidence_created_idx on judgement (evidence_id, created_at);
