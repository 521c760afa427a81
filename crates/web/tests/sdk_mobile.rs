//! The mobile app through the Web Service SDK and the Mobile App Web
//! Service, on SQLite and PostgreSQL: a device activated with a helpdesk's
//! code approves sign-ins with number matching (and the PIN in PIN mode),
//! denies, reports fraud; and every forgery the protocol guards against —
//! a changed body, an unknown device, a replayed nonce, a skewed clock,
//! another user's request, a late answer, guessed and reused activation
//! codes, one device too many — is refused with its stable code.

#[macro_use]
mod common;

use common::{Api, Portal};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use twofold_core::{AdminService, Ctx};
use twofold_testkit::db::Backend;
use twofold_testkit::mobile::TestDevice;

twofold_testkit::both_backends!(
    approvals_with_number_matching,
    pin_mode,
    denial_and_fraud,
    forgeries_are_refused,
    activation_codes_and_device_limit,
    expired_requests_and_the_long_poll,
    push_wake_ups,
);

const PIN: &str = "4826";

/// `username` with method `mobile_app:MODE` (and the PIN), no device yet.
async fn app_user(api: &Api, username: &str, mode: &str) {
    let (s, v) = api.post("/users", json!({ "username": username })).await;
    assert_eq!(s, 201, "{v}");
    if mode == "phone_app_pin" {
        let (s, v) = api
            .put(&format!("/users/{username}/pin"), json!({ "pin": PIN }))
            .await;
        assert_eq!(s, 204, "{v}");
    }
    let (s, v) = api
        .put(
            &format!("/users/{username}/method"),
            json!({ "method": format!("mobile_app:{mode}") }),
        )
        .await;
    assert_eq!(s, 200, "{v}");
}

/// A device activated for `username` with a helpdesk code.
async fn device_for(p: &Portal, username: &str) -> TestDevice {
    let offer = p
        .engine
        .device_activation_code(&Ctx::cli(), username)
        .await
        .expect("activation code");
    let mut d = TestDevice::new(&p.server_base);
    let (s, v) = d.activate(&offer.code).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["username"], username);
    assert_eq!(v["oath"]["digits"], 6);
    d
}

async fn start(api: &Api, username: &str) -> Value {
    let (s, v) = api
        .post("/authenticate", json!({ "username": username }))
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["prompt"], "mobile_app", "{v}");
    let n = v["number"].as_u64().expect("a number to show");
    assert!((10..=99).contains(&n), "{n}");
    v
}

async fn status(api: &Api, id: &str) -> Value {
    let (s, v) = api.get(&format!("/authenticate/{id}")).await;
    assert_eq!(s, 200, "{v}");
    v
}

fn other(n: u64) -> u64 {
    if n == 99 {
        10
    } else {
        n + 1
    }
}

async fn approvals_with_number_matching(backend: Backend) {
    let p = Portal::start(backend).await;
    let api = Api::new(&p, "vpn").await;
    app_user(&api, "jan", "phone_app_standard").await;
    let d = device_for(&p, "jan").await;

    // Approved with the number shown: the SDK sees it accepted.
    let started = start(&api, "jan").await;
    let id = started["id"].as_str().unwrap();
    let pending = d.pending(0).await;
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["id"], id);
    assert_eq!(pending[0]["application"], "vpn");
    assert_eq!(pending[0]["pin_required"], false);
    assert!(
        pending[0].get("number").is_none(),
        "the device is not told the number"
    );
    let (s, v) = d
        .answer(id, "approve", started["number"].as_u64(), None)
        .await;
    assert_eq!(
        (s, &v["state"], &v["reason"]),
        (StatusCode::OK, &json!("accepted"), &json!("accepted"))
    );
    assert_eq!(status(&api, id).await["state"], "accepted");
    // Answered once: a second answer is too late.
    let (s, v) = d
        .answer(id, "approve", started["number"].as_u64(), None)
        .await;
    assert_eq!(
        (s, &v["reason"]),
        (StatusCode::CONFLICT, &json!("finished"))
    );
    assert!(d.pending(0).await.is_empty());

    // Another number: refused at once, whatever the user meant.
    let started = start(&api, "jan").await;
    let id = started["id"].as_str().unwrap();
    let (s, v) = d
        .answer(
            id,
            "approve",
            Some(other(started["number"].as_u64().unwrap())),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        (&v["state"], &v["reason"]),
        (&json!("rejected"), &json!("wrong_number"))
    );
    let st = status(&api, id).await;
    assert_eq!(
        (&st["state"], &st["reason"]),
        (&json!("rejected"), &json!("wrong_number"))
    );

    // Approving without a number is a malformed answer, changing nothing.
    let started = start(&api, "jan").await;
    let id = started["id"].as_str().unwrap();
    let (s, v) = d.answer(id, "approve", None, None).await;
    assert_eq!(
        (s, &v["field"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("number"))
    );
    assert_eq!(status(&api, id).await["state"], "pending");

    // A second device of the same user may answer too (limit raised).
    p.set("portal.max_mobile_devices", "2").await;
    let d2 = device_for(&p, "jan").await;
    assert_eq!(d2.pending(0).await[0]["id"], id);
    let (s, _) = d2
        .answer(id, "approve", started["number"].as_u64(), None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(status(&api, id).await["state"], "accepted");

    let results = p.audit_results("jan").await;
    for code in [
        "SUCCESS_DEVICE_ACTIVATED",
        "SUCCESS_MOBILE_APP",
        "FAILED_WRONG_NUMBER",
    ] {
        assert!(results.iter().any(|r| r == code), "{code} in {results:?}");
    }
    // The OATH secret the app shows codes of is the user's fallback token.
    let tokens = p.engine.tokens(&Ctx::cli(), "jan").await.unwrap();
    assert_eq!(tokens.len(), 2);
    assert!(tokens[0].label.starts_with("Mobile app: "));
}

async fn pin_mode(backend: Backend) {
    let p = Portal::start(backend).await;
    let api = Api::new(&p, "vpn").await;
    app_user(&api, "kim", "phone_app_pin").await;
    let d = device_for(&p, "kim").await;

    let started = start(&api, "kim").await;
    let id = started["id"].as_str().unwrap();
    let n = started["number"].as_u64();
    assert_eq!(d.pending(0).await[0]["pin_required"], true);
    // Without the PIN: malformed, not counted.
    let (s, v) = d.answer(id, "approve", n, None).await;
    assert_eq!(
        (s, &v["field"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("pin"))
    );
    // Wrong PINs count; the third ends the request.
    for left in [true, true, false] {
        let (s, v) = d.answer(id, "approve", n, Some("1111")).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["reason"], "wrong_pin");
        assert_eq!(v["state"], if left { "pending" } else { "rejected" }, "{v}");
    }
    assert_eq!(status(&api, id).await["reason"], "wrong_pin");
    // The right PIN with the right number.
    let started = start(&api, "kim").await;
    let id = started["id"].as_str().unwrap();
    let (s, v) = d
        .answer(id, "approve", started["number"].as_u64(), Some(PIN))
        .await;
    assert_eq!(
        (s, &v["state"]),
        (StatusCode::OK, &json!("accepted")),
        "{v}"
    );
    let results = p.audit_results("kim").await;
    assert!(
        results.iter().any(|r| r == "FAILED_PIN_WRONG"),
        "{results:?}"
    );
}

async fn denial_and_fraud(backend: Backend) {
    let p = Portal::start(backend).await;
    let api = Api::new(&p, "vpn").await;
    app_user(&api, "jan", "phone_app_standard").await;
    let d = device_for(&p, "jan").await;

    let id = start(&api, "jan").await["id"].as_str().unwrap().to_string();
    let (s, v) = d.answer(&id, "deny", None, None).await;
    assert_eq!(
        (s, &v["state"], &v["reason"]),
        (StatusCode::OK, &json!("rejected"), &json!("denied"))
    );
    assert_eq!(status(&api, &id).await["reason"], "denied");

    // Fraud: rejected, and the user blocked until an administrator unblocks.
    let id = start(&api, "jan").await["id"].as_str().unwrap().to_string();
    let (s, v) = d.answer(&id, "fraud", None, None).await;
    assert_eq!(
        (s, &v["reason"]),
        (StatusCode::OK, &json!("fraud_reported")),
        "{v}"
    );
    let user = p.engine.get_user(&Ctx::cli(), "jan").await.unwrap();
    assert!(user.fraud_blocked);
    let (s, v) = api
        .post("/authenticate", json!({ "username": "jan" }))
        .await;
    assert_eq!(
        (s, &v["state"]),
        (StatusCode::OK, &json!("rejected")),
        "{v}"
    );
    assert!(p
        .audit_results("jan")
        .await
        .iter()
        .any(|r| r == "FAILED_FRAUD_REPORTED"));

    // With blocking off, a report still rejects but does not block.
    p.engine.unblock_user(&Ctx::cli(), "jan").await.unwrap();
    p.set("fraud.block_on_report", "false").await;
    let id = start(&api, "jan").await["id"].as_str().unwrap().to_string();
    let (_, v) = d.answer(&id, "fraud", None, None).await;
    assert_eq!(v["reason"], "fraud_reported");
    assert!(
        !p.engine
            .get_user(&Ctx::cli(), "jan")
            .await
            .unwrap()
            .fraud_blocked
    );
}

async fn forgeries_are_refused(backend: Backend) {
    let p = Portal::start(backend).await;
    let api = Api::new(&p, "vpn").await;
    app_user(&api, "jan", "phone_app_standard").await;
    app_user(&api, "kim", "phone_app_standard").await;
    let d = device_for(&p, "jan").await;
    let kims = device_for(&p, "kim").await;
    let started = start(&api, "jan").await;
    let id = started["id"].as_str().unwrap();
    let answer_path = format!("/mobile/v1/requests/{id}/answer");
    let approve = json!({"decision": "approve", "number": started["number"]}).to_string();

    // A body changed after signing.
    let mut sent = d.sign(Method::POST, &answer_path, approve.as_bytes());
    sent.body = json!({"decision": "approve", "number": 0})
        .to_string()
        .into_bytes();
    let (s, v) = d.send(&sent).await;
    assert_eq!(
        (s, &v["reason"]),
        (StatusCode::UNAUTHORIZED, &json!("signature")),
        "{v}"
    );
    // Signed by another key under this device's id.
    let mut impostor = TestDevice::new(&p.server_base);
    impostor.device_id.clone_from(&d.device_id);
    let (s, v) = impostor
        .call(
            Method::POST,
            &answer_path,
            Some(serde_json::from_str(&approve).unwrap()),
        )
        .await;
    assert_eq!(
        (s, &v["reason"]),
        (StatusCode::UNAUTHORIZED, &json!("signature"))
    );
    // An unknown device says the same.
    impostor.device_id = Some("0".repeat(32));
    let (s, v) = impostor
        .call(Method::GET, "/mobile/v1/requests", None)
        .await;
    assert_eq!(
        (s, &v["reason"]),
        (StatusCode::UNAUTHORIZED, &json!("signature"))
    );
    // A clock ten minutes off.
    let mut skewed = TestDevice::new(&p.server_base);
    skewed.clock_offset = -600;
    skewed.device_id.clone_from(&d.device_id);
    let (s, v) = skewed.call(Method::GET, "/mobile/v1/requests", None).await;
    assert_eq!(
        (s, &v["reason"]),
        (StatusCode::UNAUTHORIZED, &json!("timestamp"))
    );
    // Another user's device cannot see or answer it (404, audited).
    assert!(kims.pending(0).await.is_empty());
    let (s, _) = kims
        .answer(id, "approve", started["number"].as_u64(), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Nothing above decided it.
    assert_eq!(status(&api, id).await["state"], "pending");

    // The genuine answer, then the very same request again: a replay.
    let sent = d.sign(Method::POST, &answer_path, approve.as_bytes());
    let (s, v) = d.send(&sent).await;
    assert_eq!(
        (s, &v["state"]),
        (StatusCode::OK, &json!("accepted")),
        "{v}"
    );
    let (s, v) = d.send(&sent).await;
    assert_eq!(
        (s, &v["reason"]),
        (StatusCode::UNAUTHORIZED, &json!("nonce")),
        "{v}"
    );
    // Malformed signature headers are input errors.
    let mut bad = d.sign(Method::GET, "/mobile/v1/requests", b"");
    bad.headers
        .retain(|(k, _)| *k != twofold_proto::mobile::NONCE_HEADER);
    bad.headers
        .push((twofold_proto::mobile::NONCE_HEADER, "short".into()));
    let (s, _) = d.send(&bad).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    let results = p.audit_results("jan").await;
    assert!(
        results.iter().any(|r| r == "FAILED_FORGED_REQUEST"),
        "{results:?}"
    );

    // Deactivated: the device's key opens nothing any more, and its token
    // went with it.
    let (s, _) = d.call(Method::POST, "/mobile/v1/deactivate", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = d.call(Method::GET, "/mobile/v1/requests", None).await;
    assert_eq!(
        (s, &v["reason"]),
        (StatusCode::UNAUTHORIZED, &json!("signature"))
    );
    assert!(p
        .engine
        .mobile_devices(&Ctx::cli(), "jan")
        .await
        .unwrap()
        .is_empty());
    assert!(p
        .engine
        .tokens(&Ctx::cli(), "jan")
        .await
        .unwrap()
        .is_empty());
    // With no device left the SDK says so before starting anything.
    let (s, v) = api
        .post("/authenticate", json!({ "username": "jan" }))
        .await;
    assert_eq!(
        (s, &v["reason"]),
        (StatusCode::OK, &json!("no_device")),
        "{v}"
    );
}

async fn activation_codes_and_device_limit(backend: Backend) {
    let p = Portal::start(backend).await;
    let api = Api::new(&p, "vpn").await;
    app_user(&api, "jan", "phone_app_standard").await;
    let cli = Ctx::cli();

    // A guessed code.
    let mut d = TestDevice::new(&p.server_base);
    let (s, v) = d.activate("123412341234").await;
    assert_eq!(
        (s, &v["reason"]),
        (StatusCode::FORBIDDEN, &json!("activation_code")),
        "{v}"
    );
    // A used code.
    let offer = p.engine.device_activation_code(&cli, "jan").await.unwrap();
    let spare = p.engine.device_activation_code(&cli, "jan").await.unwrap();
    assert!(
        offer.uri.starts_with("twofold://activate?url="),
        "{}",
        offer.uri
    );
    let (s, _) = d.activate(&offer.code).await;
    assert_eq!(s, 200);
    let mut again = TestDevice::new(&p.server_base);
    let (s, v) = again.activate(&offer.code).await;
    assert_eq!(
        (s, &v["reason"]),
        (StatusCode::FORBIDDEN, &json!("activation_code"))
    );
    // One device is the limit: no code is issued, and a code issued before
    // cannot pass it either (and stays unused).
    let refused = p.engine.device_activation_code(&cli, "jan").await;
    assert!(
        matches!(refused, Err(twofold_core::Error::Conflict { .. })),
        "{refused:?}"
    );
    let (s, v) = again.activate(&spare.code).await;
    assert_eq!(
        (s, &v["reason"]),
        (StatusCode::CONFLICT, &json!("device_limit")),
        "{v}"
    );
    p.engine
        .remove_mobile_device(&cli, "jan", d.device_id.as_deref().unwrap())
        .await
        .unwrap();
    let (s, _) = again.activate(&spare.code).await;
    assert_eq!(s, 200);
    // An expired code.
    p.engine
        .remove_mobile_device(&cli, "jan", again.device_id.as_deref().unwrap())
        .await
        .unwrap();
    let late = p.engine.device_activation_code(&cli, "jan").await.unwrap();
    p.advance(11 * 60);
    let mut slow = TestDevice::new(&p.server_base);
    slow.clock_offset = 11 * 60;
    let (s, v) = slow.activate(&late.code).await;
    assert_eq!(
        (s, &v["reason"]),
        (StatusCode::FORBIDDEN, &json!("activation_code"))
    );
    // A key that is not 32 bytes, a name with control characters.
    let mut bad = TestDevice::new(&p.server_base);
    bad.clock_offset = 11 * 60;
    let fresh = p.engine.device_activation_code(&cli, "jan").await.unwrap();
    let body = json!({"code": fresh.code, "device_name": "x", "public_key": "AAAA"});
    let (s, v) = bad
        .call(Method::POST, "/mobile/v1/activate", Some(body))
        .await;
    assert_eq!(
        (s, &v["field"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("public_key"))
    );
    let body =
        json!({"code": fresh.code, "device_name": "a\u{1b}[2Jb", "public_key": bad.public_key()});
    let (s, v) = bad
        .call(Method::POST, "/mobile/v1/activate", Some(body))
        .await;
    assert_eq!(
        (s, &v["field"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("device_name"))
    );
    // Signed by another key than the one it registers.
    let body = json!({"code": fresh.code, "device_name": "x", "public_key": d.public_key()});
    let (s, v) = bad
        .call(Method::POST, "/mobile/v1/activate", Some(body))
        .await;
    assert_eq!(
        (s, &v["reason"]),
        (StatusCode::UNAUTHORIZED, &json!("signature"))
    );
    let results = p.audit_results("jan").await;
    assert!(
        results.iter().any(|r| r == "SUCCESS_ACTIVATION_CODE"),
        "{results:?}"
    );
    assert!(
        results.iter().any(|r| r == "SUCCESS_DEVICE_REMOVED"),
        "{results:?}"
    );
}

async fn expired_requests_and_the_long_poll(backend: Backend) {
    let p = Portal::start(backend).await;
    let api = Api::new(&p, "vpn").await;
    app_user(&api, "jan", "phone_app_standard").await;
    let d = device_for(&p, "jan").await;

    // A device already waiting gets the request the moment it is made.
    let poll = tokio::spawn(async move {
        let t = Instant::now();
        let got = d.pending(30).await;
        (t.elapsed(), got, d)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let made = Instant::now();
    let started = start(&api, "jan").await;
    let (waited, got, d) = poll.await.unwrap();
    // Released by the request, not by its 30 seconds running out.
    assert_eq!(got.len(), 1);
    assert!(
        made.elapsed() < Duration::from_secs(10),
        "{:?}",
        made.elapsed()
    );
    assert!(waited < Duration::from_secs(20), "{waited:?}");
    let id = started["id"].as_str().unwrap().to_string();

    // A caller waiting on the SDK is released by the approval.
    let follow = {
        let api = api.clone();
        let id = id.clone();
        tokio::spawn(async move { api.get(&format!("/authenticate/{id}?wait=30")).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (s, _) = d
        .answer(&id, "approve", started["number"].as_u64(), None)
        .await;
    assert_eq!(s, 200);
    let (s, v) = follow.await.unwrap();
    assert_eq!((s, &v["state"]), (StatusCode::OK, &json!("accepted")));

    // Past its lifetime a request is gone from the device and takes no
    // answer; the SDK sees it expired. The server's sweep records the
    // expiry even when nobody asks (once, whichever node sweeps).
    let forgotten = start(&api, "jan").await;
    let started = start(&api, "jan").await;
    let id = started["id"].as_str().unwrap();
    p.advance(61);
    assert_eq!(p.engine.expire_overdue_challenges().await.unwrap(), 2);
    assert_eq!(p.engine.expire_overdue_challenges().await.unwrap(), 0);
    let st = status(&api, forgotten["id"].as_str().unwrap()).await;
    assert_eq!(
        (&st["state"], &st["reason"]),
        (&json!("expired"), &json!("expired"))
    );
    let mut late = d;
    late.clock_offset = 61;
    assert!(late.pending(0).await.is_empty());
    let (s, v) = late
        .answer(id, "approve", started["number"].as_u64(), None)
        .await;
    assert_eq!(
        (s, &v["reason"]),
        (StatusCode::CONFLICT, &json!("finished")),
        "{v}"
    );
    assert_eq!(status(&api, id).await["state"], "expired");
}

/// What a push service received: (path, body).
type Received = std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>;

/// A push service on loopback (plain http is allowed there) recording every
/// POST: an ntfy server's topic and a webhook receiver at once.
async fn push_service() -> (String, Received, tokio::task::JoinHandle<()>) {
    use axum::extract::{OriginalUri, State};
    let got: Received = Received::default();
    let app = axum::Router::new()
        .fallback(
            |State(got): State<Received>, OriginalUri(uri): OriginalUri, body: String| async move {
                got.lock().unwrap().push((uri.path().to_string(), body));
                "ok"
            },
        )
        .with_state(got.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (base, got, task)
}

async fn push_wake_ups(backend: Backend) {
    let p = Portal::start(backend).await;
    let api = Api::new(&p, "vpn").await;
    app_user(&api, "jan", "phone_app_standard").await;
    p.set("portal.max_mobile_devices", "3").await;
    let (push, got, _task) = push_service().await;

    let mut ids = Vec::new();
    for (kind, path) in [("ntfy", "/twofold-topic"), ("webhook", "/hook")] {
        let offer = p
            .engine
            .device_activation_code(&Ctx::cli(), "jan")
            .await
            .unwrap();
        let d = TestDevice::new(&p.server_base);
        let body = json!({
            "code": offer.code,
            "device_name": kind,
            "public_key": d.public_key(),
            "push": {"kind": kind, "url": format!("{push}{path}")},
        });
        let (s, v) = d
            .call(Method::POST, "/mobile/v1/activate", Some(body))
            .await;
        assert_eq!(s, 200, "{v}");
        ids.push(v["device_id"].as_str().unwrap().to_string());
    }
    // A push URL that is neither https nor loopback is refused.
    let offer = p
        .engine
        .device_activation_code(&Ctx::cli(), "jan")
        .await
        .unwrap();
    let d = TestDevice::new(&p.server_base);
    let body = json!({"code": offer.code, "device_name": "x", "public_key": d.public_key(),
                      "push": {"kind": "ntfy", "url": "http://ntfy.example.org/t"}});
    let (s, v) = d
        .call(Method::POST, "/mobile/v1/activate", Some(body))
        .await;
    assert_eq!(
        (s, &v["field"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("push.url"))
    );

    start(&api, "jan").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.lock().unwrap().len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut got = got.lock().unwrap().clone();
    got.sort();
    assert_eq!(got.len(), 2, "{got:?}");
    // The wake-ups say nothing of the sign-in: no user, application or number.
    assert_eq!(got[0].0, "/hook");
    let hook: Value = serde_json::from_str(&got[0].1).unwrap();
    assert_eq!(hook, json!({"event": "request", "device_id": ids[1]}));
    assert_eq!(
        got[1],
        (
            "/twofold-topic".to_string(),
            "Sign-in request waiting".to_string()
        )
    );
    for (_, body) in &got {
        assert!(!body.contains("jan") && !body.contains("vpn"), "{body}");
    }
}
