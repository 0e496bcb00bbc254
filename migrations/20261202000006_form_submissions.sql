-- Every form carries a one-time key. A request that creates something claims its key first;
-- the same form sent again (a double click, a resend after a timeout) finds the key taken and
-- is answered with where the first one led, instead of doing it twice. Kept a day.
create table form_submission (
    submission_key uuid primary key,
    user_id uuid not null references app_user,
    created_at timestamptz not null,
    -- Where the first submission led; written in its transaction.
    result text not null default ''
);

create index form_submission_created_idx on form_submission (created_at);
