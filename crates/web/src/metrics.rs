//! `GET /metrics`: Prometheus metrics of the requests served and of the
//! engine's decisions, in the OpenMetrics text format.
//!
//! Every label value comes from a fixed set — front-ends from the first
//! path segment, HTTP methods, status codes, the engine's event names,
//! method names and result codes — never a username, an address or a full
//! path, so the number of series stays bounded whatever clients send.
//!
//! Metrics say who signs in how often and which accounts fail, in
//! aggregate: the page is off unless the configuration gives a bearer
//! token (`metrics.token`) or addresses allowed to read it (`metrics.allow`).

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ipnet::IpNet;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;
use subtle::ConstantTimeEq;
use twofold_core::audit::ResultCode;
use twofold_core::telemetry::{Decision, Telemetry};

use crate::client_ip::ClientIp;

/// What `prometheus_client` encodes; Prometheus negotiates and reads it.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The event of a challenge's end, whatever ended it (an answer, a call,
/// the app, expiry): its result is the challenge's outcome.
const CHALLENGE_FINISH: &str = "sdk.authenticate_finish";

/// Seconds; long polls (a challenge's status, a device's requests) wait up
/// to tens of seconds, hence the upper buckets.
const LATENCY_BUCKETS: [f64; 13] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Who may read `/metrics`: a request with the bearer token, or from an
/// allowed address.
#[derive(Clone, Default)]
pub struct MetricsAccess {
    /// SHA-256 of the token: compared in constant time, and the digest
    /// hides the token's length too.
    token: Option<[u8; 32]>,
    allow: Vec<IpNet>,
}

impl std::fmt::Debug for MetricsAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsAccess")
            .field("token", &self.token.map(|_| "<redacted>"))
            .field("allow", &self.allow)
            .finish()
    }
}

/// The answer to one request for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// A token would open it: 401 with `WWW-Authenticate: Bearer`.
    Unauthorized,
    /// Only addresses open it, and this one is not listed.
    Forbidden,
    /// Neither a token nor addresses are configured: no such page.
    Off,
}

impl MetricsAccess {
    pub fn new(token: Option<&str>, allow: Vec<IpNet>) -> Self {
        MetricsAccess {
            token: token.map(|t| Sha256::digest(t.as_bytes()).into()),
            allow,
        }
    }

    /// Whether any access is configured, i.e. whether `/metrics` exists.
    pub fn is_on(&self) -> bool {
        self.token.is_some() || !self.allow.is_empty()
    }

    pub fn verdict(&self, authorization: Option<&HeaderValue>, client: Option<IpAddr>) -> Verdict {
        if !self.is_on() {
            return Verdict::Off;
        }
        if client.is_some_and(|ip| self.allow.iter().any(|net| net.contains(&ip))) {
            return Verdict::Allowed;
        }
        let Some(expected) = &self.token else {
            return Verdict::Forbidden;
        };
        let given = authorization
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        match given {
            Some(token) if bool::from(Sha256::digest(token.as_bytes()).ct_eq(expected)) => {
                Verdict::Allowed
            }
            _ => Verdict::Unauthorized,
        }
    }
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    front_end: &'static str,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FrontEndLabel {
    front_end: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    front_end: String,
    event: String,
    /// `none` when the event names no method.
    method: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabel {
    event: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

type Histograms = Family<FrontEndLabel, Histogram, fn() -> Histogram>;

/// The registry and its metric families; the engine's `Telemetry`.
pub struct Metrics {
    registry: Registry,
    access: MetricsAccess,
    requests: Family<HttpLabels, Counter>,
    durations: Histograms,
    decisions: Family<DecisionLabels, Counter>,
    lockouts: Counter,
    provider_errors: Family<EventLabel, Counter>,
    challenges: Family<ResultLabel, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("access", &self.access)
            .finish_non_exhaustive()
    }
}

impl Metrics {
    pub fn new(access: MetricsAccess) -> Self {
        let mut registry = Registry::with_prefix("twofold");
        let requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by front-end, HTTP method and status code",
            requests.clone(),
        );
        let durations: Histograms =
            Family::new_with_constructor(|| Histogram::new(LATENCY_BUCKETS));
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request (until the response's head), by front-end",
            durations.clone(),
        );
        let decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "decisions",
            "Decisions of the engine as written to the audit log, by front-end, event, method and result code",
            decisions.clone(),
        );
        let lockouts = Counter::default();
        registry.register(
            "lockouts",
            "Factors locked after too many wrong secrets (FAILED_LOCKED_OUT)",
            lockouts.clone(),
        );
        let provider_errors = Family::<EventLabel, Counter>::default();
        registry.register(
            "provider_errors",
            "Mail servers and telephony providers that refused or did not answer (FAILED_PROVIDER_ERROR), by event",
            provider_errors.clone(),
        );
        let challenges = Family::<ResultLabel, Counter>::default();
        registry.register(
            "challenges",
            "Challenges (call, text message, mobile app, code) ended, by outcome",
            challenges.clone(),
        );
        Metrics {
            registry,
            access,
            requests,
            durations,
            decisions,
            lockouts,
            provider_errors,
            challenges,
        }
    }

    pub fn access(&self) -> &MetricsAccess {
        &self.access
    }

    /// The registry in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a `String` cannot fail, nor can our label values.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "cannot encode the metrics");
        }
        out
    }

    fn observe_request(&self, labels: HttpLabels, seconds: f64) {
        self.durations
            .get_or_create(&FrontEndLabel {
                front_end: labels.front_end,
            })
            .observe(seconds);
        self.requests.get_or_create(&labels).inc();
    }
}

impl Telemetry for Metrics {
    fn decision(&self, d: &Decision<'_>) {
        let result = d.result.as_str();
        if d.result == ResultCode::FailedLockedOut {
            self.lockouts.inc();
        }
        if d.result == ResultCode::FailedProviderError {
            self.provider_errors
                .get_or_create(&EventLabel {
                    event: d.event.to_string(),
                })
                .inc();
        }
        if d.event == CHALLENGE_FINISH {
            self.challenges
                .get_or_create(&ResultLabel {
                    result: result.clone(),
                })
                .inc();
        }
        self.decisions
            .get_or_create(&DecisionLabels {
                front_end: d.front_end.to_string(),
                event: d.event.to_string(),
                method: d.method.unwrap_or("none").to_string(),
                result,
            })
            .inc();
    }
}

/// The front-end a request is for, from its path's first segment: a label
/// from a fixed set, whatever the path.
pub fn front_end_of_path(path: &str) -> &'static str {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    match first {
        // `/` sends browsers to the portal; `/static` holds its CSS and JS.
        "portal" | "" | "static" => "portal",
        "sdk" => "sdk",
        "link" => "portal_link",
        "hooks" => "provider",
        "mobile" => "mobile_app",
        "auth" => "forward_auth",
        "healthz" | "readyz" => "health",
        "metrics" => "metrics",
        _ => "other",
    }
}

/// The HTTP method as a label: any other token a client makes up is `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Middleware counting and timing every request.
pub async fn record(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let front_end = front_end_of_path(req.uri().path());
    let method = method_label(req.method());
    let started = Instant::now();
    let response = next.run(req).await;
    metrics.observe_request(
        HttpLabels {
            front_end,
            method,
            status: response.status().as_u16(),
        },
        started.elapsed().as_secs_f64(),
    );
    response
}

/// `GET /metrics`, readable as `metrics.access()` says.
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(metrics)
}

async fn scrape(
    State(metrics): State<Arc<Metrics>>,
    client: Option<axum::Extension<ClientIp>>,
    headers: HeaderMap,
) -> Response {
    let verdict = metrics.access.verdict(
        headers.get(header::AUTHORIZATION),
        client.map(|axum::Extension(ClientIp(ip))| ip),
    );
    match verdict {
        Verdict::Allowed => (
            [
                (header::CONTENT_TYPE, CONTENT_TYPE),
                (header::CACHE_CONTROL, "no-store"),
            ],
            metrics.encode(),
        )
            .into_response(),
        Verdict::Unauthorized => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer realm=\"twofold-metrics\"")],
            "a bearer token is required\n",
        )
            .into_response(),
        Verdict::Forbidden => (
            StatusCode::FORBIDDEN,
            "this address may not read the metrics\n",
        )
            .into_response(),
        Verdict::Off => StatusCode::NOT_FOUND.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    fn bearer(t: &str) -> HeaderValue {
        HeaderValue::from_str(&format!("Bearer {t}")).unwrap()
    }

    #[test]
    fn front_ends_come_from_the_first_segment_only() {
        for (path, want) in [
            ("/portal/sign-in", "portal"),
            ("/", "portal"),
            ("/static/portal.css", "portal"),
            ("/sdk/v1/validate", "sdk"),
            ("/link/v1", "portal_link"),
            ("/hooks/twilio/voice", "provider"),
            ("/mobile/v1/requests", "mobile_app"),
            ("/auth/check", "forward_auth"),
            ("/healthz", "health"),
            ("/readyz", "health"),
            ("/metrics", "metrics"),
            ("/portalx", "other"),
            ("/sdkjan", "other"),
            ("/dev/outbox", "other"),
            ("/wp-admin/../etc/passwd", "other"),
        ] {
            assert_eq!(front_end_of_path(path), want, "{path}");
        }
    }

    #[test]
    fn made_up_methods_share_one_label() {
        assert_eq!(method_label(&Method::POST), "POST");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
    }

    #[test]
    fn nothing_configured_is_off() {
        let a = MetricsAccess::new(None, Vec::new());
        assert!(!a.is_on());
        assert_eq!(a.verdict(Some(&bearer("x")), ip("127.0.0.1")), Verdict::Off);
    }

    #[test]
    fn token_opens_and_anything_else_is_unauthorized() {
        let a = MetricsAccess::new(Some("s3cret-token"), Vec::new());
        assert_eq!(
            a.verdict(Some(&bearer("s3cret-token")), None),
            Verdict::Allowed
        );
        assert_eq!(
            a.verdict(Some(&HeaderValue::from_static("bearer s3cret-token")), None),
            Verdict::Allowed
        );
        for wrong in [
            Some(bearer("s3cret-toke")),
            Some(bearer("s3cret-token2")),
            Some(bearer("")),
            Some(HeaderValue::from_static("Basic czNjcmV0LXRva2Vu")),
            Some(HeaderValue::from_static("s3cret-token")),
            None,
        ] {
            assert_eq!(
                a.verdict(wrong.as_ref(), ip("127.0.0.1")),
                Verdict::Unauthorized,
                "{wrong:?}"
            );
        }
    }

    #[test]
    fn allowed_addresses_need_no_token() {
        let a = MetricsAccess::new(None, vec!["10.0.0.0/8".parse().unwrap()]);
        assert_eq!(a.verdict(None, ip("10.1.2.3")), Verdict::Allowed);
        assert_eq!(a.verdict(None, ip("192.0.2.1")), Verdict::Forbidden);
        assert_eq!(
            a.verdict(Some(&bearer("x")), ip("192.0.2.1")),
            Verdict::Forbidden
        );
        assert_eq!(a.verdict(None, None), Verdict::Forbidden);

        // With both, either opens it; a stranger without the token is asked for it.
        let both = MetricsAccess::new(Some("t"), vec!["::1/128".parse().unwrap()]);
        assert_eq!(both.verdict(None, ip("::1")), Verdict::Allowed);
        assert_eq!(
            both.verdict(Some(&bearer("t")), ip("192.0.2.1")),
            Verdict::Allowed
        );
        assert_eq!(both.verdict(None, ip("192.0.2.1")), Verdict::Unauthorized);
    }

    #[test]
    fn the_token_is_not_in_debug_output() {
        let a = MetricsAccess::new(Some("s3cret-token"), Vec::new());
        assert!(!format!("{a:?}").contains("s3cret"));
    }

    #[test]
    fn decisions_feed_the_derived_counters() {
        let m = Metrics::new(MetricsAccess::new(Some("t"), Vec::new()));
        let decide = |event: &str, method: Option<&str>, result: ResultCode| {
            m.decision(&Decision {
                front_end: "sdk",
                event,
                method,
                result,
            });
        };
        decide(
            "sdk.validate",
            Some("oath_token"),
            ResultCode::FailedOathCode,
        );
        decide("sdk.validate", None, ResultCode::FailedLockedOut);
        decide(
            "delivery.sent",
            Some("text_message"),
            ResultCode::FailedProviderError,
        );
        decide(
            CHALLENGE_FINISH,
            Some("phone_call"),
            ResultCode::FailedNoAnswer,
        );
        m.observe_request(
            HttpLabels {
                front_end: "sdk",
                method: "POST",
                status: 200,
            },
            0.02,
        );
        let text = m.encode();
        for line in [
            r#"twofold_decisions_total{front_end="sdk",event="sdk.validate",method="oath_token",result="FAILED_OATH_CODE"} 1"#,
            r#"twofold_decisions_total{front_end="sdk",event="sdk.validate",method="none",result="FAILED_LOCKED_OUT"} 1"#,
            "twofold_lockouts_total 1",
            r#"twofold_provider_errors_total{event="delivery.sent"} 1"#,
            r#"twofold_challenges_total{result="FAILED_NO_ANSWER"} 1"#,
            r#"twofold_http_requests_total{front_end="sdk",method="POST",status="200"} 1"#,
            r#"twofold_http_request_duration_seconds_bucket{le="0.025",front_end="sdk"} 1"#,
            "# EOF",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }
}
