//! Command line: parsed by clap, then checked into a `Command` so every bound
//! (users, concurrency, time, request cap, loopback target) is enforced in one
//! place that the unit tests can reach.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use reqwest::Url;

pub const MAX_USERS: u32 = 100_000;
pub const MAX_CONCURRENCY: u32 = 1024;
pub const MAX_DURATION_SECS: u64 = 3600;
pub const MAX_REQUESTS_CAP: u64 = 10_000_000;
pub const MAX_ITERATIONS: u32 = 1000;
pub const MAX_PREFIX_CHARS: usize = 64;

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
                  With --pin-hash-cost it instead times one production-cost argon2id PIN check \
                  in-process and prints the per-core bound on PIN+OTP validations."
)]
pub struct Cli {
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
}

/// What to run, with every bound checked.
#[derive(Debug)]
pub enum Command {
    Load(Box<LoadConfig>),
    PinHashCost { iterations: u32 },
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
        let users = in_range("users", self.users, 1, MAX_USERS)?;
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
            other @ Command::Load(_) => panic!("unexpected {other:?}"),
        }
        assert!(parse(&["--pin-hash-cost", "--iterations", "0"]).is_err());
    }
}
