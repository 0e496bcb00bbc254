//! The access policy: who may use a route. Each route is declared with its [`Access`] beside
//! it (`Routes::get(path, access, handler)`), so no route exists without one, and a test walks
//! every registered route with every role against a table of its own.
//!
//! The policy decides by role; rules about one record ("the candidate's own enrolment") live
//! in the handlers' SQL, where a miss answers 404.

use axum::extract::Request;
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::session::CurrentUser;
use crate::error::AppError;
use crate::users::model::Role;

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

/// Middleware around one route: lets the request through when `access` allows its user,
/// sends visitors to sign in, and refuses everyone else. `HEAD` passes through a `GET`
/// route's middleware, so it is judged as `GET`.
pub async fn enforce(access: Access, request: Request, next: Next) -> Response {
    match decide(access, request.extensions().get::<CurrentUser>()) {
        Decision::Allow => next.run(request).await,
        Decision::SignIn => {
            let next_path = if request.method() == Method::GET || request.method() == Method::HEAD {
                request
                    .uri()
                    .path_and_query()
                    .map_or("/", |p| p.as_str())
                    .to_owned()
            } else {
                "/".to_owned()
            };
            AppError::Unauthenticated { next: next_path }.into_response()
        }
        Decision::Deny => AppError::Forbidden.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::model::UserId;

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
}
