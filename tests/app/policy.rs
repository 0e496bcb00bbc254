//! The access policy: every registered route has a line, every role gets the answer the
//! policy gives, and no state-changing request from another site gets through.

use attest::auth::policy::{Access, POLICY, rule_for};
use attest::users::model::Role;
use axum::http::{Method, StatusCode};
use sqlx::PgPool;

use crate::helpers::{Browser, TestApp, TestResponse};

/// A concrete path for a route pattern: parameters get values that exist or look real.
fn concrete(path: &str) -> String {
    path.replace("{urn}", "TECIT50761")
        .replace("{name}", "app.css")
        .replace("{token}", "0123456789abcdef0123456789abcdef")
        .replace("{id}", "00000000-0000-0000-0000-000000000000")
        .replace("{file_id}", "00000000-0000-0000-0000-000000000001")
}

#[test]
fn every_registered_route_has_exactly_one_policy_line_and_every_line_a_route() {
    let routes = attest::routes();
    let registered = routes.registered();
    for (method, path) in registered {
        assert!(
            rule_for(method, path).is_some(),
            "{method} {path} has no access policy"
        );
    }
    for rule in POLICY {
        assert!(
            registered
                .iter()
                .any(|(m, p)| *m == rule.method && *p == rule.path),
            "the policy names {} {}, which no route serves",
            rule.method,
            rule.path
        );
    }
}

#[derive(Debug, Clone, Copy)]
enum Who {
    Visitor,
    Deactivated,
    Holder(Role),
}

async fn browser_for<'a>(app: &'a TestApp, who: Who) -> Browser<'a> {
    match who {
        Who::Visitor => app.browser(),
        Who::Holder(role) => app.signed_in(&[role]).await.1,
        Who::Deactivated => {
            // Every role, then deactivated: none of them may count any more.
            let (user, browser) = app.signed_in(&Role::ALL).await;
            sqlx::query!(
                "update app_user set is_active = false where user_id = $1",
                user.0
            )
            .execute(&app.pool)
            .await
            .expect("deactivate");
            browser
        }
    }
}

async fn call(browser: &Browser<'_>, method: &Method, path: &str) -> TestResponse {
    if *method == Method::GET {
        browser.get(path).await
    } else {
        browser.post_form(path, &[]).await
    }
}

#[sqlx::test]
async fn every_route_answers_each_role_as_the_policy_says(pool: PgPool) {
    let app = TestApp::new(pool).await;
    // An admin must exist so that the last-admin rules do not mask the policy's answer.
    app.create_user("keeper@example.org", "Keeper", &[Role::Admin])
        .await;
    let people = [
        Who::Visitor,
        Who::Deactivated,
        Who::Holder(Role::Candidate),
        Who::Holder(Role::Assessor),
        Who::Holder(Role::Iqa),
        Who::Holder(Role::Admin),
    ];
    let routes = attest::routes();
    let mut checked = 0;
    for (method, pattern) in routes.registered() {
        let rule = rule_for(method, pattern).expect("policy line");
        for who in people {
            // A fresh session each time: some routes (sign-out) end the one they are given.
            let browser = browser_for(&app, who).await;
            let response = call(&browser, method, &concrete(pattern)).await;
            let signed_in_as = match who {
                Who::Holder(role) => Some(role),
                Who::Visitor | Who::Deactivated => None,
            };
            let allowed = match (rule.access, signed_in_as) {
                (Access::Public, _) => true,
                (_, None) => false,
                (Access::SignedIn, Some(_)) => true,
                (Access::AnyOf(roles), Some(role)) => roles.contains(&role),
            };
            let context = format!(
                "{method} {pattern} as {who:?}: {} {:?}",
                response.status,
                response.location()
            );
            if allowed {
                assert!(!response.is_sign_in_redirect(), "{context}");
                assert_ne!(response.status, StatusCode::FORBIDDEN, "{context}");
                assert!(!response.status.is_server_error(), "{context}");
            } else if signed_in_as.is_none() {
                assert!(response.is_sign_in_redirect(), "{context}");
            } else {
                assert_eq!(response.status, StatusCode::FORBIDDEN, "{context}");
                assert_eq!(response.text("h1"), "You cannot do that", "{context}");
            }
            checked += 1;
        }
    }
    assert_eq!(
        checked,
        routes.registered().len() * people.len(),
        "walked every route × person pair"
    );
}

#[sqlx::test]
async fn a_visitor_is_sent_to_sign_in_with_the_page_to_return_to(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let response = app.get("/admin/users?q=ann").await;
    assert_eq!(
        response.location(),
        Some("/login?next=/admin/users%3Fq%3Dann")
    );
}

#[sqlx::test]
async fn every_post_route_refuses_a_cross_site_request(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let (_, admin) = app.signed_in(&[Role::Admin]).await;
    let token = admin.csrf_token().await;
    let routes = attest::routes();
    let posts: Vec<_> = routes
        .registered()
        .iter()
        .filter(|(m, _)| *m == Method::POST)
        .collect();
    assert_eq!(
        posts.len(),
        POLICY.iter().filter(|r| r.method == Method::POST).count()
    );
    for (_, pattern) in posts {
        let path = concrete(pattern);
        for headers in [
            vec![("sec-fetch-site", "cross-site")],
            vec![("sec-fetch-site", "same-site")],
            vec![("origin", "https://evil.example")],
        ] {
            let response = admin
                .post_raw(&path, &[("csrf_token", &token)], &headers)
                .await;
            assert_eq!(
                response.status,
                StatusCode::FORBIDDEN,
                "{pattern} with {headers:?}"
            );
            assert!(
                response.text(".lead").contains("came from another website"),
                "{pattern}"
            );
        }
    }
    assert_eq!(
        app.count("select count(*) from session").await,
        1,
        "the forged sign-out did nothing"
    );
}

#[sqlx::test]
async fn a_form_without_the_right_token_is_refused(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let (_, browser) = app.signed_in(&[Role::Admin]).await;
    let same_origin = [("sec-fetch-site", "same-origin")];
    let missing = browser
        .post_raw(
            "/admin/users",
            &[("name", "Eve"), ("email", "eve@example.org")],
            &same_origin,
        )
        .await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    assert!(missing.text(".lead").contains("This form has expired"));

    // Another session's token is not this session's.
    let (_, other) = app.signed_in(&[Role::Admin]).await;
    let foreign = other.csrf_token().await;
    let response = browser
        .post_raw(
            "/admin/users",
            &[
                ("csrf_token", &foreign),
                ("name", "Eve"),
                ("email", "eve@example.org"),
            ],
            &same_origin,
        )
        .await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.count("select count(*) from app_user").await,
        2,
        "nobody was created"
    );

    // A visitor's sign-in form needs the token of the visitor's own cookie.
    let visitor = app.browser();
    let refused = visitor
        .post_raw(
            "/login",
            &[("email", "x@example.org"), ("password", "whatever it is")],
            &same_origin,
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
}
