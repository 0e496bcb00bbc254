//! The least-privileged role the server works as: what it may not do fails with a permission
//! error whatever the triggers say, and the portal's work goes on under it.

use attest::identity::Role;
use axum::http::StatusCode;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::helpers::TestApp;

const APP_PASSWORD: &str = "app role password for the tests";

/// Roles belong to the whole PostgreSQL server: tests setting the app role's password at the
/// same moment would update one catalog row together, which PostgreSQL refuses.
static SETTING_UP_ROLES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A pool of this test's database logged in as the app role, set up first.
async fn as_app_role(pool: &PgPool) -> PgPool {
    let mut conn = pool.acquire().await.expect("connection");
    {
        let _one_at_a_time = SETTING_UP_ROLES.lock().await;
        attest::db::setup_roles(&mut conn, Some(APP_PASSWORD))
            .await
            .expect("roles");
    }
    let options = (*pool.connect_options())
        .clone()
        .username(attest::db::APP_ROLE)
        .password(APP_PASSWORD);
    PgPoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .expect("the app role logs in")
}

#[sqlx::test]
async fn the_server_role_cannot_rewrite_or_empty_records_nor_alter_the_schema(pool: PgPool) {
    let owner = TestApp::new(pool).await;
    let enrolled = owner.enrolled("rhea").await;
    let candidate = owner.browser_signed_in_as(enrolled.candidate).await;
    let evidence = owner
        .submit_evidence(&candidate, &enrolled, "Runbook", "product", &["PC1"])
        .await;
    let assessor = owner.browser_signed_in_as(enrolled.assessor).await;
    owner
        .judge(
            &assessor,
            &evidence,
            &[("PC1", false, "Show the rollback step.")],
        )
        .await;
    owner.seal_audit().await;

    let app = as_app_role(&owner.pool).await;
    for sql in [
        "update audit_event set detail = '{}'",
        "delete from audit_event",
        "truncate audit_event",
        "update judgement set feedback = 'rewritten'",
        "delete from judgement",
        "truncate judgement",
        "update sign_off set sampled = true",
        "delete from sign_off",
        "update blob_chunk set data = '\\x00'",
        "truncate blob_chunk",
        "truncate evidence",
        "delete from signing_key",
        "alter table evidence add column sneaky int",
        "create table sneaky (id int)",
        "drop trigger blob_chunk_is_kept on blob_chunk",
    ] {
        let error = sqlx::raw_sql(sql)
            .execute(&app)
            .await
            .expect_err(sql)
            .to_string();
        assert!(
            error.contains("permission denied") || error.contains("must be owner"),
            "{sql}: {error}"
        );
    }
    // What it may do, it does; what the triggers refuse is refused to it too.
    let submitted =
        sqlx::raw_sql("update evidence set title = 'changed' where state = 'submitted'")
            .execute(&app)
            .await
            .expect_err("a submitted version is immutable")
            .to_string();
    assert!(!submitted.contains("permission denied"), "{submitted}");
    let sealing_only = sqlx::raw_sql("update audit_event set hash = hash")
        .execute(&app)
        .await
        .expect_err("the chain is append-only")
        .to_string();
    assert!(sealing_only.contains("append-only"), "{sealing_only}");
}

#[sqlx::test]
async fn the_portal_works_as_the_app_role(pool: PgPool) {
    let owner_pool = pool.clone();
    TestApp::new(pool).await;
    let app = TestApp::new(as_app_role(&owner_pool).await).await;
    // Signing in records attempts and a session; submitting stores a file and claims; judging,
    // sealing the trail, signing a checkpoint, rotating the key and sweeping storage follow.
    let enrolled = app.enrolled("rae").await;
    let (_, admin) = app.signed_in(&[Role::Admin]).await;
    let candidate = app.browser_signed_in_as(enrolled.candidate).await;
    let evidence = app
        .submit_evidence(&candidate, &enrolled, "Runbook", "product", &["PC1"])
        .await;
    let assessor = app.browser_signed_in_as(enrolled.assessor).await;
    let judged = app
        .judge(
            &assessor,
            &evidence,
            &[("PC1", true, "Clear and complete.")],
        )
        .await;
    assert_eq!(judged.status, StatusCode::SEE_OTHER);
    let email: String = sqlx::query_scalar!(
        "select email from app_user where user_id = $1",
        enrolled.candidate.0
    )
    .fetch_one(&app.pool)
    .await
    .expect("email");
    app.browser()
        .sign_in(&email, crate::helpers::PASSWORD)
        .await
        .assert_redirect_to("/");
    assert_eq!(
        admin
            .get(&format!("/enrolments/{}/archive.zip", enrolled.enrolment))
            .await
            .status,
        StatusCode::OK
    );
    app.seal_audit().await;
    let mut conn = app.pool.acquire().await.expect("connection");
    let secret = &app.state.settings.secret_key;
    let now = app.clock().now();
    attest::keys::ensure_active(&mut conn, secret, now)
        .await
        .expect("a key");
    attest::keys::rotate(&mut conn, secret, now)
        .await
        .expect("rotated");
    let key = attest::keys::active(&mut conn, secret)
        .await
        .expect("read")
        .expect("active");
    attest::audit::checkpoint::make(&mut conn, &key, None, now)
        .await
        .expect("checkpoint")
        .expect("made");
    let report = attest::audit::verify(&mut conn).await.expect("verify");
    assert!(report.is_intact(), "{report:?}");
    drop(conn);
    attest::blobs::sweep(
        &app.pool,
        now + time::Duration::days(2),
        attest::blobs::Retention::default(),
    )
    .await
    .expect("the sweeper works as the app role");
}
