//! Sessions kept in memory, and the changes every process hears: a kept session serves without
//! the database, and is forgotten when it ends or its user changes, in this process at once and
//! in another a moment later.

use axum::http::StatusCode;
use sqlx::PgPool;

use attest::auth::session::session_cookie_name;
use attest::identity::{Role, UserId};

use crate::helpers::{Browser, TestApp, eventually};

/// The name in the page header of whoever the portal took the request to come from.
fn signed_in_name(page: &crate::helpers::TestResponse) -> Option<String> {
    page.texts("#account-link")
        .first()
        .map(|name| name.trim_end_matches(" – your account").to_owned())
}

/// Whom the portal takes `browser` to be, on a page that needs nothing else from the database.
async fn seen_as(browser: &Browser<'_>) -> Option<String> {
    signed_in_name(&browser.get("/standards/TECIT50761").await)
}

/// Runs `sql` (binding `users` in turn) as someone working on the database directly would.
async fn run(app: &TestApp, sql: &'static str, users: &[UserId]) {
    users
        .iter()
        .fold(sqlx::query(sql), |query, user| query.bind(user.0))
        .execute(&app.pool)
        .await
        .expect(sql);
}

#[sqlx::test]
async fn a_kept_session_serves_without_asking_the_database(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let listening = app.listen().await;
    let (_, admin) = app.signed_in(&[Role::Admin]).await;
    // The standard page needs nothing else from the database once it is in memory.
    let first = admin.get("/standards/TECIT50761").await;
    assert_eq!(signed_in_name(&first).as_deref(), Some("Test admin"));

    app.pool.close().await;
    let offline = admin.get("/standards/TECIT50761").await;
    assert_eq!(offline.status, StatusCode::OK);
    assert_eq!(
        signed_in_name(&offline).as_deref(),
        Some("Test admin"),
        "the session came from memory"
    );
    listening.stop().await;
}

#[sqlx::test]
async fn without_listening_every_request_asks_the_database(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let (_, admin) = app.signed_in(&[Role::Admin]).await;
    assert!(seen_as(&admin).await.is_some());
    // No notice would reach this process, so nothing was kept: the change is seen at once.
    run(&app, "delete from session", &[]).await;
    assert_eq!(seen_as(&admin).await, None);
}

#[sqlx::test]
async fn signing_out_ends_the_kept_session_at_once(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let listening = app.listen().await;
    let (_, admin) = app.signed_in(&[Role::Admin]).await;
    let cookie_name = session_cookie_name(&app.state.settings);
    let token = admin.cookie(cookie_name).expect("session cookie");
    assert_eq!(admin.get("/admin/users").await.status, StatusCode::OK);

    admin
        .post_form("/logout", &[])
        .await
        .assert_redirect_to("/login");
    // The old cookie, sent again straight away to the same process.
    let replay = app.browser();
    replay.set_cookie(cookie_name, &token);
    assert!(replay.get("/admin/users").await.is_sign_in_redirect());
    listening.stop().await;
}

#[sqlx::test]
async fn another_process_hears_a_sign_out_and_a_change_of_roles(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let other = app.other_process();
    let (here, there) = (app.listen().await, other.listen().await);
    let cookie_name = session_cookie_name(&app.state.settings);

    // A session known to the other process, signed out here.
    let (_, admin) = app.signed_in(&[Role::Admin]).await;
    let elsewhere = other.browser();
    elsewhere.set_cookie(cookie_name, &admin.cookie(cookie_name).expect("cookie"));
    assert_eq!(elsewhere.get("/admin/users").await.status, StatusCode::OK);
    admin.post_form("/logout", &[]).await;
    eventually("the other process refuses the ended session", || async {
        elsewhere.get("/admin/users").await.is_sign_in_redirect()
    })
    .await;

    // Roles taken away here, by an admin: the other process stops granting them.
    let (_, boss) = app.signed_in(&[Role::Admin]).await;
    let (assessor_id, assessor) = app.signed_in(&[Role::Admin, Role::Assessor]).await;
    let elsewhere = other.browser();
    elsewhere.set_cookie(cookie_name, &assessor.cookie(cookie_name).expect("cookie"));
    assert_eq!(elsewhere.get("/admin/users").await.status, StatusCode::OK);
    boss.post_form(
        &format!("/admin/users/{assessor_id}"),
        &[("name", "Test assessor"), ("role", "assessor")],
    )
    .await
    .assert_redirect_to(&format!("/admin/users/{assessor_id}"));
    eventually(
        "the other process stops granting the admin role",
        || async { elsewhere.get("/admin/users").await.status == StatusCode::FORBIDDEN },
    )
    .await;

    here.stop().await;
    there.stop().await;
}

#[sqlx::test]
async fn a_change_made_in_plain_sql_is_heard_too(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let listening = app.listen().await;
    let (user, candidate) = app.signed_in(&[Role::Candidate]).await;
    assert_eq!(seen_as(&candidate).await.as_deref(), Some("Test candidate"));

    run(
        &app,
        "update app_user set display_name = 'Renamed' where user_id = $1",
        &[user],
    )
    .await;
    eventually("the new name is shown", || async {
        seen_as(&candidate).await.as_deref() == Some("Renamed")
    })
    .await;

    run(
        &app,
        "update app_user set is_active = false where user_id = $1",
        &[user],
    )
    .await;
    eventually("the deactivated account is signed out", || async {
        seen_as(&candidate).await.is_none()
    })
    .await;

    // Emptying the table fires no row trigger: everything kept is forgotten.
    let (_, admin) = app.signed_in(&[Role::Admin]).await;
    assert!(seen_as(&admin).await.is_some());
    run(&app, "truncate session", &[]).await;
    eventually("everyone is signed out", || async {
        seen_as(&admin).await.is_none()
    })
    .await;
    listening.stop().await;
}

#[sqlx::test]
async fn a_kept_session_still_ends_at_its_timeouts(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let listening = app.listen().await;
    let (_, admin) = app.signed_in(&[Role::Admin]).await;
    assert_eq!(admin.get("/admin/users").await.status, StatusCode::OK);
    // Seen again within the minute: from memory, and still signed in.
    app.clock().advance(time::Duration::seconds(50));
    assert_eq!(admin.get("/admin/users").await.status, StatusCode::OK);
    // Idle past the timeout: the database decides, and the session is over.
    app.clock().advance(app.state.settings.session_idle_timeout);
    assert!(admin.get("/admin/users").await.is_sign_in_redirect());
    assert_eq!(app.count("select count(*) from session").await, 0);
    listening.stop().await;
}

#[sqlx::test]
async fn a_listening_connection_that_falls_silent_is_given_up(pool: PgPool) {
    let app = TestApp::new(pool).await;
    // No heartbeat for an hour, and silence allowed for a moment only.
    let heartbeat = attest::changes::Heartbeat {
        every: std::time::Duration::from_secs(3600),
        silence: std::time::Duration::from_millis(300),
    };
    let listening = app.listen_with(heartbeat).await;
    eventually("the silent connection is given up", || async {
        !app.state.changes.is_listening()
    })
    .await;
    listening.stop().await;
}

#[sqlx::test]
async fn a_lost_listening_connection_empties_the_caches_until_it_is_back(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let listening = app.listen().await;
    let (_, admin) = app.signed_in(&[Role::Admin]).await;
    assert!(seen_as(&admin).await.is_some());

    // The database ends the listening connection (as in a restart): notices sent until it is
    // back are lost, so nothing kept may serve meanwhile.
    run(
        &app,
        "select pg_terminate_backend(pid) from pg_stat_activity
          where datname = current_database() and query like 'LISTEN%'",
        &[],
    )
    .await;
    eventually("the portal notices the connection is gone", || async {
        !app.state.changes.is_listening()
    })
    .await;
    // Read from the database meanwhile, and not kept.
    assert!(seen_as(&admin).await.is_some());
    run(&app, "delete from session", &[]).await;
    assert_eq!(
        seen_as(&admin).await,
        None,
        "the session deleted while nobody listened is not served from memory"
    );
    eventually("the portal listens again", || async {
        app.state.changes.is_listening()
    })
    .await;
    listening.stop().await;
}

#[sqlx::test]
async fn two_processes_make_200_audited_changes_at_once_and_the_chain_stays_whole(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let other = app.other_process();
    let (here, there) = (app.listen().await, other.listen().await);
    let cookie_name = session_cookie_name(&app.state.settings);
    let enrolled = app.enrolled("two").await;
    // Signed in on one process, working on both.
    let candidate = app.browser_signed_in_as(enrolled.candidate).await;
    let elsewhere = other.browser();
    elsewhere.set_cookie(cookie_name, &candidate.cookie(cookie_name).expect("cookie"));
    let events_before = app.count("select count(*) from audit_event").await;

    let uri = format!("/enrolments/{}/evidence/new", enrolled.enrolment);
    let saves = (0..200).map(|n| {
        let (browser, uri) = (if n % 2 == 0 { &candidate } else { &elsewhere }, &uri);
        async move {
            let title = format!("Draft {n}");
            browser
                .post_multipart(uri, &[("title", &title), ("action", "save")], &[])
                .await
                .status
        }
    });
    let statuses = futures_util::future::join_all(saves).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::SEE_OTHER),
        "{statuses:?}"
    );

    // Both processes seal, as their servers do, at the same time.
    let seal = |pool: &PgPool| {
        let pool = pool.clone();
        async move {
            let mut conn = pool.acquire().await.expect("connection");
            attest::audit::seal_pending(&mut conn).await.expect("seal")
        }
    };
    let (sealed_here, sealed_there) = tokio::join!(seal(&app.pool), seal(&other.pool));
    assert!(sealed_here + sealed_there >= 200);
    assert_eq!(app.count("select count(*) from evidence").await, 200);
    assert_eq!(
        app.count("select count(*) from audit_event").await,
        events_before + 200
    );
    let mut conn = app.pool.acquire().await.expect("connection");
    let verified = attest::audit::verify(&mut conn).await.expect("verify");
    assert!(verified.broken.is_none(), "{:?}", verified.broken);
    assert_eq!(verified.pending, 0);

    // Signed out on the other, refused on this one.
    elsewhere.post_form("/logout", &[]).await;
    eventually("this process refuses the ended session", || async {
        candidate.get("/account").await.is_sign_in_redirect()
    })
    .await;
    here.stop().await;
    there.stop().await;
}
