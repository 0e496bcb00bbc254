//! Queries of the accounts domain.

use sqlx::PgConnection;
use time::OffsetDateTime;

use super::model::{DisplayName, Email};
use crate::identity::{Role, UserId};

/// An account as the admin pages show it.
#[derive(Debug, Clone)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub roles: Vec<Role>,
    pub is_active: bool,
    pub has_password: bool,
    /// Every sign-off of a trainee assessor is sampled for IQA review.
    pub is_trainee_assessor: bool,
    /// Signs in with a second step (a confirmed authenticator).
    pub has_second_factor: bool,
    pub created_at: OffsetDateTime,
}

impl User {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// What sign-in needs of an account.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub password_hash: Option<String>,
    pub is_active: bool,
    pub roles: Vec<Role>,
}

/// Why an account could not be created.
#[derive(Debug, thiserror::Error)]
pub enum InsertError {
    #[error("an account with this email address already exists")]
    EmailTaken,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

pub async fn insert(
    conn: &mut PgConnection,
    email: &Email,
    name: &DisplayName,
    roles: &[Role],
    password_hash: Option<&str>,
) -> Result<UserId, InsertError> {
    sqlx::query_scalar!(
        r#"insert into app_user (email, display_name, roles, password_hash)
           values ($1, $2, $3, $4)
           returning user_id as "id: UserId""#,
        email.as_str(),
        name.as_str(),
        roles as &[Role],
        password_hash,
    )
    .fetch_one(conn)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.constraint() == Some("app_user_email_key") => {
            InsertError::EmailTaken
        }
        _ => InsertError::Database(e),
    })
}

/// Accounts with no password yet (each is invited by a link), made in one statement, in the
/// order of their lower-cased addresses (so two at once cannot deadlock). An email address
/// someone else took meanwhile is left out: returns the address, as given, and the new id of
/// each account made.
pub async fn insert_invited(
    conn: &mut PgConnection,
    emails: &[String],
    names: &[String],
    roles: &[Role],
) -> sqlx::Result<Vec<(String, UserId)>> {
    let rows = sqlx::query!(
        r#"insert into app_user (email, display_name, roles)
           select email, name, $3 from unnest($1::text[], $2::text[]) as t(email, name)
            order by lower(email)
           on conflict do nothing
           returning email, user_id as "id: UserId""#,
        emails,
        names,
        roles as &[Role],
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.email, r.id)).collect())
}

/// The accounts of these email addresses, in one query: each with the address it was asked
/// for, compared as `find_credentials` compares one.
pub async fn find_credentials_of(
    conn: &mut PgConnection,
    emails: &[String],
) -> sqlx::Result<Vec<(String, Credentials)>> {
    let rows = sqlx::query!(
        r#"select k.email as "asked!", u.user_id as "id: UserId", u.email, u.display_name as name,
                  u.password_hash, u.is_active, u.roles as "roles: Vec<Role>"
             from unnest($1::text[]) as k(email)
             join app_user u on lower(u.email) = lower(k.email)"#,
        emails
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let credentials = Credentials {
                id: r.id,
                email: r.email,
                name: r.name,
                password_hash: r.password_hash,
                is_active: r.is_active,
                roles: r.roles,
            };
            (r.asked, credentials)
        })
        .collect())
}

pub async fn find(conn: &mut PgConnection, id: UserId) -> sqlx::Result<Option<User>> {
    sqlx::query_as!(
        User,
        r#"select user_id as "id: UserId", email, display_name as name, roles as "roles: Vec<Role>",
                  is_active, password_hash is not null as "has_password!", is_trainee_assessor, created_at,
                  exists (select 1 from second_factor f
                           where f.user_id = app_user.user_id and f.confirmed_at is not null) as "has_second_factor!"
             from app_user where user_id = $1"#,
        id as UserId
    )
    .fetch_optional(conn)
    .await
}

/// The account with this email, matched without regard to case.
pub async fn find_credentials(
    conn: &mut PgConnection,
    email_key: &str,
) -> sqlx::Result<Option<Credentials>> {
    sqlx::query_as!(
        Credentials,
        r#"select user_id as "id: UserId", email, display_name as name, password_hash, is_active,
                  roles as "roles: Vec<Role>"
             from app_user where lower(email) = lower($1)"#,
        email_key
    )
    .fetch_optional(conn)
    .await
}

pub async fn find_password_hash(
    conn: &mut PgConnection,
    id: UserId,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!(
        "select password_hash from app_user where user_id = $1",
        id as UserId
    )
    .fetch_one(conn)
    .await
}

/// Accounts whose name or email contains `search` (all when empty), by name; at most `limit`.
pub async fn search(conn: &mut PgConnection, search: &str, limit: i64) -> sqlx::Result<Vec<User>> {
    let pattern = crate::db::contains_pattern(search);
    sqlx::query_as!(
        User,
        r#"select user_id as "id: UserId", email, display_name as name, roles as "roles: Vec<Role>",
                  is_active, password_hash is not null as "has_password!", is_trainee_assessor, created_at,
                  exists (select 1 from second_factor f
                           where f.user_id = app_user.user_id and f.confirmed_at is not null) as "has_second_factor!"
             from app_user
            where display_name ilike $1 or email ilike $1
            order by lower(display_name), lower(email)
            limit $2"#,
        pattern,
        limit
    )
    .fetch_all(conn)
    .await
}

pub async fn set_password_hash(
    conn: &mut PgConnection,
    id: UserId,
    hash: &str,
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "update app_user set password_hash = $2, updated_at = $3 where user_id = $1",
        id as UserId,
        hash,
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn update_profile(
    conn: &mut PgConnection,
    id: UserId,
    name: &DisplayName,
    roles: &[Role],
    trainee: bool,
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "update app_user set display_name = $2, roles = $3, is_trainee_assessor = $4, updated_at = $5 where user_id = $1",
        id as UserId,
        name.as_str(),
        roles as &[Role],
        trainee,
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn set_active(
    conn: &mut PgConnection,
    id: UserId,
    active: bool,
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "update app_user set is_active = $2, updated_at = $3 where user_id = $1",
        id as UserId,
        active,
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Locks the active admins' rows and counts them, so two admins demoting each other at once
/// cannot leave the portal with none.
pub async fn lock_active_admins(conn: &mut PgConnection) -> sqlx::Result<Vec<UserId>> {
    sqlx::query_scalar!(
        r#"select user_id as "id: UserId" from app_user
            where is_active and 'admin' = any(roles)
            order by user_id
              for update"#
    )
    .fetch_all(conn)
    .await
}

pub async fn any_active_admin(conn: &mut PgConnection) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"select exists(select 1 from app_user where is_active and 'admin' = any(roles)) as "exists!""#
    )
    .fetch_one(conn)
    .await
}
