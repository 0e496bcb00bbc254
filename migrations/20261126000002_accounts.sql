-- Accounts, sessions, one-time links and sign-in attempts.

create type role as enum ('candidate', 'assessor', 'iqa', 'admin');

create table app_user (
    user_id uuid primary key default gen_random_uuid(),
    -- As the person typed it; compared without regard to case (see the unique index).
    email text not null,
    display_name text not null,
    -- Argon2id PHC string; null until the person sets a password through their invitation.
    password_hash text,
    roles role[] not null default '{}',
    is_active boolean not null default true,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint app_user_email_format check (email ~ '^[^@\s]+@[^@\s]+$' and length(email) <= 254),
    constraint app_user_display_name_present check (btrim(display_name) <> '' and length(display_name) <= 200)
);

create unique index app_user_email_key on app_user (lower(email));

alter table audit_event
    add constraint audit_event_actor_user_id_fkey foreign key (actor_user_id) references app_user;

create table session (
    -- SHA-256 of the cookie's random token: a copy of this table signs nobody in.
    session_id_hash bytea primary key,
    user_id uuid not null references app_user on delete cascade,
    -- Per-session token every form of a signed-in user carries.
    csrf_token text not null,
    created_at timestamptz not null,
    last_seen_at timestamptz not null,
    -- Set when the user's roles change: the next request gets a new session id.
    must_rotate boolean not null default false,
    constraint session_id_hash_length check (octet_length(session_id_hash) = 32)
);

create index session_user_id_idx on session (user_id);
create index session_last_seen_at_idx on session (last_seen_at);

create type access_link_purpose as enum ('setup', 'invitation', 'password_reset');

-- Single-use links: first-admin setup, invitations and password resets.
create table access_link (
    -- SHA-256 of the random token in the link.
    token_hash bytea primary key,
    purpose access_link_purpose not null,
    -- Whose password the link sets; null for first-admin setup.
    user_id uuid references app_user on delete cascade,
    created_by uuid references app_user,
    created_at timestamptz not null,
    expires_at timestamptz not null,
    used_at timestamptz,
    constraint access_link_user_matches_purpose check ((purpose = 'setup') = (user_id is null)),
    constraint access_link_expires_after_creation check (expires_at > created_at)
);

create index access_link_user_id_idx on access_link (user_id);

create type login_outcome as enum ('succeeded', 'failed', 'refused');

-- Every sign-in attempt, for lockout by account and by client address.
create table login_attempt (
    login_attempt_id bigint generated always as identity primary key,
    -- Lower-cased email as typed, whether or not such an account exists.
    email_key text not null,
    client_ip inet,
    outcome login_outcome not null,
    attempted_at timestamptz not null
);

create index login_attempt_email_idx on login_attempt (email_key, attempted_at);
create index login_attempt_ip_idx on login_attempt (client_ip, attempted_at);
