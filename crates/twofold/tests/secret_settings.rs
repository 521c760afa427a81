//! Secret settings (issue 7): written, never read back. The secret never
//! appears in `settings show` (table or JSON), the audit log, the SDK's
//! settings API or the portal link's projection, and is sealed at rest.

#[macro_use]
mod common;

use common::{client_trusting, Env};
use twofold_core::ports::SettingsRepo;
use twofold_testkit::db::Backend;

twofold_testkit::both_backends!(secret_settings_are_never_shown,);

const SECRET: &str = "Bearer sk_live_4f9a7c2e1b";
const KEY: &str = "sms_gateway.authorization";

async fn secret_settings_are_never_shown(backend: Backend) {
    let env = Env::new(backend).await;
    // From standard input, so it is in no process list or shell history.
    let out = env.run_with_stdin(&["settings", "set", KEY, "-"], &format!("{SECRET}\n"));
    assert_eq!(out.code(), 0, "{}", out.stderr());
    assert_eq!(out.stdout().trim(), format!("{KEY} = (set)"));
    assert!(!out.stderr().contains("sk_live"), "{}", out.stderr());

    let table = env.ok(&["settings", "show"]);
    assert!(!table.contains("sk_live"), "{table}");
    let row = table
        .lines()
        .find(|l| l.starts_with(&format!("*{KEY} ")))
        .unwrap_or_else(|| panic!("{KEY} marked as changed:\n{table}"));
    assert!(row.contains("(set)"), "{row}");
    let json = env.ok(&["settings", "show", "--json"]);
    assert!(!json.contains("sk_live"), "{json}");
    let rows: serde_json::Value = serde_json::from_str(&json).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == KEY)
        .unwrap();
    assert_eq!(row["value"], "(set)");
    assert!(row["allowed"].as_str().unwrap().contains("write-only"));

    let audit = env.ok(&["audit", "tail", "--json"]);
    assert!(!audit.contains("sk_live"), "{audit}");
    assert!(audit.contains(&format!("{KEY}=\\\"(set)\\\"")), "{audit}");

    // Sealed at rest: the stored row is not the secret, and the server
    // still reads it back (it shows as set after a restart of the CLI).
    let store = env.db.store().await.unwrap();
    let stored = store.settings_rows().await.unwrap();
    let (_, text) = stored.iter().find(|(k, _)| k == KEY).expect("stored row");
    assert!(!text.contains("sk_live"), "{text}");
    assert!(!text.contains("Bearer"), "{text}");

    // A bad value is refused without echoing any of it.
    let out = env.run(&["settings", "set", KEY, "Bearer \u{7}x"]);
    assert_ne!(out.code(), 0);
    assert!(!out.stderr().contains("Bearer"), "{}", out.stderr());
    // "(set)" is how it shows, not a value to store.
    assert_ne!(env.run(&["settings", "set", KEY, "(set)"]).code(), 0);

    // Over the SDK and over the portal link: shown as set, never the value.
    let admin = env
        .ok(&[
            "service-account",
            "create",
            "ops",
            "--role",
            "admin",
            "--perm",
            "all",
        ])
        .lines()
        .last()
        .unwrap()
        .to_string();
    let portal = env
        .ok(&["service-account", "create", "web", "--role", "portal"])
        .lines()
        .last()
        .unwrap()
        .to_string();
    let server = env.start();
    let client = client_trusting(&env.data_dir().join("tls/cert.pem"));
    let body = client
        .get(server.url("/sdk/v1/settings"))
        .basic_auth("ops", Some(&admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!body.contains("sk_live"), "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["sms_gateway"]["authorization"], "(set)", "{body}");
    let res = client
        .put(server.url(&format!("/sdk/v1/settings/{KEY}")))
        .basic_auth("ops", Some(&admin))
        .json(&serde_json::json!({"value": "Bearer sk_live_rotated"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body = res.text().await.unwrap();
    assert!(!body.contains("sk_live"), "{body}");
    let projection = client
        .post(server.url("/link/v1"))
        .basic_auth("web", Some(&portal))
        .json(&serde_json::json!({"op": "settings"}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(projection.contains("allow_login"), "{projection}");
    assert!(
        !projection.contains("sk_live") && !projection.contains("sms_gateway"),
        "{projection}"
    );
    let audit = env.ok(&["audit", "tail", "-n", "50", "--json"]);
    assert!(!audit.contains("sk_live"), "{audit}");

    // Cleared: empty again, and the row is gone.
    env.ok(&["settings", "reset", KEY]);
    let rows = store.settings_rows().await.unwrap();
    assert!(rows.iter().all(|(k, _)| k != KEY));
}
