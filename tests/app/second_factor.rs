//! The second step of sign-in (TOTP and recovery codes), and throttling that slows an attack
//! without shutting the account's owner out.

use std::time::{Duration as StdDuration, Instant};

use attest::config::{SecondFactorPolicy, Settings};
use attest::identity::Role;
use axum::http::StatusCode;
use sqlx::PgPool;
use time::Duration;

use crate::helpers::{Browser, PASSWORD, TestApp, TestResponse};

const ADMIN: &str = "ada.admin@example.org";

async fn app_requiring_second_factor(pool: PgPool) -> TestApp {
    let settings = Settings {
        second_factor: SecondFactorPolicy::Required,
        ..Settings::default()
    };
    let app = TestApp::with_settings(pool, settings).await;
    app.create_user(ADMIN, "Ada Admin", &[Role::Admin]).await;
    app
}

/// The code an authenticator app shows now for the setup key `secret` (as the page shows it).
fn code_for(app: &TestApp, secret: &str) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret.replace(' ', "")).expect("base32");
    let totp = totp_rs::Builder::new()
        .with_secret(secret)
        .build()
        .expect("totp");
    let now = u64::try_from(app.clock().now().unix_timestamp()).expect("time");
    totp.generate(now).to_string()
}

/// Answers the second step of sign-in with `code`.
async fn answer(browser: &Browser<'_>, code: &str) -> TestResponse {
    browser
        .post_form("/login/second-factor", &[("code", code)])
        .await
}

/// Signs in `browser` as the admin for the first time: password, then the authenticator is
/// set up. Returns its setup key and the recovery codes shown.
async fn set_up(app: &TestApp, browser: &Browser<'_>) -> (String, Vec<String>) {
    browser
        .sign_in(ADMIN, PASSWORD)
        .await
        .assert_redirect_to("/login/second-factor");
    let page = browser.get("/login/second-factor").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.text("h1"), "Set up your authenticator");
    assert!(
        page.body.contains("<svg"),
        "the QR code is drawn on the server"
    );
    let secret = page.text("#secret-key");
    let done = answer(browser, &code_for(app, &secret)).await;
    assert_eq!(done.status, StatusCode::OK);
    let codes = done.texts("#recovery-codes code");
    (secret, codes)
}

#[sqlx::test]
async fn a_required_role_sets_up_an_authenticator_then_signs_in_with_a_code_once(pool: PgPool) {
    let app = app_requiring_second_factor(pool).await;
    let browser = app.browser();
    browser
        .sign_in(ADMIN, PASSWORD)
        .await
        .assert_redirect_to("/login/second-factor");
    assert_eq!(
        app.count("select count(*) from session").await,
        0,
        "a right password alone opens no session"
    );
    assert!(browser.get("/admin/users").await.is_sign_in_redirect());
    let wrong = answer(&browser, "000000").await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong.text(".field-error").contains("not right"));

    let secret = wrong.text("#secret-key");
    let done = answer(&browser, &code_for(&app, &secret)).await;
    assert_eq!(done.status, StatusCode::OK);
    let codes = done.texts("#recovery-codes code");
    assert_eq!(codes.len(), 10);
    assert_eq!(browser.get("/admin/users").await.status, StatusCode::OK);
    let stored: Vec<u8> = sqlx::query_scalar!("select secret_sealed from second_factor")
        .fetch_one(&app.pool)
        .await
        .expect("stored");
    let raw = totp_rs::Secret::try_from_base32(secret.replace(' ', ""))
        .expect("base32")
        .as_bytes()
        .to_vec();
    assert!(
        !stored.windows(raw.len()).any(|w| w == raw.as_slice()),
        "the secret is stored sealed, never as it is"
    );

    // The next sign-in asks for a code; the code just used is not accepted again.
    let later = app.browser();
    later
        .sign_in(ADMIN, PASSWORD)
        .await
        .assert_redirect_to("/login/second-factor");
    let page = later.get("/login/second-factor").await;
    assert_eq!(page.text("h1"), "Enter your code");
    let replayed = answer(&later, &code_for(&app, &secret)).await;
    assert_eq!(replayed.status, StatusCode::UNPROCESSABLE_ENTITY);
    app.clock().advance(Duration::seconds(30));
    answer(&later, &code_for(&app, &secret))
        .await
        .assert_redirect_to("/");

    // A recovery code works once.
    for (round, expected) in [
        (0, StatusCode::SEE_OTHER),
        (1, StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let other = app.browser();
        other.sign_in(ADMIN, PASSWORD).await;
        let answered = answer(&other, &codes[0].to_uppercase()).await;
        assert_eq!(answered.status, expected, "round {round}");
    }
    let actions = app.audit_actions().await;
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "auth.second_factor_set_up")
            .count(),
        1
    );
}

#[sqlx::test]
async fn a_candidate_signs_in_with_a_password_alone_unless_they_chose_a_second_factor(
    pool: PgPool,
) {
    let app = app_requiring_second_factor(pool).await;
    app.create_user("casey@example.org", "Casey Candidate", &[Role::Candidate])
        .await;
    app.browser()
        .sign_in("casey@example.org", PASSWORD)
        .await
        .assert_redirect_to("/");
}

#[sqlx::test]
async fn an_attack_from_fifty_addresses_does_not_keep_the_admin_out(pool: PgPool) {
    let app = app_requiring_second_factor(pool).await;
    let known = app.browser();
    let (secret, _) = set_up(&app, &known).await;
    known.post_form("/logout", &[]).await;
    app.clock().advance(Duration::seconds(30));
    let audit_before = app.count("select count(*) from audit_event").await;

    let mut attackers = Vec::new();
    for n in 0..50u8 {
        let mut attacker = app.browser();
        attacker.ip = std::net::IpAddr::from([203, 0, 113, n]);
        let token = attacker.csrf_token().await;
        attackers.push((attacker, token));
    }
    let mut statuses = Vec::new();
    for round in 0..10 {
        let guesses = attackers.iter().map(|(attacker, token)| {
            let guess = format!("guess number {round}");
            async move {
                let fields = [
                    ("csrf_token", token.as_str()),
                    ("email", ADMIN),
                    ("password", guess.as_str()),
                ];
                attacker
                    .post_raw("/login", &fields, &[("sec-fetch-site", "same-origin")])
                    .await
                    .status
            }
        });
        statuses.extend(futures_util::future::join_all(guesses).await);
        // The attack goes on for ten minutes.
        app.clock().advance(Duration::minutes(1));
    }
    assert_eq!(statuses.len(), 500);
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNPROCESSABLE_ENTITY)
        .count();
    assert!(
        (5..=15).contains(&checked),
        "after the free failures, at most one a minute is checked: {checked}"
    );

    // A stranger with the right password (but no code) is slowed like the attacker.
    let stranger = app.browser();
    let slowed = stranger.sign_in(ADMIN, PASSWORD).await;
    assert_eq!(slowed.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(slowed.text("#login-notice").contains("authenticator"));
    assert_eq!(
        slowed.attrs("input[name=code]", "name").len(),
        1,
        "the form offers a code"
    );

    // On a new browser, the password with a code from the app gets the admin in at once,
    // while the attack goes on; getting in does not lift the wait for the attackers.
    let new_browser = app.browser();
    let admin_signs_in = async {
        let started = Instant::now();
        let response = new_browser
            .post_form(
                "/login",
                &[
                    ("email", ADMIN),
                    ("password", PASSWORD),
                    ("code", &code_for(&app, &secret)),
                ],
            )
            .await;
        (response, started.elapsed())
    };
    let more_guesses = futures_util::future::join_all(attackers.iter().map(|(attacker, token)| {
        let fields = [
            ("csrf_token", token.as_str()),
            ("email", ADMIN),
            ("password", "a guess while the admin signs in"),
        ];
        async move {
            attacker
                .post_raw("/login", &fields, &[("sec-fetch-site", "same-origin")])
                .await
                .status
        }
    }));
    let ((response, took), during) = tokio::join!(admin_signs_in, more_guesses);
    response.assert_redirect_to("/");
    assert!(took < StdDuration::from_secs(2), "{took:?}");
    assert!(
        during.iter().all(|s| *s == StatusCode::TOO_MANY_REQUESTS),
        "{during:?}"
    );
    assert_eq!(new_browser.get("/admin/users").await.status, StatusCode::OK);
    assert_eq!(
        app.browser().sign_in(ADMIN, "one more guess").await.status,
        StatusCode::TOO_MANY_REQUESTS,
        "still waiting for everyone else"
    );

    // On the browser they used before, they sign in as usual: password, then a (new) code.
    app.clock().advance(Duration::seconds(30));
    let started = Instant::now();
    known
        .sign_in(ADMIN, PASSWORD)
        .await
        .assert_redirect_to("/login/second-factor");
    answer(&known, &code_for(&app, &secret))
        .await
        .assert_redirect_to("/");
    assert!(started.elapsed() < StdDuration::from_secs(2));

    let audit_after = app.count("select count(*) from audit_event").await;
    assert!(
        audit_after - audit_before <= 6,
        "500 refused sign-ins are counted, not written to the trail one by one: {} rows: {:?}",
        audit_after - audit_before,
        app.audit_actions().await
    );
    let actions = app.audit_actions().await;
    assert!(actions.contains(&"auth.sign_in_slowed".to_owned()));
    assert_eq!(
        app.count("select count(*) from login_attempt where outcome = 'refused'")
            .await,
        i64::try_from(500 - checked + 1 + 50 + 1).expect("count")
    );
}

#[sqlx::test]
async fn wrong_codes_are_slowed_down_too(pool: PgPool) {
    let app = app_requiring_second_factor(pool).await;
    let (secret, _) = set_up(&app, &app.browser()).await;
    app.clock().advance(Duration::seconds(30));
    let browser = app.browser();
    browser.sign_in(ADMIN, PASSWORD).await;
    for _ in 0..5 {
        let wrong = answer(&browser, "123456").await;
        assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let waiting = answer(&browser, &code_for(&app, &secret)).await;
    assert_eq!(waiting.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        waiting
            .text("#second-factor-notice")
            .contains("wrong codes")
    );
    app.clock().advance(Duration::seconds(2));
    answer(&browser, &code_for(&app, &secret))
        .await
        .assert_redirect_to("/");
}

#[sqlx::test]
async fn a_password_reset_link_does_not_skip_the_second_factor(pool: PgPool) {
    let app = app_requiring_second_factor(pool).await;
    set_up(&app, &app.browser()).await;
    let user = sqlx::query_scalar!("select user_id from app_user where email = $1", ADMIN)
        .fetch_one(&app.pool)
        .await
        .expect("user");
    let link = {
        let mut conn = app.pool.acquire().await.expect("connection");
        attest::auth::links::issue(
            &mut conn,
            &app.state.settings.base_url,
            attest::auth::links::Purpose::PasswordReset,
            Some(attest::identity::UserId(user)),
            None,
            app.clock().now(),
        )
        .await
        .expect("link")
    };
    let path = link
        .url
        .trim_start_matches(&app.state.settings.base_url)
        .to_owned();
    let browser = app.browser();
    let new_password = "a brand new passphrase for ada";
    browser
        .post_form(
            &path,
            &[
                ("password", new_password),
                ("confirm_password", new_password),
            ],
        )
        .await
        .assert_redirect_to("/login/second-factor");
    assert_eq!(app.count("select count(*) from session").await, 0);
    let page = browser.get("/login/second-factor").await;
    assert_eq!(page.text("h1"), "Enter your code");
}

#[sqlx::test]
async fn an_admin_resets_a_lost_authenticator_but_never_their_own(pool: PgPool) {
    let app = app_requiring_second_factor(pool).await;
    let ada = app.browser();
    set_up(&app, &ada).await;
    let ada_id = sqlx::query_scalar!("select user_id from app_user where email = $1", ADMIN)
        .fetch_one(&app.pool)
        .await
        .expect("user");

    let own = ada
        .post_form(&format!("/admin/users/{ada_id}/second-factor/reset"), &[])
        .await;
    assert_eq!(own.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(own.body.contains("cannot reset your own second step"));

    let (_, other_admin) = app.signed_in(&[Role::Admin]).await;
    let page = other_admin.get(&format!("/admin/users/{ada_id}")).await;
    assert_eq!(page.text("#user-second-factor"), "On");
    assert_eq!(page.attrs("#second-factor-reset", "action").len(), 1);
    other_admin
        .post_form(&format!("/admin/users/{ada_id}/second-factor/reset"), &[])
        .await
        .assert_redirect_to(&format!("/admin/users/{ada_id}"));
    assert!(
        ada.get("/admin/users").await.is_sign_in_redirect(),
        "sessions ended"
    );
    assert_eq!(app.count("select count(*) from second_factor").await, 0);
    assert_eq!(app.count("select count(*) from recovery_code").await, 0);
    let page = other_admin.get(&format!("/admin/users/{ada_id}")).await;
    assert_eq!(page.text("#user-second-factor"), "Not set up");
    assert!(page.attrs("#second-factor-reset", "action").is_empty());
    let again = app.browser();
    again.sign_in(ADMIN, PASSWORD).await;
    assert_eq!(
        again.get("/login/second-factor").await.text("h1"),
        "Set up your authenticator"
    );
    assert!(
        app.audit_actions()
            .await
            .contains(&"user.second_factor_reset".to_owned())
    );
}

#[sqlx::test]
async fn the_current_password_check_is_slowed_like_sign_in(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let (_, browser) = app.signed_in(&[Role::Candidate]).await;
    let change = |current: &'static str| {
        let browser = &browser;
        async move {
            browser
                .post_form(
                    "/account/password",
                    &[
                        ("current_password", current),
                        ("password", "another long passphrase"),
                        ("confirm_password", "another long passphrase"),
                    ],
                )
                .await
        }
    };
    for _ in 0..5 {
        assert_eq!(
            change("not my password").await.status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }
    let waiting = change(PASSWORD).await;
    assert_eq!(waiting.status, StatusCode::TOO_MANY_REQUESTS);
    app.clock().advance(Duration::seconds(2));
    change(PASSWORD).await.assert_redirect_to("/account");
}

#[sqlx::test]
async fn anyone_may_turn_on_two_step_sign_in_from_their_account_and_renew_codes(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let (_, browser) = app.signed_in(&[Role::Candidate]).await;
    let account = browser.get("/account").await;
    assert!(account.text("#second-factor-status").starts_with("Off"));
    let setup = browser.get("/account/second-factor").await;
    assert_eq!(setup.status, StatusCode::OK);
    let secret = setup.text("#secret-key");
    let wrong = browser
        .post_form(
            "/account/second-factor",
            &[("current_password", PASSWORD), ("code", "999999")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        wrong.text("#secret-key"),
        secret,
        "the same key until it is on"
    );
    // A session alone does not tie the account to a phone: the password is asked too.
    let no_password = browser
        .post_form(
            "/account/second-factor",
            &[("code", &code_for(&app, &secret))],
        )
        .await;
    assert_eq!(no_password.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        no_password
            .text("#current_password-error")
            .contains("current password")
    );
    let on = browser
        .post_form(
            "/account/second-factor",
            &[
                ("current_password", PASSWORD),
                ("code", &code_for(&app, &secret)),
            ],
        )
        .await;
    assert_eq!(on.status, StatusCode::OK);
    let first_codes = on.texts("#recovery-codes code");
    assert_eq!(first_codes.len(), 10);
    let account = browser.get("/account").await;
    assert!(account.text("#second-factor-status").starts_with("On"));
    assert!(account.text("#second-factor-status").contains("10 unused"));
    // A recovery code does not renew them (nor is it used up trying).
    let with_recovery = browser
        .post_form(
            "/account/second-factor/recovery-codes",
            &[("code", &first_codes[1])],
        )
        .await;
    assert_eq!(with_recovery.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        with_recovery
            .text("#second-factor-status")
            .contains("10 unused")
    );

    app.clock().advance(Duration::seconds(30));
    let renewed = browser
        .post_form(
            "/account/second-factor/recovery-codes",
            &[("code", &code_for(&app, &secret))],
        )
        .await;
    assert_eq!(renewed.status, StatusCode::OK);
    let new_codes = renewed.texts("#recovery-codes code");
    assert_eq!(new_codes.len(), 10);
    assert!(first_codes.iter().all(|c| !new_codes.contains(c)));
    let actions = app.audit_actions().await;
    assert!(actions.contains(&"auth.second_factor_set_up".to_owned()));
    assert!(actions.contains(&"auth.recovery_codes_renewed".to_owned()));

    // Once on, it is asked at sign-in, and an old recovery code is worthless.
    let email: String =
        sqlx::query_scalar!("select email from app_user where roles = '{candidate}'")
            .fetch_one(&app.pool)
            .await
            .expect("email");
    let next = app.browser();
    next.sign_in(&email, PASSWORD)
        .await
        .assert_redirect_to("/login/second-factor");
    let old = answer(&next, &first_codes[0]).await;
    assert_eq!(old.status, StatusCode::UNPROCESSABLE_ENTITY);
    answer(&next, &new_codes[0]).await;
    assert_eq!(next.get("/account").await.status, StatusCode::OK);
}

#[sqlx::test]
async fn where_the_portal_offers_no_second_step_there_is_none_to_set_up(pool: PgPool) {
    let settings = Settings {
        second_factor: SecondFactorPolicy::Off,
        ..Settings::default()
    };
    let app = TestApp::with_settings(pool, settings).await;
    let (_, browser) = app.signed_in(&[Role::Admin]).await;
    assert!(
        browser
            .get("/account")
            .await
            .texts("#second-factor-status")
            .is_empty()
    );
    assert_eq!(
        browser.get("/account/second-factor").await.status,
        StatusCode::NOT_FOUND
    );
}

#[sqlx::test]
async fn the_first_admin_sets_up_an_authenticator_before_their_first_session(pool: PgPool) {
    let settings = Settings {
        second_factor: SecondFactorPolicy::Required,
        ..Settings::default()
    };
    let app = TestApp::with_settings(pool, settings).await;
    let link = {
        let mut conn = app.pool.acquire().await.expect("connection");
        attest::auth::links::issue(
            &mut conn,
            "http://x",
            attest::auth::links::Purpose::Setup,
            None,
            None,
            app.clock().now(),
        )
        .await
        .expect("link")
    };
    let path = link.url.trim_start_matches("http://x").to_owned();
    let browser = app.browser();
    let password = "a long and unusual passphrase";
    browser
        .post_form(
            &path,
            &[
                ("name", "First Admin"),
                ("email", "first@example.org"),
                ("password", password),
                ("confirm_password", password),
            ],
        )
        .await
        .assert_redirect_to("/login/second-factor");
    assert_eq!(app.count("select count(*) from session").await, 0);
    let page = browser.get("/login/second-factor").await;
    assert_eq!(page.text("h1"), "Set up your authenticator");
    let secret = page.text("#secret-key");
    let done = answer(&browser, &code_for(&app, &secret)).await;
    assert_eq!(done.status, StatusCode::OK);
    assert_eq!(browser.get("/admin/users").await.status, StatusCode::OK);
}

#[sqlx::test]
async fn any_code_in_the_field_does_not_let_password_guesses_past_the_wait(pool: PgPool) {
    let app = app_requiring_second_factor(pool).await;
    let known = app.browser();
    let (secret, _) = set_up(&app, &known).await;
    known.post_form("/logout", &[]).await;
    app.create_user("casey@example.org", "Casey Candidate", &[Role::Candidate])
        .await;
    let guess = |email: &'static str, password: &'static str, n: u8| {
        let app = &app;
        async move {
            let mut attacker = app.browser();
            attacker.ip = std::net::IpAddr::from([203, 0, 113, n]);
            attacker
                .post_form(
                    "/login",
                    &[("email", email), ("password", password), ("code", "123456")],
                )
                .await
        }
    };
    for email in [ADMIN, "casey@example.org"] {
        for n in 0..5 {
            guess(email, "a wrong guess", n).await;
        }
        // The account waits. With a code in the field, guesses go past the wait on a count of
        // their own, whether the account has an authenticator or not; every answer is the
        // wait, the right password with a wrong code's too.
        let mut statuses = Vec::new();
        for n in 5..12 {
            statuses.push(guess(email, "a wrong guess", n).await.status);
        }
        statuses.push(guess(email, PASSWORD, 20).await.status);
        assert!(
            statuses.iter().all(|s| *s == StatusCode::TOO_MANY_REQUESTS),
            "{email}: {statuses:?}"
        );
    }
    assert_eq!(
        app.count("select count(*) from login_attempt where kind = 'password_with_code'")
            .await,
        10,
        "five past the wait for each account, then none"
    );
    assert_eq!(
        app.count(
            "select count(*) from login_attempt where kind = 'second_factor' and outcome = 'failed'"
        )
        .await,
        0,
        "the guesses never touch the count of codes at the second step"
    );
    // So the owner, on the browser they used before, still gets in with their code.
    app.clock().advance(Duration::seconds(30));
    known
        .sign_in(ADMIN, PASSWORD)
        .await
        .assert_redirect_to("/login/second-factor");
    answer(&known, &code_for(&app, &secret))
        .await
        .assert_redirect_to("/");
}

#[sqlx::test]
async fn an_attempt_left_pending_by_a_failed_request_is_settled_as_failed(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let mut conn = app.pool.acquire().await.expect("connection");
    let now = app.clock().now();
    let attempt = attest::auth::throttle::Attempt {
        kind: attest::auth::throttle::AttemptKind::Password,
        email: "left@example.org",
        ip: None,
        known_device: None,
    };
    attest::auth::throttle::begin(&mut conn, attempt, false, now)
        .await
        .expect("begin")
        .expect("begun");
    attest::auth::throttle::delete_old(&mut conn, now + Duration::seconds(30))
        .await
        .expect("sweep");
    assert_eq!(
        app.count("select count(*) from login_attempt where outcome = 'pending'")
            .await,
        1,
        "a moment old: its request may still be checking"
    );
    attest::auth::throttle::delete_old(&mut conn, now + Duration::minutes(2))
        .await
        .expect("sweep");
    assert_eq!(
        app.count("select count(*) from login_attempt where outcome = 'failed'")
            .await,
        1
    );
}
