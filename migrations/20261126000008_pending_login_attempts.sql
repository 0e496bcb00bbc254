-- A sign-in attempt is recorded as pending before its password is checked, then settled as
-- failed or succeeded. Pending attempts count against the account (so parallel guesses cannot
-- pass the lockout together) but not against the address (so a class signing in at once from
-- one network is not refused).
alter type login_outcome add value 'pending';
