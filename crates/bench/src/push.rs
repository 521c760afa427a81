//! The mobile app's push round trip: an SDK caller starts a sign-in for a
//! `mobile_app` user, the user's device — already long-polling — receives
//! the request, approves it with the number, and the caller's long-poll of
//! the challenge returns `accepted`.
//!
//! Setup (not timed): one device per user is activated with a fresh Ed25519
//! key from the activation codes the script issued, and each user makes one
//! untimed round trip, so a broken setup fails before anything is timed.
//!
//! Every user belongs to exactly one client, which runs its users' round
//! trips one at a time; so a device only ever sees the request of its own
//! round trip, and no two round trips of one user overlap. Per round trip:
//!
//! 1. the device sends `GET /mobile/v1/requests?wait=W` (signed) to the
//!    device URL; the client pauses `poll_settle` so the poll is parked;
//! 2. t0: the caller sends `POST /sdk/v1/authenticate` to the main URL
//!    (201, `prompt` `mobile_app`, the `number`), then long-polls
//!    `GET /sdk/v1/authenticate/{id}?wait=W`;
//! 3. t1: the device's poll has answered with the request (the whole body
//!    read); the device signs and POSTs `approve` with the number;
//! 4. t2: the caller's long-poll has answered `accepted`.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Client, Method, RequestBuilder, StatusCode, Url};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::json;
use twofold_proto::mobile::{
    signed_message, ActivateResponse, DeviceAnswerResult, PendingRequests, DEVICE_HEADER,
    NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};
use twofold_proto::{
    AuthenticationPrompt, AuthenticationState, AuthenticationStatus, StartAuthenticationResponse,
};

use crate::args::{ActivationLine, PushConfig};
use crate::load::{owned_by, quote};
use crate::stats::{Outcome, Summary};

/// Connect timeout of both clients.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// What an HTTP request may take beyond its `?wait=`.
const HTTP_SLACK: Duration = Duration::from_secs(15);
const FAILURE_SAMPLES: usize = 5;

/// A mobile-app device: an Ed25519 key and, once activated, its id. Signs
/// as `docs/mobile-protocol.md` §2 says, with `twofold_proto::mobile`'s
/// `signed_message` (the definition the server checks against).
pub struct Device {
    key: Ed25519KeyPair,
    pub id: Option<String>,
}

/// A fresh nonce: 18 random bytes, base64url (24 characters).
pub fn nonce(rng: &SystemRandom) -> Result<String> {
    let mut bytes = [0u8; 18];
    rng.fill(&mut bytes)
        .map_err(|_| anyhow!("the system random generator failed"))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Device {
    pub fn generate(rng: &SystemRandom) -> Result<Device> {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(rng)
            .map_err(|_| anyhow!("generating an Ed25519 key failed"))?;
        let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
            .map_err(|_| anyhow!("reading the fresh Ed25519 key failed"))?;
        Ok(Device { key, id: None })
    }

    /// The public key as the activation sends it (base64url, no padding).
    pub fn public_key(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.key.public_key().as_ref())
    }

    /// The signature headers of `method path_and_query body`, signed now
    /// with a fresh nonce (and the device header once activated).
    pub fn headers(
        &self,
        rng: &SystemRandom,
        method: &Method,
        path_and_query: &str,
        body: &[u8],
    ) -> Result<Vec<(&'static str, String)>> {
        let ts = unix_now().to_string();
        let nonce = nonce(rng)?;
        let message = signed_message(method.as_str(), path_and_query, &ts, &nonce, body);
        let signature = URL_SAFE_NO_PAD.encode(self.key.sign(&message).as_ref());
        let mut headers = vec![
            (TIMESTAMP_HEADER, ts),
            (NONCE_HEADER, nonce),
            (SIGNATURE_HEADER, signature),
        ];
        if let Some(id) = &self.id {
            headers.push((DEVICE_HEADER, id.clone()));
        }
        Ok(headers)
    }

    /// A signed request to `base` + `path_and_query` (which must start with
    /// `/`: it is signed exactly as it goes on the request line).
    pub fn request(
        &self,
        http: &Client,
        rng: &SystemRandom,
        base: &Url,
        method: Method,
        path_and_query: &str,
        body: Vec<u8>,
    ) -> Result<RequestBuilder> {
        let url = base
            .join(path_and_query.trim_start_matches('/'))
            .with_context(|| format!("bad path {path_and_query}"))?;
        let headers = self.headers(rng, &method, path_and_query, &body)?;
        let mut req = http.request(method, url);
        if !body.is_empty() {
            req = req.header(CONTENT_TYPE, "application/json").body(body);
        }
        for (k, v) in headers {
            req = req.header(k, v);
        }
        Ok(req)
    }
}

/// One benchmark user and its device.
pub struct PushUser {
    pub username: String,
    pub device: Device,
}

/// The HTTPS clients: the given PEM is the only trusted root, no proxy, no
/// redirects, `localhost` pinned to 127.0.0.1. The SDK client sends the
/// service account's Basic credentials; the device client sends none.
pub struct Clients {
    pub sdk: Client,
    pub device: Client,
}

fn builder(cfg: &PushConfig, cert: &reqwest::Certificate) -> reqwest::ClientBuilder {
    let mut b = Client::builder()
        .add_root_certificate(cert.clone())
        .tls_built_in_root_certs(false)
        .timeout(cfg.wait + HTTP_SLACK)
        .connect_timeout(CONNECT_TIMEOUT)
        .pool_max_idle_per_host(cfg.concurrency as usize * 2)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy();
    if [&cfg.base, &cfg.device_base]
        .iter()
        .any(|u| u.host_str() == Some("localhost"))
    {
        // Never let name resolution send the load anywhere but loopback
        // (the URL's own port is used).
        b = b.resolve("localhost", SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    }
    b
}

pub fn clients(cfg: &PushConfig) -> Result<Clients> {
    let pem = std::fs::read(&cfg.ca_file)
        .with_context(|| format!("reading --ca-file {}", cfg.ca_file.display()))?;
    let cert = reqwest::Certificate::from_pem(&pem)
        .with_context(|| format!("{} is not a PEM certificate", cfg.ca_file.display()))?;
    let token = STANDARD.encode(format!("{}:{}", cfg.account, cfg.secret));
    let mut auth = HeaderValue::from_str(&format!("Basic {token}"))
        .context("service account name or secret is not a valid header value")?;
    auth.set_sensitive(true);
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, auth);
    Ok(Clients {
        sdk: builder(cfg, &cert)
            .default_headers(headers)
            .build()
            .context("building the SDK client")?,
        device: builder(cfg, &cert)
            .build()
            .context("building the device client")?,
    })
}

/// Why a round trip did not end accepted, with the details for the report.
#[derive(Debug, Clone)]
pub struct Failure {
    pub outcome: Outcome,
    pub detail: String,
}

fn fail(outcome: Outcome, detail: impl Into<String>) -> Failure {
    Failure {
        outcome,
        detail: detail.into(),
    }
}

type Step<T> = std::result::Result<T, Failure>;

/// Sends `req`; answers the status, the body and when the body was in.
async fn exchange(req: RequestBuilder, what: &str) -> Step<(StatusCode, Vec<u8>, Instant)> {
    let resp = req
        .send()
        .await
        .map_err(|e| fail(Outcome::Transport, format!("{what}: {e}")))?;
    let status = resp.status();
    let body = resp
        .bytes()
        .await
        .map_err(|e| fail(Outcome::Transport, format!("{what}: reading the body: {e}")))?;
    Ok((status, body.to_vec(), Instant::now()))
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Step<T> {
    serde_json::from_slice(body)
        .map_err(|e| fail(Outcome::BadBody, format!("{what}: {e}: {}", quote(body))))
}

fn expect_status(status: StatusCode, want: StatusCode, body: &[u8], what: &str) -> Step<()> {
    if status == want {
        Ok(())
    } else {
        Err(fail(
            Outcome::Status(status.as_u16()),
            format!("{what}: HTTP {status}: {}", quote(body)),
        ))
    }
}

/// Everything a round trip needs besides its user.
#[derive(Clone)]
pub struct Shared {
    pub sdk: Client,
    pub device_http: Client,
    pub rng: SystemRandom,
    pub start_url: Url,
    pub base: Url,
    pub device_base: Url,
    pub wait_secs: u64,
    pub settle: Duration,
    pub timeout: Duration,
}

/// The two figures of an accepted round trip, from t0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    /// t1 − t0: the device has the request.
    pub received: Duration,
    /// t2 − t0: the caller's long-poll has answered `accepted`.
    pub released: Duration,
    /// Device polls that came back without the request (normally 0: the
    /// first poll, parked before t0, returns it).
    pub extra_polls: u32,
}

/// The device's side: its poll (already sent) until it holds request `id`,
/// then the approval. Answers when it received the request.
async fn device_side(
    sh: &Shared,
    user: &PushUser,
    first_poll: tokio::task::JoinHandle<Step<(StatusCode, Vec<u8>, Instant)>>,
    id: &str,
    number: u8,
    deadline: Instant,
) -> Step<(Instant, u32)> {
    let poll_path = format!("/mobile/v1/requests?wait={}", sh.wait_secs);
    let what = format!("{}: device poll", user.username);
    let mut polled = first_poll
        .await
        .map_err(|e| fail(Outcome::Transport, format!("{what}: task failed: {e}")))?;
    let mut extra = 0u32;
    let received = loop {
        let (status, body, at) = polled?;
        expect_status(status, StatusCode::OK, &body, &what)?;
        let pending: PendingRequests = parse(&body, &what)?;
        if pending.requests.iter().any(|r| r.id == id) {
            break at;
        }
        if Instant::now() >= deadline {
            return Err(fail(
                Outcome::Rejected("device never saw the request".into()),
                format!(
                    "{what}: request {id} not among {} pending",
                    pending.requests.len()
                ),
            ));
        }
        extra += 1;
        let req = user
            .device
            .request(
                &sh.device_http,
                &sh.rng,
                &sh.device_base,
                Method::GET,
                &poll_path,
                Vec::new(),
            )
            .map_err(|e| fail(Outcome::Transport, format!("{what}: {e:#}")))?;
        polled = exchange(req, &what).await;
    };
    let what = format!("{}: device answer", user.username);
    let body = json!({ "decision": "approve", "number": number })
        .to_string()
        .into_bytes();
    let req = user
        .device
        .request(
            &sh.device_http,
            &sh.rng,
            &sh.device_base,
            Method::POST,
            &format!("/mobile/v1/requests/{id}/answer"),
            body,
        )
        .map_err(|e| fail(Outcome::Transport, format!("{what}: {e:#}")))?;
    let (status, body, _) = exchange(req, &what).await?;
    expect_status(status, StatusCode::OK, &body, &what)?;
    let answer: DeviceAnswerResult = parse(&body, &what)?;
    if answer.state != "accepted" {
        return Err(fail(
            Outcome::Rejected(format!(
                "device answer {}/{}",
                answer.state,
                answer.reason.as_deref().unwrap_or("none")
            )),
            format!("{what}: {}", quote(&body)),
        ));
    }
    Ok((received, extra))
}

/// The caller's side: long-polls the challenge until it is decided.
async fn caller_side(sh: &Shared, user: &str, id: &str, deadline: Instant) -> Step<Instant> {
    let what = format!("{user}: caller status");
    let url = sh
        .base
        .join(&format!("sdk/v1/authenticate/{id}?wait={}", sh.wait_secs))
        .map_err(|e| fail(Outcome::Transport, format!("{what}: {e}")))?;
    loop {
        let (status, body, at) = exchange(sh.sdk.get(url.clone()), &what).await?;
        expect_status(status, StatusCode::OK, &body, &what)?;
        let s: AuthenticationStatus = parse(&body, &what)?;
        match s.state {
            AuthenticationState::Accepted => return Ok(at),
            AuthenticationState::Pending if Instant::now() < deadline => {}
            other => {
                return Err(fail(
                    Outcome::Rejected(format!(
                        "caller saw {}",
                        s.reason.as_deref().unwrap_or(match other {
                            AuthenticationState::Pending => "pending at the timeout",
                            AuthenticationState::Expired => "expired",
                            AuthenticationState::Rejected => "rejected",
                            AuthenticationState::Accepted => "accepted",
                        })
                    )),
                    format!("{what}: {}", quote(&body)),
                ))
            }
        }
    }
}

/// The challenge id and number of a start's answer.
fn parse_start(status: StatusCode, body: &[u8], what: &str) -> Step<(String, u8)> {
    if status == StatusCode::OK {
        // 200: refused, nothing started.
        let s: StartAuthenticationResponse = parse(body, what)?;
        return Err(fail(
            Outcome::Rejected(format!(
                "start refused: {}",
                s.reason.as_deref().unwrap_or("none")
            )),
            format!("{what}: {}", quote(body)),
        ));
    }
    expect_status(status, StatusCode::CREATED, body, what)?;
    let s: StartAuthenticationResponse = parse(body, what)?;
    match (s.id, s.prompt, s.number) {
        (Some(id), Some(AuthenticationPrompt::MobileApp), Some(number)) => Ok((id, number)),
        _ => Err(fail(
            Outcome::BadBody,
            format!(
                "{what}: not a mobile_app challenge with a number (is the user's method mobile_app?): {}",
                quote(body)
            ),
        )),
    }
}

/// One round trip for `user`, timed from the caller's start request.
pub async fn round_trip(sh: &Shared, user: &PushUser) -> Step<Timings> {
    let poll_path = format!("/mobile/v1/requests?wait={}", sh.wait_secs);
    let what = format!("{}: device poll", user.username);
    let req = user
        .device
        .request(
            &sh.device_http,
            &sh.rng,
            &sh.device_base,
            Method::GET,
            &poll_path,
            Vec::new(),
        )
        .map_err(|e| fail(Outcome::Transport, format!("{what}: {e:#}")))?;
    // The poll runs on its own while the caller starts the sign-in.
    let first_poll = tokio::spawn(async move { exchange(req, &what).await });
    tokio::time::sleep(sh.settle).await;

    let what = format!("{}: start", user.username);
    let t0 = Instant::now();
    let deadline = t0 + sh.timeout;
    let start = sh
        .sdk
        .post(sh.start_url.clone())
        .json(&json!({ "username": user.username }));
    let started = exchange(start, &what).await;
    let (status, body, _) = match started {
        Ok(s) => s,
        Err(e) => {
            first_poll.abort();
            return Err(e);
        }
    };
    let start = parse_start(status, &body, &what);
    let (id, number) = match start {
        Ok(v) => v,
        Err(e) => {
            first_poll.abort();
            return Err(e);
        }
    };

    // Both sides at once; the first failure ends the round trip.
    let ((received, extra_polls), released) = tokio::try_join!(
        device_side(sh, user, first_poll, &id, number, deadline),
        caller_side(sh, &user.username, &id, deadline),
    )?;
    Ok(Timings {
        received: received.saturating_duration_since(t0),
        released: released.saturating_duration_since(t0),
        extra_polls,
    })
}

/// Activates a fresh device for `line` on the device URL.
async fn activate(
    http: &Client,
    rng: &SystemRandom,
    device_base: &Url,
    line: &ActivationLine,
) -> Result<PushUser> {
    let mut device = Device::generate(rng)?;
    let body = json!({
        "code": line.code,
        "device_name": "twofold-bench",
        "public_key": device.public_key(),
    })
    .to_string()
    .into_bytes();
    let req = device.request(
        http,
        rng,
        device_base,
        Method::POST,
        "/mobile/v1/activate",
        body,
    )?;
    let what = format!("{}: activation", line.username);
    let (status, body, _) = exchange(req, &what).await.map_err(|f| anyhow!(f.detail))?;
    if status != StatusCode::OK {
        bail!("{what}: HTTP {status}: {}", quote(&body));
    }
    let a: ActivateResponse = parse(&body, &what).map_err(|f| anyhow!(f.detail))?;
    if a.username != line.username {
        bail!(
            "{what}: the code activated a device for {}, not {}",
            a.username,
            line.username
        );
    }
    device.id = Some(a.device_id);
    Ok(PushUser {
        username: line.username.clone(),
        device,
    })
}

/// Times one device poll that waits for nothing (`?wait=0`, no request
/// pending): what the server needs to check a poll's signature and nonce
/// and look, i.e. about how long after sending a poll is parked.
async fn empty_poll(sh: &Shared, user: &PushUser) -> Result<Duration> {
    let what = format!("{}: empty poll", user.username);
    let req = user.device.request(
        &sh.device_http,
        &sh.rng,
        &sh.device_base,
        Method::GET,
        "/mobile/v1/requests?wait=0",
        Vec::new(),
    )?;
    let t0 = Instant::now();
    let (status, body, at) = exchange(req, &what).await.map_err(|f| anyhow!(f.detail))?;
    if status != StatusCode::OK {
        bail!("{what}: HTTP {status}: {}", quote(&body));
    }
    let pending: PendingRequests = parse(&body, &what).map_err(|f| anyhow!(f.detail))?;
    if !pending.requests.is_empty() {
        bail!(
            "{what}: {} request(s) already pending before the run",
            pending.requests.len()
        );
    }
    Ok(at.saturating_duration_since(t0))
}

/// Activates every device, times one empty poll and makes one untimed round
/// trip per user, `concurrency` at a time. Returns the users grouped by
/// owning client, and the empty polls' times in microseconds.
async fn set_up(
    sh: &Shared,
    cfg: &PushConfig,
    lines: Vec<ActivationLine>,
) -> Result<(Vec<Vec<PushUser>>, Vec<u64>)> {
    let users = u32::try_from(lines.len()).context("too many users")?;
    let lines = Arc::new(lines);
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..cfg.concurrency {
        let sh = sh.clone();
        let lines = Arc::clone(&lines);
        let concurrency = cfg.concurrency;
        tasks.spawn(async move {
            let mut mine = Vec::new();
            let mut polls = Vec::new();
            for index in owned_by(worker, concurrency, users) {
                let user = activate(
                    &sh.device_http,
                    &sh.rng,
                    &sh.device_base,
                    &lines[index as usize],
                )
                .await?;
                polls.push(micros(empty_poll(&sh, &user).await?));
                round_trip(&sh, &user).await.map_err(|f| {
                    anyhow!(
                        "untimed first round trip of {}: {}",
                        user.username,
                        f.detail
                    )
                })?;
                mine.push(user);
            }
            Ok::<_, anyhow::Error>((worker, mine, polls))
        });
    }
    let mut groups = Vec::new();
    let mut polls = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined.context("setup task panicked")? {
            Ok((worker, group, p)) => {
                groups.push((worker, group));
                polls.extend(p);
            }
            Err(e) => {
                tasks.abort_all();
                return Err(e.context("setting up the benchmark devices"));
            }
        }
    }
    groups.sort_by_key(|(w, _)| *w);
    Ok((groups.into_iter().map(|(_, g)| g).collect(), polls))
}

/// The record of the timed phase: both figures of every accepted round
/// trip, and the failures.
#[derive(Debug, Default)]
pub struct PushRecord {
    pub received_us: Vec<u64>,
    pub released_us: Vec<u64>,
    pub outcomes: std::collections::BTreeMap<Outcome, u64>,
    pub failure_samples: Vec<String>,
    pub extra_polls: u64,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl PushRecord {
    pub fn record(&mut self, result: Step<Timings>) {
        match result {
            Ok(t) => {
                self.received_us.push(micros(t.received));
                self.released_us.push(micros(t.released));
                self.extra_polls += u64::from(t.extra_polls);
                *self.outcomes.entry(Outcome::Accepted).or_insert(0) += 1;
            }
            Err(f) => {
                if self.failure_samples.len() < FAILURE_SAMPLES {
                    self.failure_samples.push(f.detail);
                }
                *self.outcomes.entry(f.outcome).or_insert(0) += 1;
            }
        }
    }

    pub fn merge(&mut self, other: PushRecord) {
        self.received_us.extend(other.received_us);
        self.released_us.extend(other.released_us);
        self.extra_polls += other.extra_polls;
        for (k, n) in other.outcomes {
            *self.outcomes.entry(k).or_insert(0) += n;
        }
        for s in other.failure_samples {
            if self.failure_samples.len() < FAILURE_SAMPLES {
                self.failure_samples.push(s);
            }
        }
    }

    pub fn round_trips(&self) -> u64 {
        self.outcomes.values().sum()
    }

    pub fn accepted(&self) -> u64 {
        self.outcomes.get(&Outcome::Accepted).copied().unwrap_or(0)
    }
}

/// The timed phase: `round_trips` round trips, at most `concurrency` at a
/// time; no new one starts after `max_duration`.
async fn drive(
    sh: &Shared,
    cfg: &PushConfig,
    groups: Vec<Vec<PushUser>>,
) -> Result<(PushRecord, Duration)> {
    let issued = Arc::new(AtomicU64::new(0));
    let round_trips = cfg.round_trips;
    let start = Instant::now();
    let deadline = start + cfg.max_duration;
    let mut tasks = tokio::task::JoinSet::new();
    for users in groups.into_iter().filter(|g| !g.is_empty()) {
        let sh = sh.clone();
        let issued = Arc::clone(&issued);
        tasks.spawn(async move {
            let mut rec = PushRecord::default();
            let mut next = 0usize;
            while Instant::now() < deadline && issued.fetch_add(1, Ordering::Relaxed) < round_trips
            {
                let user = &users[next % users.len()];
                next = next.wrapping_add(1);
                rec.record(round_trip(&sh, user).await);
            }
            rec
        });
    }
    // Every round trip ends by its own timeout; this is the belt to those
    // braces.
    let hard_stop = cfg.max_duration + cfg.round_trip_timeout + HTTP_SLACK;
    let mut merged = PushRecord::default();
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

fn read_codes(path: &Path) -> Result<Vec<ActivationLine>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading --activation-codes {}", path.display()))?;
    crate::args::parse_activation_codes(&text)
}

/// Setup, the timed phase, the report; returns whether every requested
/// round trip was done and accepted.
pub async fn run(cfg: PushConfig) -> Result<bool> {
    let lines = read_codes(&cfg.activation_codes)?;
    crate::args::check_push_users(lines.len(), cfg.concurrency)?;
    let users = lines.len();
    let c = clients(&cfg)?;
    let sh = Shared {
        sdk: c.sdk,
        device_http: c.device,
        rng: SystemRandom::new(),
        start_url: cfg.base.join("sdk/v1/authenticate")?,
        base: cfg.base.clone(),
        device_base: cfg.device_base.clone(),
        wait_secs: cfg.wait.as_secs(),
        settle: cfg.poll_settle,
        timeout: cfg.round_trip_timeout,
    };
    println!(
        "twofold-bench push: SDK on {}, devices on {} — {users} users, concurrency {}, {} round trips",
        cfg.base, cfg.device_base, cfg.concurrency, cfg.round_trips
    );
    let t0 = Instant::now();
    let (groups, polls) = set_up(&sh, &cfg, lines).await?;
    println!(
        "setup: {users} devices activated, one untimed round trip each, in {:.1} s (not timed)",
        t0.elapsed().as_secs_f64()
    );
    let empty = Summary::from_samples(polls, 0, Duration::ZERO);
    println!(
        "setup: an empty device poll (?wait=0) took p50 {} ms, max {} ms; the settle pause is {} ms",
        crate::stats::ms(empty.p50_us),
        crate::stats::ms(empty.max_us),
        cfg.poll_settle.as_millis()
    );
    let (rec, elapsed) = drive(&sh, &cfg, groups).await?;
    let accepted = rec.accepted();
    let done = rec.round_trips();
    let failed = done - accepted + cfg.round_trips.saturating_sub(done);
    let received = Summary::from_samples(rec.received_us.clone(), accepted, elapsed);
    let released = Summary::from_samples(rec.released_us.clone(), accepted, elapsed);
    print!(
        "{}",
        crate::report::push_text(&cfg, &rec, &received, &released, elapsed)
    );
    println!(
        "{}",
        crate::report::push_result_line(done, accepted, failed, &received, &released, elapsed)
    );
    Ok(failed == 0 && accepted == cfg.round_trips)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{UnparsedPublicKey, ED25519};

    #[test]
    fn signatures_verify_over_the_protocol_message() {
        let rng = SystemRandom::new();
        let mut d = Device::generate(&rng).unwrap();
        d.id = Some("ab".repeat(16));
        let body = br#"{"decision":"approve","number":42}"#;
        let h = d
            .headers(&rng, &Method::POST, "/mobile/v1/requests/x/answer", body)
            .unwrap();
        let get = |name: &str| h.iter().find(|(k, _)| *k == name).unwrap().1.clone();
        let (ts, n, sig) = (
            get(TIMESTAMP_HEADER),
            get(NONCE_HEADER),
            get(SIGNATURE_HEADER),
        );
        assert_eq!(get(DEVICE_HEADER), "ab".repeat(16));
        assert!(twofold_proto::mobile::is_nonce(&n));
        let msg = signed_message("POST", "/mobile/v1/requests/x/answer", &ts, &n, body);
        let public = URL_SAFE_NO_PAD.decode(d.public_key()).unwrap();
        assert_eq!(public.len(), 32);
        let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        UnparsedPublicKey::new(&ED25519, &public)
            .verify(&msg, &sig)
            .unwrap();
        // Another body does not verify.
        let other = signed_message("POST", "/mobile/v1/requests/x/answer", &ts, &n, b"{}");
        assert!(UnparsedPublicKey::new(&ED25519, &public)
            .verify(&other, &sig)
            .is_err());
    }

    #[test]
    fn nonces_are_fresh_and_valid() {
        let rng = SystemRandom::new();
        let a = nonce(&rng).unwrap();
        let b = nonce(&rng).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 24);
        assert!(twofold_proto::mobile::is_nonce(&a));
    }

    #[test]
    fn unactivated_devices_send_no_device_header() {
        let rng = SystemRandom::new();
        let d = Device::generate(&rng).unwrap();
        let h = d
            .headers(&rng, &Method::POST, "/mobile/v1/activate", b"{}")
            .unwrap();
        assert_eq!(h.len(), 3);
        assert!(h.iter().all(|(k, _)| *k != DEVICE_HEADER));
    }

    #[test]
    fn records_count_failures_and_keep_only_accepted_timings() {
        let mut a = PushRecord::default();
        a.record(Ok(Timings {
            received: Duration::from_micros(1500),
            released: Duration::from_millis(4),
            extra_polls: 1,
        }));
        a.record(Err(fail(
            Outcome::Rejected("caller saw expired".into()),
            "u1",
        )));
        let mut b = PushRecord::default();
        b.record(Err(fail(Outcome::Status(401), "u2")));
        b.record(Ok(Timings {
            received: Duration::from_millis(1),
            released: Duration::from_millis(3),
            extra_polls: 0,
        }));
        a.merge(b);
        assert_eq!(a.round_trips(), 4);
        assert_eq!(a.accepted(), 2);
        assert_eq!(a.received_us.len(), 2);
        assert_eq!(a.released_us, vec![4000, 3000]);
        assert_eq!(a.extra_polls, 1);
        assert_eq!(a.failure_samples, vec!["u1", "u2"]);
    }
}
