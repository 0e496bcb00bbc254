//! Stored files and records cannot be changed in place without it being noticed: a download
//! re-checks every byte, `attest blobs verify` names a damaged file, and the database refuses
//! to rewrite or empty what holds a record.

use std::process::Command;

use axum::http::StatusCode;
use http_body_util::BodyExt;
use sqlx::PgPool;

use crate::helpers::{TestApp, database_url_for, pdf_of};

/// Changes stored bytes as someone with direct database access would: past the triggers.
async fn tamper(app: &TestApp, sql: &'static str) {
    let mut tx = app.pool.begin().await.expect("begin");
    sqlx::raw_sql("alter table blob_chunk disable trigger blob_chunk_is_kept")
        .execute(&mut *tx)
        .await
        .expect("disable");
    sqlx::raw_sql(sql).execute(&mut *tx).await.expect("tamper");
    sqlx::raw_sql("alter table blob_chunk enable trigger blob_chunk_is_kept")
        .execute(&mut *tx)
        .await
        .expect("enable");
    tx.commit().await.expect("commit");
}

/// `attest blobs verify` against the test's database: its exit success and what it printed.
fn blobs_verify(pool: &PgPool) -> (bool, String) {
    let database = pool
        .connect_options()
        .get_database()
        .expect("database")
        .to_owned();
    let output = Command::new(env!("CARGO_BIN_EXE_attest"))
        .args(["blobs", "verify"])
        .env("DATABASE_URL", database_url_for(&database))
        .env("RUST_LOG", "warn")
        .output()
        .expect("attest runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

/// Submitted evidence with a small file: the evidence's id and the file's download path.
async fn submitted_file(app: &TestApp) -> (String, String) {
    let enrolled = app.enrolled("iris").await;
    let candidate = app.browser_signed_in_as(enrolled.candidate).await;
    let evidence = app
        .submit_evidence(&candidate, &enrolled, "Runbook", "product", &["PC1"])
        .await;
    let path = app.file_path_of(&evidence).await;
    (evidence, path)
}

#[sqlx::test]
async fn a_changed_byte_fails_the_download_and_verify_names_the_file(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let (_, path) = submitted_file(&app).await;
    let (_, admin) = app.signed_in(&[attest::identity::Role::Admin]).await;
    assert_eq!(admin.get(&path).await.status, StatusCode::OK);
    assert_eq!(
        blobs_verify(&app.pool),
        (
            true,
            "Every stored file matches its SHA-256: 1 files checked.\n".to_owned()
        )
    );

    tamper(
        &app,
        "update blob_chunk set data = overlay(data placing '\\x00'::bytea from 20 for 1)",
    )
    .await;
    let damaged = admin.get(&path).await;
    assert_eq!(damaged.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        app.audit_actions()
            .await
            .contains(&"blob.damaged".to_owned()),
        "an integrity event is recorded"
    );
    let (clean, printed) = blobs_verify(&app.pool);
    assert!(!clean);
    assert!(printed.contains("1 are damaged"), "{printed}");
    assert!(
        printed.contains("do not match the file's SHA-256"),
        "{printed}"
    );
    assert!(
        printed.contains("\"Runbook\" version 1 of iris Candidate"),
        "{printed}"
    );
}

#[sqlx::test]
async fn damage_past_the_first_chunk_ends_the_download_as_failed(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let enrolled = app.enrolled("ivo").await;
    let browser = app.browser_signed_in_as(enrolled.candidate).await;
    // Three chunks: the damage is found after the response has begun.
    let bytes = pdf_of(2 * 1024 * 1024 + 4096, 3);
    let saved = browser
        .post_multipart(
            &format!("/enrolments/{}/evidence/new", enrolled.enrolment),
            &[("title", "Big"), ("action", "save")],
            &[("file", "big.pdf", &bytes)],
        )
        .await;
    let evidence = saved
        .location()
        .expect("saved")
        .trim_start_matches("/evidence/")
        .split('/')
        .next()
        .expect("id")
        .to_owned();
    let file: uuid::Uuid = sqlx::query_scalar!("select evidence_file_id from evidence_file")
        .fetch_one(&app.pool)
        .await
        .expect("file");
    let path = format!("/evidence/{evidence}/files/{file}");
    let whole = browser.get_response(&path).await;
    let body = whole.into_body().collect().await.expect("a whole body");
    assert_eq!(body.to_bytes().as_ref(), bytes.as_slice());

    tamper(&app, "delete from blob_chunk where seq = 1").await;
    let cut = browser.get_response(&path).await;
    assert_eq!(
        cut.status(),
        StatusCode::OK,
        "the head was sent before the gap was found"
    );
    assert!(
        cut.into_body().collect().await.is_err(),
        "a missing chunk ends the body as failed, never cleanly"
    );
    let (clean, printed) = blobs_verify(&app.pool);
    assert!(!clean);
    assert!(printed.contains("chunks are missing"), "{printed}");
}

#[sqlx::test]
async fn the_database_refuses_to_rewrite_or_empty_what_holds_a_record(pool: PgPool) {
    let app = TestApp::new(pool).await;
    submitted_file(&app).await;
    for (sql, refusal) in [
        ("update blob_chunk set data = '\\x00'", "write-once"),
        ("delete from blob_chunk", "submitted evidence"),
        ("update blob set size_bytes = 1", "cannot change"),
        ("delete from blob", "foreign key"),
        ("truncate evidence cascade", "cannot be emptied"),
        ("truncate audit_event", "cannot be emptied"),
        ("truncate judgement", "cannot be emptied"),
        ("truncate blob_chunk", "cannot be emptied"),
    ] {
        let error = sqlx::raw_sql(sql)
            .execute(&app.pool)
            .await
            .expect_err(sql)
            .to_string();
        assert!(error.contains(refusal), "{sql}: {error}");
    }
    // Sessions are not records: emptying them signs everyone out, and is allowed.
    sqlx::raw_sql("truncate session")
        .execute(&app.pool)
        .await
        .expect("sessions may be emptied");
}
