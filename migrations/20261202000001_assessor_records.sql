-- Evidence the assessor makes: records of an observation, a professional discussion or a
-- questioning session, written by the enrolment's assessor on the candidate's portfolio. The
-- assessor drafts the record and sends it to the candidate; the candidate's confirmation that
-- it is accurate is its submission, and from then on it is judged like any other evidence.
alter table evidence
    -- The assessor who wrote the record; null for the candidate's own evidence.
    add column made_by uuid references app_user,
    -- When the record was sent to the candidate to confirm.
    add column sent_at timestamptz,
    add constraint evidence_sent_is_record check (sent_at is null or made_by is not null),
    add constraint evidence_record_method check (
        made_by is null or method is null
        or method in ('observation', 'professional_discussion', 'question_and_answer')
    ),
    -- A record reaches assessment only through the candidate, after it was sent to them.
    add constraint evidence_record_confirmed_after_sending check (
        made_by is null or state = 'draft' or sent_at is not null
    );
