//! Health probes, security headers, request ids, static assets and behaviour when the
//! database is unreachable.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use attest::identity::Role;

use crate::helpers::TestApp;

/// A portal whose database cannot be reached: nothing listens on port 1.
fn app_with_unreachable_database() -> TestApp {
    let pool = PgPoolOptions::new()
        .acquire_timeout(Duration::from_millis(500))
        .connect_lazy("postgres://postgres@127.0.0.1:1/attest")
        .expect("lazy pool");
    TestApp::without_setup(pool)
}

#[sqlx::test]
async fn healthz_answers_ok(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let response = app.get("/healthz").await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.body, "ok\n");
}

#[tokio::test]
async fn healthz_does_not_need_the_database() {
    let app = app_with_unreachable_database();
    assert_eq!(app.get("/healthz").await.status, StatusCode::OK);
}

#[sqlx::test]
async fn readyz_answers_ok_when_the_database_answers(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let response = app.get("/readyz").await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.body, "ready\n");
}

#[tokio::test]
async fn readyz_answers_503_when_the_database_cannot_be_reached() {
    let app = app_with_unreachable_database();
    let response = app.get("/readyz").await;
    assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.header("retry-after"), Some("5"));
}

#[tokio::test]
async fn pages_answer_503_with_retry_after_when_the_database_cannot_be_reached() {
    let app = app_with_unreachable_database();
    let started = std::time::Instant::now();
    let page = app.get("/standards/TECIT50761").await;
    assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(page.header("retry-after"), Some("5"));
    assert_eq!(page.texts("h1"), ["Attest is briefly unavailable"]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered without hanging"
    );
}

#[sqlx::test]
async fn a_signed_in_person_gets_503_not_the_sign_in_page_while_the_pool_is_exhausted(
    pool: PgPool,
) {
    TestApp::new(pool.clone()).await;
    let one_connection = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_millis(300))
        .connect_with((*pool.connect_options()).clone())
        .await
        .expect("pool of one");
    let app = TestApp::without_setup(one_connection);
    let (_, admin) = app.signed_in(&[Role::Admin]).await;
    let token = admin.csrf_token().await;
    let users = app.count("select count(*) from app_user").await;

    let timeouts = "attest_db_pool_acquire_timeouts_total";
    let timed_out_before = metric(&scrape_metrics(&app.pool).await, timeouts).expect("counted");
    let held = app.pool.acquire().await.expect("the only connection");
    let page = admin.get("/admin/users").await;
    assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(page.header("retry-after"), Some("5"));
    assert_eq!(page.texts("h1"), ["Attest is briefly unavailable"]);
    assert!(
        page.text("main")
            .contains("Your session has not been ended")
    );
    assert!(
        page.texts("a[href='/login']").is_empty(),
        "nothing suggests signing in again"
    );
    let created = admin
        .post_raw(
            "/admin/users",
            &[
                ("csrf_token", token.as_str()),
                ("name", "Ben"),
                ("email", "ben@example.org"),
                ("role", "assessor"),
            ],
            &[("sec-fetch-site", "same-origin")],
        )
        .await;
    assert_eq!(created.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(created.header("location"), None, "not sent to sign in");
    let timed_out = metric(&scrape_metrics(&app.pool).await, timeouts).expect("counted");
    assert!(
        timed_out >= timed_out_before + 2.0,
        "{timed_out_before} → {timed_out}"
    );
    // Public pages that need no database still answer, to a visitor.
    assert_eq!(admin.get("/healthz").await.status, StatusCode::OK);
    drop(held);

    assert_eq!(
        app.count("select count(*) from app_user").await,
        users,
        "nothing was stored"
    );
    let again = admin.get("/admin/users").await;
    assert_eq!(again.status, StatusCode::OK, "the same session works again");
}

#[sqlx::test]
async fn every_response_carries_the_security_headers(pool: PgPool) {
    let app = TestApp::new(pool).await;
    for path in [
        "/standards",
        "/standards/TECIT50761",
        "/no/such/page",
        "/healthz",
        "/static/app.css",
    ] {
        let response = app.get(path).await;
        let csp = response
            .header("content-security-policy")
            .unwrap_or_default();
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(
            response.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(
            response.header("referrer-policy"),
            Some("same-origin"),
            "{path}"
        );
        assert_eq!(response.header("x-frame-options"), Some("DENY"), "{path}");
    }
}

#[sqlx::test]
async fn pages_carry_no_inline_script_or_external_asset(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let page = app.get("/standards/TECIT50761").await;
    assert!(page.texts("script").is_empty());
    assert!(page.texts("[style]").is_empty());
    let html = page.html();
    let selector = scraper::Selector::parse("link[href], script[src], img[src]").expect("selector");
    for element in html.select(&selector) {
        let url = element
            .value()
            .attr("href")
            .or_else(|| element.value().attr("src"))
            .unwrap_or_default();
        assert!(
            url.starts_with('/') && !url.starts_with("//"),
            "external asset {url}"
        );
    }
}

#[sqlx::test]
async fn every_response_has_a_request_id_and_a_given_one_is_kept(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let response = app.get("/standards").await;
    let id = response.header("x-request-id").expect("a request id");
    assert_eq!(id.len(), 36, "a UUID: {id}");

    let request = Request::get("/standards")
        .header("x-request-id", "from-the-load-balancer")
        .body(Body::empty())
        .expect("request");
    let response = app.request(request).await;
    assert_eq!(
        response.header("x-request-id"),
        Some("from-the-load-balancer")
    );
}

#[sqlx::test]
async fn the_layout_has_a_skip_link_landmarks_and_one_heading(pool: PgPool) {
    let app = TestApp::new(pool).await;
    for path in ["/standards", "/standards/TECIT50761", "/missing"] {
        let page = app.get(path).await;
        assert_eq!(page.texts("h1").len(), 1, "{path}");
        assert_eq!(page.texts("header").len(), 1, "{path}");
        assert_eq!(page.texts("main#main").len(), 1, "{path}");
        assert_eq!(page.texts("footer").len(), 1, "{path}");
        assert_eq!(page.texts("a.skip-link[href='#main']").len(), 1, "{path}");
        assert_eq!(page.texts("html[lang='en-GB']").len(), 1, "{path}");
        assert_eq!(page.texts("meta[name=viewport]").len(), 1, "{path}");
    }
}

#[sqlx::test]
async fn the_stylesheet_is_served_from_the_binary(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let response = app.get("/static/app.css").await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        response.header("content-type"),
        Some("text/css; charset=utf-8")
    );
    assert!(response.body.contains(":focus-visible"));
    assert_eq!(
        app.get("/static/other.css").await.status,
        StatusCode::NOT_FOUND
    );
}

#[sqlx::test]
async fn the_home_page_asks_visitors_to_sign_in(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let response = app.get("/").await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    assert_eq!(response.header("location"), Some("/login?next=/"));
}

#[sqlx::test]
async fn an_oversized_upload_form_token_is_refused_as_it_arrives(pool: PgPool) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures_util::StreamExt;
    use tower::ServiceExt;

    let app = TestApp::new(pool).await;
    let (_, candidate) = app.signed_in(&[Role::Candidate]).await;
    let boundary = "----attest-huge-token";
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = sent.clone();
    // A "form token" of 64 MiB, arriving a MiB at a time as from a socket: each piece after the
    // server has asked for more.
    let head =
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n");
    let body = futures_util::stream::iter(0..=64).then(move |n| {
        let head = head.clone();
        let counter = counter.clone();
        async move {
            tokio::task::yield_now().await;
            let chunk = if n == 0 {
                head.into_bytes()
            } else {
                vec![b'a'; 1 << 20]
            };
            counter.fetch_add(chunk.len(), Ordering::SeqCst);
            Ok::<_, std::convert::Infallible>(bytes::Bytes::from(chunk))
        }
    });
    let request = Request::post(format!("/enrolments/{}/evidence/new", uuid::Uuid::new_v4()))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .header("cookie", candidate.cookie_header())
        .header("sec-fetch-site", "same-origin")
        .body(Body::from_stream(body))
        .expect("request");
    let response = app.router.clone().oneshot(request).await.expect("answer");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        sent.load(Ordering::SeqCst) < 4 << 20,
        "read {} bytes of it",
        sent.load(Ordering::SeqCst)
    );
}

#[sqlx::test]
async fn a_request_past_its_deadline_is_ended_with_503_and_nothing_of_it_is_kept(pool: PgPool) {
    let settings = attest::config::Settings {
        request_timeout: Duration::from_millis(300),
        ..attest::config::Settings::default()
    };
    let app = TestApp::with_settings(pool, settings).await;
    let enrolled = app.enrolled("late").await;
    let candidate = app.browser_signed_in_as(enrolled.candidate).await;
    let assessor = app.browser_signed_in_as(enrolled.assessor).await;
    let evidence = app
        .submit_evidence(&candidate, &enrolled, "Runbook", "product", &["PC1"])
        .await;

    // Something else holds what judging writes to, for longer than the deadline.
    let mut blocker = app.pool.begin().await.expect("begin");
    sqlx::query("lock table judgement in exclusive mode")
        .execute(&mut *blocker)
        .await
        .expect("lock");
    let started = std::time::Instant::now();
    let late = app.judge(&assessor, &evidence, &[("PC1", true, "")]).await;
    assert_eq!(late.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(late.header("retry-after"), Some("5"));
    assert!(late.text("main").contains("may not have been saved"));
    blocker.rollback().await.expect("rollback");

    assert_eq!(app.count("select count(*) from judgement").await, 0);
    let again = app.judge(&assessor, &evidence, &[("PC1", true, "")]).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER, "the session stands");
    assert_eq!(app.count("select count(*) from judgement").await, 1);
}

/// What the metrics address answers now.
async fn scrape_metrics(pool: &PgPool) -> String {
    use tower::ServiceExt;
    let response = attest::web::metrics::router(pool.clone())
        .oneshot(
            Request::get("/metrics")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("application/openmetrics-text")
    );
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .expect("body")
        .to_bytes();
    String::from_utf8(body.to_vec()).expect("text")
}

/// The value of the metric line that starts with `name_and_labels`, if there is one.
fn metric(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        line.strip_prefix(name_and_labels)?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
}

#[sqlx::test]
async fn metrics_count_requests_by_route_and_are_never_served_by_the_portal(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let counted = "attest_http_request_duration_seconds_count{route=\"/standards/{urn}\",method=\"GET\",status=\"200\"}";
    let scrape = || scrape_metrics(&app.pool);
    // The registry is the process's: other tests count into it too, so compare before and after.
    let before = metric(&scrape().await, counted).unwrap_or(0.0);
    for _ in 0..3 {
        assert_eq!(
            app.get("/standards/TECIT50761").await.status,
            StatusCode::OK
        );
    }
    let text = scrape().await;
    let after = metric(&text, counted).expect("the route is counted");
    assert!(after >= before + 3.0, "{before} → {after}");
    assert!(text.contains("attest_http_request_duration_seconds_bucket{le="));
    assert!(metric(&text, "attest_db_pool_connections{state=\"idle\"}").is_some());
    assert!(metric(&text, "attest_db_pool_connections{state=\"in_use\"}").is_some());
    for name in [
        "attest_uploads_in_flight",
        "attest_downloads_in_flight",
        "attest_db_pool_acquire_timeouts_total",
        "attest_audit_append_duration_seconds_count",
    ] {
        assert!(metric(&text, name).is_some(), "{name} is missing");
    }
    assert!(
        !text.contains("TECIT50761"),
        "paths (and the ids and tokens in them) never become labels"
    );

    // The portal itself has no such page, for anyone.
    assert_eq!(app.get("/metrics").await.status, StatusCode::NOT_FOUND);
    let (_, admin) = app.signed_in(&[Role::Admin]).await;
    assert_eq!(admin.get("/metrics").await.status, StatusCode::NOT_FOUND);
}
