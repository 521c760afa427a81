//! The portal on a separate server: what the SDK's portal operations accept
//! and refuse, whose address and name the audit log records, and that
//! several portal nodes share sessions without sticky routing.

#[macro_use]
mod common;

use common::{full_admin, Mode, Portal, PASSWORD, SERVICE_ACCOUNT};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use twofold_core::audit::AuditQuery;
use twofold_core::AdminService;
use twofold_core::{Ctx, Engine};
use twofold_testkit::db::Backend;

/// Calls the MFA server's SDK directly with the portal's service account.
struct Sdk {
    base: String,
    client: reqwest::Client,
    secret: String,
}

impl Sdk {
    async fn new(p: &Portal) -> Sdk {
        let secret = match p.sdk_secret() {
            Some(s) => s.to_string(),
            None => {
                p.engine
                    .create_service_account(&Ctx::cli(), SERVICE_ACCOUNT, full_admin())
                    .await
                    .unwrap()
                    .1
            }
        };
        Sdk {
            base: p.server_base.clone(),
            client: reqwest::Client::builder()
                .add_root_certificate(
                    reqwest::Certificate::from_pem(p.server_cert_pem.as_bytes()).unwrap(),
                )
                .tls_built_in_root_certs(false)
                .build()
                .unwrap(),
            secret,
        }
    }

    async fn call_as(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
        auth: bool,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut req = self
            .client
            .request(method, format!("{}/sdk/v1{path}", self.base));
        if auth {
            req = req.basic_auth(SERVICE_ACCOUNT, Some(&self.secret));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        assert_ne!(status, 500, "{path}: {text}");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: not JSON: {text}"))
        };
        (status, headers, value)
    }

    /// One operation on the private portal link (`POST /link/v1`).
    async fn link_as(
        &self,
        body: &str,
        headers: &[(&str, &str)],
        auth: bool,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut req = self
            .client
            .post(format!("{}/link/v1", self.base))
            .header("content-type", "application/json")
            .body(body.to_string());
        if auth {
            req = req.basic_auth(SERVICE_ACCOUNT, Some(&self.secret));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        assert_ne!(status, 500, "link: {text}");
        let value = serde_json::from_str(&text).unwrap_or(Value::Null);
        (status, headers, value)
    }

    async fn link(&self, body: Value) -> (StatusCode, Value) {
        let (s, _, v) = self.link_as(&body.to_string(), &[], true).await;
        (s, v)
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let text = body.map(|b| b.to_string());
        let (s, _, v) = self.call_as(method, path, text.as_deref(), &[], true).await;
        (s, v)
    }
}

async fn events(engine: &Engine, subject: &str) -> Vec<twofold_core::audit::AuditEvent> {
    engine
        .audit_events(
            &Ctx::cli(),
            AuditQuery {
                limit: 1000,
                subject: Some(subject.into()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
}

/// What the audit log says about a browser's sign-ins does not depend on
/// where the portal runs: the end user as actor, the browser's address.
async fn audit_reads_the_same_from_a_remote_portal(backend: Backend) {
    let mut seen = Vec::new();
    for mode in [Mode::InProcess, Mode::Remote] {
        let p = Portal::start_in(backend, mode).await;
        p.user("jan").await;
        let mut b = p.browser();
        b.sign_in("jan", "wrong password").await;
        b.sign_in(" jan ", PASSWORD).await;
        assert_eq!(b.h1(), "Set up your account");
        b.submit("/portal/enroll/oath/new", &[]).await;
        let secret = b.secret();
        b.submit("/portal/enroll/oath/confirm", &[("code", "000000")])
            .await;
        b.submit(
            "/portal/enroll/oath/confirm",
            &[("code", &p.totp(&secret, 0))],
        )
        .await;
        assert_eq!(b.h1(), "Your account");
        b.submit("/portal/sign-out", &[]).await;
        b.sign_in("jan", PASSWORD).await;
        b.submit("/portal/verify", &[("proof", "method"), ("code", "123456")])
            .await;
        b.submit(
            "/portal/verify",
            &[("proof", "method"), ("code", &p.totp(&secret, 1))],
        )
        .await;
        assert_eq!(b.h1(), "Your account");
        let mut evs: Vec<(String, String, String, Option<String>)> = events(&p.engine, "jan")
            .await
            .into_iter()
            .filter(|e| !e.event.starts_with("user.create"))
            .map(|e| {
                (
                    e.actor,
                    e.event,
                    e.result.as_str(),
                    e.source_ip.map(|i| i.to_string()),
                )
            })
            .collect();
        evs.sort();
        assert!(!evs.is_empty());
        for (actor, _, _, ip) in &evs {
            assert_eq!(actor, "user:jan", "{mode:?}: {evs:?}");
            assert_eq!(ip.as_deref(), Some("127.0.0.1"), "{mode:?}: {evs:?}");
        }
        seen.push(evs);
    }
    assert_eq!(seen[0], seen[1], "in process vs remote");
}

/// Two portal nodes on one MFA server: a session started on one continues
/// on the other, mid-flow, with the same CSRF token.
async fn portal_nodes_share_sessions(backend: Backend) {
    let mut p = Portal::start_in(backend, Mode::Remote).await;
    p.user("jan").await;
    let second = p.another_portal().await;
    let mut b = p.browser();
    b.sign_in("jan", PASSWORD).await;
    assert_eq!(b.h1(), "Set up your account");
    b.base = second;
    b.open("/portal").await;
    assert_eq!(b.h1(), "Set up your account", "same session on node two");
    b.submit("/portal/enroll/oath/new", &[]).await;
    let secret = b.secret();
    b.base = p.base.clone();
    b.open("/portal").await;
    assert_eq!(b.secret(), secret, "and back on node one");
    let code = p.totp(&secret, 0);
    b.submit("/portal/enroll/oath/confirm", &[("code", &code)])
        .await;
    assert_eq!(b.h1(), "Your account", "{}", b.page);
}

/// Every portal operation's bad input is a stable JSON error, never a 500;
/// the end user's address is honoured only with valid credentials.
async fn portal_operations_refuse_bad_input(backend: Backend) {
    let p = Portal::start_in(backend, Mode::InProcess).await;
    p.user("jan").await;
    let sdk = Sdk::new(&p).await;

    // Without credentials nothing is served, whatever the headers say.
    let (s, h, v) = sdk
        .link_as(
            &json!({"op": "sign_in", "username": "jan", "password": PASSWORD}).to_string(),
            &[("x-twofold-client-ip", "10.1.2.3")],
            false,
        )
        .await;
    assert_eq!(s, 401);
    assert_eq!(v["error"], "unauthorized");
    assert!(h.contains_key("www-authenticate"));
    assert!(events(&p.engine, "jan")
        .await
        .iter()
        .all(|e| e.source_ip.map(|i| i.to_string()) != Some("10.1.2.3".into())));

    // A malformed client address is refused.
    for bad in ["not-an-ip", "10.1.2.3, 10.4.5.6", "10.1.2.3:80", ""] {
        let (s, _, v) = sdk
            .call_as(
                Method::GET,
                "/settings",
                None,
                &[("x-twofold-client-ip", bad)],
                true,
            )
            .await;
        assert_eq!(s, 422, "{bad:?}");
        assert_eq!(v["field"], "X-Twofold-Client-Ip");
    }

    // The end user's address and name reach the audit log, via the account.
    let (s, _, v) = sdk
        .link_as(
            &json!({"op": "sign_in", "username": " jan ", "password": "wrong"}).to_string(),
            &[("x-twofold-client-ip", "2001:db8::42")],
            true,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["next"], "rejected");
    let e = events(&p.engine, "jan").await;
    let e = e.iter().find(|e| e.event == "primary.password").unwrap();
    assert_eq!(e.actor, "user:jan");
    assert_eq!(e.via.as_deref(), Some(&*format!("sdk:{SERVICE_ACCOUNT}")));
    assert_eq!(e.source_ip.unwrap().to_string(), "2001:db8::42");

    // Bodies: malformed, missing fields, unknown operations, wrong types.
    for body in [
        "{not json",
        r#"{"username": "jan"}"#,
        r#"{"op": "sign_in", "username": "jan"}"#,
        r#"{"op": "become_admin", "username": "jan"}"#,
        r#"{"op": "delete_token", "username": "jan", "token_id": "one"}"#,
    ] {
        let (s, _, v) = sdk.link_as(body, &[], true).await;
        assert_eq!(s, 422, "{body}: {v}");
        assert_eq!(v["error"], "invalid_input");
        assert_eq!(v["field"], "body");
    }
    // Values the engine does not know name their field.
    for (body, field) in [
        (
            json!({"op": "verify", "username": "jan", "proof": "telepathy"}),
            "proof",
        ),
        (
            json!({"op": "change_method", "username": "jan", "method": "fax"}),
            "method",
        ),
        (
            json!({"op": "import_oath_secret", "username": "jan", "secret_base32": "AA", "kind": "motp"}),
            "kind",
        ),
    ] {
        let (s, v) = sdk.link(body.clone()).await;
        assert_eq!(s, 422, "{body}: {v}");
        assert_eq!(v["field"], field, "{body}: {v}");
    }
    // A newer portal's extra field is ignored, so upgrades can be rolling.
    let (s, v) = sdk
        .link(json!({"op": "sign_in", "username": "jan", "password": "x", "trace_id": "t1"}))
        .await;
    assert_eq!((s.as_u16(), v["next"].as_str()), (200, Some("rejected")));

    // Engine refusals keep their field and code.
    let (s, v) = sdk
        .link(json!({"op": "enrollment_options", "username": "nobody"}))
        .await;
    assert_eq!(s, 404, "{v}");
    assert_eq!(v["error"], "not_found");
    let (s, v) = sdk
        .link(json!({"op": "start_bypass", "username": "jan"}))
        .await;
    assert_eq!(s, 403, "bypass is off by default: {v}");
    // An oversized username is just a wrong sign-in, as in the portal.
    let (s, v) = sdk
        .link(json!({"op": "sign_in", "username": "x".repeat(10_000), "password": "y"}))
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["next"], "rejected");

    // Sessions: ids are SHA-256 hex; lifetimes and sizes are bounded.
    let id = "ab".repeat(32);
    let (s, v) = sdk.link(json!({"op": "session_load", "id_hash": id})).await;
    assert_eq!((s, v["data"].clone()), (StatusCode::OK, Value::Null));
    let (s, _) = sdk
        .link(json!({"op": "session_save", "id_hash": id, "data": "{\"csrf\":\"x\"}", "ttl_seconds": 60}))
        .await;
    assert_eq!(s, 200);
    let (_, v) = sdk.link(json!({"op": "session_load", "id_hash": id})).await;
    assert_eq!(v["data"], "{\"csrf\":\"x\"}");
    for (bad_id, data, ttl) in [
        ("abc".to_string(), "x".to_string(), 60),
        ("AB".repeat(32), "x".to_string(), 60),
        ("zz".repeat(32), "x".to_string(), 60),
        (id.clone(), "x".to_string(), 0),
        (id.clone(), "x".repeat(20_000), 60),
    ] {
        let (s, v) = sdk
            .link(
                json!({"op": "session_save", "id_hash": bad_id, "data": data, "ttl_seconds": ttl}),
            )
            .await;
        assert_eq!(s, 422, "{bad_id}: {v}");
        assert_eq!(v["field"], "session");
    }
    let (s, _) = sdk.link(json!({"op": "session_drop", "id_hash": id})).await;
    assert_eq!(s, 200);
    let (_, v) = sdk.link(json!({"op": "session_load", "id_hash": id})).await;
    assert_eq!(v["data"], Value::Null);

    // Passed sessions over the link: nothing while they are off; then a
    // cookie for the domain, the return address only to a protected site,
    // and ending it by its token.
    let (s, v) = sdk
        .link(json!({"op": "pass_session", "username": "jan", "via": "second_step"}))
        .await;
    assert_eq!(
        (s.as_u16(), v["enabled"].clone()),
        (200, json!(false)),
        "{v}"
    );
    for (key, value) in [
        ("passed_sessions.cookie_domain", json!("example.com")),
        ("passed_sessions.sites", json!(["*.example.com"])),
        ("passed_sessions.enabled", json!(true)),
    ] {
        p.engine.set_setting(&Ctx::cli(), key, value).await.unwrap();
    }
    let (s, v) = sdk
        .link(
            json!({"op": "pass_session", "username": "jan", "via": "second_step",
                     "return_to": "https://app.example.com/x"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["cookie_domain"], "example.com");
    assert_eq!(v["return_to"], "https://app.example.com/x");
    assert_eq!(v["token"].as_str().unwrap().len(), 43);
    let token = v["token"].clone();
    let (_, v) = sdk
        .link(
            json!({"op": "pass_session", "username": "jan", "via": "bypass",
                     "return_to": "https://evil.test/"}),
        )
        .await;
    assert_eq!(
        (v["return_to"].clone(), v["refused"].clone()),
        (Value::Null, json!("not_protected"))
    );
    let (s, v) = sdk
        .link(json!({"op": "pass_session", "username": "jan", "via": "magic"}))
        .await;
    assert_eq!((s.as_u16(), v["field"].clone()), (422, json!("via")), "{v}");
    let (s, v) = sdk
        .link(json!({"op": "end_passed_session", "token": token}))
        .await;
    assert_eq!(
        (s.as_u16(), v["cookie_domain"].clone()),
        (200, json!("example.com"))
    );
    assert!(events(&p.engine, "jan")
        .await
        .iter()
        .any(|e| e.event == "passed.close" && e.actor == format!("sdk:{SERVICE_ACCOUNT}")));

    // The portal's settings are a projection: nothing but what it renders by.
    let (s, v) = sdk.link(json!({"op": "settings"})).await;
    assert_eq!(s, 200);
    assert_eq!(
        v,
        json!({"allow_login": true, "logging": false,
               "languages": ["en", "nl", "de", "fr", "es"], "time_zone": "UTC"})
    );

    // Settings through the public API: read, change (checked against the
    // key's rule), reset.
    let (s, v) = sdk.call(Method::GET, "/settings", None).await;
    assert_eq!(s, 200);
    assert_eq!(v["portal"]["allow_bypass"], false);
    let (s, v) = sdk
        .call(
            Method::PUT,
            "/settings/portal.allow_bypass",
            Some(json!({"value": "maybe"})),
        )
        .await;
    assert_eq!(s, 422);
    assert_eq!(v["field"], "portal.allow_bypass");
    let (s, v) = sdk
        .call(
            Method::PUT,
            "/settings/no.such_key",
            Some(json!({"value": 1})),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    let (s, v) = sdk
        .call(
            Method::PUT,
            "/settings/portal.allow_bypass",
            Some(json!({"value": true})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["portal"]["allow_bypass"], true);
    assert!(
        p.engine
            .settings(&Ctx::cli())
            .await
            .unwrap()
            .portal
            .allow_bypass
    );
    let changed = p
        .engine
        .audit_events(
            &Ctx::cli(),
            AuditQuery {
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(changed
        .iter()
        .any(|e| e.event == "settings.set" && e.actor == format!("sdk:{SERVICE_ACCOUNT}")));
    let (s, v) = sdk
        .call(Method::DELETE, "/settings/portal.allow_bypass", None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["portal"]["allow_bypass"], false);

    let (s, v) = sdk.link(json!({"op": "ready"})).await;
    assert_eq!((s, v["status"].clone()), (StatusCode::OK, json!("ready")));
    // The portal's operations left the public API.
    let (s, _) = sdk
        .call(
            Method::POST,
            "/portal/sign-in",
            Some(json!({"username": "jan", "password": PASSWORD})),
        )
        .await;
    assert_eq!(s, 404);
}

/// The per-address throttle applies to the end user's address, with
/// `Retry-After`; other end users of the same portal go on.
async fn throttle_follows_the_end_users_address(backend: Backend) {
    let p = Portal::start_in(backend, Mode::InProcess).await;
    let sdk = Sdk::new(&p).await;
    let sign_in = |ip: &'static str, n: usize| {
        let body = json!({"op": "sign_in", "username": format!("user{n}"), "password": "guess"})
            .to_string();
        let sdk = &sdk;
        async move {
            sdk.link_as(&body, &[("x-twofold-client-ip", ip)], true)
                .await
        }
    };
    for i in 0..50 {
        let (s, _, _) = sign_in("198.51.100.7", i).await;
        assert_eq!(s, 200);
    }
    let (s, h, v) = sign_in("198.51.100.7", 50).await;
    assert_eq!(s, 429, "{v}");
    assert_eq!(v["error"], "rate_limited");
    let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=300).contains(&retry), "{retry}");
    let (s, _, _) = sign_in("198.51.100.8", 51).await;
    assert_eq!(s, 200, "another end user is not throttled");
}

twofold_testkit::both_backends!(
    audit_reads_the_same_from_a_remote_portal,
    portal_nodes_share_sessions,
    portal_operations_refuse_bad_input,
    throttle_follows_the_end_users_address,
);
