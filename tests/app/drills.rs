//! Drills against a real `attest serve` over TCP: clients that stall, a server killed in the
//! middle of an upload, and a backup restored into a new database.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use sqlx::PgPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{database_url_for, pdf_of};
use crate::serve::{
    ScratchDatabase, Server, attest, free_port, serving, serving_url, stopped_within,
};

const MIB: usize = 1024 * 1024;

/// What a server answered: status, head and body.
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    fn cookie(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            if !key.eq_ignore_ascii_case("set-cookie") {
                return None;
            }
            let pair = value.trim().split(';').next()?;
            pair.starts_with(&format!("{name}="))
                .then(|| pair.to_owned())
        })
    }

    /// The form token of the page.
    fn csrf_token(&self) -> String {
        let html = String::from_utf8_lossy(&self.body);
        let marker = "name=\"csrf_token\" value=\"";
        let start = html.find(marker).expect("a form token") + marker.len();
        html[start..start + 64].to_owned()
    }
}

/// One request on a connection of its own: `head` is everything but the request line's end
/// and the blank line; the connection closes after the answer.
async fn exchange(address: SocketAddr, request_line: &str, headers: &str, body: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    let head = format!(
        "{request_line} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {}\r\n{headers}\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("send head");
    stream.write_all(body).await.expect("send body");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("read");
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head");
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    Answer {
        status,
        head,
        body: answer[split + 4..].to_vec(),
    }
}

/// A signed-in person: the session cookie, and the form token of its pages.
struct Session {
    cookie: String,
    csrf: String,
}

/// The sign-in form, fetched and sent with `email` and `password`, as a visitor would.
async fn send_sign_in(address: SocketAddr, email: &str, password: &str) -> Answer {
    let form = exchange(address, "GET /login", "", b"").await;
    let visitor = form.cookie("attest_csrf").expect("a visitor cookie");
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("csrf_token", form.csrf_token().as_str()),
            ("email", email),
            ("password", password),
        ])
        .finish();
    exchange(
        address,
        "POST /login",
        &format!(
            "Cookie: {visitor}\r\nSec-Fetch-Site: same-origin\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        ),
        body.as_bytes(),
    )
    .await
}

async fn sign_in(address: SocketAddr, email: &str) -> Session {
    let signed_in = send_sign_in(address, email, attest::demo::PASSWORD).await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.head);
    let cookie = signed_in.cookie("attest_session").expect("a session");
    let account = exchange(
        address,
        "GET /account",
        &format!("Cookie: {cookie}\r\n"),
        b"",
    )
    .await;
    Session {
        csrf: account.csrf_token(),
        cookie,
    }
}

const BOUNDARY: &str = "attest-drill-boundary";

/// A multipart evidence form: the token, `fields`, then one file `name` of `bytes`.
fn evidence_form(session: &Session, fields: &[(&str, &str)], name: &str, bytes: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{}\r\n",
        session.csrf
    )
    .into_bytes();
    for (field, value) in fields {
        body.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/pdf\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

fn multipart_headers(session: &Session) -> String {
    format!(
        "Cookie: {}\r\nSec-Fetch-Site: same-origin\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\n",
        session.cookie
    )
}

/// `attest audit verify` and `attest status verify` both pass on the database at `url`.
fn assert_verifies(url: &str) {
    for what in ["audit", "status", "blobs"] {
        let verified = attest(url).args([what, "verify"]).output().expect("runs");
        assert!(
            verified.status.success(),
            "{what} verify: {}",
            String::from_utf8_lossy(&verified.stdout)
        );
    }
}

/// A demo database being served: its pool, and the first candidate with an open enrolment.
struct Demo {
    pool: PgPool,
    email: String,
    enrolment: uuid::Uuid,
}

async fn demo(database: &ScratchDatabase) -> Demo {
    let made = attest(&database.url()).arg("demo").output().expect("runs");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let pool = PgPool::connect(&database.url()).await.expect("pool");
    let (email, enrolment): (String, uuid::Uuid) = sqlx::query_as(
        "select u.email, en.enrolment_id from enrolment en join app_user u on u.user_id = en.candidate_id
          where en.withdrawn_at is null order by u.email limit 1",
    )
    .fetch_one(&pool)
    .await
    .expect("a candidate");
    Demo {
        pool,
        email,
        enrolment,
    }
}

/// The demo in a database of its own, served with `settings` on a free address.
async fn served_demo(settings: &[&str]) -> (ScratchDatabase, Demo, SocketAddr, Server) {
    let database = ScratchDatabase::new();
    let demo = demo(&database).await;
    let address = free_port();
    let server = serving(&database, address, settings);
    (database, demo, address, server)
}

/// Saves a new draft with one file through the form; returns the draft's id.
async fn draft_with_file(
    address: SocketAddr,
    session: &Session,
    demo: &Demo,
    bytes: &[u8],
) -> String {
    let form = evidence_form(
        session,
        &[("title", "Drill"), ("action", "save")],
        "drill.pdf",
        bytes,
    );
    let saved = exchange(
        address,
        &format!("POST /enrolments/{}/evidence/new", demo.enrolment),
        &multipart_headers(session),
        &form,
    )
    .await;
    assert_eq!(saved.status, 303, "{}", saved.head);
    saved
        .header("location")
        .expect("a location")
        .trim_start_matches("/evidence/")
        .trim_end_matches("/edit")
        .to_owned()
}

async fn transactions_left_open(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "select count(*) from pg_stat_activity
          where datname = current_database() and state like 'idle in transaction%'",
    )
    .fetch_one(pool)
    .await
    .expect("count")
}

async fn count_rows(pool: &PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(pool)
        .await
        .expect("count")
}

/// Sends new evidence `form`, but only its first `sent` bytes, and waits until the server has
/// written what it could of them as chunks; returns the connection, still open.
async fn upload_cut_off(
    address: SocketAddr,
    session: &Session,
    demo: &Demo,
    form: &[u8],
    sent: usize,
) -> TcpStream {
    let chunks_before = count_rows(&demo.pool, "select count(*) from blob_chunk").await;
    let mut upload = TcpStream::connect(address).await.expect("connect");
    let head = format!(
        "POST /enrolments/{}/evidence/new HTTP/1.1\r\nHost: {address}\r\nContent-Length: {}\r\n{}\r\n",
        demo.enrolment,
        form.len(),
        multipart_headers(session)
    );
    upload.write_all(head.as_bytes()).await.expect("head");
    upload
        .write_all(&form[..sent])
        .await
        .expect("part of the body");
    let expected = i64::try_from(sent / MIB - 1).expect("small");
    let deadline = Instant::now() + Duration::from_secs(20);
    while count_rows(&demo.pool, "select count(*) from blob_chunk").await < chunks_before + expected
    {
        assert!(
            Instant::now() < deadline,
            "the upload's chunks were not written"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    upload
}

#[tokio::test]
async fn stalled_uploads_and_downloads_take_nothing_from_everyone_else() {
    let (_database, demo, address, _server) = served_demo(&[]).await;
    let session = sign_in(address, &demo.email).await;
    let draft = draft_with_file(address, &session, &demo, &pdf_of(24 * MIB, 7)).await;
    let file: uuid::Uuid = sqlx::query_scalar(
        "select evidence_file_id from evidence_file where evidence_id = $1::uuid",
    )
    .bind(&draft)
    .fetch_one(&demo.pool)
    .await
    .expect("the file");

    // 32 uploads stall, half right after their headers and half a MiB and a half into their
    // file; 32 downloads of the 24 MiB file read nothing. The pool has 16 connections.
    let mut stalled = Vec::new();
    let upload = format!(
        "POST /enrolments/{}/evidence/new HTTP/1.1\r\nHost: {address}\r\nContent-Length: {}\r\n{}\r\n",
        demo.enrolment,
        40 * MIB,
        multipart_headers(&session)
    );
    let begun = evidence_form(
        &session,
        &[("title", "Stalled")],
        "stalled.pdf",
        &pdf_of(3 * MIB / 2, 8),
    );
    for n in 0..32 {
        let mut stream = TcpStream::connect(address).await.expect("connect");
        stream.write_all(upload.as_bytes()).await.expect("head");
        if n % 2 == 1 {
            stream
                .write_all(&begun[..begun.len() - 40])
                .await
                .expect("part of the body");
        }
        stalled.push(stream);
    }
    let download = format!(
        "GET /evidence/{draft}/files/{file} HTTP/1.1\r\nHost: {address}\r\nCookie: {}\r\n\r\n",
        session.cookie
    );
    for _ in 0..32 {
        let mut stream = TcpStream::connect(address).await.expect("connect");
        stream
            .write_all(download.as_bytes())
            .await
            .expect("request");
        stalled.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(transactions_left_open(&demo.pool).await, 0);

    // Meanwhile four people read the standard and the portfolio, for three seconds.
    let portfolio = format!("GET /enrolments/{}", demo.enrolment);
    let cookie = format!("Cookie: {}\r\n", session.cookie);
    let stop = Instant::now() + Duration::from_secs(3);
    let mut readers = Vec::new();
    for reader in 0..4 {
        let (portfolio, cookie) = (portfolio.clone(), cookie.clone());
        readers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while Instant::now() < stop {
                let (line, headers) = if reader % 2 == 0 {
                    ("GET /standards/TECIT50761", "")
                } else {
                    (portfolio.as_str(), cookie.as_str())
                };
                let started = Instant::now();
                let answer = exchange(address, line, headers, b"").await;
                seen.push((answer.status, started.elapsed()));
            }
            seen
        }));
    }
    let mut answers = Vec::new();
    for reader in readers {
        answers.extend(reader.await.expect("reader"));
    }
    let refused: Vec<u16> = answers
        .iter()
        .map(|(s, _)| *s)
        .filter(|s| *s != 200)
        .collect();
    assert!(refused.is_empty(), "answers other than 200: {refused:?}");
    let mut times: Vec<Duration> = answers.iter().map(|(_, t)| *t).collect();
    times.sort();
    let p99 = times[(times.len() - 1) * 99 / 100];
    assert!(
        p99 < Duration::from_millis(200),
        "p99 {p99:?} over {} requests",
        times.len()
    );
    assert!(
        times.len() > 40,
        "only {} requests were served",
        times.len()
    );
    // The drill's figure, for BENCHMARKS.md (`--nocapture`).
    eprintln!(
        "pages during the drill: {} requests, p50 {:?}, p99 {p99:?}",
        times.len(),
        times[times.len() / 2]
    );
    assert_eq!(transactions_left_open(&demo.pool).await, 0);
    drop(stalled);
}

#[tokio::test]
async fn a_server_killed_in_the_middle_of_an_upload_leaves_nothing_the_sweeper_keeps() {
    let (database, demo, address, mut child) = served_demo(&[]).await;
    let session = sign_in(address, &demo.email).await;
    let kept = pdf_of(MIB / 4, 9);
    let draft = draft_with_file(address, &session, &demo, &kept).await;
    let count = |sql: &'static str| count_rows(&demo.pool, sql);
    let evidence_before = count("select count(*) from evidence").await;
    let chunks_before = count("select count(*) from blob_chunk").await;

    // New evidence with a 40 MiB file is sent; halfway through, the server is killed.
    let form = evidence_form(
        &session,
        &[("title", "Drill, killed"), ("action", "save")],
        "big.pdf",
        &pdf_of(40 * MIB, 10),
    );
    let upload = upload_cut_off(address, &session, &demo, &form, 20 * MIB).await;
    let killed = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let _ = child.wait();
    drop(upload);

    // Restarted, nothing of it is evidence; the sweeper takes the rest once it is an hour old.
    let _server = serving(&database, address, &[]);
    assert_eq!(
        count("select count(*) from evidence").await,
        evidence_before
    );
    assert_eq!(
        count("select count(*) from evidence where title = 'Drill, killed'").await,
        0
    );
    assert_eq!(
        count("select count(*) from evidence_file where file_name = 'big.pdf'").await,
        0
    );
    let swept = attest::blobs::sweep(
        &demo.pool,
        time::OffsetDateTime::now_utc() + time::Duration::hours(2),
        attest::blobs::Retention::default(),
    )
    .await
    .expect("sweep");
    assert_eq!(swept.abandoned_uploads, 1);
    assert!(swept.chunks >= 10, "{swept:?}");
    assert_eq!(count("select count(*) from pending_upload").await, 0);
    assert_eq!(
        count("select count(*) from blob_chunk").await,
        chunks_before
    );

    // The draft is as it was, and takes the next save.
    let session = sign_in(address, &demo.email).await;
    let saved = exchange(
        address,
        &format!("POST /evidence/{draft}/edit"),
        &multipart_headers(&session),
        &evidence_form(
            &session,
            &[("title", "Drill, saved"), ("action", "save")],
            "small.pdf",
            &pdf_of(1000, 11),
        ),
    )
    .await;
    assert_eq!(saved.status, 303, "{}", saved.head);
    let files: Vec<String> = sqlx::query_scalar(
        "select file_name from evidence_file where evidence_id = $1::uuid order by created_at",
    )
    .bind(&draft)
    .fetch_all(&demo.pool)
    .await
    .expect("files");
    assert_eq!(files, ["drill.pdf", "small.pdf"]);
    let verified = attest(&database.url())
        .args(["audit", "verify"])
        .output()
        .expect("runs");
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
}

/// Each stored file's SHA-256 as recomputed from its chunks, and as recorded, by blob id.
async fn file_hashes(pool: &PgPool) -> Vec<(uuid::Uuid, Vec<u8>, Vec<u8>)> {
    let rows: Vec<(uuid::Uuid, Vec<u8>, Vec<Vec<u8>>)> = sqlx::query_as(
        "select b.blob_id, b.sha256, array_agg(c.data order by c.seq)
           from blob b join blob_chunk c using (blob_id) group by b.blob_id, b.sha256 order by b.blob_id",
    )
    .fetch_all(pool)
    .await
    .expect("files");
    rows.into_iter()
        .map(|(id, recorded, chunks)| {
            let mut hasher = Sha256::new();
            for chunk in &chunks {
                hasher.update(chunk);
            }
            (id, recorded, hasher.finalize().to_vec())
        })
        .collect()
}

#[tokio::test]
async fn a_backup_restored_into_a_new_database_verifies_and_has_every_file_whole() {
    let database = ScratchDatabase::new();
    let demo = demo(&database).await;
    let dump = std::env::temp_dir().join(format!("{}.dump", uuid::Uuid::new_v4().simple()));
    let dumped = Command::new("pg_dump")
        .args(["--format=custom", "--file"])
        .arg(&dump)
        .arg(database.url())
        .status()
        .expect("pg_dump runs");
    assert!(dumped.success());

    let restored = ScratchDatabase::new();
    let created = Command::new("psql")
        .arg(database_url_for("postgres"))
        .args(["-qc", &format!("create database {}", restored.name())])
        .status()
        .expect("psql runs");
    assert!(created.success());
    let loaded = Command::new("pg_restore")
        .args(["--no-owner", "--exit-on-error", "--dbname"])
        .arg(restored.url())
        .arg(&dump)
        .status()
        .expect("pg_restore runs");
    assert!(loaded.success());
    let _ = std::fs::remove_file(&dump);

    assert_verifies(&restored.url());

    let copy = PgPool::connect(&restored.url()).await.expect("pool");
    let (original, restored_files) = (file_hashes(&demo.pool).await, file_hashes(&copy).await);
    assert!(!original.is_empty(), "the demo stores files");
    assert_eq!(original, restored_files);
    for (id, recorded, computed) in &restored_files {
        assert_eq!(recorded, computed, "file {id} is whole");
    }
}

/// The resident memory of process `pid`, in KiB.
fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

/// Sends `head` and then `size` bytes of `b'a'` a MiB at a time, for as long as the server
/// takes them; returns what it answered, if it answered.
async fn send_oversized(address: SocketAddr, head: &[u8], size: usize) -> Option<u16> {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    stream.write_all(head).await.expect("head");
    let piece = vec![b'a'; MIB];
    for _ in 0..size / MIB {
        if stream.write_all(&piece).await.is_err() {
            break;
        }
    }
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    let line = String::from_utf8_lossy(&answer);
    line.split_whitespace().nth(1).and_then(|s| s.parse().ok())
}

#[tokio::test]
async fn oversized_form_fields_are_refused_and_grow_the_server_by_under_5_mib() {
    let (_database, demo, address, server) = served_demo(&[]).await;
    let session = sign_in(address, &demo.email).await;
    let pid = server.id();
    let size = 64 * MIB;
    let multipart = |first_field: &str| {
        format!(
            "POST /enrolments/{}/evidence/new HTTP/1.1\r\nHost: {address}\r\nContent-Length: {}\r\n{}\r\n{first_field}",
            demo.enrolment,
            size + 4096,
            multipart_headers(&session)
        )
    };
    let token_field =
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n");
    let title_field = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{}\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n",
        session.csrf
    );
    let login = format!(
        "POST /login HTTP/1.1\r\nHost: {address}\r\nContent-Length: {}\r\nSec-Fetch-Site: same-origin\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\nemail=",
        size + 6
    );
    // Warm up, so that what the allocator keeps for ordinary work is counted before.
    for _ in 0..3 {
        exchange(address, "GET /login", "", b"").await;
    }
    let before = resident_kib(pid);
    let cases = [
        ("a 64 MiB form token", multipart(&token_field)),
        ("a 64 MiB title", multipart(&title_field)),
        ("a 64 MiB sign-in field", login),
    ];
    for (what, head) in cases {
        let answered = send_oversized(address, head.as_bytes(), size).await;
        assert!(
            matches!(answered, Some(400 | 403 | 413) | None),
            "{what}: answered {answered:?}"
        );
        let grown = resident_kib(pid).saturating_sub(before);
        assert!(grown < 5 * 1024, "{what}: the server grew by {grown} KiB");
    }
    assert_eq!(
        count_rows(
            &demo.pool,
            "select count(*) from evidence where title like 'aaaa%'"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn a_server_stopped_with_an_upload_stalled_halfway_exits_in_time_and_keeps_none_of_it() {
    let (_database, demo, address, mut child) =
        served_demo(&["--shutdown-grace-seconds", "2"]).await;
    let session = sign_in(address, &demo.email).await;
    let count = |sql: &'static str| count_rows(&demo.pool, sql);
    let (evidence_before, chunks_before) = (
        count("select count(*) from evidence").await,
        count("select count(*) from blob_chunk").await,
    );
    let form = evidence_form(
        &session,
        &[("title", "Stopped"), ("action", "save")],
        "stopped.pdf",
        &pdf_of(8 * MIB, 12),
    );
    let upload = upload_cut_off(address, &session, &demo, &form, 4 * MIB).await;

    let exit = stopped_within(&mut child, Duration::from_secs(4));
    assert!(exit.success(), "exit status {exit}");
    drop(upload);
    assert_eq!(
        count("select count(*) from evidence").await,
        evidence_before
    );
    assert_eq!(
        count("select count(*) from blob_chunk").await,
        chunks_before,
        "nothing half stored"
    );
    assert_eq!(count("select count(*) from pending_upload").await, 0);
}

#[tokio::test]
async fn two_servers_on_one_database_serve_the_same_people() {
    let database = ScratchDatabase::new();
    let demo = demo(&database).await;
    let (one, two) = (free_port(), free_port());
    let _first = serving(&database, one, &[]);
    let _second = serving(&database, two, &[]);

    // Signed in on one, known on the other, with the same form token.
    let session = sign_in(one, &demo.email).await;
    let cookie = format!("Cookie: {}\r\n", session.cookie);
    assert_eq!(
        exchange(two, "GET /account", &cookie, b"").await.status,
        200
    );

    // Two hundred changes at once, spread over both.
    let file = pdf_of(2_000, 13);
    let new_evidence = format!("POST /enrolments/{}/evidence/new", demo.enrolment);
    let saves = (0..200).map(|n| {
        let address = if n % 2 == 0 { one } else { two };
        let title = format!("Both {n}");
        let form = evidence_form(
            &session,
            &[("title", &title), ("action", "save")],
            "both.pdf",
            &file,
        );
        let (line, headers) = (new_evidence.clone(), multipart_headers(&session));
        async move { exchange(address, &line, &headers, &form).await.status }
    });
    let statuses = futures_util::future::join_all(saves).await;
    assert!(statuses.iter().all(|s| *s == 303), "{statuses:?}");
    let made: i64 = sqlx::query_scalar("select count(*) from evidence where title like 'Both %'")
        .fetch_one(&demo.pool)
        .await
        .expect("count");
    assert_eq!(made, 200);
    // Each server seals what it wrote within moments; the whole chain then verifies.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_verifies(&database.url());

    // Failed sign-ins on either count together: the account waits on both (a second after
    // the fifth failure, the first of the growing waits).
    let other = "lena.novak@attest.example";
    for n in 0..attest::auth::throttle::ACCOUNT.free {
        let address = if n % 2 == 0 { one } else { two };
        let refused = send_sign_in(address, other, "not the password at all").await;
        assert_ne!(refused.status, 303);
    }
    for address in [one, two] {
        let refused = send_sign_in(address, other, attest::demo::PASSWORD).await;
        assert_ne!(
            refused.status, 303,
            "the right password is refused while the account waits"
        );
    }

    // Signed out on the other, refused on the first.
    let logout = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("csrf_token", session.csrf.as_str())])
        .finish();
    let out = exchange(
        two,
        "POST /logout",
        &format!(
            "{cookie}Sec-Fetch-Site: same-origin\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        ),
        logout.as_bytes(),
    )
    .await;
    assert_eq!(out.status, 303);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let account = exchange(one, "GET /account", &cookie, b"").await;
        if account.status == 303
            && account
                .header("location")
                .is_some_and(|l| l.starts_with("/login"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the first server still serves the ended session"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A PostgreSQL cluster of the test's own, on a port of its own, that the test may stop and
/// start without disturbing the server every other test uses.
struct PrivateCluster {
    dir: std::path::PathBuf,
    port: u16,
    bin: std::path::PathBuf,
}

impl PrivateCluster {
    fn new() -> Self {
        let bindir = Command::new("pg_config")
            .arg("--bindir")
            .output()
            .expect("pg_config runs");
        let bin = std::path::PathBuf::from(String::from_utf8_lossy(&bindir.stdout).trim());
        let dir = std::env::temp_dir().join(format!("attest-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir(&dir).expect("cluster directory");
        let cluster = Self {
            dir,
            port: free_port().port(),
            bin,
        };
        cluster.as_owner(&["chown", "postgres", cluster.dir.to_str().expect("path")]);
        let initdb = cluster.bin.join("initdb");
        cluster.as_postgres(&format!(
            "{} -D {} -A trust -U postgres -E UTF8 --locale=C --no-sync >/dev/null",
            initdb.display(),
            cluster.dir.display()
        ));
        cluster.start();
        cluster
    }

    fn is_root() -> bool {
        Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
    }

    /// Runs a command as this process's user (root can hand the directory over).
    fn as_owner(&self, command: &[&str]) {
        if Self::is_root() {
            let status = Command::new(command[0])
                .args(&command[1..])
                .status()
                .expect("runs");
            assert!(status.success(), "{command:?}");
        }
    }

    /// Runs a shell command as the `postgres` user when this process is root (PostgreSQL
    /// refuses to run as root), else as this user.
    fn as_postgres(&self, command: &str) {
        let status = if Self::is_root() {
            Command::new("su")
                .args(["postgres", "-s", "/bin/sh", "-c", command])
                .status()
        } else {
            Command::new("sh").args(["-c", command]).status()
        }
        .expect("runs");
        assert!(status.success(), "{command}");
    }

    fn pg_ctl(&self, action: &str) {
        self.as_postgres(&format!(
            "{} -D {} -w -l {}/log -o '-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off' {action} >/dev/null",
            self.bin.join("pg_ctl").display(),
            self.dir.display(),
            self.dir.display(),
            self.port,
            self.dir.display()
        ));
    }

    fn start(&self) {
        self.pg_ctl("start");
    }

    fn stop_immediately(&self) {
        self.pg_ctl("-m immediate stop");
    }

    fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let stop = format!(
            "{} -D {} -m immediate stop >/dev/null 2>&1",
            self.bin.join("pg_ctl").display(),
            self.dir.display()
        );
        let _ = if Self::is_root() {
            Command::new("su")
                .args(["postgres", "-s", "/bin/sh", "-c", &stop])
                .status()
        } else {
            Command::new("sh").args(["-c", &stop]).status()
        };
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One answer a person got during the restart drill.
struct Seen {
    at: Instant,
    status: u16,
    retry_after: bool,
    form: bool,
    location: Option<String>,
}

#[tokio::test]
async fn postgresql_restarted_under_load_gets_503s_with_retry_after_and_is_served_again_at_once() {
    let cluster = PrivateCluster::new();
    let url = cluster.url("attest");
    let made = attest(&url).arg("demo").output().expect("runs");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let pool = PgPool::connect(&url).await.expect("pool");
    let (email, enrolment): (String, uuid::Uuid) = sqlx::query_as(
        "select u.email, en.enrolment_id from enrolment en join app_user u on u.user_id = en.candidate_id
          where en.withdrawn_at is null order by u.email limit 1",
    )
    .fetch_one(&pool)
    .await
    .expect("a candidate");
    pool.close().await;
    let address = free_port();
    let _server = serving_url(&url, address, &["--db-acquire-timeout", "2"]);
    let session = sign_in(address, &email).await;

    // A person reads their portfolio and saves new drafts, over and over.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let person = {
        let stop = stop.clone();
        let cookie = format!("Cookie: {}\r\n", session.cookie);
        let (headers, form) = (
            multipart_headers(&session),
            evidence_form(
                &session,
                &[("title", "Restart draft"), ("action", "save")],
                "restart.pdf",
                &pdf_of(1_000, 14),
            ),
        );
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let portfolio = format!("GET /enrolments/{enrolment}");
            let new_evidence = format!("POST /enrolments/{enrolment}/evidence/new");
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for (line, headers, body, form) in [
                    (&portfolio, &cookie, &[][..], false),
                    (&new_evidence, &headers, &form[..], true),
                ] {
                    let answer = exchange(address, line, headers, body).await;
                    seen.push(Seen {
                        at: Instant::now(),
                        status: answer.status,
                        retry_after: answer.header("retry-after").is_some(),
                        form,
                        location: answer.header("location").map(str::to_owned),
                    });
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            seen
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stopped = Instant::now();
    cluster.stop_immediately();
    tokio::time::sleep(Duration::from_secs(3)).await;
    cluster.start();
    let back = Instant::now();
    tokio::time::sleep(Duration::from_secs(6)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen = person.await.expect("the person");

    // Reads are served or refused with 503; forms are saved (and lead to the draft) or
    // refused with 503; never a 500, and never the sign-in page.
    let unexpected: Vec<(u16, Option<&str>)> = seen
        .iter()
        .filter(|s| match (s.form, s.status) {
            (false, 200 | 503) | (true, 503) => false,
            (true, 303) => !s
                .location
                .as_deref()
                .is_some_and(|l| l.starts_with("/evidence/")),
            _ => true,
        })
        .map(|s| (s.status, s.location.as_deref()))
        .collect();
    assert!(unexpected.is_empty(), "{unexpected:?}");
    let refused: Vec<&Seen> = seen.iter().filter(|s| s.status == 503).collect();
    assert!(!refused.is_empty(), "the outage was seen");
    assert!(
        refused.iter().all(|s| s.retry_after),
        "every 503 says when to retry"
    );
    assert!(refused.iter().all(|s| s.at > stopped));
    let served_again = seen
        .iter()
        .find(|s| s.at > back && s.status == 200 && !s.form)
        .expect("the portfolio is served again");
    assert!(
        served_again.at - back < Duration::from_secs(5),
        "served again {:?} after PostgreSQL was back",
        served_again.at - back
    );
    assert!(
        seen.iter()
            .filter(|s| s.at > served_again.at)
            .all(|s| s.status != 503),
        "and stays served"
    );
    eprintln!(
        "restart drill: {} answers, {} of them 503 with Retry-After, served again {:?} after PostgreSQL was back",
        seen.len(),
        refused.len(),
        served_again.at - back
    );
    // Every draft the person was told was saved is stored. One more may be, if PostgreSQL
    // stopped after a commit was durable and before the server heard so (the person was told
    // 503, and a resend is saved once).
    let told = seen.iter().filter(|s| s.form && s.status == 303).count();
    let refused_forms = seen.iter().filter(|s| s.form && s.status == 503).count();
    let pool = PgPool::connect(&url).await.expect("pool");
    let stored: i64 =
        sqlx::query_scalar("select count(*) from evidence where title = 'Restart draft'")
            .fetch_one(&pool)
            .await
            .expect("count");
    let stored = usize::try_from(stored).expect("count");
    assert!(
        told <= stored && stored <= told + refused_forms.min(1),
        "told {told}, stored {stored}"
    );
    pool.close().await;
}
