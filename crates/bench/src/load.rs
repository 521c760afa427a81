//! The load run: set up users through the SDK API — or, with `--seeded`,
//! pick users made by `twofold-bench seed` and read their HOTP counters
//! from the database — (not timed), then drive `POST /sdk/v1/validate` from
//! `concurrency` clients, each with its own connection, until the deadline
//! or the request cap.
//!
//! Every user belongs to exactly one client, which uses it sequentially, so
//! each request carries the next HOTP code of its user: always fresh, always
//! valid, never a replay. Anything but "accept" is counted and reported.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::{Client, Method, StatusCode, Url};
use serde_json::json;
use twofold_core::factors::OathAlgorithm;
use twofold_core::oath;

use crate::args::{LoadConfig, Mode, Seeded};
use crate::stats::{classify_validate_body, Outcome, Recorder, Summary};

const DIGITS: u32 = 6;
/// Longest response body quoted in an error.
const BODY_QUOTE: usize = 300;

/// One benchmark user: its HOTP secret and the next counter to use.
#[derive(Debug)]
pub struct BenchUser {
    pub name: String,
    pub secret: Vec<u8>,
    pub counter: u64,
}

impl BenchUser {
    /// The next passcode for this user (PIN first in pin-otp mode); moves
    /// the counter on, so no code is sent twice.
    pub fn next_passcode(&mut self, pin: Option<&str>) -> String {
        let code = oath::hotp(&self.secret, self.counter, OathAlgorithm::Sha1, DIGITS);
        self.counter += 1;
        match pin {
            Some(pin) => format!("{pin}{code}"),
            None => code,
        }
    }
}

/// Which users client `worker` of `workers` owns: `worker`, `worker +
/// workers`, ... Every user belongs to exactly one client.
pub fn owned_by(worker: u32, workers: u32, users: u32) -> impl Iterator<Item = u32> {
    (worker..users).step_by(workers.max(1) as usize)
}

pub fn username(prefix: &str, index: u32) -> String {
    format!("{prefix}-{index:05}")
}

/// A small, fast, seedable generator (SplitMix64): the picks of a run need
/// spread, not secrecy.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn from_time() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        // The low 64 bits change fastest.
        #[allow(clippy::cast_possible_truncation)]
        Self::new(nanos as u64 ^ u64::from(std::process::id()).rotate_left(32))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform enough in `0..n` for n far below 2^64 (0 when n is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
}

/// `sample` indices of `0..range`, one picked at random in each of
/// `sample` equal slices: spread over the whole range, each once, sorted.
pub fn stratified_sample(range: u64, sample: u32, rng: &mut SplitMix64) -> Vec<u64> {
    let sample = u64::from(sample).min(range);
    (0..sample)
        .map(|k| {
            let lo = k * range / sample;
            let hi = (k + 1) * range / sample;
            lo + rng.below(hi - lo)
        })
        .collect()
}

/// Processor time (user + system) a process — this one, or `pid` — has
/// used so far, from /proc/PID/stat (Linux; in USER_HZ = 100 ticks per
/// second). `None` elsewhere.
pub fn cpu_time(pid: Option<u32>) -> Option<Duration> {
    let path = pid.map_or_else(
        || "/proc/self/stat".to_string(),
        |p| format!("/proc/{p}/stat"),
    );
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name, which is in parentheses and may hold
    // spaces: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// Builds the HTTPS client: the given PEM is the only trusted root, no
/// proxy, no redirects, Basic credentials on every request.
pub fn client(cfg: &LoadConfig) -> Result<Client> {
    let pem = std::fs::read(&cfg.ca_file)
        .with_context(|| format!("reading --ca-file {}", cfg.ca_file.display()))?;
    let cert = reqwest::Certificate::from_pem(&pem)
        .with_context(|| format!("{} is not a PEM certificate", cfg.ca_file.display()))?;
    let token =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", cfg.account, cfg.secret));
    let mut auth = HeaderValue::from_str(&format!("Basic {token}"))
        .context("service account name or secret is not a valid header value")?;
    auth.set_sensitive(true);
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, auth);
    let mut builder = Client::builder()
        .add_root_certificate(cert)
        .tls_built_in_root_certs(false)
        .default_headers(headers)
        .timeout(cfg.request_timeout)
        .connect_timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(cfg.concurrency as usize)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy();
    if cfg.base.host_str() == Some("localhost") {
        // Never let name resolution send the load anywhere but loopback.
        let port = cfg.base.port_or_known_default().unwrap_or(443);
        builder = builder.resolve("localhost", SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    builder.build().context("building the HTTPS client")
}

pub fn quote(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String = text.chars().take(BODY_QUOTE).collect();
    if text.chars().count() > BODY_QUOTE {
        out.push('…');
    }
    out
}

/// One setup call; fails unless the status is `expect`.
async fn call(
    http: &Client,
    base: &Url,
    method: Method,
    path: &str,
    body: serde_json::Value,
    expect: StatusCode,
) -> Result<Vec<u8>> {
    let url = base
        .join(path)
        .with_context(|| format!("bad path {path}"))?;
    let resp = http
        .request(method.clone(), url)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("{method} /{path}"))?;
    let status = resp.status();
    let bytes = resp
        .bytes()
        .await
        .with_context(|| format!("{method} /{path}: reading the body"))?;
    if status != expect {
        bail!(
            "{method} /{path}: expected {expect}, got {status}: {}",
            quote(&bytes)
        );
    }
    Ok(bytes.to_vec())
}

/// Creates one user with an HOTP token, sets its method (and PIN), and
/// checks that its first code is accepted — so a broken setup fails here,
/// before anything is timed.
async fn set_up_user(http: &Client, cfg: &LoadConfig, index: u32) -> Result<BenchUser> {
    let name = username(&cfg.user_prefix, index);
    let secret = oath::generate_secret(OathAlgorithm::Sha1);
    let base = &cfg.base;
    call(
        http,
        base,
        Method::POST,
        "sdk/v1/users",
        json!({ "username": name }),
        StatusCode::CREATED,
    )
    .await?;
    call(
        http,
        base,
        Method::POST,
        &format!("sdk/v1/users/{name}/tokens"),
        json!({
            "type": "hotp",
            "secret": oath::encode_base32(&secret),
            "digits": DIGITS,
            "algorithm": "sha1",
            "label": "bench",
        }),
        StatusCode::CREATED,
    )
    .await?;
    call(
        http,
        base,
        Method::PUT,
        &format!("sdk/v1/users/{name}/method"),
        json!({ "method": cfg.mode.method() }),
        StatusCode::OK,
    )
    .await?;
    if cfg.mode == Mode::PinOtp {
        call(
            http,
            base,
            Method::PUT,
            &format!("sdk/v1/users/{name}/pin"),
            json!({ "pin": cfg.pin }),
            StatusCode::NO_CONTENT,
        )
        .await?;
    }
    let mut user = BenchUser {
        name,
        secret,
        counter: 0,
    };
    let pin = (cfg.mode == Mode::PinOtp).then_some(cfg.pin.as_str());
    let passcode = user.next_passcode(pin);
    let body = call(
        http,
        base,
        Method::POST,
        "sdk/v1/validate",
        json!({ "username": user.name, "passcode": passcode }),
        StatusCode::OK,
    )
    .await?;
    match classify_validate_body(&body) {
        Outcome::Accepted => Ok(user),
        other => Err(anyhow!(
            "first validate of {} was {other}: {}",
            user.name,
            quote(&body)
        )),
    }
}

/// Sets up every user, `concurrency` at a time. Returns them grouped by the
/// client that owns them.
pub async fn set_up(http: &Client, cfg: &LoadConfig) -> Result<Vec<Vec<BenchUser>>> {
    let cfg = Arc::new(cfg.clone());
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..cfg.concurrency {
        let http = http.clone();
        let cfg = Arc::clone(&cfg);
        tasks.spawn(async move {
            let mut mine = Vec::new();
            for index in owned_by(worker, cfg.concurrency, cfg.users) {
                mine.push(set_up_user(&http, &cfg, index).await?);
            }
            Ok::<_, anyhow::Error>((worker, mine))
        });
    }
    let mut groups: Vec<(u32, Vec<BenchUser>)> = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined.context("setup task panicked")? {
            Ok(group) => groups.push(group),
            Err(e) => {
                tasks.abort_all();
                return Err(e.context("setting up the benchmark users"));
            }
        }
    }
    groups.sort_by_key(|(w, _)| *w);
    Ok(groups.into_iter().map(|(_, g)| g).collect())
}

/// A `--seeded` run's users: `seeded.sample` of the seeded range, their
/// seeds derived from their names, their next HOTP counters read from the
/// database (untimed). Grouped by the client that owns them; one of them is
/// validated once, untimed, so a broken setup fails before the timed phase.
pub async fn set_up_seeded(
    http: &Client,
    cfg: &LoadConfig,
    seeded: &Seeded,
) -> Result<Vec<Vec<BenchUser>>> {
    let mut rng = SplitMix64::from_time();
    let picks = stratified_sample(seeded.range, seeded.sample, &mut rng);
    let store = twofold_store::SqlStore::connect(&seeded.database_url, 4)
        .await
        .context("opening --database-url")?;
    let mut users = Vec::with_capacity(picks.len());
    for index in picks {
        let name = crate::seed::seeded_username(&cfg.user_prefix, index);
        let user = store
            .find_user(&name)
            .await?
            .ok_or_else(|| anyhow!("{name} is not in the database: seed it first"))?;
        let token = store
            .oath_tokens(user.id)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("{name} has no OATH token"))?;
        if token.params.kind != twofold_core::factors::OathKind::Hotp {
            bail!("{name}'s token is not HOTP: seed with --kind hotp for load runs");
        }
        let secret = crate::seed::seeded_secret(&name);
        users.push(BenchUser {
            name,
            secret,
            counter: u64::try_from(token.counter).context("negative HOTP counter")?,
        });
    }
    store.close().await;
    let count = u32::try_from(users.len()).context("too many users")?;
    let mut slots: Vec<Option<BenchUser>> = users.into_iter().map(Some).collect();
    let mut groups: Vec<Vec<BenchUser>> = (0..cfg.concurrency)
        .map(|worker| {
            owned_by(worker, cfg.concurrency, count)
                .filter_map(|i| slots[i as usize].take())
                .collect()
        })
        .collect();
    // The untimed check.
    if let Some(user) = groups.first_mut().and_then(|g| g.first_mut()) {
        let passcode = user.next_passcode(None);
        let body = call(
            http,
            &cfg.base,
            Method::POST,
            "sdk/v1/validate",
            json!({ "username": user.name, "passcode": passcode }),
            StatusCode::OK,
        )
        .await?;
        if classify_validate_body(&body) != Outcome::Accepted {
            bail!(
                "first validate of seeded user {} was not accepted: {} (was it seeded with \
                 another sealing key, or is the server on another database?)",
                user.name,
                quote(&body)
            );
        }
    }
    Ok(groups)
}

/// The body of a validate request.
#[derive(serde::Serialize)]
struct ValidateBody<'a> {
    username: &'a str,
    passcode: &'a str,
}

/// One validate request, classified.
async fn validate(http: &Client, url: &Url, user: &str, passcode: &str) -> (Outcome, String) {
    let sent = http
        .post(url.clone())
        .json(&ValidateBody {
            username: user,
            passcode,
        })
        .send()
        .await;
    let resp = match sent {
        Ok(r) => r,
        Err(e) => return (Outcome::Transport, format!("{user}: {e}")),
    };
    let status = resp.status();
    match resp.bytes().await {
        Ok(body) if status == StatusCode::OK => {
            let outcome = classify_validate_body(&body);
            (outcome, format!("{user}: {}", quote(&body)))
        }
        Ok(body) => (
            Outcome::Status(status.as_u16()),
            format!("{user}: HTTP {status}: {}", quote(&body)),
        ),
        Err(e) => (Outcome::Transport, format!("{user}: reading body: {e}")),
    }
}

/// The timed phase. Returns the merged record and the wall time from the
/// first request to the last response.
pub async fn drive(cfg: &LoadConfig, groups: Vec<Vec<BenchUser>>) -> Result<(Recorder, Duration)> {
    let url = cfg.base.join("sdk/v1/validate")?;
    let pin: Option<Arc<str>> = (cfg.mode == Mode::PinOtp).then(|| Arc::from(cfg.pin.as_str()));
    let issued = Arc::new(AtomicU64::new(0));
    let max_requests = cfg.max_requests;
    // One HTTP client (one keep-alive connection) per task, as separate
    // callers would have; built and connected before the clock starts.
    let mut clients = Vec::new();
    for users in groups.into_iter().filter(|g| !g.is_empty()) {
        let own = client(cfg)?;
        let check = own
            .get(cfg.base.join("healthz")?)
            .send()
            .await
            .context("opening a client's connection (GET /healthz)")?;
        check.bytes().await.context("GET /healthz")?;
        clients.push((own, users));
    }
    let start = Instant::now();
    let deadline = start + cfg.duration;
    let mut tasks = tokio::task::JoinSet::new();
    for (http, mut users) in clients {
        let url = url.clone();
        let pin = pin.clone();
        let issued = Arc::clone(&issued);
        tasks.spawn(async move {
            let mut rec = Recorder::default();
            let count = users.len();
            let mut next = 0usize;
            while Instant::now() < deadline && issued.fetch_add(1, Ordering::Relaxed) < max_requests
            {
                let user = &mut users[next % count];
                next = next.wrapping_add(1);
                let passcode = user.next_passcode(pin.as_deref());
                let t0 = Instant::now();
                let (outcome, detail) = validate(&http, &url, &user.name, &passcode).await;
                rec.record(t0.elapsed(), outcome, || detail);
            }
            rec
        });
    }
    // Every request has its own timeout, so the clients stop at most one
    // timeout after the deadline; this is the belt to those braces.
    let hard_stop = cfg.duration + cfg.request_timeout + Duration::from_secs(5);
    let mut merged = Recorder::default();
    let collected = tokio::time::timeout(hard_stop, async {
        while let Some(joined) = tasks.join_next().await {
            merged.merge(joined.context("client task panicked")?);
        }
        Ok::<_, anyhow::Error>(())
    })
    .await;
    let elapsed = start.elapsed();
    if let Ok(result) = collected {
        result?;
    } else {
        tasks.abort_all();
        bail!("clients did not stop within {hard_stop:?} of the start");
    }
    Ok((merged, elapsed))
}

/// Runs setup and the timed phase, prints the report; returns whether every
/// request was accepted.
pub async fn run(cfg: LoadConfig) -> Result<bool> {
    let http = client(&cfg)?;
    println!(
        "twofold-bench: {} against {} — {} users, concurrency {}, {} s (cap {} requests)",
        cfg.mode.name(),
        cfg.base,
        cfg.users,
        cfg.concurrency,
        cfg.duration.as_secs(),
        cfg.max_requests
    );
    let t0 = Instant::now();
    let groups = if let Some(seeded) = &cfg.seeded {
        let groups = set_up_seeded(&http, &cfg, seeded).await?;
        println!(
            "setup: {} of {} seeded users picked, counters read in {:.1} s (not timed)",
            cfg.users,
            seeded.range,
            t0.elapsed().as_secs_f64()
        );
        groups
    } else {
        let groups = set_up(&http, &cfg).await?;
        println!(
            "setup: {} users with HOTP tokens in {:.1} s (not timed)",
            cfg.users,
            t0.elapsed().as_secs_f64()
        );
        groups
    };
    let cpu0 = (
        cpu_time(None),
        cfg.server_pid.and_then(|p| cpu_time(Some(p))),
    );
    let (rec, elapsed) = drive(&cfg, groups).await?;
    let cpu1 = (
        cpu_time(None),
        cfg.server_pid.and_then(|p| cpu_time(Some(p))),
    );
    // Processor use over the timed phase, in percent of one core: the load
    // generator's own (well below the machine's cores × 100 means it was not
    // the bottleneck), and the server's when --server-pid is given.
    let share = |a: Option<Duration>, b: Option<Duration>| match (a, b) {
        (Some(a), Some(b)) if elapsed > Duration::ZERO => {
            Some(100.0 * b.saturating_sub(a).as_secs_f64() / elapsed.as_secs_f64())
        }
        _ => None,
    };
    let client_cpu = share(cpu0.0, cpu1.0);
    let server_cpu = share(cpu0.1, cpu1.1);
    let accepted = rec.accepted();
    let failed = rec.requests() - accepted;
    let summary = Summary::from_samples(rec.latencies_us.clone(), accepted, elapsed);
    print!(
        "{}",
        crate::report::text(&cfg, &summary, &rec, [client_cpu, server_cpu])
    );
    println!(
        "{}",
        crate::report::result_line(
            cfg.mode,
            &summary,
            failed,
            cfg.concurrency,
            [client_cpu, server_cpu]
        )
    );
    Ok(failed == 0 && summary.requests > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_user_has_exactly_one_owner() {
        for (users, workers) in [(1, 1), (10, 3), (200, 16), (16, 16), (17, 16)] {
            let mut seen = HashSet::new();
            let mut sizes = Vec::new();
            for w in 0..workers {
                let mine: Vec<u32> = owned_by(w, workers, users).collect();
                sizes.push(mine.len());
                for u in mine {
                    assert!(seen.insert(u), "user {u} owned twice");
                }
            }
            assert_eq!(seen.len(), users as usize);
            // Shares differ by at most one.
            let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
            assert!(hi - lo <= 1, "{sizes:?}");
        }
    }

    #[test]
    fn passcodes_walk_the_hotp_counter() {
        // RFC 4226 appendix D secret and values.
        let mut u = BenchUser {
            name: "u".into(),
            secret: b"12345678901234567890".to_vec(),
            counter: 0,
        };
        assert_eq!(u.next_passcode(None), "755224");
        assert_eq!(u.next_passcode(None), "287082");
        assert_eq!(u.next_passcode(Some("4826")), "4826359152");
        assert_eq!(u.counter, 3);
    }

    #[test]
    fn usernames_are_unique_and_valid() {
        let a = username("bench-otp-1-2", 7);
        assert_eq!(a, "bench-otp-1-2-00007");
        assert!(twofold_core::validate::username(&a).is_ok());
        assert_ne!(username("p", 1), username("p", 10));
    }

    #[test]
    fn samples_cover_the_range_once_each() {
        let mut rng = SplitMix64::new(7);
        let s = stratified_sample(1_000_000, 5000, &mut rng);
        assert_eq!(s.len(), 5000);
        assert!(s.windows(2).all(|w| w[0] < w[1]));
        assert!(s[0] < 200 && *s.last().unwrap() >= 999_800);
        let all = stratified_sample(1000, 5000, &mut rng);
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        assert_eq!(rng.below(0), 0);
    }

    #[test]
    fn cpu_time_reads_proc() {
        if std::path::Path::new("/proc/self/stat").exists() {
            assert!(cpu_time(None).is_some());
            assert!(cpu_time(Some(std::process::id())).is_some());
        }
    }

    #[test]
    fn long_bodies_are_cut() {
        let body = "x".repeat(1000);
        let q = quote(body.as_bytes());
        assert_eq!(q.chars().count(), BODY_QUOTE + 1);
        assert_eq!(quote(b"short"), "short");
    }
}
