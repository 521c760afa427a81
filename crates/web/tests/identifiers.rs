//! Names and ids over HTTPS (issue 8): a NUL, a terminal escape or a
//! newline in any name or id gets the same answer on SQLite and PostgreSQL
//! (422 `invalid_input`, or 401 for SDK credentials) instead of a database
//! error; look-alike usernames are refused; refusals name their rule.

#[macro_use]
mod common;

use common::{Api, Portal};
use reqwest::StatusCode;
use serde_json::{json, Value};
use twofold_core::Ctx;
use twofold_core::{AdminService, Permissions, Role, Scope};
use twofold_proto::link::LINK_PATH;
use twofold_testkit::db::Backend;

twofold_testkit::both_backends!(
    control_characters_get_one_answer_on_both_backends,
    the_portal_takes_them_as_wrong_credentials,
    look_alike_usernames_are_refused,
    labels_name_the_rule_they_break,
    validate_names_the_long_username,
);

const RFC_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

/// NUL, an escape that retitles a terminal, and a newline.
const BAD: [&str; 3] = ["a\0b", "jan\u{1b}]0;owned\u{7}", "jan\nforged"];

fn refused(what: &str, field: &str, (s, v): (StatusCode, Value)) {
    assert_eq!(s, 422, "{what}: {v}");
    assert_eq!(v["error"], "invalid_input", "{what}: {v}");
    assert_eq!(v["field"], field, "{what}: {v}");
}

/// `s` for a URL path or query: every byte outside letters and digits
/// percent-encoded, so `%00` and `%1B` reach the server as such.
fn encoded(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn link(api: &Api, body: Value) -> (StatusCode, Value) {
    let res = api
        .client
        .post(format!("{}{LINK_PATH}", api.base))
        .basic_auth(&api.user, Some(&api.secret))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    assert_ne!(status, 500, "{body}: {text}");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn control_characters_get_one_answer_on_both_backends(backend: Backend) {
    let p = Portal::start(backend).await;
    p.user("jan").await;
    let api = Api::new(&p, "ops").await;
    let (_, validate_secret) = p
        .engine
        .create_service_account(
            &Ctx::cli(),
            "vpn",
            twofold_core::service::ServiceAccountSpec {
                role: Role::Validate,
                permissions: Permissions::default(),
                scope: Scope::All,
            },
        )
        .await
        .unwrap();
    for bad in BAD {
        // SDK credentials: wrong credentials, like any unknown name.
        let (s, v) = Api::with(&p, bad, &validate_secret).get("/test").await;
        assert_eq!(s, 401, "basic auth {bad:?}: {v}");

        for (path, body) in [
            ("/validate", json!({"username": bad, "passcode": "123456"})),
            ("/primary", json!({"username": bad, "password": "x"})),
            ("/authenticate", json!({"username": bad})),
        ] {
            refused(
                &format!("{path} {bad:?}"),
                "username",
                api.post(path, body).await,
            );
        }
        let name = encoded(bad);
        for path in [format!("/users/{name}"), format!("/users/{name}/tokens")] {
            refused(&format!("GET {path}"), "username", api.get(&path).await);
        }
        refused(
            "DELETE",
            "username",
            api.delete(&format!("/users/{name}")).await,
        );
        refused(
            "enable",
            "username",
            api.post(&format!("/users/{name}/enable"), json!({})).await,
        );
        refused(
            "prefix",
            "prefix",
            api.get(&format!("/users?prefix={name}")).await,
        );
        refused(
            "group",
            "group",
            api.get(&format!("/users?group={name}")).await,
        );
        refused(
            "audit",
            "subject",
            api.get(&format!("/audit?subject={name}")).await,
        );
        refused(
            "questions",
            "language",
            api.get(&format!("/questions?language={name}")).await,
        );
        // The portal link, as a portal on a separate server calls it.
        refused(
            "link sign_in",
            "username",
            link(
                &api,
                json!({"op": "sign_in", "username": bad, "password": "x"}),
            )
            .await,
        );
        refused(
            "link user",
            "username",
            link(&api, json!({"op": "user", "username": bad})).await,
        );
        refused(
            "link account",
            "username",
            link(&api, json!({"op": "account", "username": bad})).await,
        );
    }
    // Session data is stored as it is: no NUL in it.
    refused(
        "session data",
        "session",
        link(
            &api,
            json!({"op": "session_save", "id_hash": "ab".repeat(32), "data": "{\"x\":\"\0\"}", "ttl_seconds": 60}),
        )
        .await,
    );
    // The service still works, and the log holds nothing raw.
    assert_eq!(api.get("/users/jan").await.0, 200);
    let (s, v) = api.get("/audit?limit=1000").await;
    assert_eq!(s, 200);
    let text = v.to_string();
    assert!(
        !text.contains("\\u0000") && !text.contains("\\u001b") && !text.contains("\\n"),
        "{text}"
    );
}

async fn the_portal_takes_them_as_wrong_credentials(backend: Backend) {
    let p = Portal::start(backend).await;
    p.user("jan").await;
    let mut b = p.browser();
    b.sign_in("jan", "not the password").await;
    let wrong = b.error().expect("wrong credentials are said");
    for bad in BAD {
        let mut b = p.browser();
        b.sign_in(bad, common::PASSWORD).await;
        assert_eq!(b.error().as_deref(), Some(wrong.as_str()), "{bad:?}");
        assert_eq!(b.h1(), "Sign in");
    }
}

async fn look_alike_usernames_are_refused(backend: Backend) {
    let p = Portal::start(backend).await;
    let api = Api::new(&p, "ops").await;
    let (s, v) = api.post("/users", json!({"username": "jan"})).await;
    assert_eq!(s, 201, "{v}");
    // A Cyrillic а among Latin letters.
    let (s, v) = api.post("/users", json!({"username": "j\u{430}n"})).await;
    refused("j\\u{430}n", "username", (s, v.clone()));
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("Latin and Cyrillic"),
        "{v}"
    );
    // Full-width letters are the same name.
    let (s, v) = api.post("/users", json!({"username": "ｊａｎ"})).await;
    assert_eq!(s, 409, "{v}");
    assert_eq!(v["reason"], "exists", "{v}");
    let (s, v) = api.get(&format!("/users/{}", encoded("ＪＡＮ"))).await;
    assert_eq!((s, v["username"].as_str()), (StatusCode::OK, Some("jan")));
}

async fn labels_name_the_rule_they_break(backend: Backend) {
    let p = Portal::start(backend).await;
    p.user("jan").await;
    let api = Api::new(&p, "ops").await;
    for label in ["my\nphone", "my\0phone"] {
        let (s, v) = api
            .post(
                "/users/jan/tokens",
                json!({"type": "hotp", "secret": RFC_SECRET, "label": label}),
            )
            .await;
        refused(&format!("label {label:?}"), "label", (s, v.clone()));
        assert_eq!(
            v["message"], "label: must not contain control characters",
            "{v}"
        );
    }
    let (s, v) = api
        .post(
            "/users/jan/tokens",
            json!({"type": "hotp", "secret": RFC_SECRET, "label": "x".repeat(65)}),
        )
        .await;
    refused("long label", "label", (s, v.clone()));
    assert!(v["message"].as_str().unwrap().contains("at most 64"), "{v}");
}

async fn validate_names_the_long_username(backend: Backend) {
    let p = Portal::start(backend).await;
    let api = Api::new(&p, "ops").await;
    for len in [200, 600] {
        refused(
            &format!("{len} characters"),
            "username",
            api.post(
                "/validate",
                json!({"username": "a".repeat(len), "passcode": "123456"}),
            )
            .await,
        );
    }
    // The passcode keeps its own rule.
    refused(
        "long passcode",
        "passcode",
        api.post(
            "/validate",
            json!({"username": "jan", "passcode": "1".repeat(500)}),
        )
        .await,
    );
}
