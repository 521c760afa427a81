//! The administrator's command line against a real database: round trips,
//! refusals with their exit codes, and nothing written by a refused command.

#[macro_use]
mod common;

use common::Env;
use serde_json::Value;
use twofold_testkit::db::Backend;

fn usernames(env: &Env) -> Vec<String> {
    env.json(&["user", "list", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_string())
        .collect()
}

fn audit(env: &Env) -> Vec<Value> {
    env.ok(&["audit", "tail", "-n", "1000", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

async fn user_round_trip(backend: Backend) {
    let env = Env::new(backend).await;
    assert!(usernames(&env).is_empty());
    env.ok(&[
        "user",
        "add",
        "Jan.deVries",
        "--email",
        "jan@contoso.nl",
        "--display-name",
        "Jan de Vries",
        "--group",
        "VPN",
        "--group",
        "sales",
        "--language",
        "nl",
    ]);
    env.ok(&["user", "add", "amir"]);
    assert_eq!(usernames(&env), vec!["amir", "Jan.deVries"]);

    let u = env.json(&["user", "show", "jan.devries", "--json"]);
    assert_eq!(u["username"], "Jan.deVries");
    assert_eq!(u["email"], "jan@contoso.nl");
    assert_eq!(u["display_name"], "Jan de Vries");
    assert_eq!(u["groups"], serde_json::json!(["sales", "VPN"]));
    assert_eq!(u["language"], "nl");
    assert_eq!(u["status"], "enabled");
    assert_eq!(
        u["failures"][1],
        serde_json::json!({"factor": "code", "in_a_row": 0, "since_success": 0,
                           "this_hour": 0, "paused_until": null}),
        "the guessing record is shown to administrators"
    );
    let text = env.ok(&["user", "show", "JAN.DEVRIES"]);
    assert!(
        text.contains("Jan de Vries")
            && text.contains("not enrolled")
            && text.contains("wrong attempts  none"),
        "{text}"
    );

    env.ok(&[
        "user",
        "set",
        "jan.devries",
        "--email",
        "",
        "--groups",
        "VPN",
        "--method",
        "oath_token",
    ]);
    let u = env.json(&["user", "show", "jan.devries", "--json"]);
    assert_eq!(u["email"], Value::Null);
    assert_eq!(u["groups"], serde_json::json!(["VPN"]));
    assert_eq!(u["default_method"]["method"], "oath_token");

    env.ok(&["user", "disable", "jan.devries"]);
    assert_eq!(
        env.json(&["user", "show", "jan.devries", "--json"])["status"],
        "disabled"
    );
    env.ok(&["user", "enable", "jan.devries"]);
    assert_eq!(
        env.json(&["user", "show", "jan.devries", "--json"])["status"],
        "enabled"
    );

    let vpn: Vec<Value> = env
        .json(&["user", "list", "--group", "vpn", "--json"])
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(vpn.len(), 1);
    let j: Vec<Value> = env
        .json(&["user", "list", "--prefix", "JAN", "--json"])
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(j.len(), 1);

    env.ok(&["user", "delete", "JAN.devries"]);
    assert_eq!(usernames(&env), vec!["amir"]);
    let out = env.run(&["user", "show", "jan.devries"]);
    assert_eq!(out.code(), 3);
    assert!(
        out.stderr().contains(r#"user "jan.devries" not found"#),
        "{}",
        out.stderr()
    );

    let events: Vec<(String, String)> = audit(&env)
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap().into(),
                e["result"].as_str().unwrap().into(),
            )
        })
        .collect();
    for want in [
        ("user.create", "SUCCESS_USER_CREATED"),
        ("user.update", "SUCCESS_USER_UPDATED"),
        ("user.disable", "SUCCESS_USER_DISABLED"),
        ("user.enable", "SUCCESS_USER_ENABLED"),
        ("user.delete", "SUCCESS_USER_DELETED"),
    ] {
        assert!(
            events.contains(&(want.0.into(), want.1.into())),
            "{want:?} not in {events:?}"
        );
    }
    assert!(audit(&env).iter().all(|e| e["actor"] == "cli"));
}

async fn duplicate_usernames_are_refused_in_any_case(backend: Backend) {
    let env = Env::new(backend).await;
    env.ok(&["user", "add", "Alice", "--email", "alice@contoso.com"]);
    for dup in ["Alice", "alice", "ALICE", " alice "] {
        let out = env.run(&["user", "add", dup, "--email", "other@contoso.com"]);
        assert_eq!(out.code(), 4, "{dup}: {}", out.stderr());
        assert!(out.stderr().contains("already exists"), "{}", out.stderr());
    }
    assert_eq!(usernames(&env), vec!["Alice"]);
    assert_eq!(
        env.json(&["user", "show", "alice", "--json"])["email"],
        "alice@contoso.com"
    );
    let refusals = audit(&env)
        .iter()
        .filter(|e| e["result"] == "FAILED_USER_EXISTS")
        .count();
    assert_eq!(refusals, 4);
}

async fn bad_input_is_refused_and_nothing_is_written(backend: Backend) {
    let env = Env::new(backend).await;
    env.ok(&["user", "add", "bob", "--email", "bob@contoso.com"]);
    let before = env.json(&["user", "show", "bob", "--json"]);
    let long = "x".repeat(300);
    let cases: Vec<Vec<&str>> = vec![
        vec!["user", "add", "two words"],
        vec!["user", "add", ""],
        vec!["user", "add", &long],
        vec!["user", "add", "carol", "--email", "not-an-address"],
        vec!["user", "add", "carol", "--display-name", &long],
        vec!["user", "add", "carol", "--language", "tlh"],
        vec!["user", "add", "carol", "--group", "a,b"],
        vec!["user", "set", "bob", "--email", "bob@"],
        vec!["user", "set", "bob", "--method", "carrier_pigeon"],
        vec!["user", "set", "bob", "--method", "phone_call:oath"],
        vec![
            "user",
            "set",
            "bob",
            "--display-name",
            "ok",
            "--language",
            "xx",
        ],
        vec!["user", "set", "bob"],
    ];
    for args in &cases {
        let out = env.run(args);
        assert_eq!(out.code(), 2, "{args:?}: {}", out.stderr());
        assert!(
            out.stderr().starts_with("error: "),
            "{args:?}: {}",
            out.stderr()
        );
        assert!(!out.stderr().contains("panicked"), "{}", out.stderr());
    }
    // A too-short password from stdin is refused before anything is written.
    let out = env.run_with_stdin(&["user", "add", "carol", "--password-stdin"], "short\n");
    assert_eq!(out.code(), 2, "{}", out.stderr());
    assert!(
        out.stderr().contains("password: must be at least 8"),
        "{}",
        out.stderr()
    );

    assert_eq!(usernames(&env), vec!["bob"]);
    // Even the refused multi-field change left bob exactly as he was.
    assert_eq!(env.json(&["user", "show", "bob", "--json"]), before);
    let refusals = audit(&env)
        .iter()
        .filter(|e| e["result"] == "FAILED_INVALID_INPUT")
        .count();
    assert_eq!(refusals, cases.len() + 1);
}

async fn unknown_users_are_not_found(backend: Backend) {
    let env = Env::new(backend).await;
    for args in [
        vec!["user", "show", "ghost"],
        vec!["user", "delete", "ghost"],
        vec!["user", "disable", "ghost"],
        vec!["user", "set", "ghost", "--email", "g@contoso.com"],
        vec!["user", "unblock", "ghost"],
    ] {
        let out = env.run(&args);
        assert_eq!(out.code(), 3, "{args:?}: {}", out.stderr());
    }
    let out = env.run_with_stdin(
        &["user", "passwd", "ghost", "--password-stdin"],
        "long enough pw\n",
    );
    assert_eq!(out.code(), 3);
}

async fn passwords_and_bootstrap(backend: Backend) {
    let env = Env::new(backend).await;
    // Without a terminal, a password must come on stdin.
    let out = env.run(&["admin", "bootstrap", "root"]);
    assert_eq!(out.code(), 2, "{}", out.stderr());
    assert!(out.stderr().contains("--password-stdin"));
    assert!(usernames(&env).is_empty());

    let out = env.run_with_stdin(
        &["admin", "bootstrap", "root", "--password-stdin"],
        "correct horse battery\n",
    );
    assert_eq!(out.code(), 0, "{}", out.stderr());
    let admins = env.json(&["admin", "list", "--json"]);
    assert_eq!(admins[0]["username"], "root");
    // Every permission, including manage_administrators and
    // manage_service_accounts (added with roles: 14 before).
    assert_eq!(admins[0]["permissions"].as_array().unwrap().len(), 16);
    assert_eq!(admins[0]["scope_group"], Value::Null);

    let out = env.run_with_stdin(
        &["admin", "bootstrap", "mallory", "--password-stdin"],
        "correct horse battery\n",
    );
    assert_eq!(out.code(), 4, "{}", out.stderr());
    assert!(!usernames(&env).contains(&"mallory".to_string()));

    let out = env.run_with_stdin(&["user", "passwd", "root", "--password-stdin"], "tiny\n");
    assert_eq!(out.code(), 2);
    let out = env.run_with_stdin(
        &["user", "passwd", "root", "--password-stdin"],
        "another long one\n",
    );
    assert_eq!(out.code(), 0, "{}", out.stderr());
    let out = env.run(&["user", "passwd", "root"]);
    assert_eq!(out.code(), 2, "no terminal: {}", out.stderr());

    let results: Vec<String> = audit(&env)
        .iter()
        .map(|e| e["result"].as_str().unwrap().to_string())
        .collect();
    assert!(results.contains(&"SUCCESS_ADMIN_GRANTED".to_string()));
    assert!(results.contains(&"SUCCESS_PASSWORD_CHANGED".to_string()));
}

async fn settings_are_validated(backend: Backend) {
    let env = Env::new(backend).await;
    let value = |key: &str| -> Value {
        env.json(&["settings", "show", "--json"])
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["key"] == key)
            .unwrap()["value"]
            .clone()
    };
    assert_eq!(value("portal.max_mobile_devices"), 1);
    assert_eq!(
        env.ok(&["settings", "set", "portal.max_mobile_devices", "10"])
            .trim(),
        "portal.max_mobile_devices = 10"
    );
    for (key, bad, want) in [
        ("portal.max_mobile_devices", "11", "out of range 1..=10"),
        ("portal.max_mobile_devices", "0", "out of range 1..=10"),
        ("portal.max_mobile_devices", "ten", "not a whole number"),
        ("portal.allow_bypass", "perhaps", "not true or false"),
        ("pin.history", "11", "out of range 1..=10"),
        ("portal.bypass_default_seconds", "999999", "out of range"),
        ("trusted_ips.ranges", "10.0.0.0/40", "not an IP address"),
        ("portal.nonsense", "1", "unknown setting"),
    ] {
        let out = env.run(&["settings", "set", key, bad]);
        assert_eq!(out.code(), 2, "{key}={bad}: {}", out.stderr());
        assert!(out.stderr().contains(want), "{key}={bad}: {}", out.stderr());
    }
    assert_eq!(value("portal.max_mobile_devices"), 10);
    assert_eq!(value("pin.history"), 5);

    env.ok(&[
        "settings",
        "set",
        "trusted_ips.ranges",
        "10.0.0.0/8,192.168.1.1",
    ]);
    assert_eq!(
        value("trusted_ips.ranges"),
        serde_json::json!(["10.0.0.0/8", "192.168.1.1/32"])
    );
    let shown = env.ok(&["settings", "show"]);
    assert!(shown.contains("*portal.max_mobile_devices"), "{shown}");
    env.ok(&["settings", "reset", "portal.max_mobile_devices"]);
    assert_eq!(value("portal.max_mobile_devices"), 1);
    assert!(env.run(&["settings", "reset", "nope.nope"]).code() == 2);
}

async fn phones_are_validated(backend: Backend) {
    let env = Env::new(backend).await;
    env.ok(&["user", "add", "jan"]);
    env.ok(&[
        "user",
        "set",
        "jan",
        "--phone",
        "+31 20 794 8261",
        "--extension",
        "42",
        "--mobile-phone",
        "+31 6 12345678",
    ]);
    let u = env.json(&["user", "show", "jan", "--json"]);
    assert_eq!(u["phone"], "+31207948261");
    assert_eq!(u["phone_extension"], "42");
    assert_eq!(u["mobile_phone"], "+31612345678");
    assert!(env
        .ok(&["user", "show", "jan"])
        .contains("+31207948261 ext. 42"));

    // National numbers need a default country.
    let out = env.run(&["user", "set", "jan", "--backup-phone", "020 794 8261"]);
    assert_eq!(out.code(), 2, "{}", out.stderr());
    assert!(
        out.stderr().contains("backup_phone") && out.stderr().contains("international"),
        "{}",
        out.stderr()
    );
    env.ok(&["settings", "set", "phone.default_country", "NL"]);
    env.ok(&["user", "set", "jan", "--backup-phone", "020 794 8261"]);
    assert_eq!(
        env.json(&["user", "show", "jan", "--json"])["backup_phone"],
        "+31207948261"
    );
    for (flag, bad) in [
        ("--phone", "+31 12"),
        ("--phone", "call me"),
        ("--extension", "12a"),
        ("--mobile-phone", "+999 123"),
    ] {
        let out = env.run(&["user", "set", "jan", flag, bad]);
        assert_eq!(out.code(), 2, "{flag} {bad}: {}", out.stderr());
    }
    let out = env.run(&["settings", "set", "phone.default_country", "XX"]);
    assert_eq!(out.code(), 2);
    // Clearing.
    env.ok(&["user", "set", "jan", "--phone", "", "--extension", ""]);
    assert!(env.json(&["user", "show", "jan", "--json"])["phone"].is_null());
}

async fn tokens_and_questions(backend: Backend) {
    let env = Env::new(backend).await;
    env.ok(&["user", "add", "jan"]);
    // RFC 4226's secret "12345678901234567890": codes 755224, 287082, 359152, ...
    let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    let out = env.ok(&[
        "token", "add", "jan", "--type", "hotp", "--secret", secret, "--label", "key fob",
    ]);
    assert!(out.contains("added token"), "{out}");
    let tokens = env.json(&["token", "list", "jan", "--json"]);
    let id = tokens[0]["id"].as_i64().unwrap().to_string();
    assert_eq!(tokens[0]["label"], "key fob");
    assert!(
        tokens[0].get("sealed_secret").is_none(),
        "secrets never leave the server"
    );
    for bad in [
        vec![
            "token",
            "add",
            "jan",
            "--type",
            "totp",
            "--secret",
            "not base32",
        ],
        vec![
            "token", "add", "jan", "--type", "totp", "--secret", secret, "--digits", "7",
        ],
        vec![
            "token", "add", "ghost", "--type", "totp", "--secret", secret,
        ],
    ] {
        let out = env.run(&bad);
        assert!(
            out.code() == 2 || out.code() == 3,
            "{bad:?}: {}",
            out.stderr()
        );
    }
    // Codes 755224 (0) and 287082 (1) are consecutive; 359152 (2) is not next to 755224.
    let out = env.run(&["token", "resync", "jan", &id, "755224", "359152"]);
    assert_eq!(out.code(), 2, "{}", out.stderr());
    env.ok(&["token", "resync", "jan", &id, "755224", "287082"]);
    env.ok(&["token", "delete", "jan", &id]);
    assert_eq!(env.run(&["token", "delete", "jan", &id]).code(), 3);

    env.ok(&[
        "questions",
        "add",
        "--lang",
        "nl",
        "Wat was de naam van uw eerste huisdier?",
    ]);
    assert_eq!(
        env.run(&[
            "questions",
            "add",
            "--lang",
            "nl",
            "wat was de naam van uw eerste huisdier?"
        ])
        .code(),
        4
    );
    assert_eq!(
        env.run(&["questions", "add", "--lang", "xx", "A fine question?"])
            .code(),
        2
    );
    let qs = env.json(&["questions", "list", "--lang", "nl", "--json"]);
    assert_eq!(qs.as_array().unwrap().len(), 1);
    env.ok(&["questions", "delete", &qs[0]["id"].to_string()]);
    assert!(env
        .json(&["questions", "list", "--json"])
        .as_array()
        .unwrap()
        .is_empty());
}

/// Service accounts get a role; administrators get permissions and a
/// scope; `--as` holds the CLI to one administrator's.
async fn roles_permissions_and_acting_as(backend: Backend) {
    let env = Env::new(backend).await;
    // A role must be chosen; permissions and scope are for admin accounts.
    for args in [
        &["service-account", "create", "vpn"][..],
        &["service-account", "create", "vpn", "--role", "root"],
        &["service-account", "create", "vpn", "--role", "admin"],
        &[
            "service-account",
            "create",
            "vpn",
            "--role",
            "validate",
            "--perm",
            "reset_pin",
        ],
        &[
            "service-account",
            "create",
            "vpn",
            "--role",
            "admin",
            "--perm",
            "fly",
        ],
        &[
            "service-account",
            "create",
            "vpn",
            "--role",
            "admin",
            "--perm",
            "all",
            "--scope",
            "sales",
        ],
    ] {
        assert_eq!(env.run(args).code(), 2, "{args:?}");
    }
    assert!(env
        .json(&["service-account", "list", "--json"])
        .as_array()
        .unwrap()
        .is_empty());
    env.ok(&["service-account", "create", "vpn", "--role", "validate"]);
    env.ok(&[
        "service-account",
        "create",
        "helpdesk",
        "--role",
        "admin",
        "--perm",
        "reset_pin,unblock",
        "--perm",
        "view_audit_log",
        "--scope",
        "group:Sales",
    ]);
    let listed = env.json(&["service-account", "list", "--json"]);
    assert_eq!(listed[0]["name"], "helpdesk");
    assert_eq!(listed[0]["role"], "admin");
    assert_eq!(
        listed[0]["permissions"],
        serde_json::json!(["reset_pin", "unblock", "view_audit_log"])
    );
    assert_eq!(listed[0]["scope"], "group:Sales");
    assert_eq!(listed[1]["role"], "validate");
    let table = env.ok(&["service-account", "list"]);
    assert!(
        table.contains("admin (reset_pin,unblock,view_audit_log; group:Sales)"),
        "{table}"
    );

    // A delegated administrator, tried with --as.
    env.ok(&["user", "add", "sam", "--group", "Sales"]);
    env.ok(&["user", "add", "vic", "--group", "VPN"]);
    env.ok(&["user", "add", "helen"]);
    assert_eq!(env.run(&["--as", "helen", "user", "list"]).code(), 3);
    env.ok(&[
        "admin",
        "grant",
        "helen",
        "--perm",
        "unblock,edit_users",
        "--scope",
        "group:sales",
    ]);
    let seen: Vec<String> = env
        .json(&["--as", "helen", "user", "list", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(seen, ["sam"]);
    env.ok(&["--as", "helen", "user", "unblock", "sam"]);
    for refused in [
        &["--as", "helen", "user", "unblock", "vic"][..],
        &["--as", "helen", "user", "delete", "sam"],
        &[
            "--as",
            "helen",
            "settings",
            "set",
            "portal.allow_bypass",
            "true",
        ],
        &[
            "--as", "helen", "admin", "grant", "vic", "--all", "--scope", "all",
        ],
        &[
            "--as",
            "helen",
            "service-account",
            "create",
            "x",
            "--role",
            "validate",
        ],
        &["--as", "helen", "audit", "tail"],
    ] {
        let out = env.run(refused);
        assert_eq!(out.code(), 5, "{refused:?}: {}", out.stderr());
    }
    assert!(usernames(&env).contains(&"sam".to_string()));
    let events = audit(&env);
    let denied = events
        .iter()
        .find(|e| e["event"] == "user.delete")
        .expect("refusal audited");
    assert_eq!(denied["result"], "FAILED_NOT_ALLOWED");
    assert_eq!(denied["actor"], "admin:helen");
    assert_eq!(denied["via"], "cli");
    let text = env.ok(&["audit", "tail", "-n", "50"]);
    assert!(text.contains("admin:helen via cli"), "{text}");

    // Nobody grants what they do not hold; the last manager stays.
    env.ok(&["user", "add", "root"]);
    env.ok(&["admin", "grant", "root", "--all", "--scope", "all"]);
    env.ok(&[
        "admin",
        "grant",
        "helen",
        "--perm",
        "manage_administrators",
        "--scope",
        "all",
    ]);
    let out = env.run(&[
        "--as",
        "helen",
        "admin",
        "grant",
        "vic",
        "--perm",
        "delete_users",
        "--scope",
        "all",
    ]);
    assert_eq!(out.code(), 5, "{}", out.stderr());
    assert!(out.stderr().contains("delete_users"), "{}", out.stderr());
    env.ok(&["admin", "revoke", "helen"]);
    let out = env.run(&["admin", "revoke", "root"]);
    assert_eq!(out.code(), 4, "{}", out.stderr());
    assert_eq!(env.run(&["admin", "revoke", "vic"]).code(), 3);
    assert_eq!(env.run(&["--as", "helen", "user", "list"]).code(), 3);

    // A token given to a user with no method makes it theirs, and says so.
    let out = env.ok(&[
        "token",
        "add",
        "vic",
        "--type",
        "hotp",
        "--secret",
        "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
    ]);
    assert!(out.contains("it is now oath_token"), "{out}");
    let vic = env.json(&["user", "show", "vic", "--json"]);
    assert_eq!(vic["default_method"]["method"], "oath_token", "{vic}");
}

twofold_testkit::both_backends!(
    roles_permissions_and_acting_as,
    tokens_and_questions,
    phones_are_validated,
    user_round_trip,
    duplicate_usernames_are_refused_in_any_case,
    bad_input_is_refused_and_nothing_is_written,
    unknown_users_are_not_found,
    passwords_and_bootstrap,
    settings_are_validated,
    audit_prune_follows_the_retention_setting,
);

/// `twofold audit prune` applies `audit.retention_days` now (the server
/// does it hourly); 0 keeps everything; an account without the settings
/// permission may not.
async fn audit_prune_follows_the_retention_setting(backend: Backend) {
    let env = Env::new(backend).await;
    env.ok(&["user", "add", "jan"]);
    assert_eq!(
        env.ok(&["audit", "prune"]).trim(),
        "removed 0 events older than 365 days"
    );
    env.ok(&["settings", "set", "audit.retention_days", "0"]);
    assert_eq!(
        env.ok(&["audit", "prune"]).trim(),
        "audit.retention_days is 0: every event is kept"
    );
    let out = env.run(&["settings", "set", "audit.retention_days", "36501"]);
    assert_ne!(out.code(), 0);
    assert!(
        out.stderr().contains("audit.retention_days"),
        "{}",
        out.stderr()
    );
    env.ok(&[
        "service-account",
        "create",
        "helpdesk",
        "--role",
        "admin",
        "--perm",
        "unblock",
    ]);
    let out = env.run(&["--as", "helpdesk", "audit", "prune"]);
    assert_ne!(out.code(), 0, "{}", out.stdout());
}

#[tokio::test]
async fn an_unreachable_database_is_reported() {
    let mut env = Env::new(Backend::Sqlite).await;
    env.extra = vec![(
        "TWOFOLD_DATABASE_URL".into(),
        "postgres://postgres@127.0.0.1:1/none".into(),
    )];
    let out = env.run(&["user", "list"]);
    assert_eq!(out.code(), 69, "{}", out.stderr());
    assert!(out.stderr().contains("unavailable"), "{}", out.stderr());
}

#[tokio::test]
async fn config_example_is_complete() {
    let env = Env::new(Backend::Sqlite).await;
    let ex = env.ok(&["config", "example"]);
    for var in [
        "TWOFOLD_DATA_DIR",
        "TWOFOLD_LISTEN",
        "TWOFOLD_DATABASE_URL",
        "TWOFOLD_DATABASE_URL_FILE",
        "TWOFOLD_TLS_CERT_FILE",
        "TWOFOLD_TLS_KEY_FILE",
        "TWOFOLD_SEALING_KEY_FILE",
        "TWOFOLD_LOG_DIR",
    ] {
        assert!(ex.contains(var), "{var} missing from the example");
    }
    let cfg = env.dir.path().join("example.toml");
    std::fs::write(&cfg, &ex).unwrap();
    let out = env.run(&["--config", cfg.to_str().unwrap(), "config", "check"]);
    assert_eq!(out.code(), 0, "{}", out.stderr());
}
