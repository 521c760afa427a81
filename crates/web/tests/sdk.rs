//! The Web Service SDK over HTTPS: every operation, its authorisation and
//! its bad inputs, on SQLite and PostgreSQL.

#[macro_use]
mod common;

use common::{Api, Portal, PASSWORD};
use serde_json::{json, Value};
use twofold_core::factors::OathAlgorithm;
use twofold_core::oath;
use twofold_core::AdminService;
use twofold_core::Ctx;
use twofold_testkit::db::Backend;

const RFC_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

fn hotp(counter: u64) -> String {
    oath::hotp(b"12345678901234567890", counter, OathAlgorithm::Sha1, 6)
}

async fn authorisation(backend: Backend) {
    let p = Portal::start(backend).await;
    let api = Api::new(&p, "vpn").await;
    let (s, v) = api.get("/test").await;
    assert_eq!(s, 200);
    assert_eq!(v["account"], "sdk:vpn");

    // No credentials, a wrong secret, an unknown account: 401, same body.
    let res = p
        .browser()
        .client
        .get(format!("{}/sdk/v1/test", p.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    let wrong = Api::with(&p, "vpn", "tfs_wrong");
    let (s, v1) = wrong.get("/test").await;
    assert_eq!(s, 401);
    let (s, v2) = Api::with(&p, "nobody", "tfs_wrong").get("/test").await;
    assert_eq!(s, 401);
    assert_eq!(v1, v2);
    assert_eq!(v1["error"], "unauthorized");
    let res = p
        .browser()
        .client
        .get(format!("{}/sdk/v1/test", p.base))
        .header("authorization", "Basic !!!not-base64")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    // Rotation: the old secret stops working.
    let new_secret = p
        .engine
        .rotate_service_account(&Ctx::cli(), "vpn")
        .await
        .unwrap();
    assert_eq!(api.get("/test").await.0, 401);
    assert_eq!(Api::with(&p, "vpn", &new_secret).get("/test").await.0, 200);
    // Deletion: no access at all.
    p.engine
        .delete_service_account(&Ctx::cli(), "vpn")
        .await
        .unwrap();
    assert_eq!(Api::with(&p, "vpn", &new_secret).get("/test").await.0, 401);

    // A local ("directory") account works only while in the admin group, enabled.
    p.user("helpdesk").await;
    let dir = Api::with(&p, "helpdesk", PASSWORD);
    assert_eq!(dir.get("/test").await.0, 401, "not in the group");
    p.engine
        .update_user(
            &Ctx::cli(),
            "helpdesk",
            twofold_core::user::UserPatch {
                groups: Some(vec!["PhoneFactor Admins".into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let (s, v) = dir.get("/test").await;
    assert_eq!(s, 200);
    assert_eq!(v["account"], "admin:helpdesk");
    assert_eq!(
        Api::with(&p, "helpdesk", "wrong password")
            .get("/test")
            .await
            .0,
        401
    );
    p.engine
        .set_user_enabled(&Ctx::cli(), "helpdesk", false)
        .await
        .unwrap();
    assert_eq!(dir.get("/test").await.0, 401, "disabled account");

    // Failed attempts are audited.
    let events = p
        .engine
        .audit_events(
            &Ctx::cli(),
            twofold_core::audit::AuditQuery {
                limit: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(events
        .iter()
        .any(|e| e.event == "sdk.auth" && e.result.as_str() == "FAILED_NOT_ALLOWED"));
    assert!(events
        .iter()
        .any(|e| e.event == "sdk.test" && e.actor == "sdk:vpn"));
}

async fn validate_otp_and_pin_otp(backend: Backend) {
    let p = Portal::start(backend).await;
    let api = Api::new(&p, "vpn").await;
    assert_eq!(api.post("/users", json!({"username": "ann"})).await.0, 201);
    let (s, v) = api
        .post(
            "/validate",
            json!({"username": "ann", "passcode": "123456"}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(v, json!({"result": "reject", "reason": "not_enrolled"}));

    let (s, tok) = api
        .post(
            "/users/ann/tokens",
            json!({"type": "hotp", "secret": RFC_SECRET, "label": "key"}),
        )
        .await;
    assert_eq!(s, 201, "{tok}");
    assert_eq!(tok["type"], "hotp");
    assert!(tok.get("secret").is_none(), "secrets are never returned");
    assert_eq!(
        api.put("/users/ann/method", json!({"method": "oath_token"}))
            .await
            .0,
        200
    );

    let validate = |code: String| {
        let api = &api;
        async move {
            api.post("/validate", json!({"username": "ANN", "passcode": code}))
                .await
                .1
        }
    };
    assert_eq!(
        validate(hotp(0)).await,
        json!({"result": "accept", "reason": "accepted"})
    );
    assert_eq!(validate(hotp(0)).await["reason"], "replayed_passcode");
    assert_eq!(validate("000000".into()).await["reason"], "wrong_passcode");
    assert_eq!(validate(hotp(3)).await["result"], "accept", "look-ahead");
    assert_eq!(validate("12 34".into()).await["reason"], "wrong_passcode");

    // PIN + OTP.
    assert_eq!(
        api.put(
            "/users/ann/method",
            json!({"method": "oath_token:oath_pin"})
        )
        .await
        .0,
        200
    );
    assert_eq!(validate(hotp(4)).await["reason"], "pin_not_set");
    let (s, e) = api.put("/users/ann/pin", json!({"pin": "1234"})).await;
    assert_eq!(s, 422, "weak PIN refused: {e}");
    assert_eq!(e["field"], "pin");
    assert_eq!(
        api.put("/users/ann/pin", json!({"pin": "4826"})).await.0,
        204
    );
    assert_eq!(
        validate(hotp(4)).await["reason"],
        "wrong_pin",
        "code without PIN"
    );
    assert_eq!(
        validate(format!("9999{}", hotp(4))).await["reason"],
        "wrong_pin"
    );
    assert_eq!(
        validate(format!("4826{}", hotp(4))).await["result"],
        "accept"
    );
    assert_eq!(
        validate(format!("4826{}", hotp(4))).await["reason"],
        "replayed_passcode"
    );

    // A PIN may not contain four digits of the user's phone number.
    let (s, u) = api
        .patch("/users/ann", json!({"mobile_phone": "+31 20 794 8261"}))
        .await;
    assert_eq!(
        (s.as_u16(), u["mobile_phone"].as_str()),
        (200, Some("+31207948261"))
    );
    let (s, e) = api.put("/users/ann/pin", json!({"pin": "9482"})).await;
    assert_eq!((s.as_u16(), e["field"].as_str()), (422, Some("pin")), "{e}");
    let (s, e) = api.patch("/users/ann", json!({"phone": "0612"})).await;
    assert_eq!(
        (s.as_u16(), e["field"].as_str()),
        (422, Some("phone")),
        "{e}"
    );

    // Disabled and unknown users.
    api.post("/users/ann/disable", json!({})).await;
    assert_eq!(
        validate(format!("4826{}", hotp(5))).await["reason"],
        "user_disabled"
    );
    api.post("/users/ann/enable", json!({})).await;
    let (_, v) = api
        .post(
            "/validate",
            json!({"username": "ghost", "passcode": "123456"}),
        )
        .await;
    assert_eq!(v["reason"], "unknown_user");

    // Three wrong in a row pause the code factor: even the right code is
    // not checked for a minute (429 with Retry-After)...
    p.set("lockout.denials_to_lock", "3").await;
    for _ in 0..3 {
        validate("4826000000".into()).await;
    }
    let (s, e) = api
        .post(
            "/validate",
            json!({"username": "ann", "passcode": format!("4826{}", hotp(5))}),
        )
        .await;
    assert_eq!(
        (s.as_u16(), e["error"].as_str()),
        (429, Some("rate_limited")),
        "{e}"
    );
    // ...until an administrator unblocks.
    assert_eq!(api.post("/users/ann/unblock", json!({})).await.0, 200);
    assert_eq!(
        validate(format!("4826{}", hotp(5))).await["result"],
        "accept"
    );
    // With no automatic unblock, the first pause is a lock.
    p.set("lockout.auto_unblock_minutes", "0").await;
    for _ in 0..3 {
        validate("4826000000".into()).await;
    }
    assert_eq!(
        validate(format!("4826{}", hotp(6))).await["reason"],
        "user_locked"
    );
    assert_eq!(api.post("/users/ann/unblock", json!({})).await.0, 200);
    assert_eq!(
        validate(format!("4826{}", hotp(6))).await["result"],
        "accept"
    );

    // Every validate is audited with the account.
    let (_, page) = api.get("/audit?subject=ann&limit=100").await;
    let events = page["events"].as_array().unwrap();
    assert!(events.iter().any(|e| e["event"] == "sdk.validate"
        && e["actor"] == "sdk:vpn"
        && e["result"] == "SUCCESS_PASSCODE"));
    assert!(events
        .iter()
        .any(|e| e["result"] == "FAILED_OATH_CODE_DUPLICATE"));
}

async fn users_crud_and_paging(backend: Backend) {
    let p = Portal::start(backend).await;
    let api = Api::new(&p, "idm").await;
    for i in 0..5 {
        let (s, v) = api
            .post("/users", json!({"username": format!("user{i}"), "email": format!("u{i}@contoso.com"), "groups": ["VPN"], "password": "long enough password"}))
            .await;
        assert_eq!(s, 201, "{v}");
    }
    let (s, e) = api.post("/users", json!({"username": "USER0"})).await;
    assert_eq!((s.as_u16(), e["error"].as_str()), (409, Some("conflict")));
    // Phones and method with the user, by the rules of an edit; a bad one
    // creates nothing.
    let (s, v) = api
        .post("/users", json!({"username": "phoned", "phone": "+31 20 794 8261", "phone_extension": "42", "method": "phone_call:standard"}))
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["phone"], "+31207948261", "{v}");
    let (s, e) = api
        .post(
            "/users",
            json!({"username": "badphone", "phone": "not a number"}),
        )
        .await;
    assert_eq!(
        (s.as_u16(), e["field"].as_str()),
        (422, Some("phone")),
        "{e}"
    );
    assert_eq!(api.get("/users/badphone").await.0, 404);
    api.call(reqwest::Method::DELETE, "/users/phoned", None)
        .await;

    let (_, page1) = api.get("/users?limit=2").await;
    assert_eq!(page1["users"].as_array().unwrap().len(), 2);
    let after = page1["next_after"].as_str().unwrap().to_string();
    let (_, page2) = api.get(&format!("/users?limit=2&after={after}")).await;
    assert_eq!(page2["users"][0]["username"], "user2");
    let (_, last) = api.get("/users?limit=10&prefix=USER").await;
    assert_eq!(last["users"].as_array().unwrap().len(), 5);
    assert!(last["next_after"].is_null());
    let (_, grp) = api.get("/users?group=vpn").await;
    assert_eq!(grp["users"].as_array().unwrap().len(), 5);

    let (s, u) = api
        .patch(
            "/users/user1",
            json!({"display_name": "User One", "email": "", "language": "nl"}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(u["display_name"], "User One");
    assert!(u["email"].is_null());
    let (s, u) = api
        .put("/users/user1/language", json!({"language": "en"}))
        .await;
    assert_eq!((s.as_u16(), u["language"].as_str()), (200, Some("en")));
    assert_eq!(api.get("/users/USER1").await.1["username"], "user1");
    assert_eq!(
        api.put(
            "/users/user1/password",
            json!({"password": "another long one"})
        )
        .await
        .0,
        204
    );
    let (_, r) = api
        .post(
            "/primary",
            json!({"username": "user1", "password": "another long one"}),
        )
        .await;
    assert_eq!(r["result"], "accept");
    let (_, r) = api
        .post("/primary", json!({"username": "user1", "password": "nope"}))
        .await;
    assert_eq!(r["result"], "reject");

    let (s, b) = api
        .post(
            "/users/user1/bypass",
            json!({"seconds": 120, "reason": "lost phone"}),
        )
        .await;
    assert_eq!(s, 200);
    assert!(b["until"].as_str().unwrap().contains('T'));
    let (s, _) = api.post("/users/user1/bypass", json!({"seconds": 0})).await;
    assert_eq!(s, 422);

    assert_eq!(api.delete("/users/user1").await.0, 204);
    assert_eq!(api.get("/users/user1").await.0, 404);
    assert_eq!(api.delete("/users/user1").await.0, 404);
    let (s, e) = api.get("/users/ghost").await;
    assert_eq!((s.as_u16(), e["error"].as_str()), (404, Some("not_found")));
}

async fn tokens_and_questions(backend: Backend) {
    let p = Portal::start(backend).await;
    let api = Api::new(&p, "idm").await;
    api.post("/users", json!({"username": "bob"})).await;
    let (_, t) = api
        .post(
            "/users/bob/tokens",
            json!({"type": "hotp", "secret": RFC_SECRET}),
        )
        .await;
    let id = t["id"].as_i64().unwrap();
    let (s, list) = api.get("/users/bob/tokens").await;
    assert_eq!((s.as_u16(), list.as_array().unwrap().len()), (200, 1));

    // Resync a token that drifted far beyond the look-ahead.
    api.put("/users/bob/method", json!({"method": "oath_token"}))
        .await;
    let (_, v) = api
        .post(
            "/validate",
            json!({"username": "bob", "passcode": hotp(500)}),
        )
        .await;
    assert_eq!(v["reason"], "wrong_passcode");
    let (s, e) = api
        .post(
            &format!("/users/bob/tokens/{id}/resync"),
            json!({"code1": hotp(500), "code2": hotp(502)}),
        )
        .await;
    assert_eq!(s, 422, "codes must follow each other: {e}");
    assert_eq!(
        api.post(
            &format!("/users/bob/tokens/{id}/resync"),
            json!({"code1": hotp(500), "code2": hotp(501)})
        )
        .await
        .0,
        204
    );
    let (_, v) = api
        .post(
            "/validate",
            json!({"username": "bob", "passcode": hotp(502)}),
        )
        .await;
    assert_eq!(v["result"], "accept");

    for bad in [
        json!({"type": "hotp", "secret": "not base32"}),
        json!({"type": "totp", "secret": RFC_SECRET, "digits": 7}),
        json!({"type": "totp", "secret": RFC_SECRET, "period": 5}),
        json!({"type": "smoke", "secret": RFC_SECRET}),
        json!({"type": "totp", "secret": "ABC"}),
        json!({"type": "totp", "secret": RFC_SECRET, "label": "x".repeat(100)}),
    ] {
        let (s, e) = api.post("/users/bob/tokens", bad.clone()).await;
        assert_eq!(s, 422, "{bad}: {e}");
    }
    assert_eq!(
        api.post(
            "/users/ghost/tokens",
            json!({"type": "hotp", "secret": RFC_SECRET})
        )
        .await
        .0,
        404
    );
    assert_eq!(api.delete(&format!("/users/bob/tokens/{id}")).await.0, 204);
    assert_eq!(api.delete(&format!("/users/bob/tokens/{id}")).await.0, 404);
    assert_eq!(api.delete("/users/bob/tokens/notanumber").await.0, 422);

    let (s, q) = api
        .post(
            "/questions",
            json!({"language": "nl", "text": "Wat was uw eerste huisdier?"}),
        )
        .await;
    assert_eq!(s, 201);
    assert_eq!(
        api.post(
            "/questions",
            json!({"language": "nl", "text": "wat was uw eerste huisdier?"})
        )
        .await
        .0,
        409
    );
    assert_eq!(
        api.post(
            "/questions",
            json!({"language": "xx", "text": "A question?"})
        )
        .await
        .0,
        422
    );
    assert_eq!(
        api.post("/questions", json!({"language": "en", "text": "?"}))
            .await
            .0,
        422
    );
    let (_, all) = api.get("/questions?language=nl").await;
    assert_eq!(all.as_array().unwrap().len(), 1);
    assert_eq!(api.delete(&format!("/questions/{}", q["id"])).await.0, 204);
    assert_eq!(api.delete(&format!("/questions/{}", q["id"])).await.0, 404);
}

async fn bad_requests_get_stable_errors(backend: Backend) {
    let p = Portal::start(backend).await;
    let api = Api::new(&p, "idm").await;
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        ("/validate", "application/json", b"{not json".to_vec()),
        (
            "/validate",
            "application/json",
            br#"{"username":"a","passcode":"1","extra":true}"#.to_vec(),
        ),
        (
            "/validate",
            "application/json",
            br#"{"username":"a"}"#.to_vec(),
        ),
        (
            "/validate",
            "application/json",
            br#"{"username":5,"passcode":"1"}"#.to_vec(),
        ),
        (
            "/validate",
            "text/plain",
            br#"{"username":"a","passcode":"1"}"#.to_vec(),
        ),
        (
            "/users",
            "application/json",
            br#"{"username":"two words"}"#.to_vec(),
        ),
        (
            "/users",
            "application/json",
            format!(r#"{{"username":"{}"}}"#, "a".repeat(300)).into_bytes(),
        ),
        (
            "/users",
            "application/json",
            br#"{"username":"ok","email":"not-an-address"}"#.to_vec(),
        ),
        (
            "/users",
            "application/json",
            br#"{"username":"ok","password":"short"}"#.to_vec(),
        ),
    ];
    for (path, ct, body) in cases {
        let (s, e) = api.raw(path, ct, body.clone()).await;
        assert!(
            s == 422 || s == 415,
            "{path} {}: {s} {e}",
            String::from_utf8_lossy(&body)
        );
        assert!(e["error"].is_string(), "{path}: {e}");
    }
    let (s, e) = api
        .raw("/validate", "application/json", vec![b' '; 100 * 1024])
        .await;
    assert_eq!(s, 413, "{e}");
    let (s, e) = api
        .post(
            "/validate",
            json!({"username": "a", "passcode": "1".repeat(500)}),
        )
        .await;
    assert_eq!((s.as_u16(), e["field"].as_str()), (422, Some("passcode")));
    let (s, _) = api.get("/users?limit=0").await;
    assert_eq!(s, 422);
    let (s, _) = api.get("/users?limit=abc").await;
    assert_eq!(s, 422);
    let (s, _) = api.get("/audit?bogus=1").await;
    assert_eq!(s, 422);
    // Nothing was created by the refusals.
    assert!(p.engine.get_user(&Ctx::cli(), "ok").await.is_err());
}

async fn openapi_is_served(backend: Backend) {
    let p = Portal::start(backend).await;
    let res = p
        .browser()
        .client
        .get(format!("{}/sdk/v1/openapi.json", p.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/sdk/v1/validate"]["post"].is_object());
}

twofold_testkit::both_backends!(
    authorisation,
    validate_otp_and_pin_otp,
    users_crud_and_paging,
    tokens_and_questions,
    bad_requests_get_stable_errors,
    openapi_is_served,
);

/// The OpenAPI document committed in the repository matches the code.
#[test]
fn committed_openapi_is_current() {
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/openapi.json"
    ))
    .unwrap_or_default();
    let current = twofold_web::sdk_api::openapi_document();
    assert!(
        committed.trim() == current.trim(),
        "docs/openapi.json is stale: run `cargo run -p twofold -- openapi > docs/openapi.json`"
    );
}
