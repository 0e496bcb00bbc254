//! The test harness: a portal over the test's database, browsers that keep their cookies and
//! send forms the way a browser does, and parsed HTML to assert on.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use attest::AppState;
use attest::accounts::db as users_db;
use attest::accounts::model::{DisplayName, Email};
use attest::auth::session;
use attest::changes::{Heartbeat, Listening};
use attest::clock::Clock;
use attest::config::Settings;
use attest::identity::{Role, UserId};
use attest::passwords::Passwords;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use axum_extra::extract::cookie::Cookie;
use http_body_util::BodyExt;
use scraper::{Html, Selector};
use sqlx::PgPool;
use tower::ServiceExt;

/// The codes of the bundled standard's 21 criteria, in order.
pub const ALL_CODES: [&str; 21] = [
    "PC1", "PC2", "PC3", "PC4", "PC5", "PC6", "PC7", "PC8", "PC9", "K1", "K2", "K3", "K4", "K5",
    "K6", "K7", "K8", "K9", "K10", "K11", "K12",
];

/// The boundary of the multipart forms tests send.
const MULTIPART_BOUNDARY: &str = "----attest-test-boundary-7d93a1";

/// A password that passes the policy, used for every test account.
pub const PASSWORD: &str = "correct horse battery staple";

/// The portal as a test drives it.
pub struct TestApp {
    pub router: Router,
    pub pool: PgPool,
    pub state: AppState,
}

impl TestApp {
    /// A portal over `pool` with the bundled standard loaded, as `attest serve` starts, and a
    /// clock the test can move.
    pub async fn new(pool: PgPool) -> Self {
        Self::with_settings(pool, Settings::default()).await
    }

    pub async fn with_settings(pool: PgPool, settings: Settings) -> Self {
        let mut tx = pool.begin().await.expect("begin");
        attest::standards::import::ensure_bundled(&mut tx)
            .await
            .expect("bundled standard loads");
        tx.commit().await.expect("commit");
        // As `attest` does on opening the database: what the set-up recorded is in the chain.
        let mut conn = pool.acquire().await.expect("connection");
        attest::audit::seal_pending(&mut conn).await.expect("seal");
        drop(conn);
        Self::without_setup_with(pool, settings)
    }

    /// A portal over `pool` exactly as given.
    pub fn without_setup(pool: PgPool) -> Self {
        Self::without_setup_with(pool, Settings::default())
    }

    fn without_setup_with(pool: PgPool, settings: Settings) -> Self {
        let clock = Clock::manual(time::OffsetDateTime::now_utc());
        let state = AppState::new(pool.clone(), settings, clock, Passwords::new(2));
        Self {
            router: attest::app(state.clone()),
            pool,
            state,
        }
    }

    /// Listens for changes as `attest serve` does, so that this portal keeps sessions in
    /// memory; returns once it listens.
    pub async fn listen(&self) -> Listening {
        self.listen_with(Heartbeat::default()).await
    }

    /// As [`TestApp::listen`], with a heartbeat of the test's choosing.
    pub async fn listen_with(&self, heartbeat: Heartbeat) -> Listening {
        let listening = Listening::start_with(self.state.changes.clone(), &self.pool, heartbeat);
        eventually("the portal listens for changes", || async {
            self.state.changes.is_listening()
        })
        .await;
        listening
    }

    /// Reads `response` as a client that takes its first chunk, then nothing for a while:
    /// meanwhile no database connection may wait on it. Returns the first chunk and the rest.
    pub async fn read_with_a_pause(
        &self,
        response: axum::response::Response,
    ) -> (Vec<u8>, Vec<u8>) {
        let mut body = response.into_body();
        let first = body.frame().await.expect("a frame").expect("readable");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let in_use = self.pool.size() - u32::try_from(self.pool.num_idle()).expect("small");
        assert_eq!(in_use, 0, "no connection waits on the reader");
        let rest = body.collect().await.expect("the rest").to_bytes();
        (
            first.into_data().map(|d| d.to_vec()).unwrap_or_default(),
            rest.to_vec(),
        )
    }

    /// A second portal process serving the same database, with caches of its own.
    pub fn other_process(&self) -> TestApp {
        Self::without_setup(self.pool.clone())
    }

    pub fn clock(&self) -> &Clock {
        &self.state.clock
    }

    /// A browser with no cookies.
    pub fn browser(&self) -> Browser<'_> {
        Browser {
            app: self,
            cookies: Mutex::default(),
            ip: "127.0.0.1".parse().expect("ip"),
        }
    }

    /// A one-off request with no cookies.
    pub async fn get(&self, uri: &str) -> TestResponse {
        self.browser().get(uri).await
    }

    pub async fn request(&self, request: Request<Body>) -> TestResponse {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        let (status, headers, bytes) = read_whole(response).await;
        TestResponse {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// An active account with [`PASSWORD`].
    pub async fn create_user(&self, email: &str, name: &str, roles: &[Role]) -> UserId {
        let hash = self.state.passwords.hash(PASSWORD).await.expect("hash");
        self.create_user_with_hash(email, name, roles, Some(&hash))
            .await
    }

    pub async fn create_user_with_hash(
        &self,
        email: &str,
        name: &str,
        roles: &[Role],
        hash: Option<&str>,
    ) -> UserId {
        let mut conn = self.pool.acquire().await.expect("connection");
        users_db::insert(
            &mut conn,
            &Email::parse(email).expect("email"),
            &DisplayName::parse(name).expect("name"),
            roles,
            hash,
        )
        .await
        .expect("user inserted")
    }

    /// A browser already signed in as `user`, without going through the sign-in form.
    pub async fn browser_signed_in_as(&self, user: UserId) -> Browser<'_> {
        let mut conn = self.pool.acquire().await.expect("connection");
        let cookie = session::start(&mut conn, &self.state.settings, user, self.clock().now())
            .await
            .expect("session");
        let browser = self.browser();
        browser.set_cookie(cookie.name(), cookie.value());
        browser
    }

    /// A new account holding `roles`, and a browser signed in as it.
    pub async fn signed_in(&self, roles: &[Role]) -> (UserId, Browser<'_>) {
        let label = roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join("-");
        let email = format!("{label}-{}@example.org", uuid::Uuid::new_v4().simple());
        let user = self
            .create_user(&email, &format!("Test {label}"), roles)
            .await;
        (user, self.browser_signed_in_as(user).await)
    }

    pub async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&self.pool)
            .await
            .expect("count")
    }

    /// Seals the audit events written so far into the chain, as `attest serve` does a moment
    /// after each commit.
    pub async fn seal_audit(&self) -> u64 {
        let mut conn = self.pool.acquire().await.expect("connection");
        attest::audit::seal_pending(&mut conn).await.expect("seal")
    }

    /// The actions of the audit trail, oldest first.
    pub async fn audit_actions(&self) -> Vec<String> {
        sqlx::query_scalar!("select action from audit_event order by audit_event_id")
            .fetch_all(&self.pool)
            .await
            .expect("audit")
    }
}

/// A response's status, headers and whole body.
async fn read_whole(response: axum::response::Response) -> (StatusCode, HeaderMap, Vec<u8>) {
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    (status, headers, bytes)
}

/// Waits up to five seconds for `condition` to hold, asking every 10 ms: for what another
/// process hears a moment after a commit.
pub async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !condition().await {
        assert!(
            std::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// A browser: keeps cookies, sends forms with the page's token and same-origin headers.
pub struct Browser<'a> {
    app: &'a TestApp,
    cookies: Mutex<BTreeMap<String, String>>,
    pub ip: IpAddr,
}

impl Browser<'_> {
    pub fn set_cookie(&self, name: &str, value: &str) {
        self.cookies
            .lock()
            .expect("cookies")
            .insert(name.to_owned(), value.to_owned());
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.lock().expect("cookies").get(name).cloned()
    }

    pub fn cookie_header(&self) -> String {
        self.cookies
            .lock()
            .expect("cookies")
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub async fn get(&self, uri: &str) -> TestResponse {
        self.send(Method::GET, uri, &[], Body::empty()).await
    }

    /// A form as the browser would post it from one of our pages, with the current token.
    pub async fn post_form(&self, uri: &str, fields: &[(&str, &str)]) -> TestResponse {
        let token = self.csrf_token().await;
        let mut all: Vec<(&str, &str)> = vec![("csrf_token", token.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(uri, &all, &[("sec-fetch-site", "same-origin")])
            .await
    }

    /// A form exactly as given, with the extra headers given.
    pub async fn post_raw(
        &self,
        uri: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> TestResponse {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let content_type = ("content-type", "application/x-www-form-urlencoded");
        let mut all = vec![content_type];
        all.extend_from_slice(headers);
        self.send(Method::POST, uri, &all, Body::from(body)).await
    }

    /// A multipart form (with files) as a browser sends it: the token first, then `fields`,
    /// then each file as (field name, file name, bytes).
    pub async fn post_multipart(
        &self,
        uri: &str,
        fields: &[(&str, &str)],
        files: &[(&str, &str, &[u8])],
    ) -> TestResponse {
        let body = self.multipart_body(fields, files).await;
        self.post_multipart_body(uri, Body::from(body)).await
    }

    /// The body [`Browser::post_multipart`] sends, to send some other way.
    pub async fn multipart_body(
        &self,
        fields: &[(&str, &str)],
        files: &[(&str, &str, &[u8])],
    ) -> Vec<u8> {
        let token = self.csrf_token().await;
        let mut body: Vec<u8> = Vec::new();
        let mut text = |name: &str, value: &str| {
            body.extend_from_slice(
                format!("--{MULTIPART_BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
            );
        };
        text("csrf_token", &token);
        for (name, value) in fields {
            text(name, value);
        }
        for (name, file_name, bytes) in files {
            body.extend_from_slice(
                format!(
                    "--{MULTIPART_BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{MULTIPART_BOUNDARY}--\r\n").as_bytes());
        body
    }

    /// Posts a body made by [`Browser::multipart_body`], which may arrive as slowly as it likes.
    pub async fn post_multipart_body(&self, uri: &str, body: Body) -> TestResponse {
        let content_type = format!("multipart/form-data; boundary={MULTIPART_BOUNDARY}");
        self.send(
            Method::POST,
            uri,
            &[
                ("content-type", content_type.as_str()),
                ("sec-fetch-site", "same-origin"),
            ],
            body,
        )
        .await
    }

    /// The raw bytes of a GET, for downloads.
    pub async fn get_bytes(&self, uri: &str) -> (StatusCode, HeaderMap, Vec<u8>) {
        read_whole(self.get_response(uri).await).await
    }

    /// A GET's response with its body not yet read, as a client that reads at its own pace.
    pub async fn get_response(&self, uri: &str) -> axum::response::Response {
        let mut request = Request::get(uri)
            .header(header::COOKIE, self.cookie_header())
            .body(Body::empty())
            .expect("request");
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(self.ip, 50_000)));
        self.app
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible")
    }

    /// The form token the pages of this browser carry now.
    pub async fn csrf_token(&self) -> String {
        for page in ["/standards", "/login"] {
            let response = self.get(page).await;
            if let Some(token) = response.attr("input[name=csrf_token]", "value") {
                return token;
            }
        }
        panic!("no page carried a form token");
    }

    pub async fn send(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: Body,
    ) -> TestResponse {
        let mut builder = Request::builder().method(method).uri(uri);
        let cookies = self.cookie_header();
        if !cookies.is_empty() {
            builder = builder.header(header::COOKIE, cookies);
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let mut request = builder.body(body).expect("request");
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(self.ip, 50_000)));
        let response = self.app.request(request).await;
        for value in response.headers.get_all(header::SET_COOKIE) {
            let cookie = Cookie::parse(value.to_str().expect("ascii cookie").to_owned())
                .expect("cookie parses");
            let removed = cookie.max_age().is_some_and(|age| age.is_zero())
                || cookie
                    .expires_datetime()
                    .is_some_and(|at| at < time::OffsetDateTime::now_utc());
            let mut jar = self.cookies.lock().expect("cookies");
            if removed {
                jar.remove(cookie.name());
            } else {
                jar.insert(cookie.name().to_owned(), cookie.value().to_owned());
            }
        }
        response
    }

    /// Signs in through the form.
    pub async fn sign_in(&self, email: &str, password: &str) -> TestResponse {
        self.post_form("/login", &[("email", email), ("password", password)])
            .await
    }
}

/// A response with its body read.
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl TestResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn location(&self) -> Option<&str> {
        self.header("location")
    }

    /// Every `Set-Cookie` header, as sent.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().expect("ascii").to_owned())
            .collect()
    }

    pub fn html(&self) -> Html {
        Html::parse_document(&self.body)
    }

    /// The whitespace-normalised text of every element matching `selector`.
    pub fn texts(&self, selector: &str) -> Vec<String> {
        let selector = Selector::parse(selector).expect("valid selector");
        self.html()
            .select(&selector)
            .map(|e| {
                e.text()
                    .collect::<String>()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    /// The text of the only element matching `selector`.
    pub fn text(&self, selector: &str) -> String {
        let texts = self.texts(selector);
        assert_eq!(texts.len(), 1, "expected one {selector}, found {texts:?}");
        texts.into_iter().next().expect("one")
    }

    /// An attribute of the first element matching `selector`.
    pub fn attr(&self, selector: &str, attribute: &str) -> Option<String> {
        let selector = Selector::parse(selector).expect("valid selector");
        self.html()
            .select(&selector)
            .next()
            .and_then(|e| e.value().attr(attribute).map(str::to_owned))
    }

    /// An attribute of every element matching `selector` that has it, in document order.
    pub fn attrs(&self, selector: &str, attribute: &str) -> Vec<String> {
        let selector = Selector::parse(selector).expect("valid selector");
        self.html()
            .select(&selector)
            .filter_map(|e| e.value().attr(attribute).map(str::to_owned))
            .collect()
    }

    /// Asserts a 303 to `path` (ignoring any query string when `path` has none).
    pub fn assert_redirect_to(&self, path: &str) {
        assert_eq!(
            self.status,
            StatusCode::SEE_OTHER,
            "expected a redirect, body: {}",
            self.body
        );
        let location = self.location().expect("location");
        let target = if path.contains('?') {
            location
        } else {
            location.split('?').next().unwrap_or_default()
        };
        assert_eq!(target, path);
    }

    /// True when this answer sends the visitor to sign in.
    pub fn is_sign_in_redirect(&self) -> bool {
        self.status == StatusCode::SEE_OTHER
            && self
                .location()
                .is_some_and(|l| l.starts_with("/login?next="))
    }
}

/// A URL of the same server as `DATABASE_URL`, for another database on it.
pub fn database_url_for(database: &str) -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL is set for the tests");
    let (server, _) = base
        .rsplit_once('/')
        .expect("DATABASE_URL names a database");
    format!("{server}/{database}")
}

/// A cohort on the bundled standard with one enrolment: its candidate, assessor and IQA.
#[derive(Debug, Clone, Copy)]
pub struct Enrolled {
    pub cohort: uuid::Uuid,
    pub enrolment: uuid::Uuid,
    pub candidate: UserId,
    pub assessor: UserId,
    pub iqa: UserId,
}

impl TestApp {
    /// A cohort with one candidate enrolled, an assessor and an IQA assigned.
    pub async fn enrolled(&self, label: &str) -> Enrolled {
        let candidate = self
            .create_user(
                &format!("{label}.candidate@example.org"),
                &format!("{label} Candidate"),
                &[Role::Candidate],
            )
            .await;
        let assessor = self
            .create_user(
                &format!("{label}.assessor@example.org"),
                &format!("{label} Assessor"),
                &[Role::Assessor],
            )
            .await;
        let iqa = self
            .create_user(
                &format!("{label}.iqa@example.org"),
                &format!("{label} Iqa"),
                &[Role::Iqa],
            )
            .await;
        let cohort: uuid::Uuid = sqlx::query_scalar!(
            "insert into cohort (standard_id, name, starts_on, ends_on)
             select standard_id, $1, date '2026-09-01', date '2027-07-31' from standard where urn = 'TECIT50761'
             returning cohort_id",
            format!("{label} cohort")
        )
        .fetch_one(&self.pool)
        .await
        .expect("cohort");
        let enrolment: uuid::Uuid = sqlx::query_scalar!(
            "insert into enrolment (cohort_id, candidate_id, assessor_id, iqa_id) values ($1, $2, $3, $4) returning enrolment_id",
            cohort,
            candidate.0,
            assessor.0,
            iqa.0
        )
        .fetch_one(&self.pool)
        .await
        .expect("enrolment");
        self.store_status(enrolment).await;
        Enrolled {
            cohort,
            enrolment,
            candidate,
            assessor,
            iqa,
        }
    }

    /// Another candidate in `first`'s cohort with the same assessor and IQA.
    pub async fn classmate(&self, first: &Enrolled, email: &str, name: &str) -> Enrolled {
        let candidate = self.create_user(email, name, &[Role::Candidate]).await;
        let enrolment: uuid::Uuid = sqlx::query_scalar!(
            "insert into enrolment (cohort_id, candidate_id, assessor_id, iqa_id) values ($1, $2, $3, $4) returning enrolment_id",
            first.cohort,
            candidate.0,
            first.assessor.0,
            first.iqa.0
        )
        .fetch_one(&self.pool)
        .await
        .expect("enrolment");
        self.store_status(enrolment).await;
        Enrolled {
            enrolment,
            candidate,
            ..*first
        }
    }

    /// The download path of the one file of `evidence`.
    pub async fn file_path_of(&self, evidence: &str) -> String {
        let file: uuid::Uuid = sqlx::query_scalar!(
            "select evidence_file_id from evidence_file where evidence_id = $1::text::uuid",
            evidence
        )
        .fetch_one(&self.pool)
        .await
        .expect("file");
        format!("/evidence/{evidence}/files/{file}")
    }

    /// Stores the status of an enrolment made here by plain SQL, as enrolling through the
    /// portal does.
    pub async fn store_status(&self, enrolment: uuid::Uuid) {
        let mut conn = self.pool.acquire().await.expect("connection");
        attest::status::db::refresh(&mut conn, attest::ids::EnrolmentId(enrolment))
            .await
            .expect("status stored");
    }

    /// Submits evidence produced by `method` that claims `codes`, with a small PDF attached;
    /// returns its id.
    pub async fn submit_evidence(
        &self,
        candidate: &Browser<'_>,
        enrolled: &Enrolled,
        title: &str,
        method: &str,
        codes: &[&str],
    ) -> String {
        const PDF: &[u8] = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer\n%%EOF\n";
        let mut fields: Vec<(String, String)> = vec![
            ("title".into(), title.into()),
            ("method".into(), method.into()),
            ("activity_on".into(), "2026-10-01".into()),
            (
                "statement".into(),
                "I designed the release pipeline.\nIt deploys on every merge.".into(),
            ),
            ("declaration".into(), "yes".into()),
            ("action".into(), "submit".into()),
        ];
        for code in codes {
            fields.push(("claim".into(), self.criterion(code).await.to_string()));
        }
        let borrowed: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let response = candidate
            .post_multipart(
                &format!("/enrolments/{}/evidence/new", enrolled.enrolment),
                &borrowed,
                &[("file", "pipeline.pdf", PDF)],
            )
            .await;
        let location = response.location().expect("submitted").to_owned();
        assert!(
            location.starts_with("/evidence/"),
            "submission failed: {location}"
        );
        location.trim_start_matches("/evidence/").to_owned()
    }

    /// Judges evidence: each (code, met, feedback), met ones with all five checks.
    pub async fn judge(
        &self,
        assessor: &Browser<'_>,
        evidence: &str,
        decisions: &[(&str, bool, &str)],
    ) -> TestResponse {
        let mut fields: Vec<(String, String)> = Vec::new();
        for (code, met, feedback) in decisions {
            let id = self.criterion(code).await;
            fields.push((
                format!("decision-{id}"),
                if *met { "met" } else { "not_met" }.into(),
            ));
            fields.push((format!("feedback-{id}"), (*feedback).into()));
            if *met {
                for check in ["valid", "authentic", "current", "sufficient", "reliable"] {
                    fields.push((format!("check-{id}"), check.into()));
                }
            }
        }
        let borrowed: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assessor
            .post_form(&format!("/evidence/{evidence}/judgements"), &borrowed)
            .await
    }

    /// Names a witness to `evidence` as its `candidate` (name, email, role); returns the id of
    /// the witness request.
    pub async fn name_witness(
        &self,
        candidate: &Browser<'_>,
        evidence: &str,
        (name, email, role): (&str, &str, &str),
    ) -> uuid::Uuid {
        candidate
            .post_form(
                &format!("/evidence/{evidence}/witness"),
                &[
                    ("witness_name", name),
                    ("witness_email", email),
                    ("witness_role", role),
                ],
            )
            .await
            .assert_redirect_to(&format!("/evidence/{evidence}#witnesses"));
        sqlx::query_scalar!(
            "select witness_request_id from witness_request where witness_email = $1
              order by requested_at desc limit 1",
            email
        )
        .fetch_one(&self.pool)
        .await
        .expect("witness request")
    }

    /// The id of a criterion of the bundled standard by its code.
    pub async fn criterion(&self, code: &str) -> uuid::Uuid {
        sqlx::query_scalar!(
            "select c.criterion_id from criterion c join standard s using (standard_id) where s.urn = 'TECIT50761' and c.code = $1",
            code
        )
        .fetch_one(&self.pool)
        .await
        .expect("criterion")
    }
}

pub const PDF: &[u8] =
    b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n%%EOF\n";

/// A PDF-looking file of `size` bytes whose content is not the same for two seeds.
pub fn pdf_of(size: usize, seed: u8) -> Vec<u8> {
    let mut bytes = PDF.to_vec();
    let mut x = u32::from(seed) | 1;
    while bytes.len() < size {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        bytes.push(x.to_le_bytes()[0]);
    }
    bytes.truncate(size);
    bytes
}
