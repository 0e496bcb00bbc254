//! Load benchmark of a real `attest serve` process over loopback: sign-in storms, file transfer
//! and audit appends. Page speed with a centre-sized cohort is `bench/pages.sh` (wrk, beside
//! the yardstick server).
//!
//! Seeds a scratch database, starts the release binary, drives it with keep-alive HTTP/1.1
//! clients, and reports requests per second, p50/p99 latency and the server's memory. Each
//! scenario runs three times and the median run is reported. The table is printed and written
//! into BENCHMARKS.md between the markers of this harness.
//!
//! Run: `cargo bench --bench load` (DATABASE_URL names the PostgreSQL server to use; the
//! benchmark creates and drops its own database `attest_bench`).

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use attest::accounts::db as users_db;
use attest::accounts::model::{DisplayName, Email};
use attest::config::DatabaseArgs;
use attest::identity::Role;
use attest::passwords::Passwords;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

const DATABASE: &str = "attest_bench";
const PASSWORD: &str = "benchmark passphrase 2026";
const RUNS: usize = 3;
const PAGE_CONNECTIONS: usize = 64;
const PAGE_SECONDS: u64 = 10;
const CONCURRENT_LOGINS: usize = 50;
const PROBE_CONNECTIONS: usize = 4;
const COHORT: &str = "00000000-0000-4000-8000-00000000c0c0";
const ENROLMENT: &str = "00000000-0000-4000-8000-00000000e0e0";
/// The size of the file streamed up and down.
const FILE_MIB: usize = 200;

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// One scenario's figures.
#[derive(Debug, Clone)]
struct Figures {
    name: String,
    requests: usize,
    per_second: f64,
    p50: Duration,
    p99: Duration,
    rss_kib: u64,
    note: String,
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let server_url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@localhost/postgres".into());
    let (server, _) = server_url
        .rsplit_once('/')
        .expect("DATABASE_URL names a database");
    let database_url = format!("{server}/{DATABASE}");
    drop_database(&format!("{server}/postgres")).await?;
    seed(&database_url).await?;

    let address = free_address();
    let process = Server(start_server(&database_url, address)?);
    let base = format!("http://{address}");
    wait_until_ready(&base).await?;
    let pid = process.0.id();

    let mut results: Vec<Figures> = Vec::new();
    // `ONLY=audit`, `ONLY=uploads`, `ONLY=roster`, `ONLY=files` or `ONLY=attack` measures that
    // alone (and writes nothing to BENCHMARKS.md).
    let only = std::env::var("ONLY").ok();
    if let Some(only) = only.as_deref() {
        let figures = match only {
            "audit" => median(repeat(|| audit_appends(&database_url)).await),
            "uploads" => {
                let session = sign_in(&base, "candidate0@bench.example").await;
                median(repeat(|| concurrent_uploads(&base, &session, pid)).await)
            }
            "roster" => median(repeat(|| roster_import(&base, pid)).await),
            "files" => {
                // Two tables' rows: printed here rather than through the median.
                let session = sign_in(&base, "candidate0@bench.example").await;
                let rss_before = memory_kib(pid).0;
                let runs = repeat(|| file_round_trip(&base, &session, pid, &database_url)).await;
                let rows = summarise_files(&runs, rss_before);
                drop(process);
                drop_database(&format!("{server}/postgres")).await?;
                println!("{}", render_table(&rows));
                return Ok(());
            }
            "attack" => {
                let admin = AttackedAdmin::set_up(&database_url).await?;
                median(repeat(|| attack(&base, &database_url, &admin, pid)).await)
            }
            other => anyhow::bail!("ONLY={other}: nothing of that name is measured"),
        };
        drop(process);
        drop_database(&format!("{server}/postgres")).await?;
        println!("{}", render_table(&[figures]));
        return Ok(());
    }
    results.push(median(
        repeat(|| page_load(&base, "/standards/TECIT50761", pid)).await,
    ));
    let storm = median_by_login(repeat(|| login_storm(&base, pid)).await);
    results.extend(storm);
    let session = sign_in(&base, "candidate0@bench.example").await;
    let rss_before_files = memory_kib(pid).0;
    let runs = repeat(|| file_round_trip(&base, &session, pid, &database_url)).await;
    let files = summarise_files(&runs, rss_before_files);
    results.extend(files);
    results.push(median(
        repeat(|| concurrent_uploads(&base, &session, pid)).await,
    ));
    results.push(median(repeat(|| roster_import(&base, pid)).await));
    results.push(median(repeat(|| audit_appends(&database_url)).await));
    let admin = AttackedAdmin::set_up(&database_url).await?;
    results.push(median(
        repeat(|| attack(&base, &database_url, &admin, pid)).await,
    ));

    drop(process);
    drop_database(&format!("{server}/postgres")).await?;

    let table = render_table(&results);
    println!("{table}");
    write_benchmarks_md(&table)?;
    Ok(())
}

async fn repeat<F, Fut, T>(mut scenario: F) -> Vec<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut runs = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        runs.push(scenario().await);
    }
    runs
}

/// The run with the median requests per second.
fn median(mut runs: Vec<Figures>) -> Figures {
    runs.sort_by(|a, b| a.per_second.total_cmp(&b.per_second));
    runs.swap_remove(runs.len() / 2)
}

/// For the login storm: the run with the median sign-in p50, with its page figures.
fn median_by_login(mut runs: Vec<Vec<Figures>>) -> Vec<Figures> {
    runs.sort_by(|a, b| a[0].p50.cmp(&b[0].p50));
    runs.swap_remove(runs.len() / 2)
}

async fn drop_database(maintenance_url: &str) -> anyhow::Result<()> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(maintenance_url).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "drop database if exists {DATABASE} with (force)"
    )))
    .execute(&mut conn)
    .await?;
    Ok(())
}

/// The bundled standard, an admin and the accounts that sign in during the storm.
async fn seed(database_url: &str) -> anyhow::Result<()> {
    let args = DatabaseArgs {
        database_url: database_url.to_owned(),
        db_max_connections: 4,
        db_acquire_timeout: Duration::from_secs(5),
        db_statement_timeout: Duration::ZERO,
        db_idle_in_transaction_timeout: Duration::ZERO,
    };
    let pool = attest::db::open(&args).await?;
    let mut tx = pool.begin().await?;
    attest::standards::import::ensure_bundled(&mut tx).await?;
    // One hash for every account: the work measured is verifying, not seeding.
    let hash = Passwords::new(1).hash(PASSWORD).await?;
    let admin = Email::parse("admin@bench.example").map_err(anyhow::Error::msg)?;
    users_db::insert(
        &mut tx,
        &admin,
        &DisplayName::parse("Bench Admin").map_err(anyhow::Error::msg)?,
        &[Role::Admin],
        Some(&hash),
    )
    .await?;
    let mut candidates = Vec::new();
    for n in 0..CONCURRENT_LOGINS {
        let email =
            Email::parse(&format!("candidate{n}@bench.example")).map_err(anyhow::Error::msg)?;
        let name = DisplayName::parse(&format!("Candidate {n}")).map_err(anyhow::Error::msg)?;
        candidates
            .push(users_db::insert(&mut tx, &email, &name, &[Role::Candidate], Some(&hash)).await?);
    }
    // Candidate 0 is enrolled with ten submitted pieces of evidence claiming criteria.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "insert into cohort (cohort_id, standard_id, name, starts_on, ends_on)
           select '{COHORT}', standard_id, 'Bench cohort', date '2026-01-01', date '2026-12-31' from standard;
         insert into enrolment (enrolment_id, cohort_id, candidate_id) values ('{ENROLMENT}', '{COHORT}', '{}');
         insert into evidence (evidence_id, item_id, version, enrolment_id, title, statement, method, activity_on)
           select id, id, 1, '{ENROLMENT}', 'Evidence ' || n, repeat('A statement of work. ', 40),
                  'product', date '2026-03-01'
             from (select n, gen_random_uuid() as id from generate_series(1, 10) n) e;
         insert into evidence_claim (evidence_id, criterion_id)
           select e.evidence_id, c.criterion_id
             from (select evidence_id, row_number() over (order by title) as n from evidence) e
             join criterion c on c.position in (e.n, e.n + 1) and c.kind = 'performance';
         update evidence set state = 'submitted', submitted_at = now(), declaration_sha256 = sha256(evidence_id::text::bytea);",
        candidates[0].0
    )))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    pool.close().await;
    Ok(())
}

fn free_address() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
}

fn start_server(database_url: &str, address: SocketAddr) -> anyhow::Result<Child> {
    Ok(Command::new(env!("CARGO_BIN_EXE_attest"))
        .args([
            "serve",
            "--bind",
            &address.to_string(),
            "--max-file-mib",
            "256",
            "--max-evidence-mib",
            "512",
            // The attack comes from 50 addresses, named by X-Forwarded-For.
            "--trusted-proxies",
            "127.0.0.1",
        ])
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .env("ATTEST_SECRET_KEY", "5e".repeat(32))
        .env("ATTEST_SECOND_FACTOR", "optional")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?)
}

/// The server process, stopped when the benchmark ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(usize::MAX)
        .build_http()
}

async fn wait_until_ready(base: &str) -> anyhow::Result<()> {
    let client = client();
    for _ in 0..300 {
        if let Ok(response) = client.get(format!("{base}/readyz").parse()?).await
            && response.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("the server did not become ready")
}

/// Resident and peak memory of a process, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Keep-alive GETs of `path` from `connections` workers until `stop` passes.
async fn hammer(
    client: &HttpClient,
    url: &str,
    connections: usize,
    stop: Instant,
    cookie: Option<&str>,
) -> Vec<Duration> {
    let mut workers = Vec::with_capacity(connections);
    for _ in 0..connections {
        let client = client.clone();
        let uri: hyper::Uri = url.parse().expect("uri");
        let cookie = cookie.map(str::to_owned);
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < stop {
                let mut request = Request::get(uri.clone());
                if let Some(cookie) = &cookie {
                    request = request.header("cookie", cookie);
                }
                let request = request.body(Full::default()).expect("request");
                let started = Instant::now();
                let response = client.request(request).await.expect("request");
                assert!(response.status().is_success(), "{}", response.status());
                response.into_body().collect().await.expect("body");
                latencies.push(started.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await.expect("worker"));
    }
    all.sort();
    all
}

async fn page_load(base: &str, path: &str, pid: u32) -> Figures {
    let client = client();
    let url = format!("{base}{path}");
    let started = Instant::now();
    let latencies = hammer(
        &client,
        &url,
        PAGE_CONNECTIONS,
        started + Duration::from_secs(PAGE_SECONDS),
        None,
    )
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    let (rss, _) = memory_kib(pid);
    Figures {
        name: format!("GET {path}"),
        requests: latencies.len(),
        per_second: latencies.len() as f64 / elapsed,
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
        rss_kib: rss,
        note: format!("{PAGE_CONNECTIONS} connections, {PAGE_SECONDS} s"),
    }
}

/// The sign-in form's token and the visitor cookie it belongs to.
async fn login_form(client: &HttpClient, base: &str) -> (String, String) {
    let response = client
        .get(format!("{base}/login").parse().expect("uri"))
        .await
        .expect("login form");
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("attest_csrf="))
        .and_then(|c| c.split(';').next())
        .expect("a visitor cookie")
        .to_owned();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let html = String::from_utf8_lossy(&body);
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker).expect("a form token") + marker.len();
    let token = html[start..start + 64].to_owned();
    (cookie, token)
}

/// The admin an attack is aimed at: an authenticator set up, ten recovery codes, and a browser
/// it has signed in from before.
struct AttackedAdmin {
    secret_key: attest::crypto::SecretKey,
    user: attest::identity::UserId,
    recovery_codes: std::sync::Mutex<Vec<String>>,
    device_cookie: String,
}

const ATTACKED: &str = "admin@bench.example";

impl AttackedAdmin {
    async fn set_up(database_url: &str) -> anyhow::Result<Self> {
        use attest::auth::second_factor;
        let secret_key =
            attest::crypto::SecretKey::from_hex(&"5e".repeat(32)).map_err(anyhow::Error::msg)?;
        let pool = sqlx::PgPool::connect(database_url).await?;
        let mut tx = pool.begin().await?;
        let user: uuid::Uuid =
            sqlx::query_scalar("select user_id from app_user where email = 'admin@bench.example'")
                .fetch_one(&mut *tx)
                .await?;
        let user = attest::identity::UserId(user);
        let now = time::OffsetDateTime::now_utc();
        let authenticator = second_factor::begin_setup(&mut tx, &secret_key, user, ATTACKED, now)
            .await?
            .expect("no authenticator yet");
        // Confirmed with a code of the step before, so the current one is still fresh.
        let earlier = now - time::Duration::seconds(30);
        let confirmed = second_factor::check(
            &mut tx,
            &secret_key,
            user,
            ATTACKED,
            &authenticator.code_at(earlier),
            earlier,
            second_factor::Accept::Setup,
        )
        .await?;
        anyhow::ensure!(confirmed.is_some(), "the authenticator is confirmed");
        let recovery_codes = second_factor::renew_recovery_codes(&mut tx, user).await?;
        let device = attest::crypto::random_token(32);
        attest::auth::db::remember_device(
            &mut tx,
            &attest::crypto::sha256(device.as_bytes()),
            user,
            now,
        )
        .await?;
        tx.commit().await?;
        pool.close().await;
        Ok(Self {
            secret_key,
            user,
            recovery_codes: std::sync::Mutex::new(recovery_codes),
            device_cookie: format!("attest_device={device}"),
        })
    }

    /// The code the admin's app shows now, after waiting for a step no earlier sign-in used.
    async fn fresh_code(&self, database_url: &str) -> anyhow::Result<String> {
        let pool = sqlx::PgPool::connect(database_url).await?;
        let sealed: Vec<u8> =
            sqlx::query_scalar("select secret_sealed from second_factor where user_id = $1")
                .bind(self.user.0)
                .fetch_one(&pool)
                .await?;
        pool.close().await;
        let authenticator =
            attest::auth::second_factor::Authenticator::open(&self.secret_key, &sealed, ATTACKED)
                .expect("opens");
        // Into the next 30-second step: each step's code is accepted once.
        let now = time::OffsetDateTime::now_utc();
        let into_step = u64::try_from(now.unix_timestamp().rem_euclid(30)).unwrap_or(0);
        tokio::time::sleep(Duration::from_secs(30 - into_step) + Duration::from_millis(200)).await;
        Ok(authenticator.code_at(time::OffsetDateTime::now_utc()))
    }
}

/// A form post from `address` (named by X-Forwarded-For), as a browser with `cookie` sends it.
fn form_post(url: &str, cookie: &str, address: &str, body: String) -> Request<Full<Bytes>> {
    Request::builder()
        .method(Method::POST)
        .uri(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "same-origin")
        .header("x-forwarded-for", address)
        .header("cookie", cookie)
        .body(Full::new(Bytes::from(body)))
        .expect("request")
}

/// 500 wrong passwords for the admin from 50 addresses at once, and meanwhile the admin signs
/// in twice: on a new browser with password and code, and on a browser used before with the
/// password, then a recovery code. Reports the attack's rate, the admin's sign-in times, and
/// how many audit events the attack added.
async fn attack(base: &str, database_url: &str, admin: &AttackedAdmin, pid: u32) -> Figures {
    let code = admin.fresh_code(database_url).await.expect("a code");
    let recovery = admin
        .recovery_codes
        .lock()
        .expect("codes")
        .pop()
        .expect("a recovery code left");
    let pool = sqlx::PgPool::connect(database_url).await.expect("pool");
    let count = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .expect("count")
        }
    };
    let audit_before = count("select count(*) from audit_event").await;
    let client = client();
    let mut attackers = Vec::with_capacity(50);
    for n in 0..50 {
        let (cookie, token) = login_form(&client, base).await;
        attackers.push((format!("203.0.113.{n}"), cookie, token));
    }
    let started = Instant::now();
    let guesses = attackers.iter().map(|(address, cookie, token)| {
        let client = client.clone();
        async move {
            let mut statuses = Vec::with_capacity(10);
            for round in 0..10 {
                let body = format!(
                    "csrf_token={token}&email=admin%40bench.example&password=guess+{round}+from+{address}"
                );
                let response = client
                    .request(form_post(&format!("{base}/login"), cookie, address, body))
                    .await
                    .expect("answered");
                statuses.push(response.status().as_u16());
                let _ = response.into_body().collect().await;
            }
            statuses
        }
    });
    let admin_signs_in = async {
        // A moment into the attack, when the account is already waiting.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let client = client.clone();
        let (cookie, token) = login_form(&client, base).await;
        let body = format!(
            "csrf_token={token}&email=admin%40bench.example&password=benchmark+passphrase+2026&code={code}"
        );
        let at = Instant::now();
        let response = client
            .request(form_post(
                &format!("{base}/login"),
                &cookie,
                "198.51.100.7",
                body,
            ))
            .await
            .expect("answered");
        let took = at.elapsed();
        assert_eq!(
            response.status(),
            303,
            "the admin gets in with password and code"
        );
        assert_eq!(response.headers()["location"], "/");

        // The browser used before: password, then a recovery code at the second step.
        let (visitor, token) = login_form(&client, base).await;
        let cookie = format!("{visitor}; {}", admin.device_cookie);
        let body = format!(
            "csrf_token={token}&email=admin%40bench.example&password=benchmark+passphrase+2026"
        );
        let at = Instant::now();
        let response = client
            .request(form_post(
                &format!("{base}/login"),
                &cookie,
                "198.51.100.8",
                body,
            ))
            .await
            .expect("answered");
        assert_eq!(response.status(), 303, "a known device is not slowed");
        let challenge = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with("attest_challenge="))
            .and_then(|c| c.split(';').next())
            .expect("a challenge")
            .to_owned();
        let cookie = format!("{cookie}; {challenge}");
        let body = format!("csrf_token={token}&code={recovery}");
        let response = client
            .request(form_post(
                &format!("{base}/login/second-factor"),
                &cookie,
                "198.51.100.8",
                body,
            ))
            .await
            .expect("answered");
        let known_took = at.elapsed();
        assert_eq!(response.status(), 303, "the recovery code is taken");
        (took, known_took)
    };
    let (statuses, (with_code, known_device)) =
        tokio::join!(futures_util::future::join_all(guesses), admin_signs_in);
    let elapsed = started.elapsed();
    let statuses: Vec<u16> = statuses.into_iter().flatten().collect();
    let checked = statuses.iter().filter(|s| **s == 422).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    let audit_added = count("select count(*) from audit_event").await - audit_before;
    pool.close().await;
    let mut times = [with_code, known_device];
    times.sort();
    Figures {
        name: "admin signs in during an attack (500 wrong passwords, 50 addresses)".into(),
        requests: statuses.len(),
        per_second: statuses.len() as f64 / elapsed.as_secs_f64(),
        p50: times[0],
        p99: times[1],
        rss_kib: memory_kib(pid).0,
        note: format!(
            "admin in with password + code: {:.0} ms; on a known browser, password + recovery code: {:.0} ms; \
             of the attack {checked} checked, {refused} refused; audit events added: {audit_added}",
            ms(with_code),
            ms(known_device)
        ),
    }
}

/// The sign-in form sent for `email` with the benchmark's password, from the visitor whose
/// cookie and form token were handed out with the form.
fn login_request(base: &str, cookie: &str, token: &str, email: &str) -> Request<Full<Bytes>> {
    let body = format!(
        "csrf_token={token}&email={}&password=benchmark+passphrase+2026",
        email.replace('@', "%40")
    );
    Request::builder()
        .method(Method::POST)
        .uri(format!("{base}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "same-origin")
        .header("cookie", cookie)
        .body(Full::new(Bytes::from(body)))
        .expect("request")
}

/// 50 people sign in at once while 4 clients keep reading a page; the page's latency is
/// compared with the same 4 clients reading it without the storm.
async fn login_storm(base: &str, pid: u32) -> Vec<Figures> {
    let client = client();
    let page = format!("{base}/standards/TECIT50761");
    let quiet = hammer(
        &client,
        &page,
        PROBE_CONNECTIONS,
        Instant::now() + Duration::from_secs(3),
        None,
    )
    .await;

    let mut forms = Vec::with_capacity(CONCURRENT_LOGINS);
    for _ in 0..CONCURRENT_LOGINS {
        forms.push(login_form(&client, base).await);
    }
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let probe = {
        let client = client.clone();
        let page = page.clone();
        let done = Arc::clone(&done);
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            let uri: hyper::Uri = page.parse().expect("uri");
            let mut tasks = Vec::new();
            for _ in 0..PROBE_CONNECTIONS {
                let client = client.clone();
                let uri = uri.clone();
                let done = Arc::clone(&done);
                tasks.push(tokio::spawn(async move {
                    let mut own = Vec::new();
                    while !done.load(std::sync::atomic::Ordering::Relaxed) {
                        let started = Instant::now();
                        let response = client.get(uri.clone()).await.expect("page");
                        response.into_body().collect().await.expect("body");
                        own.push(started.elapsed());
                    }
                    own
                }));
            }
            for task in tasks {
                latencies.extend(task.await.expect("probe"));
            }
            latencies
        })
    };

    let started = Instant::now();
    let mut logins = Vec::with_capacity(CONCURRENT_LOGINS);
    for (n, (cookie, token)) in forms.into_iter().enumerate() {
        let client = client.clone();
        let base = base.to_owned();
        logins.push(tokio::spawn(async move {
            let email = format!("candidate{n}@bench.example");
            let request = login_request(&base, &cookie, &token, &email);
            let sent = Instant::now();
            let response = client.request(request).await.expect("sign-in");
            assert_eq!(response.status(), 303, "sign-in must succeed");
            sent.elapsed()
        }));
    }
    let mut login_latencies = Vec::new();
    for login in logins {
        login_latencies.push(login.await.expect("login"));
    }
    let storm_seconds = started.elapsed().as_secs_f64();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut during = probe.await.expect("probe");
    during.sort();
    login_latencies.sort();
    let (rss, peak) = memory_kib(pid);

    // Each run signs the same people in again; their sessions pile up harmlessly.
    vec![
        Figures {
            name: format!("POST /login ×{CONCURRENT_LOGINS} at once"),
            requests: login_latencies.len(),
            per_second: login_latencies.len() as f64 / storm_seconds,
            p50: percentile(&login_latencies, 0.5),
            p99: percentile(&login_latencies, 0.99),
            rss_kib: rss,
            note: format!("Argon2id m=19456 t=2 p=1; peak RSS {} MiB", peak / 1024),
        },
        Figures {
            name: "GET /standards/TECIT50761 during the sign-ins".into(),
            requests: during.len(),
            per_second: during.len() as f64 / storm_seconds,
            p50: percentile(&during, 0.5),
            p99: percentile(&during, 0.99),
            rss_kib: rss,
            note: format!(
                "{PROBE_CONNECTIONS} connections; without sign-ins: p50 {:.1} ms, p99 {:.1} ms",
                ms(percentile(&quiet, 0.5)),
                ms(percentile(&quiet, 0.99))
            ),
        },
    ]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn render_table(results: &[Figures]) -> String {
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib / 1024 / 1024);
    let date = time::OffsetDateTime::now_utc().date();
    let mut table = format!(
        "Measured {date} on {cores} cores and {memory} GiB of memory; median of {RUNS} runs; server: release build.\n\n\
         | scenario | requests | requests/s | p50 | p99 | server RSS | conditions |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | --- |\n"
    );
    for f in results {
        let _ = writeln!(
            table,
            "| {} | {} | {:.0} | {:.1} ms | {:.1} ms | {:.1} MiB | {} |",
            f.name,
            f.requests,
            f.per_second,
            ms(f.p50),
            ms(f.p99),
            f.rss_kib as f64 / 1024.0,
            f.note
        );
    }
    table
}

const BEGIN: &str = "<!-- bench/load.rs: begin -->";
const END: &str = "<!-- bench/load.rs: end -->";

fn write_benchmarks_md(table: &str) -> anyhow::Result<()> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/BENCHMARKS.md");
    let current = std::fs::read_to_string(path).unwrap_or_default();
    let section = format!("{BEGIN}\n{table}{END}");
    let updated = match (current.find(BEGIN), current.find(END)) {
        (Some(start), Some(end)) => format!(
            "{}{section}{}",
            &current[..start],
            &current[end + END.len()..]
        ),
        _ => format!("{current}\n{section}\n"),
    };
    std::fs::write(path, updated)?;
    Ok(())
}

/// A signed-in candidate: the session cookie and the form token of its pages.
struct Session {
    cookie: String,
    csrf: String,
}

async fn sign_in(base: &str, email: &str) -> Session {
    let client = client();
    let (visitor_cookie, token) = login_form(&client, base).await;
    let request = login_request(base, &visitor_cookie, &token, email);
    let response = client.request(request).await.expect("sign-in");
    assert_eq!(response.status(), 303);
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("attest_session="))
        .and_then(|c| c.split(';').next())
        .expect("a session")
        .to_owned();
    let page = client
        .request(
            Request::get(format!("{base}/account"))
                .header("cookie", &cookie)
                .body(Full::default())
                .expect("request"),
        )
        .await
        .expect("account");
    let html = String::from_utf8_lossy(&page.into_body().collect().await.expect("body").to_bytes())
        .into_owned();
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker).expect("a form token") + marker.len();
    Session {
        cookie,
        csrf: html[start..start + 64].to_owned(),
    }
}

/// One MiB of file content for chunk `n` of file `file`: a PDF header first, then bytes that
/// do not repeat.
fn file_chunk(file: u64, n: usize) -> Bytes {
    let mut chunk = vec![0u8; 1024 * 1024];
    let mut x = (n as u64 ^ file.rotate_left(32)).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for byte in &mut chunk {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *byte = x as u8;
    }
    if n == 0 {
        chunk[..9].copy_from_slice(b"%PDF-1.7\n");
    }
    Bytes::from(chunk)
}

type StreamingBody = http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>;

/// Lines of the roster file imported.
const ROSTER_LINES: usize = 5_000;
/// People signing in one after another, each in a loop, beside the import.
const ROSTER_SIGN_INS: usize = 2;

/// Signs `email` in again and again until `until` says stop; each sign-in's time.
async fn sign_in_loop(
    base: String,
    email: &'static str,
    until: Arc<std::sync::atomic::AtomicBool>,
) -> Vec<Duration> {
    let client = client();
    let mut latencies = Vec::new();
    while !until.load(std::sync::atomic::Ordering::Relaxed) {
        let (cookie, token) = login_form(&client, &base).await;
        let request = login_request(&base, &cookie, &token, email);
        let sent = Instant::now();
        let response = client.request(request).await.expect("sign-in");
        assert_eq!(response.status(), 303, "sign-in must succeed");
        latencies.push(sent.elapsed());
    }
    latencies
}

/// Sign-ins by `ROSTER_SIGN_INS` people, each in a loop, while `work` runs (or for `alone`).
async fn sign_ins_beside<F: std::future::Future>(
    base: &str,
    work: F,
) -> (F::Output, Vec<Duration>) {
    const PEOPLE: [&str; ROSTER_SIGN_INS] =
        ["candidate1@bench.example", "candidate2@bench.example"];
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let loops: Vec<_> = PEOPLE
        .iter()
        .map(|email| tokio::spawn(sign_in_loop(base.to_owned(), email, Arc::clone(&stop))))
        .collect();
    let output = work.await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut all = Vec::new();
    for signing in loops {
        all.extend(signing.await.expect("sign-ins"));
    }
    all.sort();
    (output, all)
}

/// An admin imports a 5,000-line roster of new people into a cohort, while two people keep
/// signing in; their sign-ins are compared with the same sign-ins without the import.
async fn roster_import(base: &str, pid: u32) -> Figures {
    let admin = sign_in(base, "admin@bench.example").await;
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut roster = String::from("name,email\n");
    for n in 0..ROSTER_LINES {
        let _ = writeln!(roster, "Person {n},p{n}-{run}@roster.example");
    }
    let boundary = "attest-bench-roster";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"roster\"; filename=\"roster.csv\"\r\n\
         Content-Type: text/csv\r\n\r\n{roster}\r\n--{boundary}--\r\n",
        admin.csrf
    );
    let (_, alone) = sign_ins_beside(base, tokio::time::sleep(Duration::from_secs(3))).await;
    let import = async {
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("{base}/admin/cohorts/{COHORT}/roster"))
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .header("sec-fetch-site", "same-origin")
            .header("cookie", &admin.cookie)
            .body(Full::new(Bytes::from(body)))
            .expect("request");
        let started = Instant::now();
        let response = client().request(request).await.expect("import");
        let status = response.status();
        response.into_body().collect().await.expect("page");
        assert_eq!(status, 200, "the roster must be applied");
        started.elapsed()
    };
    let (took, during) = sign_ins_beside(base, import).await;
    let (rss, _) = memory_kib(pid);
    Figures {
        name: format!("Roster import of {ROSTER_LINES} new people"),
        requests: 1,
        per_second: 1.0 / took.as_secs_f64(),
        p50: took,
        p99: took,
        rss_kib: rss,
        note: format!(
            "accounts, invitation links, enrolments, statuses and events; {} sign-ins during it: p50 {:.0} ms, max {:.0} ms; {} without it: p50 {:.0} ms, max {:.0} ms",
            during.len(),
            ms(percentile(&during, 0.5)),
            ms(percentile(&during, 1.0)),
            alone.len(),
            ms(percentile(&alone, 0.5)),
            ms(percentile(&alone, 1.0)),
        ),
    }
}

/// The new-evidence form with a file of `mib` MiB (`file` picks its content), streamed.
fn upload_request(base: &str, session: &Session, file: u64, mib: usize) -> Request<StreamingBody> {
    use futures_util::StreamExt;
    use hyper::body::Frame;

    let boundary = "attest-bench-boundary";
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nBenchmark upload\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"action\"\r\n\r\nsave\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"bench.pdf\"\r\n\
         Content-Type: application/pdf\r\n\r\n",
        session.csrf
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let parts = futures_util::stream::iter(
        std::iter::once(Bytes::from(head))
            .chain((0..mib).map(move |n| file_chunk(file, n)))
            .chain(std::iter::once(Bytes::from(tail))),
    )
    .map(|bytes| Ok::<_, std::convert::Infallible>(Frame::data(bytes)));
    let body: StreamingBody = BodyExt::boxed(http_body_util::StreamBody::new(parts));
    Request::builder()
        .method(Method::POST)
        .uri(format!("{base}/enrolments/{ENROLMENT}/evidence/new"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .header("sec-fetch-site", "same-origin")
        .header("cookie", &session.cookie)
        .body(body)
        .expect("request")
}

/// Uploads at once, each of a file of its own, and how many each sends one after another.
const CONCURRENT_UPLOADS: usize = 16;
const UPLOADS_EACH: usize = 4;
const UPLOAD_MIB: usize = 10;

/// Sixteen clients upload 10 MiB files through the real form, four each, all at once: the
/// sustained rate, each upload's time and the server's peak memory.
async fn concurrent_uploads(base: &str, session: &Session, pid: u32) -> Figures {
    // Files of a new content every run, so that none is found stored already.
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (Arc::clone(&peak), Arc::clone(&sampling));
        tokio::spawn(async move {
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                peak.fetch_max(memory_kib(pid).0, std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let started = Instant::now();
    let mut clients = Vec::new();
    for client in 0..CONCURRENT_UPLOADS {
        let base = base.to_owned();
        let session = Session {
            cookie: session.cookie.clone(),
            csrf: session.csrf.clone(),
        };
        clients.push(tokio::spawn(async move {
            let uploader: Client<HttpConnector, StreamingBody> =
                Client::builder(TokioExecutor::new()).build_http();
            let mut latencies = Vec::new();
            for k in 0..UPLOADS_EACH {
                let file = run.wrapping_add((client * UPLOADS_EACH + k) as u64 + 1);
                let request = upload_request(&base, &session, file, UPLOAD_MIB);
                let t = Instant::now();
                let response = uploader.request(request).await.expect("upload");
                assert_eq!(response.status(), 303, "the upload must be stored");
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for client in clients {
        all.extend(client.await.expect("client"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    sampler.await.expect("sampler");
    all.sort();
    let mib = (all.len() * UPLOAD_MIB) as f64;
    Figures {
        name: format!("{CONCURRENT_UPLOADS} concurrent uploads of {UPLOAD_MIB} MiB files"),
        requests: all.len(),
        per_second: all.len() as f64 / elapsed,
        p50: percentile(&all, 0.5),
        p99: percentile(&all, 0.99),
        rss_kib: peak.load(std::sync::atomic::Ordering::Relaxed),
        note: format!(
            "{:.0} MiB/s sustained; {UPLOADS_EACH} uploads a client, each file new; RSS is the peak",
            mib / elapsed
        ),
    }
}

/// Uploads a 200 MiB file as evidence through the real form, downloads it again, and measures
/// PostgreSQL's own rate for the same bytes in 1 MiB chunks on the server.
async fn file_round_trip(base: &str, session: &Session, pid: u32, database_url: &str) -> FileRun {
    let request = upload_request(base, session, 0, FILE_MIB);
    let uploader: Client<HttpConnector, StreamingBody> =
        Client::builder(TokioExecutor::new()).build_http();

    let (rss_before, _) = memory_kib(pid);
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let sampling = Arc::clone(&sampling);
        tokio::spawn(async move {
            let mut peak = 0;
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(memory_kib(pid).0);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            peak
        })
    };
    let started = Instant::now();
    let response = uploader.request(request).await.expect("upload");
    let upload_time = started.elapsed();
    assert_eq!(response.status(), 303, "the upload must be stored");
    let location = response.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let upload_peak = sampler.await.expect("sampler");

    // Download it back.
    let evidence = location
        .trim_start_matches("/evidence/")
        .trim_end_matches("/edit")
        .to_owned();
    let client = client();
    let edit = client
        .request(
            Request::get(format!("{base}{location}"))
                .header("cookie", &session.cookie)
                .body(Full::default())
                .expect("request"),
        )
        .await
        .expect("edit page");
    let _ = edit.into_body().collect().await;
    let file_id = {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(database_url)
            .await
            .expect("connect");
        sqlx::query_scalar::<_, uuid::Uuid>(
            "select evidence_file_id from evidence_file where evidence_id = $1::uuid",
        )
        .bind(&evidence)
        .fetch_one(&mut conn)
        .await
        .expect("file")
    };
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let sampling = Arc::clone(&sampling);
        tokio::spawn(async move {
            let mut peak = 0;
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(memory_kib(pid).0);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            peak
        })
    };
    let rss_before_download = memory_kib(pid).0;
    let started = Instant::now();
    let response = client
        .request(
            Request::get(format!("{base}/evidence/{evidence}/files/{file_id}"))
                .header("cookie", &session.cookie)
                .body(Full::default())
                .expect("request"),
        )
        .await
        .expect("download");
    let mut body = response.into_body();
    let mut received = 0usize;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.expect("frame").into_data() {
            received += data.len();
        }
    }
    let download_time = started.elapsed();
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let download_peak = sampler.await.expect("sampler");
    assert_eq!(received, FILE_MIB * 1024 * 1024);

    // The same bytes, in 1 MiB chunks, written and read by PostgreSQL itself.
    let (pg_write, pg_read) = postgres_rate(database_url).await;
    let _ = (rss_before, rss_before_download);
    FileRun {
        upload: upload_time,
        download: download_time,
        pg_write,
        pg_read,
        peak_rss_kib: upload_peak.max(download_peak),
    }
}

/// One round trip of the file and PostgreSQL's own rates beside it.
struct FileRun {
    upload: Duration,
    download: Duration,
    pg_write: Duration,
    pg_read: Duration,
    peak_rss_kib: u64,
}

/// Medians of each measure over the runs, each beside the median of PostgreSQL's own rate;
/// memory growth against the server before its first upload.
fn summarise_files(runs: &[FileRun], rss_before_kib: u64) -> Vec<Figures> {
    let median_of = |pick: fn(&FileRun) -> Duration| {
        let mut values: Vec<Duration> = runs.iter().map(pick).collect();
        values.sort();
        values[values.len() / 2]
    };
    let (upload, download) = (median_of(|r| r.upload), median_of(|r| r.download));
    let (pg_write, pg_read) = (median_of(|r| r.pg_write), median_of(|r| r.pg_read));
    let peak = runs.iter().map(|r| r.peak_rss_kib).max().unwrap_or(0);
    let growth = peak.saturating_sub(rss_before_kib) as f64 / 1024.0;
    let rate = |d: Duration| FILE_MIB as f64 / d.as_secs_f64();
    let figures = |name: String, took: Duration, own: Duration, what: &str| Figures {
        name,
        requests: 1,
        per_second: rate(took),
        p50: took,
        p99: took,
        rss_kib: peak,
        note: format!(
            "{:.0} MiB/s; PostgreSQL's own {what} of the same 1 MiB chunks: {:.0} MiB/s, so {:.0}% of it; server RSS growth while streaming {growth:.1} MiB",
            rate(took),
            rate(own),
            100.0 * own.as_secs_f64() / took.as_secs_f64()
        ),
    };
    vec![
        figures(
            format!("Upload of a {FILE_MIB} MiB file (multipart, streamed into PostgreSQL)"),
            upload,
            pg_write,
            "insert",
        ),
        figures(
            format!("Download of the {FILE_MIB} MiB file"),
            download,
            pg_read,
            "select",
        ),
    ]
}

/// Times PostgreSQL writing the file's bytes from a server-side file into 1 MiB chunk rows
/// (`pg_read_binary_file`) and a client reading them back with a plain select.
async fn postgres_rate(database_url: &str) -> (Duration, Duration) {
    use sqlx::Connection;
    let path = std::env::temp_dir().join("attest-bench-file.bin");
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&path).expect("temp file");
        for n in 0..FILE_MIB {
            file.write_all(&file_chunk(0, n)).expect("write");
        }
    }
    let mut conn = sqlx::PgConnection::connect(database_url)
        .await
        .expect("connect");
    sqlx::raw_sql(
        "drop table if exists bench_chunk;
         create table bench_chunk (seq integer primary key, data bytea not null);
         alter table bench_chunk alter column data set storage external;",
    )
    .execute(&mut conn)
    .await
    .expect("table");
    let started = Instant::now();
    sqlx::query(
        "insert into bench_chunk select g, pg_read_binary_file($1, g::bigint * 1048576, 1048576) from generate_series(0, $2 - 1) g",
    )
    .bind(path.to_string_lossy().into_owned())
    .bind(i32::try_from(FILE_MIB).expect("size"))
    .execute(&mut conn)
    .await
    .expect("server-side insert");
    let write = started.elapsed();
    let started = Instant::now();
    let rows: Vec<Vec<u8>> = sqlx::query_scalar("select data from bench_chunk order by seq")
        .fetch_all(&mut conn)
        .await
        .expect("select");
    let read = started.elapsed();
    assert_eq!(
        rows.iter().map(Vec::len).sum::<usize>(),
        FILE_MIB * 1024 * 1024
    );
    drop(rows);
    sqlx::raw_sql("drop table bench_chunk")
        .execute(&mut conn)
        .await
        .expect("drop");
    let _ = std::fs::remove_file(&path);
    (write, read)
}

/// Writers appending to the audit trail at once, each event in a transaction of its own, while
/// a sealer links them into the chain as `attest serve` does.
const AUDIT_WRITERS: usize = 32;
const AUDIT_EVENTS_PER_WRITER: usize = 100;

async fn audit_appends(database_url: &str) -> Figures {
    use attest::audit::{self, Actor, NewAuditEvent};
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(u32::try_from(AUDIT_WRITERS + 1).expect("writers"))
        .connect(database_url)
        .await
        .expect("pool");
    let writing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sealer = tokio::spawn({
        let (pool, writing) = (pool.clone(), writing.clone());
        async move {
            let mut conn = pool.acquire().await.expect("connection");
            while writing.load(std::sync::atomic::Ordering::SeqCst) {
                audit::seal_pending(&mut conn).await.expect("seal");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    let started = Instant::now();
    let mut writers = Vec::new();
    for writer in 0..AUDIT_WRITERS {
        let pool = pool.clone();
        writers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(AUDIT_EVENTS_PER_WRITER);
            for n in 0..AUDIT_EVENTS_PER_WRITER {
                let t = Instant::now();
                let mut tx = pool.begin().await.expect("begin");
                audit::record(
                    &mut tx,
                    NewAuditEvent {
                        actor: &Actor::system(),
                        action: "bench.appended",
                        entity_type: "bench",
                        entity_id: format!("{writer}-{n}"),
                        detail: serde_json::json!({ "writer": writer, "n": n }),
                    },
                )
                .await
                .expect("append");
                tx.commit().await.expect("commit");
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for writer in writers {
        all.extend(writer.await.expect("writer"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    writing.store(false, std::sync::atomic::Ordering::SeqCst);
    sealer.await.expect("sealer");
    all.sort();
    let mut conn = pool.acquire().await.expect("connection");
    let last_sealed = Instant::now();
    let left = audit::seal_pending(&mut conn).await.expect("seal");
    let last_sealed = last_sealed.elapsed();
    let report = audit::verify(&mut conn).await.expect("verify");
    assert!(
        report.broken.is_none() && report.pending == 0,
        "the chain must stay whole under concurrent writers"
    );
    Figures {
        name: format!("Audit appends, {AUDIT_WRITERS} concurrent writers"),
        requests: all.len(),
        per_second: all.len() as f64 / elapsed,
        p50: percentile(&all, 0.5),
        p99: percentile(&all, 0.99),
        rss_kib: 0,
        note: format!(
            "one event per committed transaction, straight to PostgreSQL, one sealer beside them; {left} left to seal at the end ({} ms); the chain verified intact afterwards",
            last_sealed.as_millis()
        ),
    }
}
