//! Uploads that hold nothing while their clients are slow, and the sweeper that removes what
//! abandoned uploads and removed files leave in storage.

use attest::blobs::{self, Retention, SweepCounts};
use axum::body::Body;
use axum::http::StatusCode;
use bytes::Bytes;
use sqlx::PgPool;
use time::{Duration, OffsetDateTime};
use tokio::sync::mpsc;

use crate::helpers::{Browser, Enrolled, TestApp, eventually, pdf_of};

const MIB: usize = 1024 * 1024;

/// A request body that sends `first` at once, then whatever the test sends on the channel.
fn held_body(first: &[u8]) -> (mpsc::Sender<Result<Bytes, std::io::Error>>, Body) {
    let (sender, receiver) = mpsc::channel(4);
    sender
        .try_send(Ok(Bytes::copy_from_slice(first)))
        .expect("room for the first bytes");
    let body = Body::from_stream(attest::web::download::receiver_stream(receiver));
    (sender, body)
}

/// A form's body split so that all its files are sent but not its end: `held` begins a last
/// field, `rest` finishes it and ends the form.
fn held_before_the_end(body: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let end = body.len() - b"--\r\n".len();
    let delimiter_at = body[..end]
        .windows(4)
        .rposition(|w| w == b"\r\n--")
        .expect("a closing delimiter");
    let delimiter = &body[delimiter_at..end];
    let held = [
        &body[..end],
        b"\r\nContent-Disposition: form-data; name=\"action\"\r\n\r\nsa".as_slice(),
    ]
    .concat();
    let rest = [b"ve".as_slice(), delimiter, b"--\r\n"].concat();
    (held, rest)
}

/// Connections of the test's pool lent out now.
fn connections_in_use(app: &TestApp) -> u32 {
    app.pool.size() - u32::try_from(app.pool.num_idle()).expect("small")
}

async fn transactions_left_open(app: &TestApp) -> i64 {
    app.count(
        "select count(*) from pg_stat_activity
          where datname = current_database() and state like 'idle in transaction%'",
    )
    .await
}

async fn sweep_at(app: &TestApp, now: OffsetDateTime) -> SweepCounts {
    blobs::sweep(&app.pool, now, Retention::default())
        .await
        .expect("sweep")
}

fn new_evidence_uri(enrolled: &Enrolled) -> String {
    format!("/enrolments/{}/evidence/new", enrolled.enrolment)
}

#[sqlx::test]
async fn an_upload_under_way_holds_no_connection_and_what_it_leaves_is_dropped_or_swept(
    pool: PgPool,
) {
    let app = TestApp::new(pool).await;
    let enrolled = app.enrolled("upl").await;
    let candidate = app.browser_signed_in_as(enrolled.candidate).await;
    let body = candidate
        .multipart_body(
            &[("title", "Half sent"), ("action", "save")],
            &[("file", "big.pdf", &pdf_of(5 * MIB, 1))],
        )
        .await;
    // Three and a half MiB arrive, then the client sends nothing more and goes away.
    let (_sender, held) = held_body(&body[..7 * MIB / 2]);
    let uri = new_evidence_uri(&enrolled);
    let request = candidate.post_multipart_body(&uri, held);
    let meanwhile = async {
        eventually("three chunks are stored", || async {
            app.count("select count(*) from blob_chunk").await == 3
        })
        .await;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert_eq!(
            connections_in_use(&app),
            0,
            "no connection waits on the client"
        );
        assert_eq!(transactions_left_open(&app).await, 0);
    };
    tokio::select! {
        response = request => panic!("the upload ended while its client waited: {}", response.status),
        () = meanwhile => {}
    }

    // The client is gone: nothing of its upload is evidence, and its chunks are dropped.
    assert_eq!(app.count("select count(*) from evidence").await, 0);
    eventually("the abandoned upload's chunks are dropped", || async {
        app.count("select count(*) from blob_chunk").await == 0
    })
    .await;
    assert_eq!(app.count("select count(*) from pending_upload").await, 0);

    // What a crashed server leaves (chunks of an upload it never finished) waits an hour for
    // its upload to go on, then is swept.
    sqlx::query(
        "with pending as (insert into pending_upload (blob_id) values ($1))
         insert into blob_chunk (blob_id, seq, data) select $1, seq, '\\x00' from generate_series(0, 2) seq",
    )
    .bind(uuid::Uuid::now_v7())
    .execute(&app.pool)
    .await
    .expect("left over");
    let now = OffsetDateTime::now_utc();
    assert_eq!(
        sweep_at(&app, now).await,
        SweepCounts::default(),
        "an upload is given an hour to go on"
    );
    let swept = sweep_at(&app, now + Duration::minutes(61)).await;
    assert_eq!(
        swept,
        SweepCounts {
            abandoned_uploads: 1,
            unreferenced_files: 0,
            chunks: 3
        }
    );
    assert_eq!(app.count("select count(*) from blob_chunk").await, 0);
    assert_eq!(app.count("select count(*) from pending_upload").await, 0);
}

/// The id of the draft a save redirected to.
fn saved_draft(response: &crate::helpers::TestResponse) -> String {
    assert_eq!(response.status, StatusCode::SEE_OTHER, "{}", response.body);
    let location = response.location().expect("a redirect");
    location
        .trim_start_matches("/evidence/")
        .split('/')
        .next()
        .expect("an id")
        .to_owned()
}

async fn draft_with_files(
    candidate: &Browser<'_>,
    enrolled: &Enrolled,
    title: &str,
    files: &[(&str, &str, &[u8])],
) -> String {
    let response = candidate
        .post_multipart(
            &new_evidence_uri(enrolled),
            &[("title", title), ("action", "save")],
            files,
        )
        .await;
    saved_draft(&response)
}

async fn file_id(app: &TestApp, evidence: &str, name: &str) -> uuid::Uuid {
    sqlx::query_scalar(
        "select evidence_file_id from evidence_file where evidence_id = $1::uuid and file_name = $2",
    )
    .bind(evidence)
    .bind(name)
    .fetch_one(&app.pool)
    .await
    .expect("the file")
}

#[sqlx::test]
async fn files_no_evidence_holds_are_swept_after_a_day_and_shared_ones_are_kept(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let enrolled = app.enrolled("swp").await;
    let candidate = app.browser_signed_in_as(enrolled.candidate).await;
    let shared = pdf_of(2 * MIB + 10, 1);
    let own = pdf_of(MIB / 2, 2);
    let first = draft_with_files(
        &candidate,
        &enrolled,
        "First",
        &[("file", "shared.pdf", &shared), ("file", "own.pdf", &own)],
    )
    .await;
    let second = draft_with_files(
        &candidate,
        &enrolled,
        "Second",
        &[("file", "shared.pdf", &shared)],
    )
    .await;
    assert_eq!(
        app.count("select count(*) from blob").await,
        2,
        "the same file is stored once"
    );
    assert_eq!(app.count("select count(*) from blob_chunk").await, 4);
    assert_eq!(app.count("select count(*) from pending_upload").await, 0);

    // Taken off the first draft, the shared file is still the second's.
    let removed = candidate
        .post_form(
            &format!(
                "/evidence/{first}/files/{}/delete",
                file_id(&app, &first, "shared.pdf").await
            ),
            &[],
        )
        .await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER);
    let a_day_on = OffsetDateTime::now_utc() + Duration::hours(25);
    assert_eq!(sweep_at(&app, a_day_on).await, SweepCounts::default());

    // The second draft deleted, nothing holds it: it stays until a day after it was last
    // uploaded, then goes.
    let deleted = candidate
        .post_form(&format!("/evidence/{second}/delete"), &[])
        .await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    assert_eq!(
        sweep_at(&app, OffsetDateTime::now_utc()).await,
        SweepCounts::default()
    );
    assert_eq!(
        sweep_at(&app, a_day_on).await,
        SweepCounts {
            abandoned_uploads: 0,
            unreferenced_files: 1,
            chunks: 3
        }
    );
    assert_eq!(app.count("select count(*) from blob").await, 1);

    // What the first draft still has downloads whole.
    let own_file = file_id(&app, &first, "own.pdf").await;
    let (status, _, bytes) = candidate
        .get_bytes(&format!("/evidence/{first}/files/{own_file}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bytes, own);
}

#[sqlx::test]
async fn a_file_an_upload_finds_stored_is_not_swept_from_under_it(pool: PgPool) {
    let app = TestApp::new(pool).await;
    let enrolled = app.enrolled("fnd").await;
    let candidate = app.browser_signed_in_as(enrolled.candidate).await;
    let bytes = pdf_of(MIB + 1, 3);
    let draft = draft_with_files(&candidate, &enrolled, "Kept", &[("file", "a.pdf", &bytes)]).await;
    let removed = candidate
        .post_form(
            &format!(
                "/evidence/{draft}/files/{}/delete",
                file_id(&app, &draft, "a.pdf").await
            ),
            &[],
        )
        .await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER);
    // Unreferenced for two days: due to be swept.
    sqlx::query("update blob set used_at = now() - interval '2 days'")
        .execute(&app.pool)
        .await
        .expect("aged");

    // An upload of the same bytes finds it stored and holds it until the upload is linked.
    let body = candidate
        .multipart_body(
            &[("title", "Again"), ("action", "save")],
            &[("file", "again.pdf", &bytes)],
        )
        .await;
    let (start, rest) = held_before_the_end(&body);
    let (sender, held) = held_body(&start);
    let uri = new_evidence_uri(&enrolled);
    let request = candidate.post_multipart_body(&uri, held);
    let meanwhile = async {
        eventually("the upload finds the stored file", || async {
            app.count("select count(*) from blob where used_at > now() - interval '1 minute'")
                .await
                == 1
        })
        .await;
        let swept = sweep_at(&app, OffsetDateTime::now_utc() + Duration::hours(1)).await;
        sender
            .send(Ok(Bytes::from(rest)))
            .await
            .expect("the rest is sent");
        swept
    };
    let (response, swept) = tokio::join!(request, meanwhile);
    assert_eq!(swept, SweepCounts::default());
    let again = saved_draft(&response);
    let file = file_id(&app, &again, "again.pdf").await;
    let (status, _, read) = candidate
        .get_bytes(&format!("/evidence/{again}/files/{file}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read, bytes);
}

#[sqlx::test]
async fn two_uploads_to_one_draft_cannot_pass_its_limit_together(pool: PgPool) {
    let settings = attest::config::Settings {
        max_file_bytes: 2 * MIB as u64,
        max_evidence_bytes: 3 * MIB as u64,
        ..attest::config::Settings::default()
    };
    let app = TestApp::with_settings(pool, settings).await;
    let enrolled = app.enrolled("cap").await;
    let candidate = app.browser_signed_in_as(enrolled.candidate).await;
    let draft = draft_with_files(&candidate, &enrolled, "Capped", &[]).await;
    let edit = format!("/evidence/{draft}/edit");

    // The first upload's file is stored, but its form has not ended when the second's does.
    let first_file = pdf_of(2 * MIB, 4);
    let body = candidate
        .multipart_body(&[("title", "Capped")], &[("file", "one.pdf", &first_file)])
        .await;
    let (start, rest) = held_before_the_end(&body);
    let (sender, held) = held_body(&start);
    let first = candidate.post_multipart_body(&edit, held);
    let second = async {
        eventually("the first file is stored", || async {
            app.count("select count(*) from blob").await == 1
        })
        .await;
        let response = candidate
            .post_multipart(
                &edit,
                &[("title", "Capped"), ("action", "save")],
                &[("file", "two.pdf", &pdf_of(2 * MIB, 5))],
            )
            .await;
        sender
            .send(Ok(Bytes::from(rest)))
            .await
            .expect("the rest is sent");
        response
    };
    let (first, second) = tokio::join!(first, second);
    assert_eq!(second.status, StatusCode::SEE_OTHER, "{}", second.body);
    assert_eq!(first.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        first
            .text(".error-summary")
            .contains("may add up to at most 3 MiB"),
        "{}",
        first.body
    );
    assert_eq!(
        sqlx::query_scalar::<_, String>("select file_name from evidence_file")
            .fetch_all(&app.pool)
            .await
            .expect("files"),
        ["two.pdf"]
    );
}
