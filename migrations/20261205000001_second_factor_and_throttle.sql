-- A second factor for sign-in (TOTP with single-use recovery codes), the half-way point of a
-- sign-in that still needs it, the devices an account has signed in from, and throttling by
-- growing delays instead of a lock an attacker could hold.

-- One authenticator per account. The secret is sealed with the key from configuration; it is
-- unconfirmed until its owner has typed a code from it.
create table second_factor (
    user_id uuid primary key references app_user on delete cascade,
    secret_sealed bytea not null,
    confirmed_at timestamptz,
    -- The last time step a code was accepted for: a code is never accepted twice.
    last_step bigint,
    created_at timestamptz not null
);

-- Ten single-use codes for when the authenticator is lost; only their SHA-256 is kept (each
-- has 50 random bits, so a slow hash would add nothing).
create table recovery_code (
    user_id uuid not null references app_user on delete cascade,
    code_hash bytea not null,
    used_at timestamptz,
    primary key (user_id, code_hash)
);

-- A password was right and the second factor is still to come (or to be set up): the cookie
-- of the browser holds the token whose SHA-256 is the key. Short-lived, never a session.
create table sign_in_challenge (
    token_hash bytea primary key,
    user_id uuid not null references app_user on delete cascade,
    -- Where the person was going when they signed in.
    next_path text not null,
    created_at timestamptz not null,
    expires_at timestamptz not null,
    constraint sign_in_challenge_token_length check (octet_length(token_hash) = 32)
);
create index sign_in_challenge_user_idx on sign_in_challenge (user_id);

-- Browsers an account has fully signed in from (by the SHA-256 of a long-lived cookie): an
-- attack on the account from elsewhere does not slow their sign-in.
create table known_device (
    device_hash bytea not null,
    user_id uuid not null references app_user on delete cascade,
    first_seen_at timestamptz not null,
    last_seen_at timestamptz not null,
    primary key (device_hash, user_id)
);
create index known_device_user_idx on known_device (user_id);

-- Attempts now say what was checked (a password, a second-factor code, or a password with a
-- code past an account's wait, which has a count of its own) and from which known device; 'cleared' marks a password set or a reset by an admin, after which earlier
-- failures no longer count. A sign-in that got past an account's wait with a code succeeds
-- without clearing the wait: the attack goes on.
alter type login_outcome add value 'cleared';
alter type login_outcome add value 'succeeded_while_waiting';
alter table login_attempt
    add column kind text not null default 'password'
        constraint login_attempt_kind check (kind in ('password', 'second_factor', 'password_with_code')),
    add column device_hash bytea;
create index login_attempt_device_idx on login_attempt (email_key, device_hash, attempted_at)
    where device_hash is not null;
