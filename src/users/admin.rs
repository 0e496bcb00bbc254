//! User management for admins: list and search, create with an invitation link, edit name and
//! roles, deactivate and reactivate, and issue a new password link.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::views::{RoleChoice, UserNewPage, UserShowPage, UsersIndexPage};
use crate::accounts::db::{self, InsertError, User};
use crate::accounts::model::{DisplayName, Email};
use crate::audit::{self, Actor, NewAuditEvent};
use crate::auth::csrf::CsrfForm;
use crate::auth::links::{self, IssuedLink, Purpose};
use crate::auth::session::{self};
use crate::changes::Change;
use crate::error::{AppError, AppResult};
use crate::forms::FormErrors;
use crate::identity::CurrentUser;
use crate::identity::{Role, UserId, normalise_roles};
use crate::state::AppState;
use crate::web::client_ip::ClientIp;
use crate::web::flash;
use crate::web::layout::{Layout, Section};

/// How many accounts one page of the list shows.
const PAGE_SIZE: i64 = 200;

#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

/// `GET /admin/users`.
pub async fn index(
    State(state): State<AppState>,
    layout: Layout,
    Query(query): Query<SearchQuery>,
) -> AppResult<UsersIndexPage> {
    let mut conn = state.pool.acquire().await?;
    let q = query.q.trim().to_owned();
    let users = db::search(&mut conn, &q, PAGE_SIZE + 1).await?;
    let truncated = users.len() > usize::try_from(PAGE_SIZE).unwrap_or(usize::MAX);
    let users = users
        .into_iter()
        .take(usize::try_from(PAGE_SIZE).unwrap_or(usize::MAX))
        .collect();
    Ok(UsersIndexPage {
        layout: layout.section(Section::Users),
        users,
        q,
        truncated,
    })
}

/// `GET /admin/users/new`.
pub async fn new(layout: Layout) -> UserNewPage {
    UserNewPage {
        layout: layout.section(Section::Users),
        name: String::new(),
        email: String::new(),
        roles: RoleChoice::all(&[]),
        errors: FormErrors::default(),
    }
}

#[derive(Debug, Deserialize)]
pub struct UserForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: Vec<String>,
    #[serde(default)]
    trainee: String,
}

fn parse_roles(errors: &mut FormErrors, names: &[String]) -> Vec<Role> {
    let mut roles = Vec::new();
    for name in names {
        match Role::parse(name) {
            Some(role) => roles.push(role),
            None => errors.add("role-candidate", format!("\"{name}\" is not a role")),
        }
    }
    normalise_roles(roles)
}

/// `POST /admin/users`: creates the account and shows its invitation link once.
pub async fn create(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    admin: CurrentUser,
    layout: Layout,
    CsrfForm(form): CsrfForm<UserForm>,
) -> AppResult<Response> {
    let mut errors = FormErrors::default();
    let name = errors.check("name", DisplayName::parse(&form.name));
    let email = errors.check("email", Email::parse(&form.email));
    let roles = parse_roles(&mut errors, &form.role);
    let form_page = |errors: FormErrors| UserNewPage {
        layout: layout.clone().section(Section::Users),
        name: form.name.clone(),
        email: form.email.clone(),
        roles: RoleChoice::all(&roles),
        errors,
    };
    let (Some(name), Some(email)) = (name, email) else {
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, form_page(errors)).into_response());
    };
    if !errors.is_empty() {
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, form_page(errors)).into_response());
    }

    let mut tx = state.pool.begin().await?;
    let by = Actor::user(&admin, ip);
    let account = Invitation {
        email: &email,
        name: &name,
        roles: &roles,
        via: "admin",
    };
    let base_url = &state.settings.base_url;
    let invited = invite(&mut tx, &by, account, base_url, state.clock.now()).await?;
    let Ok((id, link)) = invited else {
        errors.add("email", "An account with this email address already exists");
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, form_page(errors)).into_response());
    };
    tx.commit().await?;

    let user = db::find(&mut *state.pool.acquire().await?, id)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok((
        StatusCode::CREATED,
        show_page(
            layout,
            user,
            FormErrors::default(),
            Some((Purpose::Invitation, link)),
        ),
    )
        .into_response())
}

/// An account to create, with no password, and invite to set one.
pub struct Invitation<'a> {
    pub email: &'a Email,
    pub name: &'a DisplayName,
    pub roles: &'a [Role],
    /// How it was asked for, as the audit event records it: `admin`, `roster`.
    pub via: &'static str,
}

/// Creates the account and an invitation link (made at `base_url`, `now`) with the audit
/// event, in the caller's transaction; `Err(())` when the email address is taken.
pub async fn invite(
    conn: &mut PgConnection,
    by: &Actor,
    account: Invitation<'_>,
    base_url: &str,
    now: OffsetDateTime,
) -> AppResult<Result<(UserId, IssuedLink), ()>> {
    let Invitation {
        email,
        name,
        roles,
        via,
    } = account;
    let id = match db::insert(&mut *conn, email, name, roles, None).await {
        Ok(id) => id,
        Err(InsertError::EmailTaken) => return Ok(Err(())),
        Err(InsertError::Database(e)) => return Err(e.into()),
    };
    let admin = by.user_id.map(UserId);
    let link = links::issue(
        &mut *conn,
        base_url,
        Purpose::Invitation,
        Some(id),
        admin,
        now,
    )
    .await?;
    audit::record(
        conn,
        NewAuditEvent {
            actor: by,
            action: "user.created",
            entity_type: "user",
            entity_id: id.to_string(),
            detail: json!({ "email": email.as_str(), "name": name.as_str(), "roles": roles, "via": via }),
        },
    )
    .await?;
    Ok(Ok((id, link)))
}

/// Creates the accounts of `people`, each with an invitation link and its audit event, in a
/// few statements in the caller's transaction; returns each one's id and link in the order
/// given, or the email addresses (as given) that someone else took meanwhile.
pub async fn invite_many(
    conn: &mut PgConnection,
    by: &Actor,
    people: &[(&Email, &DisplayName)],
    roles: &[Role],
    via: &'static str,
    (base_url, now): (&str, OffsetDateTime),
) -> AppResult<Result<Vec<(UserId, IssuedLink)>, Vec<String>>> {
    let emails: Vec<String> = people.iter().map(|(e, _)| e.as_str().to_owned()).collect();
    let names: Vec<String> = people.iter().map(|(_, n)| n.as_str().to_owned()).collect();
    let made: std::collections::HashMap<String, UserId> =
        db::insert_invited(&mut *conn, &emails, &names, roles)
            .await?
            .into_iter()
            .collect();
    let mut ids = Vec::with_capacity(people.len());
    let mut taken = Vec::new();
    for (email, _) in people {
        match made.get(email.as_str()) {
            Some(id) => ids.push(*id),
            None => taken.push(email.as_str().to_owned()),
        }
    }
    if !taken.is_empty() {
        return Ok(Err(taken));
    }
    let admin = by.user_id.map(UserId);
    let issued =
        links::issue_many(&mut *conn, base_url, Purpose::Invitation, &ids, admin, now).await?;
    let events: Vec<NewAuditEvent<'_>> = people
        .iter()
        .zip(&ids)
        .map(|((email, name), id)| NewAuditEvent {
            actor: by,
            action: "user.created",
            entity_type: "user",
            entity_id: id.to_string(),
            detail: json!({ "email": email.as_str(), "name": name.as_str(), "roles": roles, "via": via }),
        })
        .collect();
    audit::record_many(conn, &events).await?;
    Ok(Ok(ids.into_iter().zip(issued).collect()))
}

fn show_page(
    layout: Layout,
    user: User,
    errors: FormErrors,
    link: Option<(Purpose, IssuedLink)>,
) -> UserShowPage {
    let is_self = layout.user.as_ref().is_some_and(|u| u.id == user.id);
    UserShowPage {
        layout: layout.section(Section::Users),
        roles: RoleChoice::all(&user.roles),
        name: user.name.clone(),
        user,
        is_self,
        errors,
        link: link.map(|(purpose, link)| super::views::ShownLink {
            url: link.url,
            lifetime: purpose.lifetime_text(),
            is_invitation: purpose == Purpose::Invitation,
        }),
    }
}

/// The user page again, with `message` beside `field`, answered 422.
fn refuse(layout: Layout, user: User, field: &'static str, message: &str) -> Response {
    let mut errors = FormErrors::default();
    errors.add(field, message);
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        show_page(layout, user, errors, None),
    )
        .into_response()
}

/// Records an admin's change to an account.
async fn record_user_event(
    conn: &mut PgConnection,
    admin: &Actor,
    action: &'static str,
    user: UserId,
    detail: serde_json::Value,
) -> sqlx::Result<()> {
    audit::record(
        conn,
        NewAuditEvent {
            actor: admin,
            action,
            entity_type: "user",
            entity_id: user.to_string(),
            detail,
        },
    )
    .await
}

async fn load(state: &AppState, id: Uuid) -> AppResult<User> {
    let mut conn = state.pool.acquire().await?;
    db::find(&mut conn, UserId(id))
        .await?
        .ok_or(AppError::NotFound)
}

/// `GET /admin/users/{id}`.
pub async fn show(
    State(state): State<AppState>,
    layout: Layout,
    Path(id): Path<Uuid>,
) -> AppResult<UserShowPage> {
    let user = load(&state, id).await?;
    Ok(show_page(layout, user, FormErrors::default(), None))
}

/// `POST /admin/users/{id}`: changes name and roles.
pub async fn update(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    admin: CurrentUser,
    layout: Layout,
    Path(id): Path<Uuid>,
    CsrfForm(form): CsrfForm<UserForm>,
) -> AppResult<Response> {
    let user = load(&state, id).await?;
    let mut errors = FormErrors::default();
    let name = errors.check("name", DisplayName::parse(&form.name));
    let roles = parse_roles(&mut errors, &form.role);
    let Some(name) = name else {
        return Ok(edit_refused(layout, user, &form.name, &roles, errors));
    };
    if !errors.is_empty() {
        return Ok(edit_refused(layout, user, &form.name, &roles, errors));
    }
    let trainee = form.trainee == "yes" && roles.contains(&Role::Assessor);
    let change = ProfileChange {
        name,
        roles,
        trainee,
    };

    let mut tx = state.pool.begin().await?;
    let by = Actor::user(&admin, ip);
    let changed = change_profile(&mut tx, &by, &user, &change, state.clock.now()).await?;
    if let Err(refusal) = changed {
        return Ok(edit_refused(
            layout,
            user,
            &form.name,
            &change.roles,
            refusal,
        ));
    }
    tx.commit().await?;
    state.changes.forget(&Change::User(user.id));
    Ok(flash::redirect(
        &format!("/admin/users/{}", user.id),
        &format!("Saved the changes to {}.", change.name.as_str()),
    ))
}

/// A change of an account's name and roles, as the edit form asks for it.
pub struct ProfileChange {
    pub name: DisplayName,
    pub roles: Vec<Role>,
    /// Whether the account is to be a trainee assessor: asked for, and an assessor.
    pub trainee: bool,
}

/// Makes `change` to `user` on behalf of admin `by`, with its audit event, in the caller's
/// transaction; refused with the form's problem when it takes the admin role where it may not.
pub async fn change_profile(
    conn: &mut PgConnection,
    by: &Actor,
    user: &User,
    change: &ProfileChange,
    now: OffsetDateTime,
) -> sqlx::Result<Result<(), FormErrors>> {
    if let Some(refusal) = lock_admins_and_check_removal(conn, by, user, change).await? {
        return Ok(Err(refusal));
    }
    save_profile(conn, user, change, now).await?;
    audit_profile_change(conn, by, user, change).await?;
    Ok(Ok(()))
}

impl ProfileChange {
    /// Whether the change takes the admin role from `user`.
    fn removes_admin(&self, user: &User) -> bool {
        user.has_role(Role::Admin) && !self.roles.contains(&Role::Admin)
    }

    /// Whether `user`'s roles differ once the change is made.
    fn changes_roles(&self, user: &User) -> bool {
        user.roles != self.roles
    }
}

/// The user page again with 422 and `errors`, showing the name and roles as the admin typed
/// them rather than as stored.
fn edit_refused(
    layout: Layout,
    mut user: User,
    typed_name: &str,
    roles: &[Role],
    errors: FormErrors,
) -> Response {
    typed_name.clone_into(&mut user.name);
    roles.clone_into(&mut user.roles);
    let page = show_page(layout, user, errors, None);
    (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
}

/// Locks the active admins (until the transaction ends) and returns the form error refusing
/// `change` if it takes the admin role where it may not: from the admin making it, or from the
/// last active admin.
async fn lock_admins_and_check_removal(
    conn: &mut PgConnection,
    admin: &Actor,
    user: &User,
    change: &ProfileChange,
) -> sqlx::Result<Option<FormErrors>> {
    let admins = db::lock_active_admins(conn).await?;
    let removes_admin = change.removes_admin(user);
    let problem = if removes_admin && admin.user_id == Some(user.id.0) {
        "You cannot remove your own admin role; another admin can."
    } else if removes_admin && user.is_active && admins.len() <= 1 {
        "This is the last active admin; make someone else an admin first."
    } else {
        return Ok(None);
    };
    let mut errors = FormErrors::default();
    errors.add("role-admin", problem);
    Ok(Some(errors))
}

/// Stores `change` to `user`, refreshes the stored statuses that carry the name when it
/// changes, and has the account's sessions rotate when its roles change.
async fn save_profile(
    conn: &mut PgConnection,
    user: &User,
    change: &ProfileChange,
    now: OffsetDateTime,
) -> sqlx::Result<()> {
    db::update_profile(
        conn,
        user.id,
        &change.name,
        &change.roles,
        change.trainee,
        now,
    )
    .await?;
    if user.name != change.name.as_str() {
        // Caseloads and reports are ordered by the candidate's name as stored with the status.
        crate::status::db::refresh_for_candidate(conn, user.id).await?;
    }
    if change.changes_roles(user) {
        session::rotate_all_for_user(conn, user.id).await?;
    }
    Ok(())
}

/// Records `change` to `user` in the audit chain, each field from its stored value to the new
/// one: as `user.roles_changed` when the roles change, otherwise as `user.updated`.
async fn audit_profile_change(
    conn: &mut PgConnection,
    admin: &Actor,
    user: &User,
    change: &ProfileChange,
) -> sqlx::Result<()> {
    let action = if change.changes_roles(user) {
        "user.roles_changed"
    } else {
        "user.updated"
    };
    record_user_event(
        conn,
        admin,
        action,
        user.id,
        json!({
            "name": { "from": user.name, "to": change.name.as_str() },
            "roles": { "from": user.roles, "to": change.roles },
            "trainee_assessor": { "from": user.is_trainee_assessor, "to": change.trainee },
        }),
    )
    .await
}

/// `POST /admin/users/{id}/deactivate`: the account can no longer sign in; its sessions and
/// unused links end. Its records stay.
pub async fn deactivate(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    admin: CurrentUser,
    layout: Layout,
    Path(id): Path<Uuid>,
    CsrfForm(_): CsrfForm<crate::auth::EmptyForm>,
) -> AppResult<Response> {
    let user = load(&state, id).await?;
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let admins = db::lock_active_admins(&mut tx).await?;
    if user.id == admin.id {
        return Ok(refuse(
            layout,
            user,
            "deactivate",
            "You cannot deactivate your own account; another admin can.",
        ));
    }
    if user.is_active && user.has_role(Role::Admin) && admins.len() <= 1 {
        return Ok(refuse(
            layout,
            user,
            "deactivate",
            "This is the last active admin, so it cannot be deactivated.",
        ));
    }
    db::set_active(&mut tx, user.id, false, now).await?;
    let ended = session::end_all_for_user(&mut tx, user.id, None).await?;
    links::retire_for_user(&mut tx, user.id, now).await?;
    record_user_event(
        &mut tx,
        &Actor::user(&admin, ip),
        "user.deactivated",
        user.id,
        json!({ "sessions_ended": ended }),
    )
    .await?;
    tx.commit().await?;
    state.changes.forget(&Change::User(user.id));
    Ok(flash::redirect(
        &format!("/admin/users/{}", user.id),
        &format!("{} is deactivated and signed out.", user.name),
    ))
}

/// `POST /admin/users/{id}/reactivate`.
pub async fn reactivate(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    admin: CurrentUser,
    Path(id): Path<Uuid>,
    CsrfForm(_): CsrfForm<crate::auth::EmptyForm>,
) -> AppResult<Response> {
    let user = load(&state, id).await?;
    let mut tx = state.pool.begin().await?;
    db::set_active(&mut tx, user.id, true, state.clock.now()).await?;
    record_user_event(
        &mut tx,
        &Actor::user(&admin, ip),
        "user.reactivated",
        user.id,
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(flash::redirect(
        &format!("/admin/users/{}", user.id),
        &format!("{} can sign in again.", user.name),
    ))
}

/// `POST /admin/users/{id}/access-link`: a new invitation (no password yet) or password-reset
/// link, shown once; earlier unused links stop working.
pub async fn issue_access_link(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    admin: CurrentUser,
    layout: Layout,
    Path(id): Path<Uuid>,
    CsrfForm(_): CsrfForm<crate::auth::EmptyForm>,
) -> AppResult<Response> {
    let user = load(&state, id).await?;
    if !user.is_active {
        return Ok(refuse(
            layout,
            user,
            "access-link",
            "Reactivate the account before issuing a link.",
        ));
    }
    let purpose = if user.has_password {
        Purpose::PasswordReset
    } else {
        Purpose::Invitation
    };
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    links::retire_for_user(&mut tx, user.id, now).await?;
    // An admin's reset lifts any wait on the account.
    crate::auth::throttle::clear(&mut tx, &user.email.to_lowercase(), now).await?;
    let link = links::issue(
        &mut tx,
        &state.settings.base_url,
        purpose,
        Some(user.id),
        Some(admin.id),
        now,
    )
    .await?;
    record_user_event(
        &mut tx,
        &Actor::user(&admin, ip),
        "user.access_link_issued",
        user.id,
        json!({ "purpose": purpose, "expires_at": link.expires_at.unix_timestamp() }),
    )
    .await?;
    tx.commit().await?;
    Ok(show_page(layout, user, FormErrors::default(), Some((purpose, link))).into_response())
}

/// `POST /admin/users/{id}/second-factor/reset`: removes someone's authenticator and recovery
/// codes (a lost phone) and ends their sessions; they set a new one up at their next sign-in.
/// Never one's own: another admin, or `attest user reset-second-factor` on the server, can.
pub async fn reset_second_factor(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    admin: CurrentUser,
    layout: Layout,
    Path(id): Path<Uuid>,
    CsrfForm(_): CsrfForm<crate::auth::EmptyForm>,
) -> AppResult<Response> {
    let user = load(&state, id).await?;
    if user.id == admin.id {
        return Ok(refuse(
            layout,
            user,
            "second-factor",
            "You cannot reset your own second step; another admin can.",
        ));
    }
    let now = state.clock.now();
    let mut tx = state.pool.begin().await?;
    let had = crate::auth::reset_second_factor(&mut tx, user.id, &user.email, now).await?;
    record_user_event(
        &mut tx,
        &Actor::user(&admin, ip),
        "user.second_factor_reset",
        user.id,
        json!({ "had_second_factor": had }),
    )
    .await?;
    tx.commit().await?;
    state.changes.forget(&Change::User(user.id));
    Ok(flash::redirect(
        &format!("/admin/users/{}", user.id),
        &format!(
            "{}'s second step is reset and their sessions ended. They set up a new authenticator at their next sign-in.",
            user.name
        ),
    ))
}
