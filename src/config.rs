//! Command line and environment: every setting is a flag with an environment fallback and a
//! default that works on a developer machine with a local PostgreSQL.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@localhost/attest";

/// Attest: competency assessment against occupational standards.
#[derive(Debug, Parser)]
#[command(name = "attest", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub database: DatabaseArgs,

    /// Log as human-readable text or as one JSON object per line.
    #[arg(long, env = "ATTEST_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// Where people reach the portal (e.g. https://attest.example.org); used in links and
    /// decides secure cookies. Defaults to http:// and the address served on.
    #[arg(long, env = "ATTEST_BASE_URL", global = true)]
    pub base_url: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// PostgreSQL connection URL; the database is created if it does not exist.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true, hide_env_values = true)]
    pub database_url: String,

    /// Largest number of database connections this process opens.
    #[arg(
        long,
        env = "ATTEST_DB_MAX_CONNECTIONS",
        default_value_t = 16,
        global = true
    )]
    pub db_max_connections: u32,

    /// Seconds a request waits for a free database connection before it is answered with 503.
    #[arg(long, env = "ATTEST_DB_ACQUIRE_TIMEOUT", default_value = "5", value_parser = parse_seconds, global = true)]
    pub db_acquire_timeout: Duration,

    /// Seconds one statement may run before PostgreSQL cancels it (0: no limit). Applies to
    /// `serve`; migrations and the batch commands (demo, status verify) run without it.
    #[arg(long, env = "ATTEST_DB_STATEMENT_TIMEOUT", default_value = "30", value_parser = parse_limit_seconds, global = true)]
    pub db_statement_timeout: Duration,

    /// Seconds a transaction may wait idle (a stalled upload, a hung request) before
    /// PostgreSQL ends it and frees its locks (0: no limit). Applies to `serve` as above.
    #[arg(long, env = "ATTEST_DB_IDLE_IN_TRANSACTION_TIMEOUT", default_value = "60", value_parser = parse_limit_seconds, global = true)]
    pub db_idle_in_transaction_timeout: Duration,
}

impl DatabaseArgs {
    /// The same database with no statement or idle-transaction limits: for batch commands
    /// whose single statements may rightly run long.
    pub fn without_limits(&self) -> Self {
        Self {
            db_statement_timeout: Duration::ZERO,
            db_idle_in_transaction_timeout: Duration::ZERO,
            ..self.clone()
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the portal.
    Serve(ServeArgs),
    /// Manage competency standards.
    Standard {
        #[command(subcommand)]
        command: StandardCommand,
    },
    /// Manage accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Check the audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Prepare the database: its schema and the role the server works as.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// Manage the portal's signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Check the stored evidence files.
    Blobs {
        #[command(subcommand)]
        command: BlobsCommand,
    },
    /// Check the stored competency statuses.
    Status {
        #[command(subcommand)]
        command: StatusCommand,
    },
    /// Fill a demo cohort with a candidate at every status, and print the accounts.
    Demo(DemoArgs),
}

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Also add a cohort of this many candidates, across every status, with ten submitted pieces
    /// of evidence each, on assessors of 1,000 enrolments each: try the portal at your size.
    #[arg(long, value_name = "N")]
    pub scale: Option<u32>,
}

#[derive(Debug, Subcommand)]
pub enum StatusCommand {
    /// Recompute every enrolment's status from its records and compare it with the stored one;
    /// exits with 1 on any difference.
    Verify {
        /// Rewrite the stored statuses that differ (recorded in the audit trail).
        #[arg(long)]
        repair: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum BlobsCommand {
    /// Read every stored file through and check it against its size and SHA-256; name each
    /// damaged one and the evidence it belongs to, and exit with 1 if any is.
    Verify,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the hash chain and name the first event that was changed or removed; check
    /// that every signed checkpoint (and the one given) is still a prefix of it. Exits with 1
    /// when anything does not fit.
    Verify {
        /// A checkpoint kept elsewhere (the JSON `attest audit checkpoint --export` printed).
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<std::path::PathBuf>,
    },
    /// Make a signed checkpoint of the chain now (when it has grown since the last one).
    Checkpoint {
        /// Print the newest checkpoint as JSON, to keep outside the database.
        #[arg(long)]
        export: bool,
        /// The key that seals the signing key (as for `attest serve`).
        #[arg(long, env = "ATTEST_SECRET_KEY", hide_env_values = true, value_parser = parse_secret_key)]
        secret_key: crate::crypto::SecretKey,
    },
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Apply the migrations this binary carries, and keep the app role's grants current. Run
    /// it with the owner's DATABASE_URL before serving as the app role.
    Migrate,
    /// Create the role `attest_app` that `attest serve` can log in as, with the password read
    /// from standard input, and grant it what the server needs and no more.
    SetupRoles {
        #[arg(long, required = true)]
        app_password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a new signing key and retire the active one; the retired key stays published, so
    /// what it signed can still be checked.
    Rotate {
        /// The key that seals the signing keys (as for `attest serve`).
        #[arg(long, env = "ATTEST_SECRET_KEY", hide_env_values = true, value_parser = parse_secret_key)]
        secret_key: crate::crypto::SecretKey,
    },
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, env = "ATTEST_BIND", default_value = "127.0.0.1:3000")]
    pub bind: SocketAddr,

    /// Minutes of inactivity after which a session ends.
    #[arg(long, env = "ATTEST_SESSION_IDLE_MINUTES", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..))]
    pub session_idle_minutes: u32,

    /// Hours after sign-in at which a session ends, however active.
    #[arg(long, env = "ATTEST_SESSION_ABSOLUTE_HOURS", default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..))]
    pub session_absolute_hours: u32,

    /// Reverse proxy addresses whose X-Forwarded-For header is believed (comma-separated).
    #[arg(long, env = "ATTEST_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<std::net::IpAddr>,

    /// The largest evidence file accepted, in MiB.
    #[arg(long, env = "ATTEST_MAX_FILE_MIB", default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    pub max_file_mib: u64,

    /// The most the files of one piece of evidence may add up to, in MiB.
    #[arg(long, env = "ATTEST_MAX_EVIDENCE_MIB", default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    pub max_evidence_mib: u64,

    /// The share of sign-offs sampled for IQA review at random, in percent (the first of each
    /// assessor in each cohort always is).
    #[arg(long, env = "ATTEST_IQA_SAMPLE_PERCENT", default_value_t = 25, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub iqa_sample_percent: u8,

    /// Days the oldest claim of an enrolment may wait before caseloads and reports show it
    /// amber, and red.
    #[arg(long, env = "ATTEST_WAITING_AMBER_DAYS", default_value_t = 7, value_parser = clap::value_parser!(u16).range(1..=365))]
    pub waiting_amber_days: u16,
    #[arg(long, env = "ATTEST_WAITING_RED_DAYS", default_value_t = 14, value_parser = clap::value_parser!(u16).range(1..=365))]
    pub waiting_red_days: u16,

    /// Password hashes computed at once; more wait, so sign-in storms leave cores for pages.
    #[arg(long, env = "ATTEST_PASSWORD_HASH_CONCURRENCY")]
    pub password_hash_concurrency: Option<usize>,

    /// Seconds that requests in flight get to finish after SIGTERM or SIGINT. Those still
    /// running then are ended: each change is one transaction, so theirs rolls back whole.
    #[arg(long, env = "ATTEST_SHUTDOWN_GRACE_SECONDS", default_value_t = 20, value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub shutdown_grace_seconds: u64,

    /// Seconds an upload may send nothing before it is ended (a stalled client then holds no
    /// transaction or database connection). A slow upload that keeps sending goes on.
    #[arg(long, env = "ATTEST_UPLOAD_IDLE_SECONDS", default_value = "60", value_parser = parse_seconds)]
    pub upload_idle_seconds: Duration,

    /// Seconds a request may take to be answered (0: no limit). One still running then is
    /// ended with 503, its change rolled back whole. Uploads have their idle limit instead, and
    /// a download's body streams for as long as its client keeps reading.
    #[arg(long, env = "ATTEST_REQUEST_TIMEOUT_SECONDS", default_value = "30", value_parser = parse_limit_seconds)]
    pub request_timeout_seconds: Duration,

    /// Where to serve `/metrics` for Prometheus (such as `127.0.0.1:9464`): an address of its
    /// own, never the portal's. Off when not set.
    #[arg(long, env = "ATTEST_METRICS_BIND")]
    pub metrics_bind: Option<std::net::SocketAddr>,

    /// Whether assessors, IQAs and admins must use a second factor to sign in (`required`),
    /// anyone may (`optional`), or none is offered (`off`).
    #[arg(
        long,
        env = "ATTEST_SECOND_FACTOR",
        value_enum,
        default_value = "required"
    )]
    pub second_factor: SecondFactorPolicy,

    /// 64 hexadecimal characters (`openssl rand -hex 32`): the key that seals the secrets the
    /// portal keeps in its database (second-factor secrets, signing keys). Keep it apart from
    /// the database's backups; without it, those secrets cannot be read.
    #[arg(long, env = "ATTEST_SECRET_KEY", hide_env_values = true, value_parser = parse_secret_key)]
    pub secret_key: crate::crypto::SecretKey,

    /// Seconds a client may take to send a request's headers once it has begun; a connection
    /// that has not sent them all by then is closed (slow clients cannot hold sockets open).
    #[arg(long, env = "ATTEST_HEADER_READ_SECONDS", default_value = "15", value_parser = parse_seconds)]
    pub header_read_seconds: Duration,
}

impl ServeArgs {
    /// The default hashing concurrency: half the cores, at least one.
    pub fn hash_concurrency(&self) -> usize {
        self.password_hash_concurrency
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() / 2))
            .max(1)
    }
}

#[derive(Debug, Subcommand)]
pub enum StandardCommand {
    /// Load a standard from a file in the NOS plain-text format. Loading the same URN and
    /// version again changes nothing.
    Import {
        /// The standard's text file.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account. Without --password-stdin it prints an invitation link instead.
    Add {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// A role to give (candidate, assessor, iqa, admin); repeat for several.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set an account's password, read from standard input; ends its sessions and lifts any
    /// wait on signing in to it.
    SetPassword {
        #[arg(long)]
        email: String,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Remove an account's authenticator and recovery codes and end its sessions (a lost
    /// phone, or the last admin's own); it sets a new one up at its next sign-in.
    ResetSecondFactor {
        #[arg(long)]
        email: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Whole or fractional seconds, 0 for no limit.
fn parse_limit_seconds(text: &str) -> Result<Duration, String> {
    text.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("{text:?} is not a number of seconds (0 for no limit)"))
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    text.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("{text:?} is not a positive number of seconds"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default of a flag as clap declares it; the environment of the test run cannot change it.
    fn default_of(id: &str) -> String {
        use clap::CommandFactory;
        let command = Cli::command();
        let serve = command.find_subcommand("serve").expect("serve");
        let arg = command
            .get_arguments()
            .chain(serve.get_arguments())
            .find(|a| a.get_id() == id)
            .unwrap_or_else(|| panic!("no flag {id}"));
        arg.get_default_values()[0].to_string_lossy().into_owned()
    }

    #[test]
    fn defaults_work_on_a_developer_machine() {
        assert_eq!(default_of("database_url"), DEFAULT_DATABASE_URL);
        assert_eq!(default_of("bind"), "127.0.0.1:3000");
        assert_eq!(default_of("db_acquire_timeout"), "5");
        assert_eq!(default_of("second_factor"), "required");
    }

    #[test]
    fn a_wait_is_green_then_amber_then_red() {
        let thresholds = WaitingThresholds::new(7, 14);
        let now = time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(100);
        let since = |days: i64| Some(now - time::Duration::days(days));
        assert_eq!(thresholds.level(None, now), None);
        assert_eq!(thresholds.level(since(6), now), Some(WaitLevel::Green));
        assert_eq!(thresholds.level(since(7), now), Some(WaitLevel::Amber));
        assert_eq!(thresholds.level(since(14), now), Some(WaitLevel::Red));
        assert_eq!(
            WaitingThresholds::new(10, 3).red_days,
            10,
            "red never comes before amber"
        );
    }

    #[test]
    fn only_staff_must_have_a_second_factor_and_only_when_required() {
        use crate::identity::Role;
        assert!(SecondFactorPolicy::Required.requires(&[Role::Candidate, Role::Assessor]));
        assert!(!SecondFactorPolicy::Required.requires(&[Role::Candidate]));
        assert!(!SecondFactorPolicy::Optional.requires(&[Role::Admin]));
        assert!(!SecondFactorPolicy::Off.requires(&[Role::Admin]));
    }

    #[test]
    fn a_zero_acquire_timeout_is_refused() {
        let key = "ab".repeat(32);
        let serve = |timeout: &str| {
            Cli::try_parse_from([
                "attest",
                "--db-acquire-timeout",
                timeout,
                "serve",
                "--secret-key",
                &key,
            ])
        };
        assert!(serve("5").is_ok());
        assert!(serve("0").is_err());
    }
}

const MIB: u64 = 1024 * 1024;

fn parse_secret_key(text: &str) -> Result<crate::crypto::SecretKey, String> {
    crate::crypto::SecretKey::from_hex(text)
}

/// Whether staff must, may or cannot use a second factor at sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SecondFactorPolicy {
    /// Assessors, IQAs and admins must set one up at their next sign-in; anyone may.
    Required,
    /// Anyone may set one up from their account page.
    Optional,
    /// None is asked for or offered.
    Off,
}

impl SecondFactorPolicy {
    /// Whether someone holding `roles` must have a second factor.
    pub fn requires(self, roles: &[crate::identity::Role]) -> bool {
        use crate::identity::Role;
        self == Self::Required
            && roles
                .iter()
                .any(|r| matches!(r, Role::Assessor | Role::Iqa | Role::Admin))
    }
}

/// Settings of a running portal that handlers need.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where people reach the portal, such as `https://attest.example.org`; links in
    /// invitations start with it, and `https` turns on `Secure` `__Host-` cookies.
    pub base_url: String,
    /// A session unused this long ends.
    pub session_idle_timeout: time::Duration,
    /// A session ends this long after sign-in, however busy.
    pub session_absolute_timeout: time::Duration,
    /// Reverse proxies whose `X-Forwarded-For` header is believed.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// The largest evidence file accepted, in bytes.
    pub max_file_bytes: u64,
    /// The most the files of one evidence version may add up to, in bytes.
    pub max_evidence_bytes: u64,
    /// The share of sign-offs sampled for IQA review at random, in percent.
    pub iqa_sample_percent: u8,
    /// How long a claim may wait before it shows amber, and red.
    pub waiting: WaitingThresholds,
    /// How long an upload may send nothing before it is ended.
    pub upload_idle: Duration,
    /// How long any other request may take to be answered (zero: no limit).
    pub request_timeout: Duration,
    /// Who must, or may, use a second factor.
    pub second_factor: SecondFactorPolicy,
    /// Seals the secrets kept in the database.
    pub secret_key: crate::crypto::SecretKey,
}

/// Days after which a waiting claim shows amber, and red (red is never before amber).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitingThresholds {
    pub amber_days: i64,
    pub red_days: i64,
}

impl WaitingThresholds {
    pub fn new(amber_days: u16, red_days: u16) -> Self {
        Self {
            amber_days: i64::from(amber_days),
            red_days: i64::from(red_days.max(amber_days)),
        }
    }

    /// How a wait since `since` reads at `now`: green, amber or red (`None` when nothing waits).
    pub fn level(
        &self,
        since: Option<time::OffsetDateTime>,
        now: time::OffsetDateTime,
    ) -> Option<WaitLevel> {
        let days = (now - since?).whole_days();
        Some(if days >= self.red_days {
            WaitLevel::Red
        } else if days >= self.amber_days {
            WaitLevel::Amber
        } else {
            WaitLevel::Green
        })
    }
}

/// How long a claim has waited, against the thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitLevel {
    Green,
    Amber,
    Red,
}

impl WaitLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Green => "green",
            Self::Amber => "amber",
            Self::Red => "red",
        }
    }

    /// Words for what the colour says, so it is never the only sign.
    pub fn label(self) -> &'static str {
        match self {
            Self::Green => "within time",
            Self::Amber => "getting long",
            Self::Red => "overdue",
        }
    }
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
            session_idle_timeout: time::Duration::minutes(30),
            session_absolute_timeout: time::Duration::hours(12),
            trusted_proxies: Vec::new(),
            max_file_bytes: 50 * MIB,
            max_evidence_bytes: 200 * MIB,
            iqa_sample_percent: 25,
            waiting: WaitingThresholds::new(7, 14),
            upload_idle: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
            second_factor: SecondFactorPolicy::Optional,
            secret_key: crate::crypto::SecretKey::for_tests(),
        }
    }
}
