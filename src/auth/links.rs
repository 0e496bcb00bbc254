//! Single-use links that let a person set a password: first-admin setup (1 hour), invitations
//! (7 days) and password resets (24 hours). Only the SHA-256 of a link's token is stored.

use serde::Serialize;
use sqlx::PgConnection;
use time::{Duration, OffsetDateTime};

use super::db;
use crate::crypto::{random_token, sha256};
use crate::identity::UserId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::Type)]
#[sqlx(type_name = "access_link_purpose", rename_all = "snake_case")]
pub enum Purpose {
    Setup,
    Invitation,
    PasswordReset,
}

impl Purpose {
    pub fn lifetime(self) -> Duration {
        match self {
            Self::Setup => Duration::hours(1),
            Self::Invitation => Duration::days(7),
            Self::PasswordReset => Duration::hours(24),
        }
    }

    /// The path the link opens, before its token.
    pub fn path(self) -> &'static str {
        match self {
            Self::Setup => "/setup/",
            Self::Invitation => "/invitations/",
            Self::PasswordReset => "/password-reset/",
        }
    }

    /// How long the link lasts, in words.
    pub fn lifetime_text(self) -> &'static str {
        match self {
            Self::Setup => "1 hour",
            Self::Invitation => "7 days",
            Self::PasswordReset => "24 hours",
        }
    }
}

/// A link just made: the only time its token exists outside the person's hands.
#[derive(Debug, Clone)]
pub struct IssuedLink {
    pub url: String,
    pub expires_at: OffsetDateTime,
}

/// Makes a link. Setup links carry 128 random bits, the others 256.
pub async fn issue(
    conn: &mut PgConnection,
    base_url: &str,
    purpose: Purpose,
    user: Option<UserId>,
    created_by: Option<UserId>,
    now: OffsetDateTime,
) -> sqlx::Result<IssuedLink> {
    let mut issued = issue_each(conn, base_url, purpose, &[user], created_by, now).await?;
    Ok(issued.remove(0))
}

/// Issues a link of `purpose` to each of `users` in one statement, in their order.
pub async fn issue_many(
    conn: &mut PgConnection,
    base_url: &str,
    purpose: Purpose,
    users: &[UserId],
    created_by: Option<UserId>,
    now: OffsetDateTime,
) -> sqlx::Result<Vec<IssuedLink>> {
    let users: Vec<Option<UserId>> = users.iter().copied().map(Some).collect();
    issue_each(conn, base_url, purpose, &users, created_by, now).await
}

/// A link of `purpose` for each of `users` (none for the first admin's setup link).
async fn issue_each(
    conn: &mut PgConnection,
    base_url: &str,
    purpose: Purpose,
    users: &[Option<UserId>],
    created_by: Option<UserId>,
    now: OffsetDateTime,
) -> sqlx::Result<Vec<IssuedLink>> {
    let expires_at = now + purpose.lifetime();
    let bytes = if purpose == Purpose::Setup { 16 } else { 32 };
    let tokens: Vec<String> = users.iter().map(|_| random_token(bytes)).collect();
    let hashes: Vec<Vec<u8>> = tokens
        .iter()
        .map(|t| sha256(t.as_bytes()).to_vec())
        .collect();
    let ids: Vec<Option<uuid::Uuid>> = users.iter().map(|u| u.map(|u| u.0)).collect();
    db::insert_links(conn, &hashes, purpose, &ids, created_by, now, expires_at).await?;
    let base = base_url.trim_end_matches('/');
    Ok(tokens
        .into_iter()
        .map(|token| IssuedLink {
            url: format!("{base}{}{token}", purpose.path()),
            expires_at,
        })
        .collect())
}

/// A link that can still be used.
#[derive(Debug, Clone)]
pub struct ValidLink {
    pub token_hash: [u8; 32],
    pub user: Option<UserId>,
}

/// The unused, unexpired link of `purpose` with this token. With `lock`, the row is locked
/// until the transaction ends, so a link cannot be used twice by two requests racing.
pub async fn find_valid(
    conn: &mut PgConnection,
    purpose: Purpose,
    token: &str,
    now: OffsetDateTime,
    lock: bool,
) -> sqlx::Result<Option<ValidLink>> {
    let token_hash = sha256(token.as_bytes());
    let user = if lock {
        db::find_valid_link_user_for_update(conn, &token_hash, purpose, now).await?
    } else {
        db::find_valid_link_user(conn, &token_hash, purpose, now).await?
    };
    Ok(user.map(|user| ValidLink { token_hash, user }))
}

pub async fn mark_used(
    conn: &mut PgConnection,
    token_hash: &[u8; 32],
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    db::mark_link_used(conn, token_hash, now).await
}

/// Retires every unused link of a user (a new one replaces them, or the account is closed).
pub async fn retire_for_user(
    conn: &mut PgConnection,
    user: UserId,
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    db::retire_unused_links_of_user(conn, user, now).await
}
