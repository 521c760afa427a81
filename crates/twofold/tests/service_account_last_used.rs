//! A service account's last use, through the real binary: none until its
//! first SDK call, then `service-account list` shows when, and a refused
//! call (wrong secret) records nothing.

mod common;

use common::{client_trusting, Env};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use twofold_testkit::db::Backend;

twofold_testkit::both_backends!(list_shows_when_an_account_was_last_used);

fn secret_of(out: &str) -> String {
    out.lines().last().unwrap().trim().to_string()
}

fn listed(env: &Env, name: &str) -> Value {
    env.json(&["service-account", "list", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("{name} is listed"))
        .clone()
}

async fn validate(http: &reqwest::Client, url: &str, name: &str, secret: &str) -> u16 {
    http.post(url)
        .basic_auth(name, Some(secret))
        .json(&json!({ "username": "nobody", "passcode": "123456" }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn list_shows_when_an_account_was_last_used(backend: Backend) {
    let env = Env::new(backend).await;
    let vpn = secret_of(&env.ok(&["service-account", "create", "vpn", "--role", "validate"]));
    env.ok(&["service-account", "create", "idle", "--role", "validate"]);
    assert!(listed(&env, "vpn")["last_used_at"].is_null());
    let table = env.ok(&["service-account", "list"]);
    assert!(table.contains("LAST USED"), "{table}");
    assert!(table.contains("never"), "{table}");

    let server = env.start();
    let http = client_trusting(&env.data_dir().join("tls/cert.pem"));
    let url = server.url("/sdk/v1/validate");
    let before = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    // An unknown user is still an authenticated call of the account.
    assert_eq!(validate(&http, &url, "vpn", &vpn).await, 200);
    // A wrong secret is not a use of the account it names.
    assert_eq!(validate(&http, &url, "idle", &vpn).await, 401);

    let used = listed(&env, "vpn")["last_used_at"].clone();
    let at = OffsetDateTime::parse(used.as_str().expect("a timestamp"), &Rfc3339).unwrap();
    assert!(
        at >= before && at <= OffsetDateTime::now_utc(),
        "{at} after {before}"
    );
    assert!(listed(&env, "idle")["last_used_at"].is_null());

    // Within the minute another call writes nothing: the time stays.
    assert_eq!(validate(&http, &url, "vpn", &vpn).await, 200);
    assert_eq!(listed(&env, "vpn")["last_used_at"], used);
    let table = env.ok(&["service-account", "list"]);
    let vpn_row = table.lines().find(|l| l.starts_with("vpn")).unwrap();
    assert!(!vpn_row.contains("never"), "{table}");
}
