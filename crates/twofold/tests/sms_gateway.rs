//! The generic HTTP SMS gateway (issue 10): with the `sms_gateway.*`
//! settings and no telephony account, text messages go to a gateway on a
//! loopback port (testkit::sms_gateway) as the settings say — JSON or form
//! body, the secret Authorization header — and replies come back on
//! `/hooks/gateway/sms` with the shared secret. Through the real binary, on
//! SQLite and PostgreSQL.

#[macro_use]
mod common;

use common::Env;
use serde_json::{json, Value};
use std::time::Duration;
use twofold_testkit::db::Backend;
use twofold_testkit::sms_gateway::SmsGatewayEmulator;

twofold_testkit::both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)];
    texts_through_a_local_gateway,
);

const KIM: &str = "+31687654321";

fn code_in(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap_or_else(|| panic!("a code in {text:?}"))
        .to_string()
}

async fn texts_through_a_local_gateway(backend: Backend) {
    let gw = SmsGatewayEmulator::start().await;
    let env = Env::new(backend).await;
    env.ok(&["settings", "set", "sms_gateway.url", &gw.url]);
    env.ok(&["settings", "set", "sms_gateway.body_format", "json"]);
    env.ok(&[
        "settings",
        "set",
        "sms_gateway.body_template",
        r#"{"to":"{to}","message":"{text}"}"#,
    ]);
    let out = env.run_with_stdin(
        &["settings", "set", "sms_gateway.authorization", "-"],
        "Bearer gw-token-7\n",
    );
    assert_eq!(out.code(), 0, "{}", out.stderr());
    let out = env.run_with_stdin(
        &["settings", "set", "sms_gateway.inbound_secret", "-"],
        "in-secret-3\n",
    );
    assert_eq!(out.code(), 0, "{}", out.stderr());
    let secret = env
        .ok(&["service-account", "create", "app", "--role", "validate"])
        .lines()
        .last()
        .unwrap()
        .to_string();
    env.ok(&["user", "add", "kim"]);
    env.ok(&[
        "user",
        "set",
        "kim",
        "--mobile-phone",
        KIM,
        "--method",
        "text_message",
    ]);
    env.ok(&["user", "add", "jan"]);
    env.ok(&[
        "user",
        "set",
        "jan",
        "--phone",
        "+31612345678",
        "--method",
        "phone_call",
    ]);
    let server = env.start();
    let pem = std::fs::read(env.data_dir().join("tls/cert.pem")).unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .tls_built_in_root_certs(false)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let sdk = |method: reqwest::Method, path: &str, body: Option<Value>| {
        let mut req = http
            .request(method, server.url(path))
            .basic_auth("app", Some(&secret));
        if let Some(b) = body {
            req = req.json(&b);
        }
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let start = |user: &'static str| {
        sdk(
            reqwest::Method::POST,
            "/sdk/v1/authenticate",
            Some(json!({ "username": user })),
        )
    };

    // One-way: the gateway gets the settings' JSON with the secret header.
    let started = start("kim").await;
    assert_eq!(started["state"], "pending", "{started}");
    let id = started["id"].as_str().unwrap().to_string();
    let hit = gw.hits().last().cloned().expect("the gateway was asked");
    assert_eq!(hit.method, "POST");
    assert_eq!(hit.content_type, "application/json");
    assert_eq!(hit.authorization.as_deref(), Some("Bearer gw-token-7"));
    let body: Value = serde_json::from_str(&hit.body).expect("JSON body");
    assert_eq!(body["to"], KIM);
    let code = code_in(body["message"].as_str().unwrap());
    let answered = sdk(
        reqwest::Method::POST,
        &format!("/sdk/v1/authenticate/{id}/answer"),
        Some(json!({ "passcode": code })),
    )
    .await;
    assert_eq!(answered["state"], "accepted", "{answered}");

    // Calls need a telephony provider: refused, nothing started.
    let refused = start("jan").await;
    assert_eq!(refused["reason"], "provider_error", "{refused}");
    assert!(refused["id"].is_null());

    // Two-way: the reply comes back through the gateway, with its secret.
    env.ok(&[
        "user",
        "set",
        "kim",
        "--method",
        "text_message:sms_two_way_otp",
    ]);
    let id = start("kim").await["id"].as_str().unwrap().to_string();
    let body: Value = serde_json::from_str(&gw.hits().last().unwrap().body).unwrap();
    let code = code_in(body["message"].as_str().unwrap());
    let reply = |secret: &'static str, code: String| {
        http.post(server.url("/hooks/gateway/sms"))
            .header("X-Twofold-Secret", secret)
            .json(&json!({ "from": KIM, "text": code }))
            .send()
    };
    let res = reply("wrong-secret", code.clone()).await.unwrap();
    assert_eq!(res.status(), 403);
    let state = sdk(
        reqwest::Method::GET,
        &format!("/sdk/v1/authenticate/{id}"),
        None,
    )
    .await;
    assert_eq!(state["state"], "pending");
    let res = reply("in-secret-3", code).await.unwrap();
    assert_eq!(res.status(), 204);
    let state = sdk(
        reqwest::Method::GET,
        &format!("/sdk/v1/authenticate/{id}"),
        None,
    )
    .await;
    assert_eq!(state["state"], "accepted", "{state}");
    let audit = env.ok(&["audit", "tail", "-n", "200"]);
    assert!(audit.contains("provider:gateway"), "{audit}");
    assert!(audit.contains("FAILED_FORGED_REQUEST"));
    assert!(!audit.contains("gw-token-7") && !audit.contains("in-secret-3"));

    // A form body, by the default template; a gateway that fails.
    env.ok(&["user", "set", "kim", "--method", "text_message"]);
    env.ok(&["settings", "reset", "sms_gateway.body_template"]);
    env.ok(&["settings", "set", "sms_gateway.body_format", "form"]);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(start("kim").await["state"], "pending");
    let hit = gw.hits().last().cloned().unwrap();
    assert_eq!(hit.content_type, "application/x-www-form-urlencoded");
    assert!(
        hit.body.starts_with("to=%2B31687654321&text="),
        "{}",
        hit.body
    );
    gw.answer_with(503);
    let failed = start("kim").await;
    assert_eq!(failed["reason"], "provider_error", "{failed}");
}
