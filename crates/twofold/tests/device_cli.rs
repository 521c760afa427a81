//! `twofold device` against the real binary and server: a helpdesk issues
//! an activation code (code, service URL, URI with the certificate's
//! fingerprint), a device activates with it over the Mobile App Web
//! Service, and the helpdesk lists and removes it; refusals (unknown user,
//! unknown device, the device limit, a delegated administrator without the
//! permission) exit with their codes. SQLite and PostgreSQL.

#[macro_use]
mod common;

use common::Env;
use twofold_testkit::db::Backend;
use twofold_testkit::mobile::TestDevice;

twofold_testkit::both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)];
    helpdesk_activates_lists_and_removes_devices,
);

async fn helpdesk_activates_lists_and_removes_devices(backend: Backend) {
    let mut env = Env::new(backend).await;
    let server = env.start();
    let base = server.url("");
    // Commands point devices where the server really is.
    env.extra.push((
        "TWOFOLD_PUBLIC_URL".into(),
        base.trim_end_matches('/').into(),
    ));
    env.ok(&["user", "add", "jan", "--group", "Sales"]);
    env.ok(&["user", "set", "jan", "--method", "mobile_app"]);

    let text = env.ok(&["device", "activation-code", "jan"]);
    assert!(text.contains("activation code  "), "{text}");
    assert!(
        text.contains(&format!("service URL      {base}/mobile/v1")),
        "{text}"
    );
    let offer = env.json(&["device", "activation-code", "jan", "--json"]);
    let fingerprint = server.fingerprint.replace(':', "").to_lowercase();
    assert_eq!(offer["fingerprint"], fingerprint.as_str());
    let uri = offer["uri"].as_str().unwrap();
    assert!(uri.ends_with(&format!("&fp={fingerprint}")), "{uri}");
    assert_eq!(
        twofold_proto::mobile::ActivationUri::parse(uri)
            .unwrap()
            .url,
        format!("{base}/mobile/v1")
    );

    let mut device = TestDevice::new(base.trim_end_matches('/'));
    let (status, v) = device.activate(offer["code"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{v}");
    let id = device.device_id.clone().unwrap();

    let listed = env.json(&["device", "list", "jan", "--json"]);
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["name"], "Test phone");
    let table = env.ok(&["device", "list", "jan"]);
    assert!(table.starts_with("ID"), "{table}");
    assert!(table.contains(&id), "{table}");

    // At the limit (1): no more codes.
    let out = env.run(&["device", "activation-code", "jan"]);
    assert_eq!(out.code(), 4, "{}", out.stderr());
    assert!(
        out.stderr().contains("remove one first"),
        "{}",
        out.stderr()
    );
    // Unknown user, unknown device.
    assert_eq!(env.run(&["device", "list", "nobody"]).code(), 3);
    assert_eq!(
        env.run(&["device", "remove", "jan", &"0".repeat(32)])
            .code(),
        3
    );
    // A delegated administrator needs manage_devices, in their scope.
    env.ok(&["user", "add", "helen"]);
    env.ok(&[
        "admin",
        "grant",
        "helen",
        "--perm",
        "unblock",
        "--scope",
        "group:Sales",
    ]);
    assert_eq!(
        env.run(&["--as", "helen", "device", "list", "jan"]).code(),
        5
    );
    env.ok(&[
        "admin",
        "grant",
        "helen",
        "--perm",
        "manage_devices",
        "--scope",
        "group:Sales",
    ]);
    env.ok(&["--as", "helen", "device", "list", "jan"]);

    env.ok(&["device", "remove", "jan", &id]);
    assert_eq!(
        env.json(&["device", "list", "jan", "--json"]),
        serde_json::json!([])
    );
    let (status, v) = device
        .call(reqwest::Method::GET, "/mobile/v1/requests", None)
        .await;
    assert_eq!(
        (status.as_u16(), &v["reason"]),
        (401, &serde_json::json!("signature"))
    );
    // Behind a proxy with a certificate of its own: no pin in the URI.
    env.ok(&["settings", "set", "mobile_app.pin_certificate", "false"]);
    let offer = env.json(&["device", "activation-code", "jan", "--json"]);
    assert!(offer["fingerprint"].is_null(), "{offer}");
    assert!(!offer["uri"].as_str().unwrap().contains("fp="), "{offer}");
    let audit = env.ok(&["audit", "tail", "--lines", "50"]);
    for code in [
        "SUCCESS_ACTIVATION_CODE",
        "SUCCESS_DEVICE_ACTIVATED",
        "SUCCESS_DEVICE_REMOVED",
    ] {
        assert!(audit.contains(code), "{code}: {audit}");
    }
}

/// A device's long-poll (and the SDK's) may wait up to 60 s: the server
/// lets it outlive the 30 s every other request gets, instead of cutting
/// it off with 408.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_outlives_the_request_timeout() {
    let mut env = Env::new(Backend::Sqlite).await;
    let server = env.start();
    let base = server.url("");
    env.extra.push(("TWOFOLD_PUBLIC_URL".into(), base.clone()));
    env.ok(&["user", "add", "jan"]);
    env.ok(&["user", "set", "jan", "--method", "mobile_app"]);
    let offer = env.json(&["device", "activation-code", "jan", "--json"]);
    let mut device = TestDevice::new(&base);
    let (status, v) = device.activate(offer["code"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{v}");
    let started = std::time::Instant::now();
    assert!(device.pending(33).await.is_empty());
    assert!(started.elapsed() >= std::time::Duration::from_secs(33));
}
