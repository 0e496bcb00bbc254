//! Load benchmark of a real `attest serve` process over loopback.
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

use attest::auth::password::Passwords;
use attest::config::DatabaseArgs;
use attest::users::db as users_db;
use attest::users::model::{DisplayName, Email, Role};
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
    let mut child = start_server(&database_url, address)?;
    let base = format!("http://{address}");
    wait_until_ready(&base).await?;
    let pid = child.id();

    let mut results: Vec<Figures> = Vec::new();
    results.push(median(
        repeat(|| page_load(&base, "/standards/TECIT50761", pid)).await,
    ));
    let storm = median_by_login(repeat(|| login_storm(&base, pid)).await);
    results.extend(storm);

    stop_server(&mut child);
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
    for n in 0..CONCURRENT_LOGINS {
        let email =
            Email::parse(&format!("candidate{n}@bench.example")).map_err(anyhow::Error::msg)?;
        let name = DisplayName::parse(&format!("Candidate {n}")).map_err(anyhow::Error::msg)?;
        users_db::insert(&mut tx, &email, &name, &[Role::Candidate], Some(&hash)).await?;
    }
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
        .args(["serve", "--bind", &address.to_string()])
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?)
}

fn stop_server(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
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
) -> Vec<Duration> {
    let mut workers = Vec::with_capacity(connections);
    for _ in 0..connections {
        let client = client.clone();
        let uri: hyper::Uri = url.parse().expect("uri");
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < stop {
                let started = Instant::now();
                let response = client.get(uri.clone()).await.expect("request");
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
            let body = format!("csrf_token={token}&email=candidate{n}%40bench.example&password=benchmark+passphrase+2026");
            let request = Request::builder()
                .method(Method::POST)
                .uri(format!("{base}/login"))
                .header("content-type", "application/x-www-form-urlencoded")
                .header("sec-fetch-site", "same-origin")
                .header("cookie", cookie)
                .body(Full::new(Bytes::from(body)))
                .expect("request");
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
