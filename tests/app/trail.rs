//! The portal's signing keys and the signed checkpoints that anchor the audit trail: a cut or
//! rewritten end of the trail is caught, by the checkpoints kept in the database and by one
//! kept elsewhere.

use std::process::Command;

use attest::audit::checkpoint::{self, Checkpoint};
use attest::audit::{self, Actor, NewAuditEvent};
use attest::identity::Role;
use axum::http::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::{PASSWORD, TestApp, database_url_for};

const SECRET_KEY_HEX: &str = "5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";

/// A few events in the chain, all sealed.
async fn some_events(app: &TestApp, count: usize) {
    let mut conn = app.pool.acquire().await.expect("connection");
    for n in 0..count {
        audit::record(
            &mut conn,
            NewAuditEvent {
                actor: &Actor::cli(),
                action: "test.event",
                entity_type: "test",
                entity_id: n.to_string(),
                detail: json!({ "n": n }),
            },
        )
        .await
        .expect("record");
    }
    app.seal_audit().await;
}

async fn active_key(app: &TestApp) -> attest::keys::ActiveKey {
    let mut conn = app.pool.acquire().await.expect("connection");
    let now = app.clock().now();
    attest::keys::ensure_active(&mut conn, &app.state.settings.secret_key, now)
        .await
        .expect("key");
    attest::keys::active(&mut conn, &app.state.settings.secret_key)
        .await
        .expect("read")
        .expect("active")
}

async fn checkpoint_now(app: &TestApp) -> Checkpoint {
    let key = active_key(app).await;
    let mut conn = app.pool.acquire().await.expect("connection");
    checkpoint::make(&mut conn, &key, None, app.clock().now())
        .await
        .expect("make")
        .expect("a checkpoint of a grown trail")
}

async fn verify(app: &TestApp) -> audit::Verification {
    let mut conn = app.pool.acquire().await.expect("connection");
    audit::verify(&mut conn).await.expect("verify")
}

/// Removes the newest `newest` events as someone with direct database access would.
async fn cut(app: &TestApp, newest: i64) {
    crate::audit::tamper(
        app,
        &format!(
            "delete from audit_event where chain_seq > (select max(chain_seq) from audit_event) - {newest}"
        ),
    )
    .await;
}

#[sqlx::test]
async fn the_jwks_publishes_every_key_and_rotation_keeps_old_signatures_checkable(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let first = active_key(&app).await;
    let jwks = app.get("/.well-known/jwks.json").await;
    assert_eq!(jwks.status, StatusCode::OK);
    assert!(
        jwks.header("cache-control")
            .is_some_and(|c| c.contains("public"))
    );
    let body: Value = serde_json::from_str(&jwks.body).expect("json");
    let keys = body["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kty"], "OKP");
    assert_eq!(keys[0]["crv"], "Ed25519");
    assert_eq!(keys[0]["kid"], first.kid.as_str());
    assert!(keys[0].get("d").is_none(), "never the private key");

    some_events(&app, 3).await;
    let signed_before = checkpoint_now(&app).await;

    let mut conn = app.pool.acquire().await.expect("connection");
    let (_, second) =
        attest::keys::rotate(&mut conn, &app.state.settings.secret_key, app.clock().now())
            .await
            .expect("rotate");
    assert_ne!(second, first.kid);
    let body: Value =
        serde_json::from_str(&app.get("/.well-known/jwks.json").await.body).expect("json");
    let kids: Vec<&str> = body["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid"))
        .collect();
    assert_eq!(kids.len(), 2);
    assert!(kids.contains(&first.kid.as_str()) && kids.contains(&second.as_str()));
    assert_eq!(
        checkpoint::check(&mut conn, &signed_before)
            .await
            .expect("check"),
        Ok(()),
        "a checkpoint signed with the retired key still checks"
    );
    drop(conn);
    some_events(&app, 1).await;
    let signed_after = checkpoint_now(&app).await;
    assert_eq!(signed_after.kid, second);
    assert!(verify(&app).await.is_intact());
}

#[sqlx::test]
async fn a_cut_end_of_the_trail_is_caught_by_its_checkpoint(pool: PgPool) {
    let app = TestApp::new(pool).await;
    some_events(&app, 6).await;
    let kept_elsewhere = checkpoint_now(&app).await;
    let report = verify(&app).await;
    assert!(report.is_intact());
    assert_eq!(report.checkpoints, 1);

    cut(&app, 3).await;
    let report = verify(&app).await;
    assert_eq!(report.broken, None, "the chain alone cannot see a cut end");
    let problem = report.checkpoint_problem.expect("the checkpoint sees it");
    assert!(problem.contains("removed from its end"), "{problem}");
    let mut conn = app.pool.acquire().await.expect("connection");
    assert!(
        checkpoint::check(&mut conn, &kept_elsewhere)
            .await
            .expect("check")
            .is_err()
    );
}

#[sqlx::test]
async fn a_rewritten_end_of_the_trail_is_caught_and_a_forged_checkpoint_is_not_believed(
    pool: PgPool,
) {
    let app = TestApp::new(pool).await;
    some_events(&app, 4).await;
    let kept_elsewhere = checkpoint_now(&app).await;
    // The newest event removed and another sealed in its place: a chain that verifies.
    cut(&app, 1).await;
    some_events(&app, 1).await;
    let report = verify(&app).await;
    assert_eq!(report.broken, None);
    let problem = report.checkpoint_problem.expect("caught");
    assert!(problem.contains("rewritten"), "{problem}");

    let mut conn = app.pool.acquire().await.expect("connection");
    let forged = Checkpoint {
        events: kept_elsewhere.events - 1,
        ..kept_elsewhere.clone()
    };
    let refused = checkpoint::check(&mut conn, &forged)
        .await
        .expect("check")
        .expect_err("an altered checkpoint");
    assert!(refused.contains("signature"), "{refused}");
}

#[sqlx::test]
async fn the_command_line_exports_a_checkpoint_and_verifies_against_it(pool: PgPool) {
    let app = TestApp::new(pool).await;
    app.create_user("ann@example.org", "Ann", &[Role::Candidate])
        .await;
    app.browser()
        .sign_in("ann@example.org", PASSWORD)
        .await
        .assert_redirect_to("/");
    app.seal_audit().await;
    let database = app
        .pool
        .connect_options()
        .get_database()
        .expect("database")
        .to_owned();
    let attest = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_attest"))
            .args(args)
            .env("DATABASE_URL", database_url_for(&database))
            .env("ATTEST_SECRET_KEY", SECRET_KEY_HEX)
            .env("RUST_LOG", "warn")
            .output()
            .expect("attest runs");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (ok, made, _) = attest(&["audit", "checkpoint"]);
    assert!(ok && made.starts_with("Signed a checkpoint"), "{made}");
    let (ok, exported, _) = attest(&["audit", "checkpoint", "--export"]);
    assert!(ok);
    let file = std::env::temp_dir().join(format!("checkpoint-{database}.json"));
    std::fs::write(&file, &exported).expect("write");
    let path = file.to_string_lossy().into_owned();
    let (ok, verified, _) = attest(&["audit", "verify", "--checkpoint", &path]);
    assert!(ok, "{verified}");
    assert!(
        verified.contains("signed checkpoints that hold: 1."),
        "{verified}"
    );
    assert!(
        verified.contains("It holds the checkpoint given"),
        "{verified}"
    );

    cut(&app, 1).await;
    let (ok, _, refused) = attest(&["audit", "verify", "--checkpoint", &path]);
    assert!(!ok);
    assert!(refused.contains("removed from its end"), "{refused}");
    let _ = std::fs::remove_file(file);
}
