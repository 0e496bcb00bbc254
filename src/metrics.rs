//! What the process is doing, for Prometheus: requests and their latency per route and
//! status, the database pool, uploads and downloads in flight, audit appends and what the
//! storage sweeper removed. The figures are the process's own, in one registry for its life;
//! `web::metrics` counts requests and serves them.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use sqlx::PgPool;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    /// The matched route (`/evidence/{id}`), never the path: ids and tokens stay out.
    route: String,
    method: &'static str,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Request latencies from 1 ms to about 16 s.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// The process's metrics.
pub struct Metrics {
    registry: Registry,
    /// Each request's time to answer; its `_count` is the number of requests.
    latency: HistogramFamily<RequestLabels>,
    pool: Family<StateLabels, Gauge>,
    pool_timeouts: Counter,
    uploads: Gauge,
    downloads: Gauge,
    audit_appends: Histogram,
    swept: Family<KindLabels, Counter>,
    damaged_files: Counter,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's one set of metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("attest");
        let latency: HistogramFamily<RequestLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "Requests answered and the time to answer each (to its response head), by route, method and status",
            latency.clone(),
        );
        let pool = Family::<StateLabels, Gauge>::default();
        registry.register(
            "db_pool_connections",
            "The serving pool's connections, in use and idle",
            pool.clone(),
        );
        let pool_timeouts = Counter::default();
        registry.register(
            "db_pool_acquire_timeouts",
            "Requests that waited for a connection longer than the pool's acquire timeout",
            pool_timeouts.clone(),
        );
        let uploads = Gauge::default();
        registry.register(
            "uploads_in_flight",
            "Files being streamed into storage",
            uploads.clone(),
        );
        let downloads = Gauge::default();
        registry.register(
            "downloads_in_flight",
            "Files being streamed to clients",
            downloads.clone(),
        );
        let audit_appends = Histogram::new(exponential_buckets(0.000_1, 2.0, 14));
        registry.register(
            "audit_append_duration_seconds",
            "Time to append audit events (one statement, one or many events)",
            audit_appends.clone(),
        );
        let swept = Family::<KindLabels, Counter>::default();
        registry.register(
            "storage_swept",
            "What the storage sweeper removed: abandoned uploads, unreferenced files, chunks",
            swept.clone(),
        );
        let damaged_files = Counter::default();
        registry.register(
            "storage_damaged_files",
            "Stored files found damaged when read out (their bytes do not match their SHA-256)",
            damaged_files.clone(),
        );
        Self {
            registry,
            latency,
            pool,
            pool_timeouts,
            uploads,
            downloads,
            audit_appends,
            swept,
            damaged_files,
        }
    }

    /// Counts a request to `route` answered with `status`, with the time it took.
    pub fn answered(&self, route: String, method: &'static str, status: u16, took: Duration) {
        let labels = RequestLabels {
            route,
            method,
            status,
        };
        self.latency
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// Counts a database failure that is the pool's timeout: a request gave up waiting for
    /// a connection.
    pub fn database_failed(&self, error: &sqlx::Error) {
        if matches!(error, sqlx::Error::PoolTimedOut) {
            self.pool_timeouts.inc();
        }
    }

    /// Time spent appending audit events.
    pub fn audit_appended(&self, took: Duration) {
        self.audit_appends.observe(took.as_secs_f64());
    }

    /// An upload under way, until the guard is dropped (however the upload ends).
    pub fn upload(&self) -> InFlight {
        InFlight::new(&self.uploads)
    }

    /// A download under way, until the guard is dropped.
    pub fn download(&self) -> InFlight {
        InFlight::new(&self.downloads)
    }

    /// Counts a stored file found damaged as it was read out.
    pub fn file_damaged(&self) {
        self.damaged_files.inc();
    }

    /// Counts what one storage sweep removed.
    pub fn swept(&self, abandoned_uploads: i64, unreferenced_files: i64, chunks: i64) {
        for (kind, count) in [
            ("abandoned_uploads", abandoned_uploads),
            ("unreferenced_files", unreferenced_files),
            ("chunks", chunks),
        ] {
            let counter = self.swept.get_or_create(&KindLabels { kind });
            counter.inc_by(u64::try_from(count).unwrap_or(0));
        }
    }

    /// Everything in the OpenMetrics text format, with the pool read as of now.
    pub fn render(&self, pool: &PgPool) -> String {
        let size = i64::from(pool.size());
        let idle = i64::try_from(pool.num_idle()).unwrap_or(0);
        self.pool
            .get_or_create(&StateLabels { state: "in_use" })
            .set(size - idle);
        self.pool
            .get_or_create(&StateLabels { state: "idle" })
            .set(idle);
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Counts one thing in flight on a gauge, for as long as it lives.
pub struct InFlight(Gauge);

impl InFlight {
    fn new(gauge: &Gauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}
