//! The access policy: every registered route is declared with the access this file expects
//! (a table written here by hand, so a changed declaration shows), every role gets that answer,
//! and no state-changing request from another site gets through.

use attest::identity::Access;
use attest::identity::Role::{self, Admin, Assessor, Candidate, Iqa};
use axum::http::{Method, StatusCode};
use sqlx::PgPool;

use crate::helpers::{Browser, TestApp, TestResponse};

/// Who may use a route, as this test expects it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expected {
    Anyone,
    SignedIn,
    Only(&'static [Role]),
}
use Expected::{Anyone, Only, SignedIn};

const GET: &str = "GET";
const POST: &str = "POST";

/// Every route of the portal and who may use it.
const EXPECTED: &[(&str, &str, Expected)] = &[
    (GET, "/", SignedIn),
    (GET, "/healthz", Anyone),
    (GET, "/readyz", Anyone),
    (GET, "/static/{name}", Anyone),
    (GET, "/standards", Anyone),
    (GET, "/standards/{urn}", Anyone),
    (GET, "/standards/{urn}/case.json", Anyone),
    (GET, "/login", Anyone),
    (POST, "/login", Anyone),
    (GET, "/.well-known/jwks.json", Anyone),
    (GET, "/login/second-factor", Anyone),
    (POST, "/login/second-factor", Anyone),
    (POST, "/logout", SignedIn),
    (GET, "/setup/{token}", Anyone),
    (POST, "/setup/{token}", Anyone),
    (GET, "/invitations/{token}", Anyone),
    (POST, "/invitations/{token}", Anyone),
    (GET, "/password-reset/{token}", Anyone),
    (POST, "/password-reset/{token}", Anyone),
    (GET, "/account", SignedIn),
    (POST, "/account/password", SignedIn),
    (GET, "/account/second-factor", SignedIn),
    (POST, "/account/second-factor", SignedIn),
    (POST, "/account/second-factor/recovery-codes", SignedIn),
    (GET, "/admin/users", Only(&[Admin])),
    (POST, "/admin/users", Only(&[Admin])),
    (GET, "/admin/users/new", Only(&[Admin])),
    (GET, "/admin/users/{id}", Only(&[Admin])),
    (POST, "/admin/users/{id}", Only(&[Admin])),
    (POST, "/admin/users/{id}/deactivate", Only(&[Admin])),
    (POST, "/admin/users/{id}/reactivate", Only(&[Admin])),
    (POST, "/admin/users/{id}/access-link", Only(&[Admin])),
    (
        POST,
        "/admin/users/{id}/second-factor/reset",
        Only(&[Admin]),
    ),
    (GET, "/admin/cohorts", Only(&[Admin])),
    (POST, "/admin/cohorts", Only(&[Admin])),
    (GET, "/admin/cohorts/{id}", Only(&[Admin])),
    (POST, "/admin/cohorts/{id}/enrolments", Only(&[Admin])),
    (POST, "/admin/cohorts/{id}/roster", Only(&[Admin])),
    (POST, "/admin/cohorts/{id}/assignments", Only(&[Admin])),
    (POST, "/enrolments/{id}/withdraw", Only(&[Admin])),
    (
        GET,
        "/enrolments/{id}",
        Only(&[Candidate, Assessor, Iqa, Admin]),
    ),
    (GET, "/enrolments/{id}/evidence/new", Only(&[Candidate])),
    (POST, "/enrolments/{id}/evidence/new", Only(&[Candidate])),
    (
        GET,
        "/evidence/{id}",
        Only(&[Candidate, Assessor, Iqa, Admin]),
    ),
    (GET, "/enrolments/{id}/records/new", Only(&[Assessor])),
    (POST, "/enrolments/{id}/records/new", Only(&[Assessor])),
    (GET, "/evidence/{id}/edit", Only(&[Candidate, Assessor])),
    (POST, "/evidence/{id}/edit", Only(&[Candidate, Assessor])),
    (POST, "/evidence/{id}/delete", Only(&[Candidate, Assessor])),
    (POST, "/evidence/{id}/confirm", Only(&[Candidate])),
    (POST, "/evidence/{id}/revise", Only(&[Candidate])),
    (
        POST,
        "/evidence/{id}/comments",
        Only(&[Candidate, Assessor, Iqa]),
    ),
    (POST, "/evidence/{id}/samples", Only(&[Iqa])),
    (POST, "/evidence/{id}/witness", Only(&[Candidate])),
    (
        POST,
        "/evidence/{id}/witness/{request}/link",
        Only(&[Assessor]),
    ),
    (GET, "/witness/{token}", Anyone),
    (POST, "/witness/{token}", Anyone),
    (
        GET,
        "/evidence/{id}/files/{file_id}",
        Only(&[Candidate, Assessor, Iqa, Admin]),
    ),
    (
        POST,
        "/evidence/{id}/files/{file_id}/delete",
        Only(&[Candidate, Assessor]),
    ),
    (GET, "/caseload", Only(&[Assessor])),
    (GET, "/enrolments/{id}/sign-off", Only(&[Assessor])),
    (POST, "/enrolments/{id}/sign-off", Only(&[Assessor])),
    (
        POST,
        "/enrolments/{id}/iqa-actions/{action}/answer",
        Only(&[Assessor]),
    ),
    (POST, "/evidence/{id}/judgements", Only(&[Assessor])),
    (
        GET,
        "/evidence/{id}/criteria/{criterion}/reverse",
        Only(&[Assessor]),
    ),
    (
        POST,
        "/evidence/{id}/criteria/{criterion}/reverse",
        Only(&[Assessor]),
    ),
    (GET, "/quality", Only(&[Iqa])),
    (GET, "/cohorts/{id}/sampling-plan", Only(&[Iqa, Admin])),
    (POST, "/cohorts/{id}/sampling-plan", Only(&[Iqa, Admin])),
    (POST, "/sign-offs/{id}/review", Only(&[Iqa])),
    (GET, "/admin/audit", Only(&[Admin])),
    (GET, "/admin/audit.csv", Only(&[Admin])),
    (GET, "/admin/cohorts/{id}/report", Only(&[Admin])),
    (GET, "/admin/cohorts/{id}/report.csv", Only(&[Admin])),
    (GET, "/admin/cohorts/{id}/report.xlsx", Only(&[Admin])),
    (GET, "/admin/cohorts/{id}/progress.svg", Only(&[Admin])),
    (
        GET,
        "/enrolments/{id}/archive.zip",
        Only(&[Candidate, Assessor, Iqa, Admin]),
    ),
];

fn expected(method: &Method, path: &str) -> Expected {
    EXPECTED
        .iter()
        .find(|(m, p, _)| *m == method.as_str() && *p == path)
        .map(|(.., e)| *e)
        .unwrap_or_else(|| panic!("{method} {path} is not in this test's table"))
}

/// A concrete path for a route pattern: parameters get values that exist or look real.
fn concrete(path: &str) -> String {
    path.replace("{urn}", "TECIT50761")
        .replace("{name}", "app.css")
        .replace("{token}", "0123456789abcdef0123456789abcdef")
        .replace("{id}", "00000000-0000-0000-0000-000000000000")
        .replace("{file_id}", "00000000-0000-0000-0000-000000000001")
        .replace("{criterion}", "00000000-0000-0000-0000-000000000002")
        .replace("{action}", "00000000-0000-0000-0000-000000000003")
        .replace("{request}", "00000000-0000-0000-0000-000000000004")
}

#[test]
fn every_route_is_declared_with_the_access_this_table_expects() {
    let routes = attest::routes();
    let registered = routes.registered();
    for route in registered {
        let declared = match route.access {
            Access::Public => Anyone,
            Access::SignedIn => SignedIn,
            Access::AnyOf(roles) => Only(roles),
        };
        let expected = expected(&route.method, route.path);
        let same = match (declared, expected) {
            (Only(a), Only(b)) => a.len() == b.len() && a.iter().all(|r| b.contains(r)),
            (a, b) => a == b,
        };
        assert!(
            same,
            "{} {} is declared {declared:?}, expected {expected:?}",
            route.method, route.path
        );
    }
    for (method, path, _) in EXPECTED {
        assert!(
            registered
                .iter()
                .any(|r| r.method.as_str() == *method && r.path == *path),
            "this test expects {method} {path}, which no route serves"
        );
    }
    assert_eq!(registered.len(), EXPECTED.len());
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
    for route in routes.registered() {
        let (method, pattern) = (&route.method, route.path);
        let access = expected(method, pattern);
        for who in people {
            // A fresh session each time: some routes (sign-out) end the one they are given.
            let browser = browser_for(&app, who).await;
            let response = call(&browser, method, &concrete(pattern)).await;
            let signed_in_as = match who {
                Who::Holder(role) => Some(role),
                Who::Visitor | Who::Deactivated => None,
            };
            let allowed = match (access, signed_in_as) {
                (Anyone, _) => true,
                (_, None) => false,
                (SignedIn, Some(_)) => true,
                (Only(roles), Some(role)) => roles.contains(&role),
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
        .filter(|r| r.method == Method::POST)
        .map(|r| r.path)
        .collect();
    assert_eq!(
        posts.len(),
        EXPECTED.iter().filter(|(m, ..)| *m == POST).count()
    );
    for pattern in posts {
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

#[sqlx::test]
async fn head_is_judged_as_get(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let (_, candidate) = app.signed_in(&[Role::Candidate]).await;
    let session = candidate.cookie("attest_session").expect("session");
    let head = |uri: &str| {
        axum::http::Request::builder()
            .method(Method::HEAD)
            .uri(uri)
            .header("cookie", format!("attest_session={session}"))
            .body(axum::body::Body::empty())
            .expect("request")
    };
    assert_eq!(
        app.request(head("/admin/users")).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(app.request(head("/account")).await.status, StatusCode::OK);
}

#[sqlx::test]
async fn a_method_no_route_takes_gets_the_error_page(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let (_, admin) = app.signed_in(&[Role::Admin]).await;
    let wrong = admin
        .post_form("/standards/TECIT50761", &[("x", "y")])
        .await;
    assert_eq!(wrong.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong.text("h1"), "That cannot be done here");
    let missing = admin.get("/no/such/page").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[sqlx::test]
async fn removing_a_role_ends_what_its_assignments_opened(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let enrolled = app.enrolled("rho").await;
    // The assessor also holds the IQA role, so the routes stay open to them: only the
    // assignment decides what they see.
    sqlx::query!(
        "update app_user set roles = '{assessor,iqa}' where user_id = $1",
        enrolled.assessor.0
    )
    .execute(&app.pool)
    .await
    .expect("roles");
    let candidate = app.browser_signed_in_as(enrolled.candidate).await;
    let evidence = app
        .submit_evidence(&candidate, &enrolled, "Runbook", "product", &["PC1"])
        .await;
    let id = enrolled.enrolment;
    let pages = [
        format!("/enrolments/{id}"),
        format!("/evidence/{evidence}"),
        app.file_path_of(&evidence).await,
        format!("/enrolments/{id}/archive.zip"),
    ];

    let assessor = app.browser_signed_in_as(enrolled.assessor).await;
    for page in &pages {
        assert_eq!(assessor.get(page).await.status, StatusCode::OK, "{page}");
    }

    sqlx::query!(
        "update app_user set roles = '{iqa}' where user_id = $1",
        enrolled.assessor.0
    )
    .execute(&app.pool)
    .await
    .expect("roles");
    let former_assessor = app.browser_signed_in_as(enrolled.assessor).await;
    for page in &pages {
        assert_eq!(
            former_assessor.get(page).await.status,
            StatusCode::NOT_FOUND,
            "{page}"
        );
    }
    // The enrolment's IQA still holds the role and still sees it.
    let iqa = app.browser_signed_in_as(enrolled.iqa).await;
    assert_eq!(iqa.get(&pages[0]).await.status, StatusCode::OK);
}
