//! The test harness: a portal over the test's database, requests through the full router,
//! and parsed HTML to assert on.

use attest::AppState;
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use scraper::{Html, Selector};
use sqlx::PgPool;
use tower::ServiceExt;

/// The portal as a test drives it.
pub struct TestApp {
    pub router: Router,
    pub pool: PgPool,
}

impl TestApp {
    /// A portal over `pool` with the bundled standard loaded, as `attest serve` starts.
    pub async fn new(pool: PgPool) -> Self {
        let mut tx = pool.begin().await.expect("begin");
        attest::standards::import::ensure_bundled(&mut tx)
            .await
            .expect("bundled standard loads");
        tx.commit().await.expect("commit");
        Self::without_setup(pool)
    }

    /// A portal over `pool` exactly as given.
    pub fn without_setup(pool: PgPool) -> Self {
        Self {
            router: attest::app(AppState::new(pool.clone())),
            pool,
        }
    }

    pub async fn get(&self, uri: &str) -> TestResponse {
        self.request(Request::get(uri).body(Body::empty()).expect("request"))
            .await
    }

    pub async fn request(&self, request: Request<Body>) -> TestResponse {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        TestResponse {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
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
}

/// A URL of the same server as `DATABASE_URL`, for another database on it.
pub fn database_url_for(database: &str) -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL is set for the tests");
    let (server, _) = base
        .rsplit_once('/')
        .expect("DATABASE_URL names a database");
    format!("{server}/{database}")
}
