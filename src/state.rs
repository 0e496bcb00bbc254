//! What every request handler can reach.

use std::net::IpAddr;
use std::sync::Arc;

use sqlx::PgPool;
use time::Duration;

use crate::auth::password::Passwords;
use crate::clock::Clock;

const MIB: u64 = 1024 * 1024;

/// Settings of a running portal that handlers need.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where people reach the portal, such as `https://attest.example.org`; links in
    /// invitations start with it, and `https` turns on `Secure` `__Host-` cookies.
    pub base_url: String,
    /// A session unused this long ends.
    pub session_idle_timeout: Duration,
    /// A session ends this long after sign-in, however busy.
    pub session_absolute_timeout: Duration,
    /// Reverse proxies whose `X-Forwarded-For` header is believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// The largest evidence file accepted, in bytes.
    pub max_file_bytes: u64,
    /// The most the files of one evidence version may add up to, in bytes.
    pub max_evidence_bytes: u64,
    /// The share of sign-offs sampled for IQA review at random, in percent.
    pub iqa_sample_percent: u8,
}

impl Settings {
    /// True when the portal is served over https.
    pub fn is_https(&self) -> bool {
        self.base_url.starts_with("https://")
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            base_url: "http://127.0.0.1:3000".into(),
            session_idle_timeout: Duration::minutes(30),
            session_absolute_timeout: Duration::hours(12),
            trusted_proxies: Vec::new(),
            max_file_bytes: 50 * MIB,
            max_evidence_bytes: 200 * MIB,
            iqa_sample_percent: 25,
        }
    }
}

/// Shared, cheaply cloned state of the portal.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub settings: Arc<Settings>,
    pub clock: Clock,
    pub passwords: Passwords,
    /// Published standards, held in memory.
    pub standards: Arc<crate::standards::cache::StandardCache>,
}

impl AppState {
    pub fn new(pool: PgPool, settings: Settings, clock: Clock, passwords: Passwords) -> Self {
        Self {
            pool,
            settings: Arc::new(settings),
            clock,
            passwords,
            standards: Arc::default(),
        }
    }
}
