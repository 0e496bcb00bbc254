//! Signing in and out, sessions and their timeouts, lockout, single-use links and passwords.

use std::time::Instant;

use attest::auth::links::{self, Purpose};
use attest::config::Settings;
use attest::identity::Role;
use axum::http::StatusCode;
use sqlx::PgPool;
use time::Duration;

use crate::helpers::{PASSWORD, TestApp};

const EMAIL: &str = "casey.candidate@example.org";

async fn app_with_candidate(pool: PgPool) -> TestApp {
    let app = TestApp::new(pool).await;
    app.create_user(EMAIL, "Casey Candidate", &[Role::Candidate])
        .await;
    app
}

#[sqlx::test]
async fn signing_in_sets_an_http_only_same_site_session_cookie_and_opens_the_home_page(
    pool: PgPool,
) {
    let app = app_with_candidate(pool).await;
    let browser = app.browser();
    let response = browser.sign_in(EMAIL, PASSWORD).await;
    response.assert_redirect_to("/");
    let cookie = response
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("attest_session="))
        .expect("a session cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
    assert!(!cookie.contains("Secure"), "served over http: {cookie}");

    let home = browser.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert_eq!(home.text("h1"), "Welcome, Casey Candidate");
    assert_eq!(app.count("select count(*) from session").await, 1);
}

#[sqlx::test]
async fn over_https_the_session_cookie_is_secure_with_the_host_prefix(pool: PgPool) {
    let settings = Settings {
        base_url: "https://attest.example.org".into(),
        ..Settings::default()
    };
    let app = TestApp::with_settings(pool, settings).await;
    app.create_user(EMAIL, "Casey Candidate", &[Role::Candidate])
        .await;
    let response = app.browser().sign_in(EMAIL, PASSWORD).await;
    let cookie = response
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("__Host-attest_session="))
        .expect("a __Host- session cookie");
    assert!(
        cookie.contains("Secure") && cookie.contains("HttpOnly") && cookie.contains("Path=/"),
        "{cookie}"
    );
    assert!(!cookie.contains("Domain"), "{cookie}");
}

#[sqlx::test]
async fn over_https_every_response_asks_for_https_only_and_every_cookie_is_secure(pool: PgPool) {
    let settings = Settings {
        base_url: "https://attest.example.org".into(),
        ..Settings::default()
    };
    let app = TestApp::with_settings(pool, settings).await;
    let (_, browser) = app.signed_in(&[Role::Admin]).await;
    // Sign-out sets the flash cookie, the one cookie not built with the session's settings.
    let response = browser.post_form("/logout", &[]).await;
    let cookies = response.set_cookies();
    assert!(
        cookies.iter().any(|c| c.starts_with("attest_flash=")),
        "{cookies:?}"
    );
    for cookie in &cookies {
        assert!(cookie.contains("; Secure"), "{cookie}");
    }
    assert_eq!(
        response.header("strict-transport-security"),
        Some("max-age=31536000; includeSubDomains")
    );
    let login = app.get("/login").await;
    assert!(login.header("strict-transport-security").is_some());

    let plain = TestApp::new(app.pool.clone()).await;
    assert_eq!(
        plain
            .get("/login")
            .await
            .header("strict-transport-security"),
        None
    );
}

#[sqlx::test]
async fn signing_in_with_a_stale_session_cookie_keeps_the_new_session(pool: PgPool) {
    let app = app_with_candidate(pool).await;
    let browser = app.browser();
    browser.set_cookie("attest_session", "ended-long-ago");
    let response = browser.sign_in(EMAIL, PASSWORD).await;
    response.assert_redirect_to("/");
    let sessions: Vec<String> = response
        .set_cookies()
        .into_iter()
        .filter(|c| c.starts_with("attest_session="))
        .collect();
    assert_eq!(
        sessions.len(),
        1,
        "one session cookie, not a removal after it: {sessions:?}"
    );
    assert!(!sessions[0].starts_with("attest_session=;"), "{sessions:?}");
    assert_eq!(browser.get("/").await.status, StatusCode::OK);
}

#[sqlx::test]
async fn the_session_id_changes_at_sign_in_and_an_earlier_one_is_rejected(pool: PgPool) {
    let app = app_with_candidate(pool).await;
    let browser = app.browser();
    // An id planted before sign-in (session fixation) is not adopted.
    browser.set_cookie("attest_session", "planted-by-an-attacker");
    browser
        .sign_in(EMAIL, PASSWORD)
        .await
        .assert_redirect_to("/");
    let first = browser.cookie("attest_session").expect("session");
    assert_ne!(first, "planted-by-an-attacker");

    browser
        .sign_in(EMAIL, PASSWORD)
        .await
        .assert_redirect_to("/");
    let second = browser.cookie("attest_session").expect("session");
    assert_ne!(first, second);
    assert_eq!(
        app.count("select count(*) from session").await,
        1,
        "the earlier session ended"
    );

    let replay = app.browser();
    replay.set_cookie("attest_session", &first);
    assert!(replay.get("/").await.is_sign_in_redirect());
    let planted = app.browser();
    planted.set_cookie("attest_session", "planted-by-an-attacker");
    assert!(planted.get("/").await.is_sign_in_redirect());
    assert_eq!(browser.get("/").await.status, StatusCode::OK);
}

#[sqlx::test]
async fn signing_out_deletes_the_session_on_the_server(pool: PgPool) {
    let app = app_with_candidate(pool).await;
    let browser = app.browser();
    browser.sign_in(EMAIL, PASSWORD).await;
    let token = browser.cookie("attest_session").expect("session");

    let response = browser.post_form("/logout", &[]).await;
    response.assert_redirect_to("/login");
    assert!(
        browser.cookie("attest_session").is_none(),
        "the cookie is removed"
    );
    assert_eq!(app.count("select count(*) from session").await, 0);

    let replay = app.browser();
    replay.set_cookie("attest_session", &token);
    assert!(replay.get("/").await.is_sign_in_redirect());
    assert_eq!(
        browser.get("/login").await.text("#flash"),
        "You have signed out."
    );
}

#[sqlx::test]
async fn a_session_ends_after_thirty_idle_minutes(pool: PgPool) {
    let app = app_with_candidate(pool).await;
    let browser = app.browser();
    browser.sign_in(EMAIL, PASSWORD).await;

    app.clock().advance(Duration::minutes(29));
    assert_eq!(
        browser.get("/").await.status,
        StatusCode::OK,
        "29 idle minutes keep it"
    );
    app.clock().advance(Duration::minutes(29));
    assert_eq!(
        browser.get("/").await.status,
        StatusCode::OK,
        "use restarts the idle time"
    );
    app.clock().advance(Duration::minutes(30));
    assert!(
        browser.get("/").await.is_sign_in_redirect(),
        "30 idle minutes end it"
    );
    assert_eq!(app.count("select count(*) from session").await, 0);
}

#[sqlx::test]
async fn a_busy_session_ends_twelve_hours_after_sign_in(pool: PgPool) {
    let app = app_with_candidate(pool).await;
    let browser = app.browser();
    browser.sign_in(EMAIL, PASSWORD).await;
    for _ in 0..35 {
        app.clock().advance(Duration::minutes(20));
        assert_eq!(browser.get("/").await.status, StatusCode::OK);
    }
    // 11 h 40 min so far.
    app.clock().advance(Duration::minutes(20));
    assert!(browser.get("/").await.is_sign_in_redirect());
}

#[sqlx::test]
async fn visitors_who_do_not_sign_in_create_no_session_rows(pool: PgPool) {
    let app = app_with_candidate(pool).await;
    let browser = app.browser();
    for path in [
        "/",
        "/login",
        "/standards",
        "/standards/TECIT50761",
        "/nowhere",
    ] {
        browser.get(path).await;
    }
    browser.sign_in(EMAIL, "not the password").await;
    assert_eq!(app.count("select count(*) from session").await, 0);
}

#[sqlx::test]
async fn after_five_failures_each_attempt_waits_twice_as_long_as_the_last(pool: PgPool) {
    let app = app_with_candidate(pool).await;
    let browser = app.browser();
    for attempt in 1..=5 {
        let response = browser.sign_in(EMAIL, "wrong password here").await;
        assert_eq!(
            response.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "attempt {attempt}"
        );
        app.clock().advance(Duration::minutes(1));
    }
    // The fifth failure was a minute ago: its one-second wait is over.
    assert_eq!(
        browser.sign_in(EMAIL, "wrong password here").await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // The sixth asks for two seconds, even of the right password, from any address and
    // in any letter case.
    let refused = browser.sign_in(EMAIL, PASSWORD).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.text("#login-notice").contains("slowed down"));
    let mut other = app.browser();
    other.ip = "192.0.2.44".parse().expect("ip");
    assert_eq!(
        other.sign_in(&EMAIL.to_uppercase(), PASSWORD).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    app.clock().advance(Duration::seconds(2));
    browser
        .sign_in(EMAIL, PASSWORD)
        .await
        .assert_redirect_to("/");

    // Refusals and failures are counted, not written to the trail one by one.
    let actions = app.audit_actions().await;
    assert!(!actions.iter().any(|a| a == "auth.login_failed"));
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "auth.sign_in_slowed")
            .count(),
        1
    );
    assert!(actions.contains(&"auth.login_succeeded".to_owned()));
}

#[sqlx::test]
async fn a_browser_that_signed_in_before_is_not_slowed_by_failures_elsewhere(pool: PgPool) {
    let app = app_with_candidate(pool).await;
    let mine = app.browser();
    mine.sign_in(EMAIL, PASSWORD).await.assert_redirect_to("/");
    mine.post_form("/logout", &[]).await;
    let mut attacker = app.browser();
    attacker.ip = "198.51.100.7".parse().expect("ip");
    for _ in 0..8 {
        attacker.sign_in(EMAIL, "a guess at it").await;
    }
    assert_eq!(
        app.browser().sign_in(EMAIL, PASSWORD).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    mine.sign_in(EMAIL, PASSWORD).await.assert_redirect_to("/");
}

#[sqlx::test]
async fn a_new_link_from_an_admin_lifts_the_wait(pool: PgPool) {
    let app = app_with_candidate(pool).await;
    for _ in 0..6 {
        app.browser().sign_in(EMAIL, "a guess at it").await;
    }
    assert_eq!(
        app.browser().sign_in(EMAIL, PASSWORD).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    let user = sqlx::query_scalar!("select user_id from app_user where email = $1", EMAIL)
        .fetch_one(&app.pool)
        .await
        .expect("user");
    let (_, admin) = app.signed_in(&[Role::Admin]).await;
    let issued = admin
        .post_form(&format!("/admin/users/{user}/access-link"), &[])
        .await;
    assert_eq!(issued.status, StatusCode::OK);
    app.browser()
        .sign_in(EMAIL, PASSWORD)
        .await
        .assert_redirect_to("/");
}

#[sqlx::test]
async fn an_unknown_email_and_a_wrong_password_get_the_same_answer_in_similar_time(pool: PgPool) {
    let app = app_with_candidate(pool).await;
    let browser = app.browser();
    // Warm up: the first unknown email also makes the dummy hash.
    browser
        .sign_in("warm.up@example.org", "wrong password here")
        .await;

    let mut unknown_times = Vec::new();
    let mut wrong_times = Vec::new();
    let mut answers = Vec::new();
    for round in 0..3 {
        let unknown = format!("nobody{round}@example.org");
        let started = Instant::now();
        let a = browser.sign_in(&unknown, "wrong password here").await;
        unknown_times.push(started.elapsed());
        let started = Instant::now();
        let b = browser.sign_in(EMAIL, "wrong password here").await;
        wrong_times.push(started.elapsed());
        answers.push((
            a.status,
            a.texts(".field-error, #login-notice, h1"),
            b.status,
            b.texts(".field-error, #login-notice, h1"),
        ));
        app.clock().advance(Duration::minutes(20));
    }
    for (unknown_status, unknown_texts, wrong_status, wrong_texts) in answers {
        assert_eq!(unknown_status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(unknown_status, wrong_status);
        assert_eq!(unknown_texts, wrong_texts);
    }
    let fastest_unknown = unknown_times.iter().min().expect("times");
    let fastest_wrong = wrong_times.iter().min().expect("times");
    assert!(
        fastest_unknown.as_secs_f64() > fastest_wrong.as_secs_f64() * 0.5,
        "an unknown email must cost a password check too: {fastest_unknown:?} vs {fastest_wrong:?}"
    );
}

#[sqlx::test]
async fn one_address_may_fail_twenty_times_in_ten_minutes(pool: PgPool) {
    let app = app_with_candidate(pool).await;
    let browser = app.browser();
    for n in 0..20 {
        let email = format!("guess{n}@example.org");
        assert_eq!(
            browser.sign_in(&email, "wrong password here").await.status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }
    let refused = browser.sign_in(EMAIL, PASSWORD).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.text("#login-notice").contains("from your network"));

    // A forged X-Forwarded-For from an untrusted peer changes nothing.
    let token = browser.csrf_token().await;
    let forged = browser
        .post_raw(
            "/login",
            &[
                ("csrf_token", &token),
                ("email", EMAIL),
                ("password", PASSWORD),
            ],
            &[
                ("sec-fetch-site", "same-origin"),
                ("x-forwarded-for", "198.51.100.1"),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::TOO_MANY_REQUESTS);

    let mut other = app.browser();
    other.ip = "192.0.2.80".parse().expect("ip");
    other.sign_in(EMAIL, PASSWORD).await.assert_redirect_to("/");
    app.clock().advance(Duration::minutes(10));
    browser
        .sign_in(EMAIL, PASSWORD)
        .await
        .assert_redirect_to("/");
}

#[sqlx::test]
async fn a_local_next_path_is_followed_after_sign_in_and_another_host_is_not(pool: PgPool) {
    let app = app_with_candidate(pool).await;
    let visitor = app.browser();
    let response = visitor.get("/account").await;
    assert_eq!(response.location(), Some("/login?next=/account"));
    let form = visitor.get("/login?next=/account").await;
    assert_eq!(
        form.attr("input[name=next]", "value").as_deref(),
        Some("/account")
    );
    visitor
        .post_form(
            "/login",
            &[
                ("email", EMAIL),
                ("password", PASSWORD),
                ("next", "/account"),
            ],
        )
        .await
        .assert_redirect_to("/account");

    let other = app.browser();
    let response = other
        .post_form(
            "/login",
            &[
                ("email", EMAIL),
                ("password", PASSWORD),
                ("next", "//evil.example/x"),
            ],
        )
        .await;
    response.assert_redirect_to("/");
}

#[sqlx::test]
async fn stored_passwords_are_argon2id_with_the_owasp_parameters(pool: PgPool) {
    let app = app_with_candidate(pool).await;
    let hash: Option<String> = sqlx::query_scalar!("select password_hash from app_user")
        .fetch_one(&app.pool)
        .await
        .expect("hash");
    assert!(
        hash.expect("a hash")
            .starts_with("$argon2id$v=19$m=19456,t=2,p=1$")
    );
}

#[sqlx::test]
async fn a_hash_with_weaker_parameters_is_upgraded_at_the_next_sign_in(pool: PgPool) {
    use argon2::password_hash::PasswordHasher;
    let app = TestApp::new(pool).await;
    let weak = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(4096, 1, 1, None).expect("params"),
    )
    .hash_password(PASSWORD.as_bytes())
    .expect("hash")
    .to_string();
    app.create_user_with_hash(EMAIL, "Casey Candidate", &[Role::Candidate], Some(&weak))
        .await;

    app.browser()
        .sign_in(EMAIL, PASSWORD)
        .await
        .assert_redirect_to("/");
    let hash: Option<String> = sqlx::query_scalar!("select password_hash from app_user")
        .fetch_one(&app.pool)
        .await
        .expect("hash");
    let hash = hash.expect("a hash");
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    app.browser()
        .sign_in(EMAIL, PASSWORD)
        .await
        .assert_redirect_to("/");
}

/// An invitation link for a new account without a password; returns the link's path.
async fn invite(app: &TestApp, email: &str, name: &str) -> String {
    let user = app
        .create_user_with_hash(email, name, &[Role::Assessor], None)
        .await;
    let mut conn = app.pool.acquire().await.expect("connection");
    let link = links::issue(
        &mut conn,
        "http://x",
        Purpose::Invitation,
        Some(user),
        None,
        app.clock().now(),
    )
    .await
    .expect("link");
    link.url.trim_start_matches("http://x").to_owned()
}

#[sqlx::test]
async fn an_invitation_sets_a_password_once_and_signs_the_person_in(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let path = invite(&app, "ada@example.org", "Ada Assessor").await;
    let browser = app.browser();
    let form = browser.get(&path).await;
    assert_eq!(form.status, StatusCode::OK);
    assert_eq!(form.text("h1"), "Accept your invitation");
    assert_eq!(form.text("#account-email"), "ada@example.org");

    let response = browser
        .post_form(
            &path,
            &[("password", PASSWORD), ("confirm_password", PASSWORD)],
        )
        .await;
    response.assert_redirect_to("/");
    assert_eq!(browser.get("/").await.text("h1"), "Welcome, Ada Assessor");

    let again = app.browser();
    assert_eq!(again.get(&path).await.status, StatusCode::NOT_FOUND);
    let reuse = again
        .post_form(
            &path,
            &[
                ("password", "another long passphrase"),
                ("confirm_password", "another long passphrase"),
            ],
        )
        .await;
    assert_eq!(reuse.status, StatusCode::NOT_FOUND);
    assert_eq!(reuse.text("h1"), "This link cannot be used");
    app.browser()
        .sign_in("ada@example.org", PASSWORD)
        .await
        .assert_redirect_to("/");
    assert!(
        app.audit_actions()
            .await
            .contains(&"user.password_changed".to_owned())
    );
}

#[sqlx::test]
async fn an_invitation_expires_after_seven_days(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let path = invite(&app, "ada@example.org", "Ada Assessor").await;
    app.clock()
        .advance(Duration::days(7) + Duration::seconds(1));
    let response = app
        .browser()
        .post_form(
            &path,
            &[("password", PASSWORD), ("confirm_password", PASSWORD)],
        )
        .await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.count("select count(*) from app_user where password_hash is not null")
            .await,
        0
    );
}

#[sqlx::test]
async fn the_password_policy_is_applied_with_clear_messages(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let path = invite(&app, "ada.lovelace@example.org", "Ada Lovelace").await;
    let browser = app.browser();
    let cases = [
        ("kx7!pq2#vbn", "Use at least 12 characters (this has 11)"),
        (
            "password1234",
            "This is one of the most commonly used passwords; choose one that is harder to guess",
        ),
        (
            "lovelace-forever-99",
            "Do not use your name or email address in your password",
        ),
    ];
    for (password, message) in cases {
        let response = browser
            .post_form(
                &path,
                &[("password", password), ("confirm_password", password)],
            )
            .await;
        assert_eq!(
            response.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{password}"
        );
        assert_eq!(
            response.text("#password-error"),
            format!("Error: {message}")
        );
        assert_eq!(response.texts(".error-summary a"), [message]);
        assert_eq!(
            response.attr("#password", "aria-invalid").as_deref(),
            Some("true")
        );
    }
    let too_long = "x".repeat(129);
    let response = browser
        .post_form(
            &path,
            &[("password", &too_long), ("confirm_password", &too_long)],
        )
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    let mismatch = browser
        .post_form(
            &path,
            &[
                ("password", PASSWORD),
                ("confirm_password", "something else"),
            ],
        )
        .await;
    assert_eq!(
        mismatch.text("#confirm_password-error"),
        "Error: The two passwords are not the same"
    );

    // 128 characters of any kind, non-ASCII included, are accepted.
    let longest: String = "ñ".repeat(64) + &"z".repeat(64);
    let response = browser
        .post_form(
            &path,
            &[("password", &longest), ("confirm_password", &longest)],
        )
        .await;
    response.assert_redirect_to("/");
    app.browser()
        .sign_in("ada.lovelace@example.org", &longest)
        .await
        .assert_redirect_to("/");
}

#[sqlx::test]
async fn a_password_reset_link_sets_a_new_password_and_ends_every_session(pool: PgPool) {
    let app = app_with_candidate(pool).await;
    let old_browser = app.browser();
    old_browser.sign_in(EMAIL, PASSWORD).await;
    let user: uuid::Uuid = sqlx::query_scalar!("select user_id from app_user")
        .fetch_one(&app.pool)
        .await
        .expect("id");
    let mut conn = app.pool.acquire().await.expect("connection");
    let link = links::issue(
        &mut conn,
        "http://x",
        Purpose::PasswordReset,
        Some(attest::identity::UserId(user)),
        None,
        app.clock().now(),
    )
    .await
    .expect("link");
    let path = link.url.trim_start_matches("http://x").to_owned();
    assert!(path.starts_with("/password-reset/"));

    let new_password = "a brand new passphrase";
    let browser = app.browser();
    assert_eq!(browser.get(&path).await.text("h1"), "Choose a new password");
    browser
        .post_form(
            &path,
            &[
                ("password", new_password),
                ("confirm_password", new_password),
            ],
        )
        .await
        .assert_redirect_to("/");
    assert!(
        old_browser.get("/").await.is_sign_in_redirect(),
        "the older session ended"
    );
    assert_eq!(
        app.browser().sign_in(EMAIL, PASSWORD).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    app.browser()
        .sign_in(EMAIL, new_password)
        .await
        .assert_redirect_to("/");
    assert_eq!(
        app.browser().get(&path).await.status,
        StatusCode::NOT_FOUND,
        "single use"
    );
}

#[sqlx::test]
async fn the_setup_link_creates_the_first_admin_once(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let mut conn = app.pool.acquire().await.expect("connection");
    let link = links::issue(
        &mut conn,
        "http://x",
        Purpose::Setup,
        None,
        None,
        app.clock().now(),
    )
    .await
    .expect("link");
    let path = link.url.trim_start_matches("http://x").to_owned();
    assert_eq!(
        path.len(),
        "/setup/".len() + 32,
        "128 random bits, hex-encoded"
    );

    let browser = app.browser();
    assert_eq!(
        browser.get(&path).await.text("h1"),
        "Create the first admin"
    );
    let invalid = browser
        .post_form(
            &path,
            &[
                ("name", ""),
                ("email", "not-an-email"),
                ("password", "short"),
                ("confirm_password", "short"),
            ],
        )
        .await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(invalid.texts(".error-summary a").len(), 3);
    assert_eq!(
        invalid.attr("#email", "value").as_deref(),
        Some("not-an-email"),
        "input is kept"
    );

    browser
        .post_form(
            &path,
            &[
                ("name", "Avery Admin"),
                ("email", "avery@example.org"),
                ("password", PASSWORD),
                ("confirm_password", PASSWORD),
            ],
        )
        .await
        .assert_redirect_to("/");
    let home = browser.get("/").await;
    assert_eq!(home.text("h1"), "Welcome, Avery Admin");
    assert!(home.texts("nav a").contains(&"Users".to_owned()));
    assert_eq!(app.browser().get(&path).await.status, StatusCode::NOT_FOUND);

    // With an admin present, even a fresh setup link is refused.
    let fresh = links::issue(
        &mut conn,
        "http://x",
        Purpose::Setup,
        None,
        None,
        app.clock().now(),
    )
    .await
    .expect("link");
    let fresh_path = fresh.url.trim_start_matches("http://x").to_owned();
    assert_eq!(
        app.browser().get(&fresh_path).await.status,
        StatusCode::NOT_FOUND
    );
}

#[sqlx::test]
async fn a_setup_link_expires_after_an_hour(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let mut conn = app.pool.acquire().await.expect("connection");
    let link = links::issue(
        &mut conn,
        "http://x",
        Purpose::Setup,
        None,
        None,
        app.clock().now(),
    )
    .await
    .expect("link");
    app.clock().advance(Duration::minutes(61));
    let path = link.url.trim_start_matches("http://x");
    assert_eq!(app.browser().get(path).await.status, StatusCode::NOT_FOUND);
}

#[sqlx::test]
async fn changing_ones_password_needs_the_current_one_and_ends_other_sessions(pool: PgPool) {
    let app = app_with_candidate(pool).await;
    let laptop = app.browser();
    laptop.sign_in(EMAIL, PASSWORD).await;
    let phone = app.browser();
    phone.sign_in(EMAIL, PASSWORD).await;

    // A reset link issued earlier must not outlive the password it was meant to replace.
    let user: attest::identity::UserId = sqlx::query_scalar!(
        r#"select user_id as "id: attest::identity::UserId" from app_user where email = $1"#,
        EMAIL
    )
    .fetch_one(&app.pool)
    .await
    .expect("user");
    let mut conn = app.pool.acquire().await.expect("connection");
    let reset = links::issue(
        &mut conn,
        "http://x",
        Purpose::PasswordReset,
        Some(user),
        None,
        app.clock().now(),
    )
    .await
    .expect("link");
    drop(conn);
    let reset_path = reset.url.trim_start_matches("http://x").to_owned();
    assert_eq!(app.browser().get(&reset_path).await.status, StatusCode::OK);

    let new_password = "my new long passphrase";
    let wrong = laptop
        .post_form(
            "/account/password",
            &[
                ("current_password", "not my password"),
                ("password", new_password),
                ("confirm_password", new_password),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        wrong.text("#current_password-error"),
        "Error: Your current password is not right"
    );

    laptop
        .post_form(
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("password", new_password),
                ("confirm_password", new_password),
            ],
        )
        .await
        .assert_redirect_to("/account");
    assert_eq!(
        laptop.get("/account").await.status,
        StatusCode::OK,
        "this session stays"
    );
    assert!(
        phone.get("/account").await.is_sign_in_redirect(),
        "the other session ended"
    );
    app.browser()
        .sign_in(EMAIL, new_password)
        .await
        .assert_redirect_to("/");
    assert_eq!(
        app.browser().get(&reset_path).await.status,
        StatusCode::NOT_FOUND,
        "the earlier reset link is worthless now"
    );
}

#[sqlx::test]
async fn the_account_page_shows_the_persons_roles(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let (_, browser) = app.signed_in(&[Role::Assessor, Role::Iqa]).await;
    let page = browser.get("/account").await;
    assert_eq!(
        page.text("#account-roles"),
        "Assessor, Internal quality assurer"
    );
}

#[sqlx::test]
async fn no_password_or_token_reaches_the_audit_trail(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let path = invite(&app, "ada@example.org", "Ada Assessor").await;
    let browser = app.browser();
    browser
        .post_form(
            &path,
            &[("password", PASSWORD), ("confirm_password", PASSWORD)],
        )
        .await;
    browser.post_form("/logout", &[]).await;
    app.browser()
        .sign_in("ada@example.org", "a wrong guess at it")
        .await;
    app.browser().sign_in("ada@example.org", PASSWORD).await;

    let trail: Vec<String> =
        sqlx::query_scalar!(r#"select row_to_json(a)::text as "row!" from audit_event a"#)
            .fetch_all(&app.pool)
            .await
            .expect("audit");
    let token = path.rsplit('/').next().expect("token");
    for row in &trail {
        assert!(
            !row.contains(PASSWORD) && !row.contains("a wrong guess at it"),
            "{row}"
        );
        assert!(!row.contains(token), "{row}");
        assert!(!row.contains("argon2"), "{row}");
    }
    let actions = app.audit_actions().await;
    for expected in [
        "user.password_changed",
        "auth.logout",
        "auth.login_succeeded",
    ] {
        assert!(
            actions.contains(&expected.to_owned()),
            "{expected} missing from {actions:?}"
        );
    }
}

#[sqlx::test]
async fn a_burst_of_parallel_guesses_cannot_pass_the_lockout_together(pool: PgPool) {
    let app = app_with_candidate(pool).await;
    let mut browsers = Vec::new();
    for n in 0..8u8 {
        let mut browser = app.browser();
        browser.ip = std::net::IpAddr::from([192, 0, 2, 100 + n]);
        let token = browser.csrf_token().await;
        browsers.push((browser, token));
    }
    let attempts = browsers.iter().map(|(browser, token)| async move {
        let fields = [
            ("csrf_token", token.as_str()),
            ("email", EMAIL),
            ("password", "a wrong guess at it"),
        ];
        browser
            .post_raw("/login", &fields, &[("sec-fetch-site", "same-origin")])
            .await
    });
    let statuses: Vec<StatusCode> = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.status)
        .collect();
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNPROCESSABLE_ENTITY)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((checked, refused), (5, 3), "{statuses:?}");
}

#[sqlx::test]
async fn what_is_typed_as_an_email_is_kept_only_when_it_is_an_email(pool: PgPool) {
    let app = app_with_candidate(pool).await;
    app.browser()
        .sign_in("my secret passphrase", "whatever it is")
        .await;
    let trail: Vec<String> =
        sqlx::query_scalar!(r#"select row_to_json(a)::text as "row!" from audit_event a"#)
            .fetch_all(&app.pool)
            .await
            .expect("audit");
    assert!(
        trail
            .iter()
            .all(|row| !row.contains("my secret passphrase")),
        "{trail:?}"
    );
    let keys: Vec<String> = sqlx::query_scalar!("select email_key from login_attempt")
        .fetch_all(&app.pool)
        .await
        .expect("keys");
    assert!(
        keys.iter().all(|k| k.len() == 64 && !k.contains("secret")),
        "{keys:?}"
    );
}

#[sqlx::test]
async fn a_nul_byte_or_a_control_character_is_a_bad_request_not_a_server_error(pool: PgPool) {
    let app = app_with_candidate(pool).await;
    let browser = app.browser();
    let response = browser
        .post_form(
            "/login",
            &[("email", "a\0b@example.org"), ("password", "x")],
        )
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    browser.sign_in(EMAIL, PASSWORD).await;
    let redirect = browser.get("/login?next=/%01").await;
    assert_eq!(redirect.location(), Some("/"));
    // PostgreSQL refuses NUL in text: in an address it is turned away before any query.
    for uri in [
        "/standards/TECIT%0050761",
        "/standards/%00/case.json",
        "/admin/users?q=a%00b",
    ] {
        assert_eq!(
            browser.get(uri).await.status,
            StatusCode::BAD_REQUEST,
            "{uri}"
        );
    }
}

#[sqlx::test]
async fn a_class_signing_in_at_once_from_one_network_is_not_refused(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let hash = app.state.passwords.hash(PASSWORD).await.expect("hash");
    let mut people = Vec::new();
    for n in 0..25 {
        let email = format!("learner{n}@example.org");
        app.create_user_with_hash(
            &email,
            &format!("Learner {n}"),
            &[Role::Candidate],
            Some(&hash),
        )
        .await;
        let browser = app.browser();
        let token = browser.csrf_token().await;
        people.push((browser, token, email));
    }
    let attempts = people.iter().map(|(browser, token, email)| async move {
        let fields = [
            ("csrf_token", token.as_str()),
            ("email", email.as_str()),
            ("password", PASSWORD),
        ];
        browser
            .post_raw("/login", &fields, &[("sec-fetch-site", "same-origin")])
            .await
            .status
    });
    let statuses = futures_util::future::join_all(attempts).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::SEE_OTHER),
        "{statuses:?}"
    );
}
