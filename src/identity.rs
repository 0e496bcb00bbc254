//! Who is asking: account ids, roles, the signed-in person of a request, and the rule of
//! who may use a route. Everything else depends on this; it depends on nothing of ours but
//! the error type.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::AppError;

crate::ids::id_type!(
    /// Identifies an account.
    UserId
);

/// What an account may do. One person may hold several roles.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type,
)]
#[sqlx(type_name = "role", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Candidate,
    Assessor,
    Iqa,
    Admin,
}

/// Who is looking, as a query needs to know it: an account and its roles, not the session.
#[derive(Debug, Clone, Copy)]
pub struct Viewer<'a> {
    pub id: UserId,
    pub roles: &'a [Role],
}

impl Viewer<'_> {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// The account, when it holds `role`: what an assignment in that role is compared with,
    /// so an assignment left behind after the role was removed opens nothing.
    pub fn id_as(&self, role: Role) -> Option<UserId> {
        self.has_role(role).then_some(self.id)
    }

    /// [`Self::id_as`] as a query parameter (`null` matches no assignment).
    pub fn uuid_as(&self, role: Role) -> Option<uuid::Uuid> {
        self.id_as(role).map(|id| id.0)
    }
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Candidate, Role::Assessor, Role::Iqa, Role::Admin];

    /// The role's name in the database, forms and URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Candidate => "candidate",
            Self::Assessor => "assessor",
            Self::Iqa => "iqa",
            Self::Admin => "admin",
        }
    }

    /// The role's name on pages.
    pub fn label(self) -> &'static str {
        match self {
            Self::Candidate => "Candidate",
            Self::Assessor => "Assessor",
            Self::Iqa => "Internal quality assurer",
            Self::Admin => "Admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Self::ALL.into_iter().find(|r| r.as_str() == text.trim())
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Roles as the database column holds them: a set, in a fixed order.
pub fn normalise_roles(mut roles: Vec<Role>) -> Vec<Role> {
    roles.sort();
    roles.dedup();
    roles
}

/// The signed-in person making a request.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub roles: Vec<Role>,
    /// SHA-256 of the session token: identifies this session without holding the secret.
    pub session_id_hash: [u8; 32],
}

impl CurrentUser {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// The account and roles behind this session, for queries.
    pub fn viewer(&self) -> Viewer<'_> {
        Viewer {
            id: self.id,
            roles: &self.roles,
        }
    }
}

/// The token forms of this request must carry: the session's, or for visitors who are not
/// signed in, the one in their `attest_csrf` cookie.
#[derive(Debug, Clone)]
pub struct CsrfToken(pub String);

/// Put in a request's extensions when it carries a session cookie whose session could not be
/// looked up because the database is out of reach: who is asking is unknown, which is not the
/// same as a visitor. Pages that need a user answer 503 instead of sending them to sign in.
#[derive(Debug, Clone, Copy)]
pub struct SessionUnknown;

impl SessionUnknown {
    /// What to answer a request that needs a signed-in user and has none: 503 while its
    /// session could not be looked up, else off to sign in, coming back to `next`.
    pub fn or_sign_in(extensions: &axum::http::Extensions, next: String) -> AppError {
        if extensions.get::<SessionUnknown>().is_some() {
            AppError::Unavailable
        } else {
            AppError::Unauthenticated { next }
        }
    }
}

/// `CurrentUser` as an extractor: the policy has already sent visitors to the sign-in page,
/// so a missing user here is the same answer.
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<CurrentUser>()
            .cloned()
            .ok_or_else(|| {
                SessionUnknown::or_sign_in(&parts.extensions, parts.uri.path().to_owned())
            })
    }
}

/// Who may use a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not.
    Public,
    /// Anyone signed in.
    SignedIn,
    /// Signed-in holders of at least one of these roles.
    AnyOf(&'static [Role]),
}

pub const ADMIN: Access = Access::AnyOf(&[Role::Admin]);
pub const CANDIDATE: Access = Access::AnyOf(&[Role::Candidate]);
pub const ASSESSOR: Access = Access::AnyOf(&[Role::Assessor]);
pub const IQA: Access = Access::AnyOf(&[Role::Iqa]);
/// Everyone who can be on an enrolment, or oversee them all; the enrolment then decides (a
/// record the person is not on answers 404).
pub const ON_ENROLMENTS: Access =
    Access::AnyOf(&[Role::Candidate, Role::Assessor, Role::Iqa, Role::Admin]);

/// What the policy says of `user` on a route with `access`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Not signed in: sign in first.
    SignIn,
    Deny,
}

pub fn decide(access: Access, user: Option<&CurrentUser>) -> Decision {
    match (access, user) {
        (Access::Public, _) => Decision::Allow,
        (_, None) => Decision::SignIn,
        (Access::SignedIn, Some(_)) => Decision::Allow,
        (Access::AnyOf(roles), Some(user)) if roles.iter().any(|r| user.has_role(*r)) => {
            Decision::Allow
        }
        (Access::AnyOf(_), Some(_)) => Decision::Deny,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(roles: &[Role]) -> CurrentUser {
        CurrentUser {
            id: UserId(uuid::Uuid::nil()),
            email: "a@b.org".into(),
            name: "A".into(),
            roles: roles.to_vec(),
            session_id_hash: [0; 32],
        }
    }

    #[test]
    fn each_access_level_decides_for_visitors_and_roles() {
        assert_eq!(decide(Access::Public, None), Decision::Allow);
        assert_eq!(decide(Access::SignedIn, None), Decision::SignIn);
        assert_eq!(decide(Access::SignedIn, Some(&user(&[]))), Decision::Allow);
        assert_eq!(decide(ADMIN, None), Decision::SignIn);
        assert_eq!(
            decide(ADMIN, Some(&user(&[Role::Assessor, Role::Iqa]))),
            Decision::Deny
        );
        assert_eq!(
            decide(ADMIN, Some(&user(&[Role::Candidate, Role::Admin]))),
            Decision::Allow
        );
    }

    #[test]
    fn roles_round_trip_through_their_names() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
        assert_eq!(
            normalise_roles(vec![Role::Admin, Role::Candidate, Role::Admin]),
            [Role::Candidate, Role::Admin]
        );
    }
}
