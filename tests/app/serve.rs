//! The `attest` binary itself: creating the database on start, serving, shutting down on
//! SIGTERM, and importing a standard from the command line.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use attest::standards::import::BUNDLED_TEXT;
use sqlx::{Connection, PgConnection};

use crate::helpers::database_url_for;

/// A database of its own for one test of the binary, dropped afterwards.
pub struct ScratchDatabase {
    name: String,
}

impl ScratchDatabase {
    pub fn new() -> Self {
        Self {
            name: format!("attest_cli_{}", uuid::Uuid::new_v4().simple()),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn url(&self) -> String {
        database_url_for(&self.name)
    }

    async fn connect(&self) -> PgConnection {
        PgConnection::connect(&self.url()).await.expect("connects")
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .arg(database_url_for("postgres"))
            .args([
                "-qc",
                &format!("drop database if exists {} with (force)", self.name),
            ])
            .status();
    }
}

pub fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
}

pub fn attest(database_url: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_attest"));
    command
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .env("ATTEST_SECRET_KEY", "5e".repeat(32))
        // The drills sign staff in with a password alone; the second step has tests of its own.
        .env("ATTEST_SECOND_FACTOR", "optional");
    command
}

/// A plain HTTP/1.1 GET; returns the status line and the body.
fn http_get(address: SocketAddr, path: &str) -> std::io::Result<(String, String)> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    Ok((
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    ))
}

/// `attest serve` on `address` with `settings`, its output dropped, once it answers.
pub fn serving(database: &ScratchDatabase, address: SocketAddr, settings: &[&str]) -> Server {
    serving_url(&database.url(), address, settings)
}

/// A running `attest serve`, killed when dropped, so that a failing test leaves no server
/// behind.
pub struct Server(Child);

impl std::ops::Deref for Server {
    type Target = Child;

    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Server {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `attest serve` of the database at `url`, as [`serving`].
pub fn serving_url(url: &str, address: SocketAddr, settings: &[&str]) -> Server {
    let mut child = attest(url)
        .args(["serve", "--bind", &address.to_string()])
        .args(settings)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("attest starts");
    wait_until_ready(&mut child, address);
    Server(child)
}

/// Sends SIGTERM to `child` and waits for it to exit, at most `limit`.
pub fn stopped_within(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let terminated = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(terminated.success());
    let signalled = Instant::now();
    loop {
        if let Some(exit) = child.try_wait().expect("child status") {
            return exit;
        }
        assert!(
            signalled.elapsed() < limit,
            "attest did not stop within {limit:?} of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_until_ready(child: &mut Child, address: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok((status, _)) = http_get(address, "/readyz")
            && status.contains("200")
        {
            return;
        }
        if let Some(exit) = child.try_wait().expect("child status") {
            panic!("attest serve exited early: {exit}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("attest serve was not ready within 30 s");
}

#[tokio::test]
async fn serve_creates_the_database_loads_the_standard_and_stops_cleanly_on_sigterm() {
    let database = ScratchDatabase::new();
    let address = free_port();
    let mut child = attest(&database.url())
        .args(["serve", "--bind", &address.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("attest starts");
    // With no admin yet, the first thing printed is the single-use setup link.
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut lines = String::new();
    for _ in 0..2 {
        stdout.read_line(&mut lines).expect("a line");
    }
    assert!(lines.starts_with("No admin account exists yet."), "{lines}");
    let link = lines.lines().nth(1).expect("the link").trim();
    let setup_path = link
        .strip_prefix(&format!("http://{address}"))
        .unwrap_or_else(|| panic!("a link to this server: {link}"));
    assert!(setup_path.starts_with("/setup/"));
    wait_until_ready(&mut child, address);
    let (status, body) = http_get(address, setup_path).expect("setup page");
    assert!(status.contains("200"), "{status}");
    assert!(body.contains("Create the first admin"));

    let (status, body) = http_get(address, "/standards/TECIT50761").expect("page");
    assert!(status.contains("200"), "{status}");
    assert!(body.contains("champion a culture of continuous improvement"));

    let exit = stopped_within(&mut child, Duration::from_secs(10));
    assert!(exit.success(), "exit status {exit}");

    let mut conn = database.connect().await;
    let criteria: i64 = sqlx::query_scalar!(r#"select count(*) as "n!" from criterion"#)
        .fetch_one(&mut conn)
        .await
        .expect("count");
    assert_eq!(criteria, 21);
}

#[tokio::test]
async fn a_request_stalled_at_sigterm_keeps_the_server_no_longer_than_its_grace() {
    let database = ScratchDatabase::new();
    let address = free_port();
    let mut child = serving(&database, address, &["--shutdown-grace-seconds", "2"]);
    // A form that announces its body and never sends it, as a stalled client does.
    let mut stalled = TcpStream::connect(address).expect("connect");
    stalled
        .write_all(
            b"POST /login HTTP/1.1\r\nHost: localhost\r\nSec-Fetch-Site: same-origin\r\n\
              Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nemail=",
        )
        .expect("send");
    std::thread::sleep(Duration::from_millis(300));

    let signalled = Instant::now();
    // Within its 2 s grace plus 2 s.
    let exit = stopped_within(&mut child, Duration::from_secs(4));
    assert!(exit.success(), "exit status {exit}");
    assert!(
        signalled.elapsed() >= Duration::from_millis(1_500),
        "the request in flight was given its grace"
    );
    drop(stalled);
}

#[tokio::test]
async fn a_client_too_slow_with_its_headers_is_cut_off_and_others_are_served() {
    let database = ScratchDatabase::new();
    let address = free_port();
    let _server = serving(&database, address, &["--header-read-seconds", "1"]);
    // Sixty-four clients that begin a request and never finish its headers.
    let slow: Vec<TcpStream> = (0..64)
        .map(|_| {
            let mut stream = TcpStream::connect(address).expect("connect");
            stream
                .write_all(b"GET /standards/TECIT50761 HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
                .expect("send");
            stream
        })
        .collect();
    // Meanwhile others are served.
    let (status, _) = http_get(address, "/healthz").expect("served");
    assert!(status.contains("200"), "{status}");

    std::thread::sleep(Duration::from_millis(2_000));
    for mut stream in slow {
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        let mut rest = Vec::new();
        // The server answers 408 or just closes: either way the connection ends.
        let ended = stream.read_to_end(&mut rest);
        assert!(
            ended.is_ok()
                || ended
                    .as_ref()
                    .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
            "the connection was left open: {ended:?}"
        );
    }
    let (status, _) = http_get(address, "/healthz").expect("still served");
    assert!(status.contains("200"), "{status}");
}

#[tokio::test]
async fn standard_import_loads_a_file_once_and_names_a_malformed_line() {
    let database = ScratchDatabase::new();
    let dir = std::env::temp_dir().join(&database.name);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("other.txt");
    std::fs::write(&file, BUNDLED_TEXT.replace("TECIT50761", "TECIT99999")).expect("write");

    let first = attest(&database.url())
        .args(["standard", "import"])
        .arg(&file)
        .output()
        .expect("runs");
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(String::from_utf8_lossy(&first.stdout).contains("Imported TECIT99999 version 1"));

    let second = attest(&database.url())
        .args(["standard", "import"])
        .arg(&file)
        .output()
        .expect("runs");
    assert!(second.status.success());
    assert!(String::from_utf8_lossy(&second.stdout).contains("nothing changed"));

    let broken = dir.join("broken.txt");
    std::fs::write(
        &broken,
        "Overview\n\nText.\n\nPerformance criteria\n\n1. one\n3. three\n",
    )
    .expect("write");
    let failed = attest(&database.url())
        .args(["standard", "import"])
        .arg(&broken)
        .output()
        .expect("runs");
    assert!(!failed.status.success());
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("line 8: expected item 2 of the performance criteria list"),
        "{stderr}"
    );

    let mut conn = database.connect().await;
    let standards: i64 =
        sqlx::query_scalar!(r#"select count(*) as "n!" from standard where urn = 'TECIT99999'"#)
            .fetch_one(&mut conn)
            .await
            .expect("count");
    assert_eq!(standards, 1);
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn user_add_and_set_password_manage_accounts_from_the_command_line() {
    let database = ScratchDatabase::new();
    let run = |args: &[&str], stdin: &str| {
        let mut child = attest(&database.url())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write");
        child.wait_with_output().expect("output")
    };

    let added = run(
        &[
            "user",
            "add",
            "--email",
            "ops@example.org",
            "--name",
            "Ops Admin",
            "--role",
            "admin",
            "--role",
            "iqa",
            "--password-stdin",
        ],
        "a long enough passphrase\n",
    );
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    assert!(
        String::from_utf8_lossy(&added.stdout).contains("Created Ops Admin <ops@example.org>.")
    );

    let weak = run(
        &[
            "user",
            "add",
            "--email",
            "weak@example.org",
            "--name",
            "Weak",
            "--role",
            "candidate",
            "--password-stdin",
        ],
        "short\n",
    );
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("Use at least 12 characters"));

    let invited = run(
        &[
            "user",
            "add",
            "--email",
            "cand@example.org",
            "--name",
            "Cand",
            "--role",
            "candidate",
        ],
        "",
    );
    assert!(invited.status.success());
    assert!(String::from_utf8_lossy(&invited.stdout).contains("/invitations/"));

    let mut conn = database.connect().await;
    let before: Option<String> =
        sqlx::query_scalar!("select password_hash from app_user where email = 'ops@example.org'")
            .fetch_one(&mut conn)
            .await
            .expect("hash");
    let before = before.expect("a password was set");
    assert!(before.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));

    let changed = run(
        &[
            "user",
            "set-password",
            "--email",
            "OPS@example.org",
            "--password-stdin",
        ],
        "another long passphrase\n",
    );
    assert!(
        changed.status.success(),
        "{}",
        String::from_utf8_lossy(&changed.stderr)
    );
    let after: Option<String> =
        sqlx::query_scalar!("select password_hash from app_user where email = 'ops@example.org'")
            .fetch_one(&mut conn)
            .await
            .expect("hash");
    assert_ne!(after.as_deref(), Some(before.as_str()));
    let roles: i64 = sqlx::query_scalar!(r#"select count(*) as "n!" from audit_event where action in ('user.created', 'user.password_changed')"#)
        .fetch_one(&mut conn)
        .await
        .expect("audit");
    assert_eq!(roles, 3);

    let verified = run(&["audit", "verify"], "");
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    let said = String::from_utf8_lossy(&verified.stdout);
    assert!(
        said.starts_with("The audit trail is intact: 3 events; head hash "),
        "{said}"
    );
}

#[sqlx::test]
async fn a_case_package_exported_and_imported_into_an_empty_database_is_the_same_standard(
    pool: sqlx::PgPool,
) {
    let app = crate::helpers::TestApp::new(pool).await;
    let response = app.get("/standards/TECIT50761/case.json").await;
    assert_eq!(response.status, axum::http::StatusCode::OK);
    let package: serde_json::Value = serde_json::from_str(&response.body).expect("json");
    assert_eq!(package["CFDocument"]["title"], "Lead DevOps activities");
    let items = package["CFItems"].as_array().expect("items");
    assert_eq!(items.len(), 21);
    assert_eq!(items[0]["humanCodingScheme"], "PC1");
    assert_eq!(items[20]["humanCodingScheme"], "K12");
    assert_eq!(
        items[20]["fullStatement"],
        "how to apply continuous improvement to DevOps activities"
    );
    let associations = package["CFAssociations"].as_array().expect("associations");
    assert_eq!(associations.len(), 21);
    assert!(
        associations
            .iter()
            .all(|a| a["associationType"] == "isChildOf"
                && a["destinationNodeURI"]["identifier"] == package["CFDocument"]["identifier"])
    );

    let database = ScratchDatabase::new();
    let dir = std::env::temp_dir().join(&database.name);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("case.json");
    std::fs::write(&file, &response.body).expect("write");
    let imported = attest(&database.url())
        .args(["standard", "import"])
        .arg(&file)
        .output()
        .expect("runs");
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );

    let original: Vec<u8> =
        sqlx::query_scalar!("select content_sha256 from standard where urn = 'TECIT50761'")
            .fetch_one(&app.pool)
            .await
            .expect("original");
    let mut conn = database.connect().await;
    let copy: Vec<u8> =
        sqlx::query_scalar!("select content_sha256 from standard where urn = 'TECIT50761'")
            .fetch_one(&mut conn)
            .await
            .expect("copy");
    assert_eq!(
        copy, original,
        "title, overview, criteria and metadata all survive the round trip"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn demo_scale_then_status_verify_finds_a_tampered_row_and_repair_mends_it() {
    let database = ScratchDatabase::new();
    let run = |args: &[&str]| attest(&database.url()).args(args).output().expect("runs");
    let made = run(&["demo", "--scale", "30"]);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let said = String::from_utf8_lossy(&made.stdout);
    assert!(said.contains("30 candidates"), "{said}");
    assert!(said.contains("scale-assessor-01@attest.example"), "{said}");

    let clean = run(&["status", "verify"]);
    assert!(
        clean.status.success(),
        "{}",
        String::from_utf8_lossy(&clean.stderr)
    );
    // The 12 demo candidates and the 30 of the scale cohort.
    assert!(
        String::from_utf8_lossy(&clean.stdout).contains("42 enrolments checked"),
        "{}",
        String::from_utf8_lossy(&clean.stdout)
    );
    assert!(run(&["audit", "verify"]).status.success());

    let mut conn = database.connect().await;
    let enrolment: uuid::Uuid = sqlx::query_scalar!(
        "update enrolment_progress set status = 'verified'
          where enrolment_id = (select enrolment_id from enrolment_progress where status = 'in_progress'
                                 order by enrolment_id limit 1)
          returning enrolment_id"
    )
    .fetch_one(&mut conn)
    .await
    .expect("tamper");
    let found = run(&["status", "verify"]);
    assert_eq!(found.status.code(), Some(1));
    let report = String::from_utf8_lossy(&found.stdout);
    assert!(
        report.contains(&format!(
            "enrolment {enrolment} status: stored Verified, computed InProgress"
        )),
        "{report}"
    );
    assert!(
        report.contains("1 have a stored status that differs"),
        "{report}"
    );

    let repaired = run(&["status", "verify", "--repair"]);
    assert!(
        repaired.status.success(),
        "{}",
        String::from_utf8_lossy(&repaired.stderr)
    );
    assert!(run(&["status", "verify"]).status.success());
    assert!(run(&["audit", "verify"]).status.success());

    let again = run(&["demo", "--scale", "30"]);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("already there"));
}

#[tokio::test]
async fn the_serving_pool_ends_runaway_statements_and_idle_transactions() {
    let database = ScratchDatabase::new();
    let args = attest::config::DatabaseArgs {
        database_url: database.url(),
        db_max_connections: 2,
        db_acquire_timeout: Duration::from_secs(5),
        db_statement_timeout: Duration::from_millis(300),
        db_idle_in_transaction_timeout: Duration::from_millis(300),
    };
    // Migrations are not held to the limits; the pool's statements are.
    let pool = attest::db::open(&args).await.expect("opens and migrates");
    let runaway = sqlx::query("select pg_sleep(2)").execute(&pool).await;
    let code = runaway
        .expect_err("cancelled")
        .into_database_error()
        .and_then(|e| e.code().map(|c| c.into_owned()));
    assert_eq!(code.as_deref(), Some("57014"), "query_canceled");

    // A transaction left idle (a stalled upload) is ended by the database, its locks freed.
    let mut tx = pool.begin().await.expect("begins");
    sqlx::query("select 1")
        .execute(&mut *tx)
        .await
        .expect("runs");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        sqlx::query("select 1").execute(&mut *tx).await.is_err(),
        "the idle transaction was ended"
    );
    drop(tx);
    // The pool goes on serving with fresh connections.
    let one: i32 = sqlx::query_scalar("select 1")
        .fetch_one(&pool)
        .await
        .expect("serves");
    assert_eq!(one, 1);

    // The batch commands' database has no limits.
    let batch = attest::db::open(&args.without_limits())
        .await
        .expect("opens");
    sqlx::query("select pg_sleep(0.5)")
        .execute(&batch)
        .await
        .expect("not cancelled");
    pool.close().await;
    batch.close().await;
}

#[tokio::test]
async fn metrics_are_served_on_their_own_address_only_when_asked_for() {
    let database = ScratchDatabase::new();
    let (address, metrics) = (free_port(), free_port());
    let child = serving(
        &database,
        address,
        &["--metrics-bind", &metrics.to_string()],
    );
    let (status, body) = http_get(metrics, "/metrics").expect("metrics answer");
    assert!(status.contains("200"), "{status}");
    assert!(
        body.contains("attest_http_request_duration_seconds_count"),
        "{body}"
    );
    assert!(body.ends_with("# EOF\n"));
    let (status, _) = http_get(address, "/metrics").expect("the portal answers");
    assert!(status.contains("404"), "{status}");
    drop(child);

    // Not asked for, nothing listens.
    let _server = serving(&database, address, &[]);
    assert!(http_get(metrics, "/metrics").is_err());
}
