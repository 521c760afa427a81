//! Roles, permissions and scopes of SDK service accounts, decided by the
//! engine: each role reaches what it is for and is refused (403 `forbidden`,
//! audited) everywhere else. On SQLite and PostgreSQL.

#[macro_use]
mod common;

use common::{full_admin, Api, Portal, PASSWORD};
use reqwest::StatusCode;
use serde_json::{json, Value};
use twofold_core::audit::AuditQuery;
use twofold_core::service::ServiceAccountSpec;
use twofold_core::{AdminService, Ctx, Permissions, Role, Scope};
use twofold_testkit::db::Backend;

/// RFC 4226's test secret, in base32.
const RFC_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const SESSION: &str = "0000000000000000000000000000000000000000000000000000000000000000";

async fn account(p: &Portal, name: &str, spec: ServiceAccountSpec) -> Api {
    let (_, secret) = p
        .engine
        .create_service_account(&Ctx::cli(), name, spec)
        .await
        .unwrap();
    Api::with(p, name, &secret)
}

fn role(role: Role) -> ServiceAccountSpec {
    ServiceAccountSpec {
        role,
        permissions: Permissions::NONE,
        scope: Scope::All,
    }
}

fn admin(perms: &str, scope: &str) -> ServiceAccountSpec {
    ServiceAccountSpec {
        role: Role::Admin,
        permissions: Permissions::parse_list(perms).unwrap(),
        scope: scope.parse().unwrap(),
    }
}

fn hotp(counter: u64) -> String {
    twofold_core::oath::hotp(
        b"12345678901234567890",
        counter,
        twofold_core::factors::OathAlgorithm::Sha1,
        6,
    )
}

fn assert_forbidden(what: &str, (s, v): (StatusCode, Value)) {
    assert_eq!(s, StatusCode::FORBIDDEN, "{what}: {v}");
    assert_eq!(v["error"], "forbidden", "{what}: {v}");
}

/// The administrative and portal-link calls a non-admin must not make.
async fn admin_calls(api: &Api) -> Vec<(&'static str, (StatusCode, Value))> {
    vec![
        ("list users", api.get("/users").await),
        ("read user", api.get("/users/jan").await),
        (
            "create user",
            api.post("/users", json!({"username": "eve"})).await,
        ),
        (
            "reset PIN",
            api.put("/users/jan/pin", json!({"pin": "482913"})).await,
        ),
        ("delete user", api.delete("/users/jan").await),
        ("list tokens", api.get("/users/jan/tokens").await),
        (
            "add token",
            api.post(
                "/users/jan/tokens",
                json!({"type": "hotp", "secret": RFC_SECRET}),
            )
            .await,
        ),
        (
            "change setting",
            api.put("/settings/portal.allow_bypass", json!({"value": true}))
                .await,
        ),
        ("audit log", api.get("/audit").await),
        ("questions", api.get("/questions").await),
    ]
}

/// One operation on the private portal link.
async fn link(api: &Api, body: Value) -> (StatusCode, Value) {
    let res = api
        .client
        .post(format!("{}/link/v1", api.base))
        .basic_auth(&api.user, Some(&api.secret))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn portal_link_calls(api: &Api) -> Vec<(&'static str, (StatusCode, Value))> {
    vec![
        ("readiness", link(api, json!({"op": "ready"})).await),
        ("settings", link(api, json!({"op": "settings"})).await),
        (
            "session",
            link(api, json!({"op": "session_load", "id_hash": SESSION})).await,
        ),
        (
            "sign in",
            link(
                api,
                json!({"op": "sign_in", "username": "jan", "password": PASSWORD}),
            )
            .await,
        ),
        (
            "account",
            link(api, json!({"op": "account", "username": "jan"})).await,
        ),
    ]
}

/// Refusals made by (or relayed through) `actor`.
async fn refusals_of(p: &Portal, actor: &str) -> usize {
    p.engine
        .audit_events(
            &Ctx::cli(),
            AuditQuery {
                limit: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .iter()
        // Relayed portal calls are refused as the end user, via the account.
        .filter(|e| e.actor == actor || e.via.as_deref() == Some(actor))
        .filter(|e| e.result.as_str() == "FAILED_NOT_ALLOWED")
        .count()
}

async fn validate_role_only_verifies(backend: Backend) {
    let p = Portal::start(backend).await;
    let setup = Api::new(&p, "setup").await;
    assert_eq!(
        setup
            .post("/users", json!({"username": "jan", "password": PASSWORD}))
            .await
            .0,
        201
    );
    assert_eq!(
        setup
            .post(
                "/users/jan/tokens",
                json!({"type": "hotp", "secret": RFC_SECRET})
            )
            .await
            .0,
        201
    );
    let vpn = account(&p, "vpn", role(Role::Validate)).await;

    // What it is for.
    assert_eq!(vpn.get("/test").await.0, 200);
    let (s, v) = vpn
        .post("/validate", json!({"username": "jan", "passcode": hotp(0)}))
        .await;
    assert_eq!((s.as_u16(), v["result"].as_str()), (200, Some("accept")));
    let (s, v) = vpn
        .post("/primary", json!({"username": "jan", "password": PASSWORD}))
        .await;
    assert_eq!((s.as_u16(), v["result"].as_str()), (200, Some("accept")));
    let (s, v) = vpn.post("/authenticate", json!({"username": "jan"})).await;
    assert_eq!(s, 201, "{v}");

    // Nothing else.
    let calls = [admin_calls(&vpn).await, portal_link_calls(&vpn).await].concat();
    let n = calls.len();
    for (what, res) in calls {
        assert_forbidden(what, res);
    }
    // Every refusal is in the audit log, with the account that asked.
    assert!(refusals_of(&p, "sdk:vpn").await >= n);
    // And nothing was changed.
    assert_eq!(setup.get("/users/jan").await.0, 200);
    assert!(
        !p.engine
            .settings(&Ctx::cli())
            .await
            .unwrap()
            .portal
            .allow_bypass
    );
}

async fn portal_role_only_relays(backend: Backend) {
    let p = Portal::start(backend).await;
    p.user("jan").await;
    p.set("portal.allow_select_language", "true").await;
    let portal = account(&p, "portal", role(Role::Portal)).await;

    // The portal link works, and what it relays is audited as the end
    // user, via the account.
    for (what, (s, v)) in portal_link_calls(&portal).await {
        assert!(s.is_success() || s == 422, "{what}: {s} {v}");
    }
    let (s, v) = link(
        &portal,
        json!({"op": "change_language", "username": "jan", "language": "nl"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let events = p
        .engine
        .audit_events(
            &Ctx::cli(),
            AuditQuery {
                limit: 100,
                subject: Some("jan".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let changed = events
        .iter()
        .find(|e| e.event == "portal.language")
        .expect("language change audited");
    assert_eq!(changed.actor, "user:jan");
    assert_eq!(changed.via.as_deref(), Some("sdk:portal"));

    // Administration and verification are refused; the whole settings
    // too: the portal has its projection.
    for (what, res) in admin_calls(&portal).await {
        assert_forbidden(what, res);
    }
    assert_forbidden("all settings", portal.get("/settings").await);
    assert_forbidden(
        "validate",
        portal
            .post(
                "/validate",
                json!({"username": "jan", "passcode": "123456"}),
            )
            .await,
    );
    assert_forbidden(
        "authenticate",
        portal
            .post("/authenticate", json!({"username": "jan"}))
            .await,
    );
    assert!(refusals_of(&p, "sdk:portal").await >= 12);
}

async fn admin_permissions_and_scope(backend: Backend) {
    let p = Portal::start(backend).await;
    let root = account(&p, "root", full_admin()).await;
    for (name, group) in [("sam", "Sales"), ("vic", "VPN")] {
        let (s, v) = root
            .post(
                "/users",
                json!({"username": name, "groups": [group], "password": PASSWORD}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
    }
    let helpdesk = account(&p, "helpdesk", admin("reset_pin,unblock", "group:sales")).await;

    // Inside the scope, with the permission: allowed.
    assert_eq!(
        helpdesk
            .put("/users/sam/pin", json!({"pin": "482913"}))
            .await
            .0,
        204
    );
    assert_eq!(helpdesk.post("/users/sam/unblock", json!({})).await.0, 200);
    assert_eq!(helpdesk.get("/users/sam").await.0, 200);
    let (s, v) = helpdesk.get("/users").await;
    assert_eq!(s, 200);
    let names: Vec<&str> = v["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sam"]);

    // Outside the scope, or without the permission: refused.
    assert_forbidden(
        "PIN outside scope",
        helpdesk
            .put("/users/vic/pin", json!({"pin": "482913"}))
            .await,
    );
    assert_forbidden("read outside scope", helpdesk.get("/users/vic").await);
    assert_forbidden("list another group", helpdesk.get("/users?group=VPN").await);
    assert_forbidden("delete", helpdesk.delete("/users/sam").await);
    assert_forbidden(
        "disable",
        helpdesk.post("/users/sam/disable", json!({})).await,
    );
    assert_forbidden(
        "setting",
        helpdesk
            .put("/settings/portal.allow_bypass", json!({"value": true}))
            .await,
    );
    assert_forbidden(
        "create",
        helpdesk
            .post("/users", json!({"username": "new", "groups": ["Sales"]}))
            .await,
    );
    assert_forbidden("audit", helpdesk.get("/audit").await);
    assert_forbidden(
        "portal link",
        link(
            &helpdesk,
            json!({"op": "change_pin", "username": "sam", "pin": "482913"}),
        )
        .await,
    );
    // An unknown user outside any permission says nothing about existence.
    let (s1, v1) = helpdesk.delete("/users/vic").await;
    let (s2, v2) = helpdesk.delete("/users/nobody").await;
    assert_eq!((s1, v1["error"].clone()), (s2, v2["error"].clone()));
    // Verification is part of an admin account.
    let (s, _) = helpdesk
        .post(
            "/validate",
            json!({"username": "sam", "passcode": "123456"}),
        )
        .await;
    assert_eq!(s, 200);

    // A scoped administrator who adds users keeps them in their group.
    let adder = account(&p, "adder", admin("add_users,edit_users", "group:sales")).await;
    assert_forbidden(
        "create outside group",
        adder.post("/users", json!({"username": "olga"})).await,
    );
    assert_eq!(
        adder
            .post("/users", json!({"username": "olga", "groups": ["sales"]}))
            .await
            .0,
        201
    );
    assert_forbidden(
        "move out of the group",
        adder.patch("/users/olga", json!({"groups": ["VPN"]})).await,
    );
    assert_eq!(
        adder
            .patch("/users/olga", json!({"display_name": "Olga"}))
            .await
            .0,
        200
    );
    // Changing the method is a permission of its own.
    assert_forbidden(
        "method",
        adder
            .put("/users/olga/method", json!({"method": "oath_token"}))
            .await,
    );
}

/// A user with no method who is given a token by an administrator can sign
/// in with it at once (the method becomes `oath_token`).
async fn a_given_token_sets_the_method(backend: Backend) {
    let p = Portal::start(backend).await;
    p.user("jan").await;
    let api = Api::new(&p, "helpdesk").await;
    let (s, v) = api
        .post(
            "/users/jan/tokens",
            json!({"type": "hotp", "secret": RFC_SECRET}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (_, user) = api.get("/users/jan").await;
    assert_eq!(user["method"], "oath_token:oath");
    let (s, v) = api
        .post("/validate", json!({"username": "jan", "passcode": hotp(0)}))
        .await;
    assert_eq!((s.as_u16(), v["result"].as_str()), (200, Some("accept")));

    // The portal signs them in with a code from oathtool, a real client.
    let code = std::process::Command::new("oathtool")
        .args(["--hotp", "--base32", "--counter=1", RFC_SECRET])
        .output()
        .expect("oathtool (Debian package oathtool) runs");
    assert!(code.status.success());
    let code = String::from_utf8(code.stdout).unwrap().trim().to_string();
    assert_eq!(code, hotp(1));
    let mut b = p.browser();
    b.sign_in("jan", PASSWORD).await;
    assert_eq!(b.h1(), "Two-step verification");
    b.submit("/portal/verify", &[("proof", "method"), ("code", &code)])
        .await;
    assert_eq!(b.h1(), "Your account", "{}", b.page);

    // A method chosen before stays as it was.
    p.user("kim").await;
    assert_eq!(
        api.put("/users/kim/method", json!({"method": "phone_call"}))
            .await
            .0,
        200
    );
    api.post(
        "/users/kim/tokens",
        json!({"type": "hotp", "secret": RFC_SECRET}),
    )
    .await;
    assert_eq!(
        api.get("/users/kim").await.1["method"],
        "phone_call:standard"
    );
}

/// Accounts made before roles existed became `admin` accounts with every
/// permission; a full administrator may also relay a portal.
async fn a_full_admin_does_everything(backend: Backend) {
    let p = Portal::start(backend).await;
    p.user("jan").await;
    let api = Api::new(&p, "legacy").await;
    assert_eq!(api.get("/users").await.0, 200);
    for (what, (s, v)) in portal_link_calls(&api).await {
        assert!(s.is_success() || s == 422, "{what}: {s} {v}");
    }
    let listed = p.engine.service_accounts(&Ctx::cli()).await.unwrap();
    let legacy = listed.iter().find(|a| a.name == "legacy").unwrap();
    assert_eq!(legacy.role, Role::Admin);
    assert_eq!(legacy.permissions.len(), Permissions::all().to_vec().len());
}

/// The portal link is private: not in the public OpenAPI document, and the
/// portal's old public routes are gone.
async fn the_portal_link_is_not_public(backend: Backend) {
    let p = Portal::start(backend).await;
    let doc: Value = p
        .browser()
        .client
        .get(format!("{}/sdk/v1/openapi.json", p.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert!(!paths.is_empty());
    for path in paths.keys() {
        assert!(
            !path.starts_with("/link")
                && !path.starts_with("/sdk/v1/portal")
                && path != "/sdk/v1/ready",
            "{path}"
        );
    }
    // Without credentials the link answers like the SDK: 401.
    let res = p
        .browser()
        .client
        .post(format!("{}/link/v1", p.base))
        .json(&json!({"op": "ready"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

twofold_testkit::both_backends!(
    the_portal_link_is_not_public,
    validate_role_only_verifies,
    portal_role_only_relays,
    admin_permissions_and_scope,
    a_given_token_sets_the_method,
    a_full_admin_does_everything,
);
