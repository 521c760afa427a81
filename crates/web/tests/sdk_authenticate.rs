//! The SDK's authentication in steps — start, follow, answer — over HTTPS,
//! on SQLite and PostgreSQL: acceptance, replay, wrong answers and lockout,
//! expiry, who may see a challenge, refusals, races, bad inputs, and the
//! same flow through `RemoteService`.

#[macro_use]
mod common;

use common::{Api, Portal};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use twofold_core::challenge::{ChallengeReason, ChallengeState, PhoneChoice};
use twofold_core::clock::Clock;
use twofold_core::factors::OathAlgorithm;
use twofold_core::oath;
use twofold_core::{AdminService, Verifier};
use twofold_core::{Ctx, Error};
use twofold_link::RemoteVerifier;
use twofold_sdk::{ClientOptions, SdkClient, Trust};
use twofold_testkit::db::Backend;

/// The three steps, on the shared SDK caller.
trait Authenticate {
    async fn start(&self, username: &str) -> (StatusCode, Value);
    async fn started(&self, username: &str) -> String;
    async fn status(&self, id: &str) -> (StatusCode, Value);
    async fn answer(&self, id: &str, passcode: &str) -> (StatusCode, Value);
}

impl Authenticate for Api {
    /// Starts authenticating `username`.
    async fn start(&self, username: &str) -> (StatusCode, Value) {
        self.post("/authenticate", json!({ "username": username }))
            .await
    }

    /// The challenge id of a start that must succeed.
    async fn started(&self, username: &str) -> String {
        let (s, v) = self.start(username).await;
        assert_eq!(s, 201, "{v}");
        v["id"].as_str().unwrap().to_string()
    }

    async fn status(&self, id: &str) -> (StatusCode, Value) {
        self.get(&format!("/authenticate/{id}")).await
    }

    async fn answer(&self, id: &str, passcode: &str) -> (StatusCode, Value) {
        self.post(
            &format!("/authenticate/{id}/answer"),
            json!({ "passcode": passcode }),
        )
        .await
    }
}

const RFC_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const PIN: &str = "4826";

fn hotp(counter: u64) -> String {
    oath::hotp(b"12345678901234567890", counter, OathAlgorithm::Sha1, 6)
}

/// A user with the RFC 4226 HOTP token and `method`.
async fn enrolled(api: &Api, username: &str, method: &str) {
    assert_eq!(
        api.post("/users", json!({ "username": username })).await.0,
        201
    );
    let (s, v) = api
        .post(
            &format!("/users/{username}/tokens"),
            json!({"type": "hotp", "secret": RFC_SECRET}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    if method.ends_with("pin") {
        assert_eq!(
            api.put(&format!("/users/{username}/pin"), json!({ "pin": PIN }))
                .await
                .0,
            204
        );
    }
    let (s, v) = api
        .put(
            &format!("/users/{username}/method"),
            json!({ "method": method }),
        )
        .await;
    assert_eq!(s, 200, "{v}");
}

fn time_of(v: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(v.as_str().expect("a time"), &Rfc3339).expect("RFC 3339")
}

async fn events(p: &Portal) -> Vec<twofold_core::audit::AuditEvent> {
    p.engine
        .audit_events(
            &Ctx::cli(),
            twofold_core::audit::AuditQuery {
                limit: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap()
}

async fn start_answer_accept_and_replay(backend: Backend) {
    let p = Portal::start(backend).await;
    let api = Api::new(&p, "radius").await;
    enrolled(&api, "ann", "oath_token").await;

    let (s, v) = api.start("ANN").await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 32);
    assert!(id
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    assert_eq!(v["state"], "pending");
    assert!(v["reason"].is_null());
    assert_eq!(v["method"], "oath_token:oath");
    assert_eq!(v["prompt"], "passcode");
    assert_eq!(v["pin_required"], false);
    assert_eq!(
        time_of(&v["expires_at"]),
        p.clock.now() + time::Duration::seconds(120)
    );
    let other = api.started("ann").await;
    assert_ne!(id, other, "every start is a new challenge");

    let (s, st) = api.status(&id).await;
    assert_eq!(s, 200);
    assert_eq!(
        st,
        json!({"id": id, "state": "pending", "reason": null, "expires_at": v["expires_at"]})
    );

    let (s, a) = api.answer(&id, &hotp(0)).await;
    assert_eq!(s, 200);
    assert_eq!(a, json!({"state": "accepted", "reason": "accepted"}));
    let (_, st) = api.status(&id).await;
    assert_eq!(
        (st["state"].as_str(), st["reason"].as_str()),
        (Some("accepted"), Some("accepted"))
    );

    // Final is final: a further answer, right or wrong, is a stable 409.
    for code in [hotp(1), "000000".into()] {
        let (s, e) = api.answer(&id, &code).await;
        assert_eq!(s, 409, "{e}");
        assert_eq!(e["error"], "conflict");
        assert!(e["message"].as_str().unwrap().contains("accepted"), "{e}");
    }
    // ... and did not use the code.
    let (_, v) = api
        .post("/validate", json!({"username": "ann", "passcode": hotp(1)}))
        .await;
    assert_eq!(v["result"], "accept");

    // Replay: a code used once is refused in another challenge.
    let (s, a) = api.answer(&other, &hotp(0)).await;
    assert_eq!(s, 200);
    assert_eq!(
        a,
        json!({"state": "pending", "reason": "replayed_passcode"})
    );
    assert_eq!(
        api.answer(&other, &hotp(1)).await.1["reason"],
        "replayed_passcode"
    );
    assert_eq!(api.answer(&other, &hotp(2)).await.1["state"], "accepted");

    // PIN + OTP.
    assert_eq!(
        api.put("/users/ann/pin", json!({ "pin": PIN })).await.0,
        204
    );
    assert_eq!(
        api.put(
            "/users/ann/method",
            json!({"method": "oath_token:oath_pin"})
        )
        .await
        .0,
        200
    );
    let (s, v) = api.start("ann").await;
    assert_eq!(s, 201);
    assert_eq!(v["method"], "oath_token:oath_pin");
    assert_eq!(v["pin_required"], true);
    let id = v["id"].as_str().unwrap();
    assert_eq!(api.answer(id, &hotp(3)).await.1["reason"], "wrong_pin");
    assert_eq!(
        api.answer(id, &format!("{PIN} {}", hotp(3))).await.1,
        json!({"state": "accepted", "reason": "accepted"})
    );

    // Audited with the account; the bearer id never appears whole.
    let evs = events(&p).await;
    for (event, result) in [
        ("sdk.authenticate_start", "SUCCESS"),
        ("sdk.authenticate_status", "SUCCESS"),
        ("sdk.authenticate_answer", "SUCCESS_PASSCODE"),
        ("sdk.authenticate_answer", "FAILED_OATH_CODE_DUPLICATE"),
        ("sdk.authenticate_answer", "FAILED_PIN_WRONG"),
        ("sdk.authenticate_answer", "FAILED_CONCURRENT_CHANGE"),
        ("sdk.authenticate_finish", "SUCCESS"),
    ] {
        assert!(
            evs.iter().any(|e| e.event == event
                && e.result.as_str() == result
                && e.actor == "sdk:radius"),
            "{event} {result}"
        );
    }
    assert!(!evs
        .iter()
        .any(|e| e.detail.as_deref().unwrap_or("").contains(&other)));
}

async fn wrong_answers_reject_after_three(backend: Backend) {
    let p = Portal::start(backend).await;
    let api = Api::new(&p, "radius").await;
    enrolled(&api, "bob", "oath_token").await;

    let id = api.started("bob").await;
    for _ in 0..2 {
        assert_eq!(
            api.answer(&id, "000000").await,
            (
                StatusCode::OK,
                json!({"state": "pending", "reason": "wrong_passcode"})
            )
        );
    }
    assert_eq!(
        api.answer(&id, "111111").await.1,
        json!({"state": "rejected", "reason": "too_many_attempts"})
    );
    let (_, st) = api.status(&id).await;
    assert_eq!(
        (st["state"].as_str(), st["reason"].as_str()),
        (Some("rejected"), Some("too_many_attempts"))
    );
    // Even the right code comes too late now, and stays unused.
    let (s, e) = api.answer(&id, &hotp(0)).await;
    assert_eq!((s.as_u16(), e["error"].as_str()), (409, Some("conflict")));
    assert!(e["message"].as_str().unwrap().contains("rejected"), "{e}");
    let (_, v) = api
        .post("/validate", json!({"username": "bob", "passcode": hotp(0)}))
        .await;
    assert_eq!(
        v["result"], "accept",
        "the refused answer did not use the code"
    );
    assert!(p
        .audit_results("bob")
        .await
        .contains(&"FAILED_TOO_MANY_ATTEMPTS".to_string()));

    // Wrong answers count towards the user's lockout, as with validate
    // (here without automatic unblock: the first pause is a lock).
    p.set("lockout.denials_to_lock", "4").await;
    p.set("lockout.auto_unblock_minutes", "0").await;
    let id = api.started("bob").await;
    for _ in 0..3 {
        api.answer(&id, "000000").await;
    }
    let id = api.started("bob").await;
    assert_eq!(
        api.answer(&id, "000000").await.1,
        json!({"state": "rejected", "reason": "user_locked"})
    );
    assert_eq!(
        api.start("bob").await,
        (
            StatusCode::OK,
            json!({"id": null, "state": "rejected", "reason": "user_locked", "method": null,
                   "prompt": null, "pin_required": false, "expires_at": null, "phone": null, "number": null})
        )
    );
    // A right answer clears the denials, as with validate.
    assert_eq!(api.post("/users/bob/unblock", json!({})).await.0, 200);
    let id = api.started("bob").await;
    api.answer(&id, "000000").await;
    api.answer(&id, "000000").await;
    assert_eq!(api.answer(&id, &hotp(1)).await.1["state"], "accepted");
    let id = api.started("bob").await;
    api.answer(&id, "000000").await;
    api.answer(&id, "000000").await;
    assert_eq!(
        api.answer(&id, &hotp(2)).await.1["state"],
        "accepted",
        "not locked: the counter restarted"
    );
}

async fn challenges_expire(backend: Backend) {
    let p = Portal::start(backend).await;
    let api = Api::new(&p, "radius").await;
    enrolled(&api, "cas", "oath_token").await;

    let id = api.started("cas").await;
    p.advance(119);
    assert_eq!(api.status(&id).await.1["state"], "pending");
    p.advance(1);
    let (s, st) = api.status(&id).await;
    assert_eq!(s, 200);
    assert_eq!(
        (st["state"].as_str(), st["reason"].as_str()),
        (Some("expired"), Some("expired"))
    );
    let (s, e) = api.answer(&id, &hotp(0)).await;
    assert_eq!((s.as_u16(), e["error"].as_str()), (409, Some("conflict")));
    assert!(e["message"].as_str().unwrap().contains("expired"), "{e}");

    // Answered late without looking first: the same; the code stays unused.
    let id = api.started("cas").await;
    p.advance(600);
    let (s, e) = api.answer(&id, &hotp(0)).await;
    assert_eq!((s.as_u16(), e["error"].as_str()), (409, Some("conflict")));
    assert_eq!(api.status(&id).await.1["state"], "expired");
    let results = p.audit_results("cas").await;
    assert_eq!(
        results
            .iter()
            .filter(|r| *r == "FAILED_CHALLENGE_EXPIRED")
            .count(),
        2,
        "each expiry recorded once: {results:?}"
    );
    let (_, v) = api
        .post("/validate", json!({"username": "cas", "passcode": hotp(0)}))
        .await;
    assert_eq!(v["result"], "accept");
    // Expired challenges count no attempts against the user.
    assert!(!results.iter().any(|r| r == "FAILED_OATH_CODE"));
}

async fn other_accounts_cannot_see_a_challenge(backend: Backend) {
    let p = Portal::start(backend).await;
    let api = Api::new(&p, "radius").await;
    let other = Api::new(&p, "idp").await;
    enrolled(&api, "dan", "oath_token").await;
    let id = api.started("dan").await;

    let (s, e1) = other.status(&id).await;
    assert_eq!(s, 404);
    assert_eq!(e1["error"], "not_found");
    let (s, e2) = other.status(&"0".repeat(32)).await;
    assert_eq!(s, 404);
    assert_eq!(e1, e2, "another account's challenge looks like none at all");
    for _ in 0..5 {
        let (s, e) = other.answer(&id, "000000").await;
        assert_eq!(s, 404, "{e}");
    }
    assert_eq!(other.answer(&id, &hotp(0)).await.0, 404);
    // Untouched: no attempts counted, the code not used, still pending.
    assert_eq!(api.status(&id).await.1["state"], "pending");
    assert_eq!(
        api.answer(&id, &hotp(0)).await.1,
        json!({"state": "accepted", "reason": "accepted"})
    );
    let evs = events(&p).await;
    assert!(evs.iter().any(|e| e.actor == "sdk:idp"
        && e.event == "sdk.authenticate_answer"
        && e.result.as_str() == "FAILED_NOT_ALLOWED"
        && e.subject.as_deref() == Some("dan")));
}

async fn refusals_use_validate_reasons(backend: Backend) {
    let p = Portal::start(backend).await;
    let api = Api::new(&p, "radius").await;
    let refused = |reason: &str| {
        json!({"id": null, "state": "rejected", "reason": reason, "method": null,
               "prompt": null, "pin_required": false, "expires_at": null, "phone": null, "number": null})
    };
    let same_as_validate = |username: &'static str, reason: &'static str| {
        let api = api.clone();
        let expected = refused(reason);
        async move {
            assert_eq!(
                api.start(username).await,
                (StatusCode::OK, expected),
                "{username}"
            );
            let (_, v) = api
                .post(
                    "/validate",
                    json!({"username": username, "passcode": "123456"}),
                )
                .await;
            assert_eq!(v["reason"], reason, "validate agrees for {username}");
        }
    };
    same_as_validate("ghost", "unknown_user").await;

    api.post("/users", json!({"username": "new"})).await;
    same_as_validate("new", "not_enrolled").await;

    api.post("/users", json!({"username": "caller"})).await;
    api.put("/users/caller/method", json!({"method": "phone_call"}))
        .await;
    // A call cannot be validated in one request; a challenge could place
    // it, but there is no phone to call.
    assert_eq!(
        api.start("caller").await,
        (StatusCode::OK, refused("no_phone"))
    );
    let (_, v) = api
        .post(
            "/validate",
            json!({"username": "caller", "passcode": "123456"}),
        )
        .await;
    assert_eq!(v["reason"], "method_not_supported");

    api.post("/users", json!({"username": "app"})).await;
    api.put("/users/app/method", json!({"method": "mobile_app"}))
        .await;
    // `validate` cannot ask an app in one call; a challenge can, once the
    // user has activated a device.
    let (s, v) = api
        .post(
            "/validate",
            json!({"username": "app", "passcode": "123456"}),
        )
        .await;
    assert_eq!(
        (s, &v["reason"]),
        (StatusCode::OK, &json!("method_not_supported"))
    );
    assert_eq!(
        api.start("app").await,
        (StatusCode::OK, refused("no_device"))
    );

    api.post("/users", json!({"username": "tokenless"})).await;
    api.put("/users/tokenless/method", json!({"method": "oath_token"}))
        .await;
    same_as_validate("tokenless", "no_token").await;

    enrolled(&api, "pinless", "oath_token").await;
    api.put(
        "/users/pinless/method",
        json!({"method": "oath_token:oath_pin"}),
    )
    .await;
    same_as_validate("pinless", "pin_not_set").await;

    enrolled(&api, "off", "oath_token").await;
    api.post("/users/off/disable", json!({})).await;
    same_as_validate("off", "user_disabled").await;

    let results = p.audit_results("ghost").await;
    assert_eq!(
        results.first().map(String::as_str),
        Some("FAILED_USER_NOT_FOUND")
    );
    assert!(p
        .audit_results("tokenless")
        .await
        .contains(&"FAILED_NO_TOKEN".to_string()));
}

async fn changes_after_the_start_reject(backend: Backend) {
    let p = Portal::start(backend).await;
    let api = Api::new(&p, "radius").await;
    enrolled(&api, "eve", "oath_token").await;

    let id = api.started("eve").await;
    api.post("/users/eve/disable", json!({})).await;
    assert_eq!(
        api.answer(&id, &hotp(0)).await.1,
        json!({"state": "rejected", "reason": "user_disabled"})
    );
    api.post("/users/eve/enable", json!({})).await;

    let id = api.started("eve").await;
    api.put("/users/eve/pin", json!({ "pin": PIN })).await;
    api.put(
        "/users/eve/method",
        json!({"method": "oath_token:oath_pin"}),
    )
    .await;
    assert_eq!(
        api.answer(&id, &hotp(0)).await.1,
        json!({"state": "rejected", "reason": "method_changed"})
    );
    // Nothing used the code on the way.
    let id = api.started("eve").await;
    assert_eq!(
        api.answer(&id, &format!("{PIN}{}", hotp(0))).await.1["state"],
        "accepted"
    );

    // A deleted user takes their challenges along.
    let id = api.started("eve").await;
    assert_eq!(api.call(Method::DELETE, "/users/eve", None).await.0, 204);
    assert_eq!(api.status(&id).await.0, 404);
    assert_eq!(api.answer(&id, &hotp(1)).await.0, 404);
}

async fn concurrent_answers_one_accepted(backend: Backend) {
    let p = Portal::start(backend).await;
    let api = Api::new(&p, "radius").await;
    enrolled(&api, "fay", "oath_token").await;
    // Losers' replays count as denials, and may land after the winner
    // cleared the counter: keep them from locking the user across rounds.
    p.set("lockout.denials_to_lock", "100").await;
    for round in 0..3u64 {
        let id = api.started("fay").await;
        let code = hotp(round);
        let tasks: Vec<_> = (0..3)
            .map(|_| {
                let (api, id, code) = (api.clone(), id.clone(), code.clone());
                tokio::spawn(async move { api.answer(&id, &code).await })
            })
            .collect();
        let mut accepted = 0;
        for t in tasks {
            let (s, v) = t.await.unwrap();
            match s.as_u16() {
                200 if v["state"] == "accepted" => accepted += 1,
                200 => assert_eq!(
                    v,
                    json!({"state": "pending", "reason": "replayed_passcode"}),
                    "round {round}"
                ),
                409 => assert_eq!(v["error"], "conflict"),
                other => panic!("round {round}: {other} {v}"),
            }
        }
        assert_eq!(accepted, 1, "round {round}: exactly one answer wins");
        assert_eq!(api.status(&id).await.1["state"], "accepted");
    }
}

async fn bad_inputs_get_stable_errors(backend: Backend) {
    let p = Portal::start(backend).await;
    let api = Api::new(&p, "radius").await;
    enrolled(&api, "gus", "oath_token").await;
    let id = api.started("gus").await;
    let answer_path = format!("/authenticate/{id}/answer");

    let bodies: Vec<(&str, &str, Vec<u8>)> = vec![
        ("/authenticate", "application/json", b"{not json".to_vec()),
        ("/authenticate", "application/json", b"{}".to_vec()),
        (
            "/authenticate",
            "application/json",
            br#"{"username":"gus","passcode":"1"}"#.to_vec(),
        ),
        (
            "/authenticate",
            "application/json",
            br#"{"username":5}"#.to_vec(),
        ),
        (
            "/authenticate",
            "application/json",
            format!(r#"{{"username":"{}"}}"#, "a".repeat(600)).into_bytes(),
        ),
        (&answer_path, "application/json", b"[]".to_vec()),
        (
            &answer_path,
            "application/json",
            br#"{"passcode":"1","username":"gus"}"#.to_vec(),
        ),
        (
            &answer_path,
            "application/json",
            br#"{"passcode":123456}"#.to_vec(),
        ),
        (
            &answer_path,
            "application/json",
            format!(r#"{{"passcode":"{}"}}"#, "1".repeat(100)).into_bytes(),
        ),
    ];
    for (path, ct, body) in bodies {
        let (s, e) = api.raw(path, ct, body.clone()).await;
        assert_eq!(s, 422, "{path} {}: {e}", String::from_utf8_lossy(&body));
        assert_eq!(e["error"], "invalid_input", "{e}");
    }
    let (s, e) = api
        .raw(
            "/authenticate",
            "text/plain",
            br#"{"username":"gus"}"#.to_vec(),
        )
        .await;
    assert!(s == 415 || s == 422, "{s} {e}");
    assert!(e["error"].is_string());
    let (s, _) = api
        .raw("/authenticate", "application/json", vec![b' '; 100 * 1024])
        .await;
    assert_eq!(s, 413);

    // Ids that are not ids: 404 with the stable body, for both operations.
    for bad in [
        "x",
        "0123456789ABCDEF0123456789ABCDEF",
        "0123456789abcdef0123456789abcde",
        "0123456789abcdef0123456789abcdef0",
        "%ff%fe",
        "..%2F..%2Fetc",
        "%00",
        "' OR 1=1 --",
        &"f".repeat(2000),
    ] {
        let path = format!(
            "/authenticate/{}",
            bad.replace(' ', "%20").replace('\'', "%27")
        );
        let (s, e) = api.get(&path).await;
        assert_eq!(s, 404, "{bad}: {e}");
        assert_eq!(e["error"], "not_found", "{bad}: {e}");
        let (s, e) = api
            .post(&format!("{path}/answer"), json!({"passcode": "123456"}))
            .await;
        assert_eq!(s, 404, "{bad}: {e}");
        assert_eq!(e["error"], "not_found", "{bad}: {e}");
    }
    // Case matters: the id is exact.
    assert_eq!(api.status(&id.to_uppercase()).await.0, 404);

    // No credentials: 401 before anything else.
    let res = p
        .browser()
        .client
        .get(format!("{}/sdk/v1/authenticate/{id}", p.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    // None of it touched the challenge.
    assert_eq!(api.status(&id).await.1["state"], "pending");
    assert_eq!(api.answer(&id, &hotp(0)).await.1["state"], "accepted");
}

async fn remote_service_follows_challenges(backend: Backend) {
    let p = Portal::start(backend).await;
    let api = Api::new(&p, "radius").await;
    enrolled(&api, "hal", "oath_token:oath_pin").await;
    let remote = RemoteVerifier::new(
        SdkClient::new(ClientOptions::new(
            &p.server_base,
            &api.user,
            &api.secret,
            Trust::fingerprint(&p.server_fingerprint).unwrap(),
        ))
        .unwrap(),
    );
    let ctx = Ctx::cli();

    let a = remote
        .start_authentication(&ctx, "hal", PhoneChoice::Primary)
        .await
        .unwrap();
    assert_eq!(a.state, ChallengeState::Pending);
    assert!(a.pin_required);
    assert_eq!(a.method.unwrap().to_string(), "oath_token:oath_pin");
    let id = a.id.unwrap();
    let s = remote.authentication_status(&ctx, &id, None).await.unwrap();
    assert_eq!(
        (s.state, s.expires_at),
        (ChallengeState::Pending, a.expires_at)
    );
    let w = remote
        .answer_authentication(&ctx, &id, &hotp(0))
        .await
        .unwrap();
    assert_eq!(
        (w.state, w.reason),
        (ChallengeState::Pending, Some(ChallengeReason::WrongPin))
    );
    let ok = remote
        .answer_authentication(&ctx, &id, &format!("{PIN}{}", hotp(0)))
        .await
        .unwrap();
    assert_eq!(
        (ok.state, ok.reason),
        (ChallengeState::Accepted, Some(ChallengeReason::Accepted))
    );
    // Errors come back as the engine's.
    assert!(matches!(
        remote.answer_authentication(&ctx, &id, "123456").await,
        Err(Error::Conflict { .. })
    ));
    assert!(matches!(
        remote
            .authentication_status(&ctx, &"0".repeat(32), None)
            .await,
        Err(Error::NotFound("challenge"))
    ));
    assert!(matches!(
        remote.answer_authentication(&ctx, "nope", "1").await,
        Err(Error::NotFound("challenge"))
    ));
    let r = remote
        .start_authentication(&ctx, "ghost", PhoneChoice::Primary)
        .await
        .unwrap();
    assert_eq!(
        (r.id, r.state, r.reason),
        (
            None,
            ChallengeState::Rejected,
            Some(ChallengeReason::UnknownUser)
        )
    );
    // The remote call ran as the service account, which owns the challenge.
    let in_process = Ctx::new(
        twofold_core::Actor::ServiceAccount("radius".into()),
        twofold_core::Access::administrator(
            twofold_core::Permissions::all(),
            twofold_core::Scope::default(),
        ),
        None,
    );
    assert_eq!(
        p.engine
            .authentication_status(&in_process, &id, None)
            .await
            .unwrap()
            .state,
        ChallengeState::Accepted
    );
    assert!(matches!(
        p.engine.authentication_status(&Ctx::cli(), &id, None).await,
        Err(Error::NotFound("challenge"))
    ));
}

async fn openapi_lists_the_operations(backend: Backend) {
    let p = Portal::start(backend).await;
    let res = p
        .browser()
        .client
        .get(format!("{}/sdk/v1/openapi.json", p.base))
        .send()
        .await
        .unwrap();
    let doc: Value = res.json().await.unwrap();
    let paths = &doc["paths"];
    assert!(paths["/sdk/v1/authenticate"]["post"]["responses"]["201"].is_object());
    assert!(paths["/sdk/v1/authenticate/{id}"]["get"].is_object());
    assert!(paths["/sdk/v1/authenticate/{id}/answer"]["post"]["responses"]["409"].is_object());
    assert_eq!(
        doc["components"]["schemas"]["AuthenticationState"]["enum"],
        json!(["pending", "accepted", "rejected", "expired"])
    );
}

twofold_testkit::both_backends!(
    start_answer_accept_and_replay,
    wrong_answers_reject_after_three,
    challenges_expire,
    other_accounts_cannot_see_a_challenge,
    refusals_use_validate_reasons,
    changes_after_the_start_reject,
    concurrent_answers_one_accepted,
    bad_inputs_get_stable_errors,
    remote_service_follows_challenges,
    openapi_lists_the_operations,
);
