//! Sign-in with directory credentials (issue 12), through the real binary:
//! a real OpenLDAP `slapd` with Active-Directory-style people and a real
//! FreeRADIUS, both started on loopback ports; users imported from the
//! directory and from CSV files; a directory outage that is reported, not
//! counted against anyone.

#[macro_use]
mod common;

use common::{client_trusting, Env, MiniBrowser};
use serde_json::{json, Value};
use twofold_testkit::db::Backend;
use twofold_testkit::freeradius::{FreeRadius, FreeRadiusOptions};
use twofold_testkit::slapd::{self, Slapd, SlapdOptions};

twofold_testkit::both_backends!(
    ldap_people_are_imported_sign_in_and_outlive_an_outage,
    csv_import_reports_bad_rows_by_line_and_writes_the_good_ones,
    sync_adds_updates_and_removes_but_holds_past_the_threshold,
);

fn ldap_env(env: &mut Env, slapd: &Slapd) {
    env.extra = vec![
        ("TWOFOLD_LDAP_URL".into(), slapd.url()),
        ("TWOFOLD_LDAP_BIND_DN".into(), slapd::SERVICE_DN.into()),
        (
            "TWOFOLD_LDAP_BIND_PASSWORD".into(),
            slapd::SERVICE_PASSWORD.into(),
        ),
        ("TWOFOLD_LDAP_BASE_DN".into(), slapd::BASE_DN.into()),
        ("TWOFOLD_LDAP_PRESET".into(), "active_directory".into()),
        ("TWOFOLD_LDAP_TIMEOUT".into(), "2".into()),
    ];
}

/// A service account of `role`; its secret.
fn service_account(env: &Env, name: &str, role: &str) -> String {
    let mut args = vec!["service-account", "create", name, "--role", role];
    if role == "admin" {
        args.extend(["--perm", "all"]);
    }
    let out = env.ok(&args);
    out.lines().last().unwrap().trim().to_string()
}

async fn primary(
    client: &reqwest::Client,
    url: &str,
    secret: &str,
    username: &str,
    password: &str,
) -> (u16, Value) {
    let res = client
        .post(url)
        .basic_auth("app", Some(secret))
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn ldap_people_are_imported_sign_in_and_outlive_an_outage(backend: Backend) {
    let mut slapd = Slapd::with_people(SlapdOptions::default());
    let mut env = Env::new(backend).await;

    // Without [ldap], the setting cannot name it.
    let refused = env.run(&["settings", "set", "portal.primary_auth", "ldap"]);
    assert_ne!(refused.code(), 0);
    assert!(refused.stderr().contains("[ldap]"), "{}", refused.stderr());

    ldap_env(&mut env, &slapd);
    env.ok(&["settings", "set", "portal.primary_auth", "ldap"]);

    // A dry run says what would happen and writes nothing.
    let dry = env.json(&["import", "ldap", "--dry-run", "--json"]);
    assert_eq!(dry["dry_run"], true);
    assert!(dry["added"].as_u64().unwrap() >= 3, "{dry}");
    assert!(env
        .ok(&["user", "list"])
        .lines()
        .all(|l| !l.contains("alice")));

    let text = env.ok(&["import", "ldap"]);
    assert!(text.contains("added"), "{text}");
    let alice = env.json(&["user", "show", "alice", "--json"]);
    assert_eq!(alice["display_name"], "Alice Adams");
    assert_eq!(alice["email"], "alice@example.org");
    assert_eq!(alice["phone"], "+31205550101", "{alice}");
    assert_eq!(alice["phone_extension"], "204", "{alice}");
    assert_eq!(alice["mobile_phone"], "+31612345678", "{alice}");
    assert_eq!(alice["language"], "nl");
    assert_eq!(alice["groups"], json!(["vpn-users"]));
    let bob = env.json(&["user", "show", "bob", "--json"]);
    assert_eq!(
        bob["groups"],
        json!(["twofold-admins", "vpn-users"]),
        "{bob}"
    );

    // Again: nothing changed, nothing written.
    let again = env.json(&["import", "ldap", "--json"]);
    assert_eq!(again["added"], 0, "{again}");
    assert_eq!(again["updated"], 0, "{again}");
    // Only the members of a group.
    let vpn = env.json(&[
        "import",
        "ldap",
        "--group",
        "twofold-admins",
        "--dry-run",
        "--json",
    ]);
    assert_eq!(vpn["unchanged"], 1, "{vpn}");

    let secret = service_account(&env, "app", "validate");
    let server = env.start();
    let client = client_trusting(&env.data_dir().join("tls/cert.pem"));
    let url = server.url("/sdk/v1/primary");

    // Every form Active Directory users type, and wrong passwords.
    for name in ["alice", "EXAMPLE\\alice", "alice@example.org", " Alice "] {
        let (status, body) = primary(&client, &url, &secret, name, slapd::ALICE_PASSWORD).await;
        assert_eq!(
            (status, &body["result"]),
            (200, &json!("accept")),
            "{name}: {body}"
        );
    }
    for (name, pw) in [
        ("alice", "wrong"),
        ("alice", ""),
        ("EXAMPLE\\alice", slapd::BOB_PASSWORD),
        ("*", slapd::ALICE_PASSWORD),
        ("alice)(uid=*", slapd::ALICE_PASSWORD),
        ("nobody", "x"),
    ] {
        let (status, body) = primary(&client, &url, &secret, name, pw).await;
        assert_eq!(
            (status, &body["result"]),
            (200, &json!("reject")),
            "{name}: {body}"
        );
    }

    // Group membership follows the directory at sign-in.
    slapd.modify_ldif(
        "dn: cn=twofold-admins,ou=groups,dc=example,dc=org\nchangetype: modify\nadd: member\nmember: uid=alice,ou=people,dc=example,dc=org\n",
    );
    let (status, _) = primary(&client, &url, &secret, "alice", slapd::ALICE_PASSWORD).await;
    assert_eq!(status, 200);
    let alice = env.json(&["user", "show", "alice", "--json"]);
    assert_eq!(
        alice["groups"],
        json!(["twofold-admins", "vpn-users"]),
        "{alice}"
    );

    // The portal signs a directory user in with the directory password.
    let mut b = MiniBrowser::new(
        &env.data_dir().join("tls/cert.pem"),
        &format!("https://{}", server.addr),
    );
    assert_eq!(b.open("/portal").await, 200);
    b.submit(
        "/portal/sign-in",
        &[
            ("username", "EXAMPLE\\carol"),
            ("password", slapd::CAROL_PASSWORD),
        ],
    )
    .await;
    assert_eq!(b.h1(), "Set up your account", "{}", b.page);

    let ready: Value = client
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["directory"]["kind"], "ldap", "{ready}");
    assert_eq!(ready["directory"]["status"], "reachable", "{ready}");

    // The directory goes down: a clear error, the server stays ready, and
    // no attempt counts against the user.
    slapd.stop();
    for _ in 0..12 {
        let (status, body) = primary(&client, &url, &secret, "alice", slapd::ALICE_PASSWORD).await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["error"], "unavailable", "{body}");
    }
    let res = client.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let ready: Value = res.json().await.unwrap();
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["directory"]["status"], "unreachable", "{ready}");
    let mut b = MiniBrowser::new(
        &env.data_dir().join("tls/cert.pem"),
        &format!("https://{}", server.addr),
    );
    assert_eq!(b.open("/portal").await, 200);
    b.submit(
        "/portal/sign-in",
        &[("username", "alice"), ("password", slapd::ALICE_PASSWORD)],
    )
    .await;
    assert_eq!(b.h1(), "Sign in");
    assert!(b.page.contains("cannot be checked right now"), "{}", b.page);
    assert!(b.page.contains("value=\"alice\""), "the name is kept");

    slapd.restart();
    let (status, body) = primary(&client, &url, &secret, "alice", slapd::ALICE_PASSWORD).await;
    assert_eq!((status, &body["result"]), (200, &json!("accept")), "{body}");
    let alice = env.json(&["user", "show", "alice", "--json"]);
    assert_eq!(alice["status"], "enabled", "{alice}");

    let audit = env.ok(&["audit", "tail", "--user", "alice", "-n", "100", "--json"]);
    assert!(audit.contains("FAILED_DIRECTORY_UNAVAILABLE"), "{audit}");
    assert!(audit.contains("system:directory"), "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn radius_users_sign_in_with_fail_over() {
    let radius = FreeRadius::start(FreeRadiusOptions {
        secret: "radius-test-secret",
        users: &[("jan", "jan-radius-password")],
        ..FreeRadiusOptions::default()
    });
    // Nothing answers on the first server: Twofold moves on.
    let dead = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap().to_string();
    drop(dead);
    let mut env = Env::new(Backend::Sqlite).await;
    env.extra = vec![
        (
            "TWOFOLD_RADIUS_SERVERS".into(),
            format!("{dead_addr}, {}", radius.addr()),
        ),
        ("TWOFOLD_RADIUS_SECRET".into(), "radius-test-secret".into()),
        ("TWOFOLD_RADIUS_TIMEOUT".into(), "2".into()),
        ("TWOFOLD_RADIUS_RETRIES".into(), "0".into()),
    ];
    env.ok(&["user", "add", "jan"]);
    env.ok(&["settings", "set", "portal.primary_auth", "radius"]);
    let secret = service_account(&env, "app", "validate");
    let server = env.start();
    let client = client_trusting(&env.data_dir().join("tls/cert.pem"));
    let url = server.url("/sdk/v1/primary");
    let (status, body) = primary(&client, &url, &secret, "jan", "jan-radius-password").await;
    assert_eq!((status, &body["result"]), (200, &json!("accept")), "{body}");
    for (name, pw) in [("jan", "wrong"), ("piet", "jan-radius-password")] {
        let (status, body) = primary(&client, &url, &secret, name, pw).await;
        assert_eq!(
            (status, &body["result"]),
            (200, &json!("reject")),
            "{name}: {body}"
        );
    }
    let ready: Value = client
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["directory"]["kind"], "radius", "{ready}");
    assert_eq!(ready["directory"]["status"], "reachable", "{ready}");

    // A wrong shared secret is never a yes or a no: unavailable.
    drop(server);
    env.extra[1].1 = "not-the-secret".into();
    let server = env.start();
    let (status, body) = primary(
        &client,
        &server.url("/sdk/v1/primary"),
        &secret,
        "jan",
        "jan-radius-password",
    )
    .await;
    assert_eq!(status, 503, "{body}");
}

const GOOD_AND_BAD: &str = "\
username,display_name,email,phone,extension,mobile,language,method,groups
anna,Anna Bakker,anna@example.org,+31 20 555 0101x204,,+31 6 12345678,nl,oath_token,staff;vpn
bert,Bert,,not a phone,,,,,
cees,Cees,cees@example,,,,,,
dirk,Dirk de Boer,,,,,de-AT,carrier_pigeon,
,nobody,,,,,,,
emma,Emma,emma@example.org,,,,en,,staff
";

async fn csv_import_reports_bad_rows_by_line_and_writes_the_good_ones(backend: Backend) {
    let env = Env::new(backend).await;
    let file = env.dir.path().join("users.csv");
    std::fs::write(&file, GOOD_AND_BAD).unwrap();
    let path = file.to_str().unwrap();

    let dry = env.run(&["import", "csv", path, "--dry-run", "--json"]);
    assert_eq!(dry.code(), 1, "refused rows make the exit code non-zero");
    let report: Value = serde_json::from_str(&dry.stdout()).unwrap();
    assert_eq!(report["added"], 2, "{report}");
    assert_eq!(report["refused"], 4, "{report}");
    assert!(env
        .ok(&["user", "list"])
        .lines()
        .all(|l| !l.contains("anna")));

    let out = env.run(&["import", "csv", path]);
    assert_eq!(out.code(), 1, "{}", out.stderr());
    assert!(out.stderr().contains("4 rows refused"), "{}", out.stderr());
    let text = out.stdout();
    for (line, why) in [
        ("3", "phone"),
        ("4", "email"),
        ("5", "method"),
        ("6", "username"),
    ] {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(line)
                && l.contains("refused")
                && l.contains(why)),
            "line {line} ({why}) not reported:\n{text}"
        );
    }
    let anna = env.json(&["user", "show", "anna", "--json"]);
    assert_eq!(anna["phone"], "+31205550101");
    assert_eq!(anna["phone_extension"], "204");
    assert_eq!(anna["default_method"]["method"], "oath_token", "{anna}");
    assert_eq!(anna["groups"], json!(["staff", "vpn"]));
    // Nothing of a refused row was written.
    assert_ne!(env.run(&["user", "show", "bert"]).code(), 0);
    assert_ne!(env.run(&["user", "show", "dirk"]).code(), 0);

    // A second file changes one field; empty cells keep what is there.
    let update = env.run_with_stdin(
        &["import", "csv", "-", "--json"],
        "anna,,anna.bakker@example.org\nemma\n",
    );
    assert_eq!(update.code(), 0, "{}", update.stderr());
    let report: Value = serde_json::from_str(&update.stdout()).unwrap();
    assert_eq!(
        (report["updated"].as_u64(), report["unchanged"].as_u64()),
        (Some(1), Some(1)),
        "{report}"
    );
    assert_eq!(report["rows"][0]["fields"], json!(["email"]), "{report}");
    let anna = env.json(&["user", "show", "anna", "--json"]);
    assert_eq!(anna["email"], "anna.bakker@example.org");
    assert_eq!(anna["display_name"], "Anna Bakker");

    // The same through the SDK, for the admin console and scripts.
    let admin = service_account(&env, "importer", "admin");
    let validator = service_account(&env, "checker", "validate");
    let server = env.start();
    let client = client_trusting(&env.data_dir().join("tls/cert.pem"));
    let post = |who: &'static str, secret: &str, body: &str, query: &str| {
        client
            .post(server.url(&format!("/sdk/v1/import{query}")))
            .basic_auth(who, Some(secret.to_string()))
            .header("content-type", "text/csv")
            .body(body.to_string())
            .send()
    };
    let res = post("checker", &validator, "username\nfenna\n", "")
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = post(
        "importer",
        &admin,
        "username,display_name,email\nfenna,Fenna\ngerrit,,bad@\n",
        "?dry_run=true",
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    let report: Value = res.json().await.unwrap();
    assert_eq!(
        (report["added"].as_u64(), report["refused"].as_u64()),
        (Some(1), Some(1)),
        "{report}"
    );
    assert_eq!(report["rows"][1]["line"], 3, "{report}");
    assert_eq!(report["rows"][1]["outcome"], "refused", "{report}");
    let res = post("importer", &admin, "fenna,Fenna\n", "").await.unwrap();
    assert_eq!(res.status(), 422, "the SDK wants a header line");
    let res = post("importer", &admin, "", "").await.unwrap();
    assert_eq!(res.status(), 422, "an empty body is no file");
    let res = post(
        "importer",
        &admin,
        "username,display_name\nfenna,Fenna\n",
        "",
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        env.json(&["user", "show", "fenna", "--json"])["display_name"],
        "Fenna"
    );
    let res = post("importer", &admin, "username,mail\nx,y\n", "")
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_input", "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("unknown column"),
        "{body}"
    );
}

fn enabled(env: &Env, name: &str) -> bool {
    env.json(&["user", "show", name, "--json"])["enabled"] == true
}

async fn sync_adds_updates_and_removes_but_holds_past_the_threshold(backend: Backend) {
    let slapd = Slapd::with_people(SlapdOptions::default());
    let mut env = Env::new(backend).await;
    ldap_env(&mut env, &slapd);
    env.ok(&["user", "add", "zed"]); // a local user: never the sync's
    let refused = env.run(&["sync", "now"]);
    assert_ne!(refused.code(), 0);
    assert!(
        refused.stderr().contains("no sync items"),
        "{}",
        refused.stderr()
    );
    let bad = env.run(&["sync", "add", "people", "--filter", "(mail=*"]);
    assert_ne!(
        bad.code(),
        0,
        "a filter the directory cannot read is refused at once"
    );
    env.ok(&[
        "sync",
        "add",
        "people",
        "--filter",
        "(mail=*)",
        "--method",
        "oath_token",
        "--language",
        "de",
    ]);
    assert!(env.ok(&["sync", "list"]).contains("people"));

    // The schedule: a server with sync.enabled runs it by itself.
    env.ok(&["settings", "set", "sync.enabled", "true"]);
    env.ok(&["settings", "set", "sync.interval_minutes", "60"]);
    let server = env.start();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let status = env.json(&["sync", "status", "--json"]);
        if !status["last_run_at"].is_null() {
            assert_eq!(status["last_report"]["added"], 3, "{status}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no scheduled run: {status}"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    drop(server);
    env.ok(&["settings", "set", "sync.enabled", "false"]);
    let carol = env.json(&["user", "show", "carol", "--json"]);
    assert_eq!(
        carol["language"], "de",
        "the item's language where the directory has none"
    );
    assert_eq!(carol["default_method"]["method"], "oath_token", "{carol}");
    assert_eq!(
        env.json(&["user", "show", "alice", "--json"])["language"],
        "nl"
    );

    // A changed attribute is updated; nothing else is written.
    slapd.modify_ldif(
        "dn: uid=alice,ou=people,dc=example,dc=org\nchangetype: modify\nreplace: mail\nmail: alice.adams@example.org\n",
    );
    let r = env.json(&["sync", "now", "--json"]);
    assert_eq!(
        (r["added"].as_u64(), r["updated"].as_u64()),
        (Some(0), Some(1)),
        "{r}"
    );
    assert_eq!(
        env.json(&["user", "show", "alice", "--json"])["email"],
        "alice.adams@example.org"
    );

    // Someone gone from the directory is disabled; the local user is not.
    slapd.modify_ldif("dn: uid=carol,ou=people,dc=example,dc=org\nchangetype: delete\n");
    let r = env.json(&["sync", "now", "--dry-run", "--json"]);
    assert_eq!(r["items"][0]["gone"], json!(["carol"]), "{r}");
    assert!(enabled(&env, "carol"), "a dry run changes nothing");
    let r = env.json(&["sync", "now", "--json"]);
    assert_eq!(r["disabled"], 1, "{r}");
    assert!(!enabled(&env, "carol"));
    assert!(enabled(&env, "zed"));

    // More removals than the threshold: held, nothing changed, until approved.
    env.ok(&["settings", "set", "sync.threshold", "1"]);
    for who in ["alice", "bob"] {
        slapd.modify_ldif(&format!(
            "dn: uid={who},ou=people,dc=example,dc=org\nchangetype: delete\n"
        ));
    }
    let held = env.run(&["sync", "now"]);
    assert_ne!(held.code(), 0);
    assert!(held.stderr().contains("sync approve"), "{}", held.stderr());
    assert!(enabled(&env, "alice") && enabled(&env, "bob"));
    assert_eq!(env.json(&["sync", "status", "--json"])["held"], true);
    let approved = env.json(&["sync", "approve", "--json"]);
    assert_eq!(approved["disabled"], 2, "{approved}");
    assert!(!enabled(&env, "alice") && !enabled(&env, "bob"));
    assert!(enabled(&env, "zed"));
    let again = env.run(&["sync", "approve"]);
    assert_ne!(again.code(), 0, "nothing is held any more");

    let audit = env.ok(&["audit", "tail", "--user", "alice", "-n", "50", "--json"]);
    assert!(audit.contains("system:sync"), "{audit}");
}
