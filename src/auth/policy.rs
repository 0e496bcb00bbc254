//! The access policy: who may use each route, in one table. A route missing from the table is
//! refused to everyone, and a test walks every registered route with every role against it.
//!
//! The table decides by role; rules about one record ("the candidate's own enrolment") live in
//! the handlers' SQL, where a miss answers 404.

use axum::extract::{MatchedPath, Request};
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

/// One line of the policy.
#[derive(Debug, Clone)]
pub struct Rule {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
}

const fn rule(method: Method, path: &'static str, access: Access) -> Rule {
    Rule {
        method,
        path,
        access,
    }
}

const ADMIN: Access = Access::AnyOf(&[Role::Admin]);
const CANDIDATE: Access = Access::AnyOf(&[Role::Candidate]);
const ASSESSOR: Access = Access::AnyOf(&[Role::Assessor]);
const IQA: Access = Access::AnyOf(&[Role::Iqa]);
/// Everyone who can be on an enrolment, or oversee them all.
const ON_ENROLMENTS: Access =
    Access::AnyOf(&[Role::Candidate, Role::Assessor, Role::Iqa, Role::Admin]);

/// Every route of the portal and who may use it.
pub const POLICY: &[Rule] = &[
    rule(Method::GET, "/", Access::SignedIn),
    rule(Method::GET, "/healthz", Access::Public),
    rule(Method::GET, "/readyz", Access::Public),
    rule(Method::GET, "/static/{name}", Access::Public),
    rule(Method::GET, "/standards", Access::Public),
    rule(Method::GET, "/standards/{urn}", Access::Public),
    rule(Method::GET, "/standards/{urn}/case.json", Access::Public),
    // Signing in and out, and the single-use links that set a password.
    rule(Method::GET, "/login", Access::Public),
    rule(Method::POST, "/login", Access::Public),
    rule(Method::POST, "/logout", Access::SignedIn),
    rule(Method::GET, "/setup/{token}", Access::Public),
    rule(Method::POST, "/setup/{token}", Access::Public),
    rule(Method::GET, "/invitations/{token}", Access::Public),
    rule(Method::POST, "/invitations/{token}", Access::Public),
    rule(Method::GET, "/password-reset/{token}", Access::Public),
    rule(Method::POST, "/password-reset/{token}", Access::Public),
    // One's own account.
    rule(Method::GET, "/account", Access::SignedIn),
    rule(Method::POST, "/account/password", Access::SignedIn),
    // User management.
    rule(Method::GET, "/admin/users", ADMIN),
    rule(Method::POST, "/admin/users", ADMIN),
    rule(Method::GET, "/admin/users/new", ADMIN),
    rule(Method::GET, "/admin/users/{id}", ADMIN),
    rule(Method::POST, "/admin/users/{id}", ADMIN),
    rule(Method::POST, "/admin/users/{id}/deactivate", ADMIN),
    rule(Method::POST, "/admin/users/{id}/reactivate", ADMIN),
    rule(Method::POST, "/admin/users/{id}/access-link", ADMIN),
    // Cohorts and enrolments.
    rule(Method::GET, "/admin/cohorts", ADMIN),
    rule(Method::POST, "/admin/cohorts", ADMIN),
    rule(Method::GET, "/admin/cohorts/{id}", ADMIN),
    rule(Method::POST, "/admin/cohorts/{id}/enrolments", ADMIN),
    rule(Method::POST, "/admin/cohorts/{id}/roster", ADMIN),
    rule(Method::POST, "/admin/cohorts/{id}/assignments", ADMIN),
    rule(Method::POST, "/enrolments/{id}/withdraw", ADMIN),
    // Portfolios and evidence: the role opens the door, the enrolment decides (404 otherwise).
    rule(Method::GET, "/enrolments/{id}", ON_ENROLMENTS),
    rule(Method::GET, "/enrolments/{id}/evidence/new", CANDIDATE),
    rule(Method::POST, "/enrolments/{id}/evidence/new", CANDIDATE),
    rule(Method::GET, "/evidence/{id}", ON_ENROLMENTS),
    rule(Method::GET, "/evidence/{id}/edit", CANDIDATE),
    rule(Method::POST, "/evidence/{id}/edit", CANDIDATE),
    rule(Method::POST, "/evidence/{id}/delete", CANDIDATE),
    rule(Method::POST, "/evidence/{id}/revise", CANDIDATE),
    rule(Method::GET, "/evidence/{id}/files/{file_id}", ON_ENROLMENTS),
    rule(
        Method::POST,
        "/evidence/{id}/files/{file_id}/delete",
        CANDIDATE,
    ),
    // Assessment.
    rule(Method::GET, "/caseload", ASSESSOR),
    rule(Method::GET, "/enrolments/{id}/sign-off", ASSESSOR),
    rule(Method::POST, "/enrolments/{id}/sign-off", ASSESSOR),
    rule(Method::POST, "/evidence/{id}/judgements", ASSESSOR),
    // Quality assurance.
    rule(Method::GET, "/quality", IQA),
    rule(Method::POST, "/sign-offs/{id}/review", IQA),
    // The audit trail.
    rule(Method::GET, "/admin/audit", ADMIN),
    rule(Method::GET, "/admin/audit.csv", ADMIN),
    // Reports.
    rule(Method::GET, "/admin/cohorts/{id}/report", ADMIN),
    rule(Method::GET, "/admin/cohorts/{id}/report.csv", ADMIN),
    rule(Method::GET, "/admin/cohorts/{id}/report.xlsx", ADMIN),
    rule(Method::GET, "/enrolments/{id}/archive.zip", ON_ENROLMENTS),
];

/// The policy line for a route; `HEAD` is answered as `GET`.
pub fn rule_for(method: &Method, path: &str) -> Option<&'static Rule> {
    let method = if method == Method::HEAD {
        &Method::GET
    } else {
        method
    };
    POLICY.iter().find(|r| r.method == method && r.path == path)
}

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

/// Middleware: applies the policy to every matched route. Unmatched paths go on to the 404 page.
pub async fn enforce(request: Request, next: Next) -> Response {
    let Some(path) = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
    else {
        return next.run(request).await;
    };
    let Some(rule) = rule_for(request.method(), &path) else {
        tracing::error!(http.route = %path, "route has no access policy: refused");
        return AppError::Forbidden.into_response();
    };
    match decide(rule.access, request.extensions().get::<CurrentUser>()) {
        Decision::Allow => next.run(request).await,
        Decision::SignIn => {
            let next_path = if request.method() == Method::GET {
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

    #[test]
    fn the_policy_names_each_route_once() {
        for (i, a) in POLICY.iter().enumerate() {
            for b in &POLICY[i + 1..] {
                assert!(
                    !(a.method == b.method && a.path == b.path),
                    "{} {} twice",
                    a.method,
                    a.path
                );
            }
        }
    }

    #[test]
    fn head_is_judged_as_get() {
        assert!(rule_for(&Method::HEAD, "/standards").is_some());
        assert!(rule_for(&Method::DELETE, "/standards").is_none());
    }
}
