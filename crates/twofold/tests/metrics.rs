//! `GET /metrics` on the real binary: absent unless configured, opened by
//! the bearer token or an allowed address, and counting requests and the
//! engine's decisions — a wrong code once, never as a success too.
//! SQLite only: the metrics live in the process, whatever the database.

mod common;

use common::{client_trusting, Env, Server};
use serde_json::json;
use twofold_testkit::db::Backend;

const TOKEN: &str = "metrics-token-0123456789abcdef";
/// RFC 4226's test secret ("12345678901234567890"): HOTP code 0 is 755224.
const RFC_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

async fn scrape(http: &reqwest::Client, server: &Server, bearer: Option<&str>) -> (u16, String) {
    let mut req = http.get(server.url("/metrics"));
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    if status == 401 {
        assert_eq!(
            res.headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .map(|v| v.starts_with("Bearer")),
            Some(true)
        );
    }
    if status == 200 {
        assert_eq!(
            res.headers()["content-type"],
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        );
    }
    (status, res.text().await.unwrap())
}

/// The value of the one sample line containing every one of `parts`.
fn sample(text: &str, parts: &[&str]) -> Option<f64> {
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && parts.iter().all(|p| l.contains(p)))
        .collect();
    assert!(lines.len() <= 1, "{parts:?} matches {lines:?}");
    lines
        .first()
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_off_without_configuration() {
    let env = Env::new(Backend::Sqlite).await;
    let check = env.ok(&["config", "check"]);
    assert!(check.contains("metrics   off"), "{check}");
    let server = env.start();
    let http = client_trusting(&env.data_dir().join("tls/cert.pem"));
    assert_eq!(scrape(&http, &server, None).await.0, 404);
    assert_eq!(scrape(&http, &server, Some(TOKEN)).await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_opens_metrics_counting_requests_and_decisions() {
    let mut env = Env::new(Backend::Sqlite).await;
    env.extra = vec![("TWOFOLD_METRICS_TOKEN".into(), TOKEN.into())];
    let check = env.ok(&["config", "check"]);
    assert!(
        check.contains("metrics   on at /metrics (bearer token)"),
        "{check}"
    );
    let secret = env
        .ok(&["service-account", "create", "vpn", "--role", "validate"])
        .lines()
        .last()
        .unwrap()
        .to_string();
    env.ok(&["user", "add", "jan"]);
    env.ok(&[
        "token", "add", "jan", "--type", "hotp", "--secret", RFC_SECRET,
    ]);
    let server = env.start();
    let http = client_trusting(&env.data_dir().join("tls/cert.pem"));

    assert_eq!(scrape(&http, &server, None).await.0, 401);
    assert_eq!(
        scrape(&http, &server, Some("metrics-token-wrong")).await.0,
        401
    );
    assert_eq!(
        scrape(&http, &server, Some(&format!("{TOKEN}x"))).await.0,
        401
    );
    let (status, text) = scrape(&http, &server, Some(TOKEN)).await;
    assert_eq!(status, 200, "{text}");
    assert!(
        text.contains("# TYPE twofold_http_requests counter"),
        "{text}"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
    // The refused scrapes were counted, as the metrics front-end's.
    assert_eq!(
        sample(
            &text,
            &[
                "twofold_http_requests_total{",
                r#"front_end="metrics""#,
                r#"status="401""#
            ]
        ),
        Some(3.0),
        "{text}"
    );

    // A wrong code, then the right one: one refusal and one success.
    for passcode in ["000000", "755224"] {
        let res = http
            .post(server.url("/sdk/v1/validate"))
            .basic_auth("vpn", Some(&secret))
            .json(&json!({ "username": "jan", "passcode": passcode }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    // And a user that does not exist.
    let res = http
        .post(server.url("/sdk/v1/validate"))
        .basic_auth("vpn", Some(&secret))
        .json(&json!({ "username": "nobody", "passcode": "123456" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let (_, text) = scrape(&http, &server, Some(TOKEN)).await;
    let decision = |result: &str| {
        sample(
            &text,
            &[
                "twofold_decisions_total{",
                r#"front_end="sdk""#,
                r#"event="sdk.validate""#,
                &format!(r#"result="{result}""#),
            ],
        )
    };
    assert_eq!(decision("FAILED_OATH_CODE"), Some(1.0), "{text}");
    assert_eq!(decision("SUCCESS_PASSCODE"), Some(1.0), "{text}");
    assert_eq!(decision("FAILED_USER_NOT_FOUND"), Some(1.0), "{text}");
    assert_eq!(
        sample(
            &text,
            &[
                "twofold_http_requests_total{",
                r#"front_end="sdk""#,
                r#"method="POST""#,
                r#"status="200""#
            ]
        ),
        Some(3.0),
        "{text}"
    );
    assert!(
        text.contains(r#"twofold_http_request_duration_seconds_count{front_end="sdk"} 3"#),
        "{text}"
    );
    // No username or path is ever a label.
    assert!(!text.contains("jan") && !text.contains("nobody") && !text.contains("/sdk/"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_addresses_read_metrics_without_a_token() {
    let mut env = Env::new(Backend::Sqlite).await;
    env.extra = vec![("TWOFOLD_METRICS_ALLOW".into(), "127.0.0.1/32".into())];
    let check = env.ok(&["config", "check"]);
    assert!(
        check.contains("metrics   on at /metrics (1 allowed"),
        "{check}"
    );
    let server = env.start();
    let http = client_trusting(&env.data_dir().join("tls/cert.pem"));
    let (status, text) = scrape(&http, &server, None).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("twofold_lockouts_total 0"), "{text}");
    // A scrape is counted once answered: the next one shows it.
    let (_, text) = scrape(&http, &server, None).await;
    assert!(
        text.contains(
            r#"twofold_http_requests_total{front_end="metrics",method="GET",status="200"} 1"#
        ),
        "{text}"
    );

    // Another range only: this client is refused, and no token would help.
    drop(server);
    env.extra = vec![("TWOFOLD_METRICS_ALLOW".into(), "192.0.2.0/24".into())];
    let server = env.start();
    assert_eq!(scrape(&http, &server, None).await.0, 403);
    assert_eq!(scrape(&http, &server, Some(TOKEN)).await.0, 403);
}
