//! Command line: parsed by clap, then checked into a `Command` so every bound
//! (users, concurrency, time, request cap, loopback target) is enforced in one
//! place that the unit tests can reach. The validate load run and the PIN
//! probe are the top-level flags; the mobile app's push round trip is the
//! `push` subcommand.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use reqwest::Url;

pub const MAX_USERS: u32 = 100_000;
pub const MAX_CONCURRENCY: u32 = 1024;
pub const MAX_DURATION_SECS: u64 = 3600;
pub const MAX_REQUESTS_CAP: u64 = 10_000_000;
pub const MAX_ITERATIONS: u32 = 1000;
pub const MAX_PREFIX_CHARS: usize = 64;
/// Push mode: timed round trips per run.
pub const MAX_ROUND_TRIPS: u64 = 1_000_000;
/// Push mode: concurrent round trips (one user each at a time).
pub const MAX_PUSH_CONCURRENCY: u32 = 256;
/// Push mode: users (devices) read from the activation-code file.
pub const MAX_PUSH_USERS: usize = 10_000;
/// Push mode: the server refuses a longer `?wait=`.
pub const MAX_WAIT_SECS: u64 = 60;
pub const MAX_SETTLE_MS: u64 = 1000;
pub const MAX_ROUND_TRIP_TIMEOUT_SECS: u64 = 600;
/// Seeded users (`seed`, and the range a `--seeded` load run samples).
pub const MAX_SEEDED_USERS: u64 = 10_000_000;
/// Seeded users driven by one load run.
pub const MAX_SAMPLE: u32 = 100_000;
/// Users per seeding transaction.
pub const MAX_SEED_BATCH: u32 = 50_000;
/// Audit rows `audit` inserts.
pub const MAX_AUDIT_ROWS: u64 = 100_000_000;

/// How each validate request proves the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// The OATH code alone (`oath_token:oath`).
    Otp,
    /// PIN followed by the OATH code (`oath_token:oath_pin`): one argon2id
    /// check per request on the server.
    PinOtp,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Otp => "otp",
            Mode::PinOtp => "pin-otp",
        }
    }

    /// The `method` value of `PUT /sdk/v1/users/{username}/method`.
    pub fn method(self) -> &'static str {
        match self {
            Mode::Otp => "oath_token:oath",
            Mode::PinOtp => "oath_token:oath_pin",
        }
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "twofold-bench",
    version,
    about = "Load generator for Twofold's SDK API (`POST /sdk/v1/validate`), loopback targets only",
    long_about = "Creates --users users with HOTP tokens through the SDK API (not timed), then \
                  drives POST /sdk/v1/validate with fresh valid codes from --concurrency clients \
                  for --duration-secs seconds (or --max-requests requests, whichever comes first) \
                  and prints throughput and latency percentiles.\n\n\
                  With --seeded N it drives --sample users of the N made by `twofold-bench seed` \
                  instead of creating any.\n\n\
                  With --pin-hash-cost it instead times one production-cost argon2id PIN check \
                  in-process and prints the per-core bound on PIN+OTP validations.\n\n\
                  `twofold-bench push --help`: the mobile app's push round trip instead; \
                  `seed --help` and `audit --help`: bulk loaders for scale runs.",
    subcommand_negates_reqs = true,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub sub: Option<Sub>,
    /// Base URL of the server, e.g. https://127.0.0.1:8443 (loopback only).
    #[arg(long, required_unless_present = "pin_hash_cost")]
    pub url: Option<String>,
    /// Service account name (HTTP Basic user).
    #[arg(long, required_unless_present = "pin_hash_cost")]
    pub account: Option<String>,
    /// Service account secret (HTTP Basic password). Prefer the environment
    /// variable: a command line is visible to every local user.
    #[arg(
        long,
        env = "TWOFOLD_BENCH_SECRET",
        hide_env_values = true,
        required_unless_present = "pin_hash_cost"
    )]
    pub secret: Option<String>,
    /// PEM certificate to trust as the only root (the server's
    /// `<data_dir>/tls/cert.pem`).
    #[arg(long, required_unless_present = "pin_hash_cost")]
    pub ca_file: Option<PathBuf>,
    /// Users to create and drive; each is driven by one client at a time.
    #[arg(long, default_value_t = 200)]
    pub users: u32,
    /// Concurrent clients (at most --users).
    #[arg(long, default_value_t = 16)]
    pub concurrency: u32,
    /// Length of the timed run.
    #[arg(long, default_value_t = 20)]
    pub duration_secs: u64,
    /// Hard cap on timed validate requests.
    #[arg(long, default_value_t = 1_000_000)]
    pub max_requests: u64,
    /// otp: code alone; pin-otp: PIN followed by the code.
    #[arg(long, value_enum, default_value_t = Mode::Otp)]
    pub mode: Mode,
    /// PIN given to every user in pin-otp mode (must pass the server's PIN
    /// rules: at least 4 digits, no runs or repeats).
    #[arg(long, default_value = "4826")]
    pub pin: String,
    /// Prefix of the created usernames (default: bench-MODE-PID-TIME, so
    /// repeated runs against one server do not collide).
    #[arg(long)]
    pub user_prefix: Option<String>,
    /// Per-request timeout.
    #[arg(long, default_value_t = 10)]
    pub request_timeout_secs: u64,
    /// Instead of load: time ONE production-cost argon2id PIN check.
    #[arg(long)]
    pub pin_hash_cost: bool,
    /// Timed PIN checks for --pin-hash-cost.
    #[arg(long, default_value_t = 20)]
    pub iterations: u32,
    /// Drive users made by `twofold-bench seed` instead of creating them:
    /// the size of the seeded range (`--user-prefix`-0000000 up). OTP mode
    /// only; needs --database-url.
    #[arg(long)]
    pub seeded: Option<u64>,
    /// With --seeded: how many of them to drive, one picked at random from
    /// each of this many equal slices of the range.
    #[arg(long, default_value_t = 5000)]
    pub sample: u32,
    /// With --seeded: the server's database, read (untimed, before the run)
    /// for the next HOTP counter of each picked user.
    #[arg(long)]
    pub database_url: Option<String>,
    /// The server's process id (same machine): its CPU use over the timed
    /// phase is reported too.
    #[arg(long)]
    pub server_pid: Option<u32>,
}

#[derive(Debug, Subcommand)]
pub enum Sub {
    /// Time the mobile app's push round trip: SDK start → device → caller.
    Push(PushArgs),
    /// Bulk-load users with an HOTP (or TOTP) token straight into a
    /// database, for scale runs. Never on a real server: the seeds are
    /// derived from a public key.
    Seed(SeedArgs),
    /// Bulk-load audit rows, then time the audit log's queries.
    Audit(AuditArgs),
}

#[derive(Debug, Args)]
#[command(
    long_about = "Inserts --users users named PREFIX-0000000, PREFIX-0000001, … (from --first) \
                  straight into the database through twofold-store, thousands per transaction: \
                  each enabled, with default method oath_token:oath and one OATH token (SHA-1, 6 \
                  digits) whose seed is HMAC-SHA256(a key published in this tool, username), \
                  sealed with the sealing key the server uses (<data-dir>/sealing.key, created \
                  when missing). `twofold-bench --seeded` computes the codes of these users from \
                  their names. The seeds are public: never run this on a database real users \
                  sign in to. No audit rows are written."
)]
pub struct SeedArgs {
    /// The server's database (sqlite://PATH or postgres://…); its schema is
    /// brought up to date first.
    #[arg(long)]
    pub database_url: String,
    /// The server's data directory: the sealing key is <data-dir>/sealing.key.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// The sealing key file when the server is told another one
    /// (`secrets.sealing_key_file`).
    #[arg(long)]
    pub sealing_key_file: Option<PathBuf>,
    /// Users to insert.
    #[arg(long)]
    pub users: u64,
    /// Index of the first one (to add to an earlier seed).
    #[arg(long, default_value_t = 0)]
    pub first: u64,
    /// Username prefix.
    #[arg(long, default_value = "seed")]
    pub prefix: String,
    /// Token type: hotp (counter 0) or totp (30 s steps).
    #[arg(long, value_enum, default_value_t = SeedKind::Hotp)]
    pub kind: SeedKind,
    /// Users per transaction.
    #[arg(long, default_value_t = 5000)]
    pub batch: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SeedKind {
    Hotp,
    Totp,
}

#[derive(Debug, Args)]
#[command(
    long_about = "Appends --rows audit rows (sdk.validate events about PREFIX-0 … \
                  PREFIX-<subjects-1>, 10 ms apart, ending about now) straight into the database, \
                  generated by the database in transactions of a million rows; then times, \
                  through twofold-store, the queries behind `twofold audit tail` (newest events, \
                  of one user, and the --follow poll) and the SDK's GET /sdk/v1/audit paging \
                  (first page, deep pages by before_id, one user's pages), each --samples times, \
                  and prints p50 and max of each. --rows 0 only times."
)]
pub struct AuditArgs {
    /// The database (sqlite://PATH or postgres://…).
    #[arg(long)]
    pub database_url: String,
    /// Audit rows to insert before timing.
    #[arg(long, default_value_t = 10_000_000)]
    pub rows: u64,
    /// Distinct subjects the rows are about.
    #[arg(long, default_value_t = 100_000)]
    pub subjects: u64,
    /// Subject name prefix.
    #[arg(long, default_value = "audit")]
    pub prefix: String,
    /// Timed calls of each query.
    #[arg(long, default_value_t = 50)]
    pub samples: u32,
}

#[derive(Debug, Clone)]
pub struct SeedConfig {
    pub database_url: String,
    pub data_dir: PathBuf,
    pub sealing_key_file: PathBuf,
    pub users: u64,
    pub first: u64,
    pub prefix: String,
    pub kind: SeedKind,
    pub batch: u32,
}

#[derive(Debug, Clone)]
pub struct AuditConfig {
    pub database_url: String,
    pub rows: u64,
    pub subjects: u64,
    pub prefix: String,
    pub samples: u32,
}

fn check_database_url(url: &str) -> Result<String> {
    let url = url.trim();
    if !(url.starts_with("sqlite:")
        || url.starts_with("postgres:")
        || url.starts_with("postgresql:"))
    {
        bail!("--database-url must be sqlite://PATH or postgres://…");
    }
    Ok(url.to_string())
}

impl SeedArgs {
    pub fn into_config(self) -> Result<SeedConfig> {
        let users = in_range("users", self.users, 1, MAX_SEEDED_USERS)?;
        let first = in_range("first", self.first, 0, MAX_SEEDED_USERS - users)?;
        let batch = in_range("batch", self.batch, 1, MAX_SEED_BATCH)?;
        Ok(SeedConfig {
            database_url: check_database_url(&self.database_url)?,
            sealing_key_file: self
                .sealing_key_file
                .unwrap_or_else(|| self.data_dir.join("sealing.key")),
            data_dir: self.data_dir,
            users,
            first,
            prefix: check_prefix(&self.prefix)?,
            kind: self.kind,
            batch,
        })
    }
}

impl AuditArgs {
    pub fn into_config(self) -> Result<AuditConfig> {
        Ok(AuditConfig {
            database_url: check_database_url(&self.database_url)?,
            rows: in_range("rows", self.rows, 0, MAX_AUDIT_ROWS)?,
            subjects: in_range("subjects", self.subjects, 1, MAX_SEEDED_USERS)?,
            prefix: check_prefix(&self.prefix)?,
            samples: in_range("samples", self.samples, 1, 10_000)?,
        })
    }
}

#[derive(Debug, Args)]
#[command(
    long_about = "Activates one device (a fresh Ed25519 key) per line of --activation-codes on \
                  --device-url, checks each with one untimed round trip, then times \
                  --round-trips round trips from --concurrency clients, each on its own user: \
                  the device long-polls GET /mobile/v1/requests?wait=W on --device-url; the \
                  caller POSTs /sdk/v1/authenticate on --url (t0); the device receives the \
                  request (t1), approves it with the number from the SDK's answer; the \
                  caller's GET /sdk/v1/authenticate/{id}?wait=W returns accepted (t2). Prints \
                  percentiles of t1-t0 and t2-t0 and round trips per second. Loopback targets \
                  only."
)]
pub struct PushArgs {
    /// Base URL of the node the SDK caller uses, e.g. https://127.0.0.1:8443
    /// (loopback only).
    #[arg(long)]
    pub url: String,
    /// Base URL of the node the devices use (default: --url); another node
    /// sharing the database for a multi-node run (loopback only).
    #[arg(long)]
    pub device_url: Option<String>,
    /// Service account (role `validate`) name (HTTP Basic user).
    #[arg(long)]
    pub account: String,
    /// Service account secret. Prefer the environment variable: a command
    /// line is visible to every local user.
    #[arg(long, env = "TWOFOLD_BENCH_SECRET", hide_env_values = true)]
    pub secret: String,
    /// PEM certificate to trust as the only root (`<data_dir>/tls/cert.pem`;
    /// every node must serve a certificate it signs or is).
    #[arg(long)]
    pub ca_file: PathBuf,
    /// File of `USERNAME CODE` lines, one per user (method `mobile_app`, no
    /// device yet), from `twofold device activation-code USERNAME`; `#`
    /// comments and blank lines are skipped.
    #[arg(long)]
    pub activation_codes: PathBuf,
    /// Timed round trips.
    #[arg(long, default_value_t = 1000)]
    pub round_trips: u64,
    /// Round trips in flight at once, each on its own user (at most the
    /// users in --activation-codes).
    #[arg(long, default_value_t = 8)]
    pub concurrency: u32,
    /// `?wait=` of the device's and the caller's long-polls, in seconds.
    #[arg(long, default_value_t = 30)]
    pub wait_secs: u64,
    /// Pause between sending the device's long-poll and starting the sign-in,
    /// so the poll is parked on the server when the request is created.
    #[arg(long, default_value_t = 20)]
    pub poll_settle_ms: u64,
    /// A round trip not accepted within this is a failure.
    #[arg(long, default_value_t = 70)]
    pub round_trip_timeout_secs: u64,
    /// No round trip starts after this much of the timed phase (the run
    /// then fails for the ones not done).
    #[arg(long, default_value_t = 900)]
    pub max_duration_secs: u64,
}

/// What to run, with every bound checked.
#[derive(Debug)]
pub enum Command {
    Load(Box<LoadConfig>),
    PinHashCost { iterations: u32 },
    Push(Box<PushConfig>),
    Seed(Box<SeedConfig>),
    Audit(Box<AuditConfig>),
}

#[derive(Debug, Clone)]
pub struct PushConfig {
    pub base: Url,
    pub device_base: Url,
    pub account: String,
    pub secret: String,
    pub ca_file: PathBuf,
    pub activation_codes: PathBuf,
    pub round_trips: u64,
    pub concurrency: u32,
    pub wait: Duration,
    pub poll_settle: Duration,
    pub round_trip_timeout: Duration,
    pub max_duration: Duration,
}

/// One line of the activation-code file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivationLine {
    pub username: String,
    /// Digits only (the spaces of `4821 0937 5526` removed).
    pub code: String,
}

/// Reads `USERNAME CODE` lines (the code may keep its reading spaces);
/// between 1 and `MAX_PUSH_USERS` users, each once.
pub fn parse_activation_codes(text: &str) -> Result<Vec<ActivationLine>> {
    let mut out: Vec<ActivationLine> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let username = words.next().unwrap_or_default();
        let code: String = words.collect();
        if username.chars().count() > 256 || username.contains(':') {
            bail!("activation codes, line {}: bad username", n + 1);
        }
        if !(6..=32).contains(&code.len()) || !code.bytes().all(|b| b.is_ascii_digit()) {
            bail!(
                "activation codes, line {}: expected `USERNAME CODE` with a code of digits",
                n + 1
            );
        }
        if out.iter().any(|l| l.username == username) {
            bail!(
                "activation codes, line {}: {username} appears twice (one device per user)",
                n + 1
            );
        }
        if out.len() == MAX_PUSH_USERS {
            bail!("activation codes: more than {MAX_PUSH_USERS} users");
        }
        out.push(ActivationLine {
            username: username.to_string(),
            code,
        });
    }
    if out.is_empty() {
        bail!("activation codes: no `USERNAME CODE` line");
    }
    Ok(out)
}

/// Each user is driven by one client at a time, so no more clients than
/// users.
pub fn check_push_users(users: usize, concurrency: u32) -> Result<()> {
    if concurrency as usize > users {
        bail!(
            "--concurrency ({concurrency}) must not exceed the users in --activation-codes ({users}): \
             each user is driven by one client at a time"
        );
    }
    Ok(())
}

impl PushArgs {
    pub fn into_config(self) -> Result<PushConfig> {
        let base = loopback_base(&self.url)?;
        let device_base = match &self.device_url {
            Some(u) => loopback_base(u).context("--device-url")?,
            None => base.clone(),
        };
        if self.account.trim().is_empty() || self.account.contains(':') {
            bail!("--account must be a non-empty name without ':'");
        }
        if self.secret.is_empty() {
            bail!("--secret must not be empty");
        }
        let round_trips = in_range("round-trips", self.round_trips, 1, MAX_ROUND_TRIPS)?;
        let concurrency = in_range("concurrency", self.concurrency, 1, MAX_PUSH_CONCURRENCY)?;
        let wait_secs = in_range("wait-secs", self.wait_secs, 1, MAX_WAIT_SECS)?;
        let settle_ms = in_range("poll-settle-ms", self.poll_settle_ms, 0, MAX_SETTLE_MS)?;
        let timeout_secs = in_range(
            "round-trip-timeout-secs",
            self.round_trip_timeout_secs,
            5,
            MAX_ROUND_TRIP_TIMEOUT_SECS,
        )?;
        let max_duration_secs = in_range(
            "max-duration-secs",
            self.max_duration_secs,
            1,
            MAX_DURATION_SECS,
        )?;
        Ok(PushConfig {
            base,
            device_base,
            account: self.account,
            secret: self.secret,
            ca_file: self.ca_file,
            activation_codes: self.activation_codes,
            round_trips,
            concurrency,
            wait: Duration::from_secs(wait_secs),
            poll_settle: Duration::from_millis(settle_ms),
            round_trip_timeout: Duration::from_secs(timeout_secs),
            max_duration: Duration::from_secs(max_duration_secs),
        })
    }
}

#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub base: Url,
    pub account: String,
    pub secret: String,
    pub ca_file: PathBuf,
    pub users: u32,
    pub concurrency: u32,
    pub duration: Duration,
    pub max_requests: u64,
    pub mode: Mode,
    pub pin: String,
    pub user_prefix: String,
    pub request_timeout: Duration,
    /// Drive seeded users instead of creating them.
    pub seeded: Option<Seeded>,
    pub server_pid: Option<u32>,
}

/// A `--seeded` run: `sample` users picked from `PREFIX-0000000` up to
/// `range` (exclusive), their counters read from `database_url`.
#[derive(Debug, Clone)]
pub struct Seeded {
    pub range: u64,
    pub sample: u32,
    pub database_url: String,
}

fn in_range<T: PartialOrd + Copy + std::fmt::Display>(name: &str, v: T, lo: T, hi: T) -> Result<T> {
    if v < lo || v > hi {
        bail!("--{name} must be between {lo} and {hi}, not {v}");
    }
    Ok(v)
}

/// Accepts only `https://` URLs whose host is 127.0.0.1, ::1 or localhost,
/// with no credentials, query or fragment. Returns it with a path of `/`.
pub fn loopback_base(raw: &str) -> Result<Url> {
    let url = Url::parse(raw.trim()).with_context(|| format!("--url {raw:?} is not a URL"))?;
    if url.scheme() != "https" {
        bail!("--url must be https://, not {}://", url.scheme());
    }
    let host = url.host_str().unwrap_or("");
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(is_loopback_ip);
    if !loopback {
        bail!(
            "--url host must be 127.0.0.1, ::1 or localhost (this tool only loads local servers), not {}",
            url.host_str().unwrap_or("nothing")
        );
    }
    if !url.username().is_empty() || url.password().is_some() {
        bail!("--url must not carry credentials; use --account and --secret");
    }
    if url.query().is_some() || url.fragment().is_some() {
        bail!("--url must not have a query or fragment");
    }
    if !(url.path().is_empty() || url.path() == "/") {
        bail!("--url must be the server's base URL without a path, not {url}");
    }
    let mut base = url;
    base.set_path("/");
    Ok(base)
}

/// 127.0.0.1 or ::1 (not the rest of 127/8: the documented targets only).
pub fn is_loopback_ip(ip: IpAddr) -> bool {
    ip == IpAddr::V4(Ipv4Addr::LOCALHOST) || ip == IpAddr::V6(Ipv6Addr::LOCALHOST)
}

fn check_prefix(prefix: &str) -> Result<String> {
    if prefix.is_empty() || prefix.chars().count() > MAX_PREFIX_CHARS {
        bail!("--user-prefix must be 1 to {MAX_PREFIX_CHARS} characters");
    }
    if let Some(c) = prefix
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        bail!("--user-prefix contains {c:?}; use ASCII letters, digits and . _ - only");
    }
    Ok(prefix.to_string())
}

fn default_prefix(mode: Mode) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("bench-{}-{}-{secs}", mode.name(), std::process::id())
}

impl Cli {
    pub fn into_command(self) -> Result<Command> {
        match self.sub {
            Some(Sub::Push(push)) => return Ok(Command::Push(Box::new(push.into_config()?))),
            Some(Sub::Seed(seed)) => return Ok(Command::Seed(Box::new(seed.into_config()?))),
            Some(Sub::Audit(audit)) => return Ok(Command::Audit(Box::new(audit.into_config()?))),
            None => {}
        }
        if self.pin_hash_cost {
            let iterations = in_range("iterations", self.iterations, 1, MAX_ITERATIONS)?;
            return Ok(Command::PinHashCost { iterations });
        }
        let (Some(url), Some(account), Some(secret), Some(ca_file)) =
            (self.url, self.account, self.secret, self.ca_file)
        else {
            bail!("--url, --account, --secret and --ca-file are required for a load run");
        };
        let base = loopback_base(&url)?;
        if account.trim().is_empty() || account.contains(':') {
            bail!("--account must be a non-empty name without ':'");
        }
        if secret.is_empty() {
            bail!("--secret must not be empty");
        }
        let seeded = match self.seeded {
            None => None,
            Some(range) => {
                let range = in_range("seeded", range, 1, MAX_SEEDED_USERS)?;
                if self.mode != Mode::Otp {
                    bail!("--seeded users are on oath_token:oath: --mode otp only");
                }
                if self.user_prefix.is_none() {
                    bail!("--seeded needs the --user-prefix they were seeded with");
                }
                let Some(url) = self.database_url.as_deref() else {
                    bail!("--seeded needs --database-url (to read the users' HOTP counters)");
                };
                let sample = in_range("sample", self.sample, 1, MAX_SAMPLE)?;
                Some(Seeded {
                    range,
                    sample: u32::try_from(range.min(u64::from(sample))).unwrap_or(sample),
                    database_url: check_database_url(url)?,
                })
            }
        };
        let users = match &seeded {
            Some(s) => s.sample,
            None => in_range("users", self.users, 1, MAX_USERS)?,
        };
        let concurrency = in_range("concurrency", self.concurrency, 1, MAX_CONCURRENCY)?;
        if concurrency > users {
            bail!(
                "--concurrency ({concurrency}) must not exceed --users ({users}): \
                 each user is driven by one client at a time"
            );
        }
        let duration_secs = in_range("duration-secs", self.duration_secs, 1, MAX_DURATION_SECS)?;
        let max_requests = in_range("max-requests", self.max_requests, 1, MAX_REQUESTS_CAP)?;
        let timeout_secs = in_range("request-timeout-secs", self.request_timeout_secs, 1, 120)?;
        if !(4..=16).contains(&self.pin.len()) || !self.pin.chars().all(|c| c.is_ascii_digit()) {
            bail!("--pin must be 4 to 16 digits");
        }
        let user_prefix = match self.user_prefix {
            Some(p) => check_prefix(&p)?,
            None => default_prefix(self.mode),
        };
        Ok(Command::Load(Box::new(LoadConfig {
            base,
            account,
            secret,
            ca_file,
            users,
            concurrency,
            duration: Duration::from_secs(duration_secs),
            max_requests,
            mode: self.mode,
            pin: self.pin,
            user_prefix,
            request_timeout: Duration::from_secs(timeout_secs),
            seeded,
            server_pid: self.server_pid,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command> {
        let mut full = vec!["twofold-bench"];
        full.extend_from_slice(args);
        Cli::try_parse_from(full)?.into_command()
    }

    const BASE: &[&str] = &[
        "--url",
        "https://127.0.0.1:8443",
        "--account",
        "bench",
        "--secret",
        "s3cret",
        "--ca-file",
        "cert.pem",
    ];

    fn with<'a>(extra: &[&'a str]) -> Vec<&'a str> {
        let mut v: Vec<&'a str> = BASE.to_vec();
        v.extend_from_slice(extra);
        v
    }

    #[test]
    fn loopback_hosts_are_accepted() {
        for u in [
            "https://127.0.0.1:8443",
            "https://127.0.0.1:8443/",
            "https://localhost:1234",
            "https://LOCALHOST",
            "https://[::1]:8443/",
        ] {
            let base = loopback_base(u).unwrap_or_else(|e| panic!("{u}: {e}"));
            assert_eq!(base.path(), "/");
            assert_eq!(
                base.join("sdk/v1/validate").unwrap().path(),
                "/sdk/v1/validate"
            );
        }
    }

    #[test]
    fn other_hosts_and_forms_are_refused() {
        for u in [
            "https://10.0.0.1:8443",
            "https://127.0.0.2:8443",
            "https://0.0.0.0:8443",
            "https://example.com",
            "https://localhost.example.com",
            "https://[::2]:8443",
            "https://[::ffff:127.0.0.1]:8443",
            "http://127.0.0.1:8443",
            "https://user:pw@127.0.0.1:8443",
            "https://127.0.0.1:8443/sdk/v1",
            "https://127.0.0.1:8443/?x=1",
            "not a url",
            "",
        ] {
            assert!(loopback_base(u).is_err(), "{u} should be refused");
        }
    }

    #[test]
    fn loopback_ips() {
        assert!(is_loopback_ip("127.0.0.1".parse().unwrap()));
        assert!(is_loopback_ip("::1".parse().unwrap()));
        assert!(!is_loopback_ip("127.0.0.2".parse().unwrap()));
        assert!(!is_loopback_ip("192.168.1.1".parse().unwrap()));
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let Command::Load(c) = parse(BASE).unwrap() else {
            panic!("expected a load run")
        };
        assert_eq!(c.users, 200);
        assert_eq!(c.concurrency, 16);
        assert_eq!(c.duration, Duration::from_secs(20));
        assert_eq!(c.mode, Mode::Otp);
        assert_eq!(c.max_requests, 1_000_000);
        assert!(c.user_prefix.starts_with("bench-otp-"));
        check_prefix(&c.user_prefix).unwrap();
    }

    #[test]
    fn pin_otp_mode_parses() {
        let Command::Load(c) = parse(&with(&["--mode", "pin-otp", "--pin", "5937"])).unwrap()
        else {
            panic!("expected a load run")
        };
        assert_eq!(c.mode, Mode::PinOtp);
        assert_eq!(c.mode.method(), "oath_token:oath_pin");
        assert_eq!(c.pin, "5937");
        assert_eq!(Mode::Otp.method(), "oath_token:oath");
    }

    #[test]
    fn bounds_are_enforced() {
        for extra in [
            &["--users", "0"][..],
            &["--users", "100001"],
            &["--concurrency", "0"],
            &["--users", "4", "--concurrency", "5"],
            &["--duration-secs", "0"],
            &["--duration-secs", "3601"],
            &["--max-requests", "0"],
            &["--request-timeout-secs", "0"],
            &["--pin", "12a4"],
            &["--pin", "123"],
            &["--user-prefix", "a b"],
            &["--user-prefix", ""],
            &["--mode", "sms"],
        ] {
            assert!(parse(&with(extra)).is_err(), "{extra:?} should be refused");
        }
        assert!(parse(&with(&["--users", "4", "--concurrency", "4"])).is_ok());
    }

    #[test]
    fn account_must_not_hold_a_colon() {
        let mut args = BASE.to_vec();
        args[3] = "a:b";
        assert!(parse(&args).is_err());
    }

    #[test]
    fn load_needs_target_and_credentials() {
        assert!(parse(&[]).is_err());
        assert!(parse(&["--url", "https://127.0.0.1:1"]).is_err());
    }

    #[test]
    fn pin_hash_cost_needs_nothing_else() {
        match parse(&["--pin-hash-cost", "--iterations", "5"]).unwrap() {
            Command::PinHashCost { iterations } => assert_eq!(iterations, 5),
            other => panic!("unexpected {other:?}"),
        }
        assert!(parse(&["--pin-hash-cost", "--iterations", "0"]).is_err());
    }

    const PUSH: &[&str] = &[
        "push",
        "--url",
        "https://127.0.0.1:8443",
        "--account",
        "bench",
        "--secret",
        "s3cret",
        "--ca-file",
        "cert.pem",
        "--activation-codes",
        "codes.txt",
    ];

    fn push_with(extra: &[&str]) -> Result<Box<PushConfig>> {
        let mut v: Vec<&str> = PUSH.to_vec();
        v.extend_from_slice(extra);
        match parse(&v)? {
            Command::Push(c) => Ok(c),
            other => panic!("expected a push run, got {other:?}"),
        }
    }

    #[test]
    fn push_defaults_are_the_documented_ones() {
        let c = push_with(&[]).unwrap();
        assert_eq!(c.round_trips, 1000);
        assert_eq!(c.concurrency, 8);
        assert_eq!(c.wait, Duration::from_secs(30));
        assert_eq!(c.poll_settle, Duration::from_millis(20));
        assert_eq!(c.round_trip_timeout, Duration::from_secs(70));
        assert_eq!(c.max_duration, Duration::from_mins(15));
        // The devices use the main URL unless told otherwise.
        assert_eq!(c.device_base, c.base);
        assert_eq!(c.base.as_str(), "https://127.0.0.1:8443/");
    }

    #[test]
    fn push_takes_a_second_node_for_devices() {
        let c = push_with(&["--device-url", "https://[::1]:9443"]).unwrap();
        assert_eq!(c.device_base.as_str(), "https://[::1]:9443/");
        assert_eq!(c.base.as_str(), "https://127.0.0.1:8443/");
        for bad in [
            "https://10.0.0.2:9443",
            "http://127.0.0.1:9443",
            "https://127.0.0.1:9443/mobile/v1",
        ] {
            assert!(
                push_with(&["--device-url", bad]).is_err(),
                "{bad} should be refused"
            );
        }
    }

    #[test]
    fn push_bounds_are_enforced() {
        for extra in [
            &["--round-trips", "0"][..],
            &["--round-trips", "1000001"],
            &["--concurrency", "0"],
            &["--concurrency", "257"],
            &["--wait-secs", "0"],
            &["--wait-secs", "61"],
            &["--poll-settle-ms", "1001"],
            &["--round-trip-timeout-secs", "4"],
            &["--round-trip-timeout-secs", "601"],
            &["--max-duration-secs", "0"],
            &["--max-duration-secs", "3601"],
            &["--account", "a:b"],
            &["--url", "https://192.168.1.1:8443"],
        ] {
            assert!(push_with(extra).is_err(), "{extra:?} should be refused");
        }
        let c = push_with(&[
            "--round-trips",
            "1000000",
            "--concurrency",
            "256",
            "--wait-secs",
            "60",
            "--poll-settle-ms",
            "0",
            "--round-trip-timeout-secs",
            "5",
            "--max-duration-secs",
            "3600",
        ])
        .unwrap();
        assert_eq!(c.round_trips, MAX_ROUND_TRIPS);
        assert_eq!(c.concurrency, MAX_PUSH_CONCURRENCY);
        assert_eq!(c.poll_settle, Duration::ZERO);
    }

    #[test]
    fn push_needs_its_target_and_codes() {
        assert!(parse(&["push"]).is_err());
        let without_codes: Vec<&str> = PUSH[..PUSH.len() - 2].to_vec();
        assert!(parse(&without_codes).is_err());
    }

    #[test]
    fn push_does_not_mix_with_the_load_flags() {
        // Load flags belong to the validate run, not before `push`.
        let mut v = vec!["--users", "10"];
        v.extend_from_slice(PUSH);
        assert!(parse(&v).is_err());
        // And the validate run is unchanged by the subcommand's existence.
        assert!(matches!(parse(BASE).unwrap(), Command::Load(_)));
    }

    #[test]
    fn activation_code_files_parse() {
        let lines = parse_activation_codes(
            "# username code\n\nbench-push-00000 4821 0937 5526\n  bench-push-00001\t123456789012  \n",
        )
        .unwrap();
        assert_eq!(
            lines,
            vec![
                ActivationLine {
                    username: "bench-push-00000".into(),
                    code: "482109375526".into()
                },
                ActivationLine {
                    username: "bench-push-00001".into(),
                    code: "123456789012".into()
                },
            ]
        );
        for bad in [
            "",
            "# only a comment\n",
            "alice\n",
            "alice 12ab56789012\n",
            "alice 12345\n",
            "alice 123456789012\nalice 210987654321\n",
            "a:b 123456789012\n",
        ] {
            assert!(
                parse_activation_codes(bad).is_err(),
                "{bad:?} should be refused"
            );
        }
        let mut many = String::new();
        for i in 0..=MAX_PUSH_USERS {
            many.push('u');
            many.push_str(&i.to_string());
            many.push_str(" 123456789012\n");
        }
        assert!(parse_activation_codes(&many).is_err());
    }

    #[test]
    fn seeded_runs_need_prefix_and_database() {
        let ok = with(&[
            "--seeded",
            "1000000",
            "--sample",
            "5000",
            "--user-prefix",
            "scale",
            "--database-url",
            "sqlite:///tmp/x.db",
            "--concurrency",
            "64",
        ]);
        let Command::Load(c) = parse(&ok).unwrap() else {
            panic!("expected a load run")
        };
        let s = c.seeded.clone().unwrap();
        assert_eq!((s.range, s.sample, c.users), (1_000_000, 5000, 5000));
        // The sample is at most the range.
        let small = with(&[
            "--seeded",
            "1000",
            "--user-prefix",
            "scale",
            "--database-url",
            "sqlite:///tmp/x.db",
        ]);
        let Command::Load(c) = parse(&small).unwrap() else {
            panic!("expected a load run")
        };
        assert_eq!(c.users, 1000);
        for drop in ["--user-prefix", "--database-url"] {
            let i = ok.iter().position(|a| *a == drop).unwrap();
            let mut v = ok.clone();
            v.drain(i..i + 2);
            assert!(parse(&v).is_err(), "without {drop} should be refused");
        }
        let mut pin = ok.clone();
        pin.extend_from_slice(&["--mode", "pin-otp"]);
        assert!(parse(&pin).is_err());
    }

    #[test]
    fn seed_and_audit_parse() {
        let Command::Seed(c) = parse(&[
            "seed",
            "--database-url",
            "sqlite:///tmp/d/twofold.db",
            "--data-dir",
            "/tmp/d",
            "--users",
            "1000",
        ])
        .unwrap() else {
            panic!("expected seed")
        };
        assert_eq!(c.sealing_key_file, PathBuf::from("/tmp/d/sealing.key"));
        assert_eq!((c.users, c.first, c.batch), (1000, 0, 5000));
        assert!(parse(&[
            "seed",
            "--database-url",
            "mysql://x",
            "--data-dir",
            "/tmp/d",
            "--users",
            "1"
        ])
        .is_err());
        let Command::Audit(a) = parse(&["audit", "--database-url", "postgres://u@h/db"]).unwrap()
        else {
            panic!("expected audit")
        };
        assert_eq!((a.rows, a.subjects, a.samples), (10_000_000, 100_000, 50));
    }

    #[test]
    fn push_concurrency_is_at_most_the_users() {
        assert!(check_push_users(8, 8).is_ok());
        assert!(check_push_users(16, 8).is_ok());
        assert!(check_push_users(7, 8).is_err());
    }
}
