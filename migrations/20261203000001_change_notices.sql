-- Notices on the `attest_changes` channel, so that every serving process can forget what it
-- keeps in memory about a session or a user once it changes (see src/changes.rs). Sent from
-- triggers, so no way of making the change can forget to send one. A notice is delivered when
-- its transaction commits, and not at all if it rolls back.

create function notify_session_change() returns trigger
language plpgsql as $$
begin
    perform pg_notify('attest_changes', 'session:' || encode(old.session_id_hash, 'hex'));
    return null;
end
$$;

-- Ending a session, or giving it a new id (rotation, or marking it for one). Seeing it again
-- (`last_seen_at`) is not a change anyone keeps.
create trigger session_ended after delete on session
    for each row execute function notify_session_change();
create trigger session_renewed after update of session_id_hash, must_rotate, user_id on session
    for each row
    when (old.session_id_hash is distinct from new.session_id_hash
          or old.must_rotate is distinct from new.must_rotate
          or old.user_id is distinct from new.user_id)
    execute function notify_session_change();

create function notify_user_change() returns trigger
language plpgsql as $$
begin
    perform pg_notify('attest_changes', 'user:' || old.user_id::text);
    return null;
end
$$;

-- What a session carries of its user: email, name, roles, and whether the account is active.
create trigger user_changed after update of email, display_name, roles, is_active on app_user
    for each row
    when (old.email is distinct from new.email
          or old.display_name is distinct from new.display_name
          or old.roles is distinct from new.roles
          or old.is_active is distinct from new.is_active)
    execute function notify_user_change();

-- Emptying either table (an operator signing everyone out) fires no row trigger: everything
-- kept is forgotten instead.
create function notify_everything_changed() returns trigger
language plpgsql as $$
begin
    perform pg_notify('attest_changes', 'everything');
    return null;
end
$$;

create trigger session_emptied after truncate on session
    for each statement execute function notify_everything_changed();
create trigger user_emptied after truncate on app_user
    for each statement execute function notify_everything_changed();
