//! `twofold token import|inventory|assign|inventory-delete` against the real
//! binary: a PSKC seed file (RFC 6030 Figure 6, AES-128-CBC with a
//! pre-shared key) is refused with a wrong key and nothing is written,
//! imported with the right one, a second import reports the duplicate, a
//! CSV file's bad row is reported by its line, a group-scoped
//! administrator assigns only inside their group, and the assigned token's
//! codes (the RFC secret) are accepted by the engine. SQLite and PostgreSQL.

#[macro_use]
mod common;

use common::Env;
use twofold_core::factors::OathAlgorithm;
use twofold_core::oath::hotp;
use twofold_testkit::db::Backend;

twofold_testkit::both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)];
    seed_files_fill_the_inventory_and_tokens_are_assigned_by_serial,
);

const FIGURE6: &str = include_str!("../../core/tests/pskc/rfc6030-figure6.pskcxml");
const KEY: &str = "12345678901234567890123456789012";
const RFC_SECRET: &[u8] = b"12345678901234567890";
/// "12345678901234567890" in base32.
const CSV: &str = "serial,secret,manufacturer,model,time_interval\n\
                   C-1,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,Acme,Fob,30\n\
                   C-2,not base32!,Acme,Fob,30\n";

fn serials(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .expect("a JSON array")
        .iter()
        .map(|t| t["serial"].as_str().expect("serial").to_string())
        .collect()
}

async fn seed_files_fill_the_inventory_and_tokens_are_assigned_by_serial(backend: Backend) {
    let env = Env::new(backend).await;
    let pskc = env.dir.path().join("fobs.pskcxml");
    std::fs::write(&pskc, FIGURE6).expect("write PSKC file");
    let pskc = pskc.to_str().expect("UTF-8 path");
    let csv = env.dir.path().join("fobs.csv");
    std::fs::write(&csv, CSV).expect("write CSV file");
    let csv = csv.to_str().expect("UTF-8 path");

    // A wrong key, or none: bad input, and nothing in the inventory.
    let wrong = env.run(&[
        "token",
        "import",
        pskc,
        "--key-hex",
        "00112233445566778899aabbccddeeff",
    ]);
    assert_eq!(wrong.code(), 2, "{}", wrong.stderr());
    assert!(
        wrong
            .stderr()
            .contains("the key or password does not open this file"),
        "{}",
        wrong.stderr()
    );
    assert_eq!(env.run(&["token", "import", pskc]).code(), 2);
    // A dry run says what would happen and writes nothing either.
    let dry = env.json(&[
        "token",
        "import",
        pskc,
        "--key-hex",
        KEY,
        "--dry-run",
        "--json",
    ]);
    assert_eq!(dry["imported"], serde_json::json!(["987654321"]));
    assert!(serials(&env.json(&["token", "inventory", "--json"])).is_empty());

    // The right key, from standard input.
    let done = env.run_with_stdin(&["token", "import", pskc, "--key-stdin"], KEY);
    assert_eq!(done.code(), 0, "{}", done.stderr());
    assert!(
        done.stdout().contains("1 token(s) imported"),
        "{}",
        done.stdout()
    );
    // Again: a duplicate, kept as it is.
    let again = env.json(&["token", "import", pskc, "--key-hex", KEY, "--json"]);
    assert_eq!(again["imported"], serde_json::json!([]));
    assert_eq!(again["duplicates"], serde_json::json!(["987654321"]));

    // CSV: the good row imported, the bad one reported by its line.
    let out = env.run(&["token", "import", csv, "--json"]);
    assert_eq!(out.code(), 1, "{}", out.stderr());
    let report: serde_json::Value = serde_json::from_str(&out.stdout()).expect("JSON report");
    assert_eq!(report["imported"], serde_json::json!(["C-1"]));
    assert_eq!(report["refused"][0]["at"], "line 3");
    assert_eq!(report["refused"][0]["serial"], "C-2");

    let inventory = env.json(&["token", "inventory", "--json"]);
    assert_eq!(serials(&inventory), ["987654321", "C-1"]);
    assert!(inventory[0].get("sealed_secret").is_none(), "{inventory}");
    assert_eq!(
        serials(&env.json(&["token", "inventory", "--serial", "c-", "--json"])),
        ["C-1"]
    );

    // A group-scoped administrator assigns inside their group only.
    env.ok(&["user", "add", "jan", "--group", "Sales"]);
    env.ok(&["user", "add", "vic", "--group", "VPN"]);
    env.ok(&["user", "add", "helen"]);
    env.ok(&[
        "admin",
        "grant",
        "helen",
        "--perm",
        "manage_oath_tokens",
        "--scope",
        "group:sales",
    ]);
    assert_eq!(
        env.run(&["--as", "helen", "token", "assign", "vic", "987654321"])
            .code(),
        5
    );
    // Importing and deleting concern everyone's stock: not for a scope.
    assert_eq!(
        env.run(&["--as", "helen", "token", "inventory-delete", "C-1"])
            .code(),
        5
    );
    let given = env.ok(&["--as", "helen", "token", "assign", "jan", "987654321"]);
    assert!(given.contains("had no method"), "{given}");
    assert_eq!(
        serials(&env.json(&["token", "inventory", "--json"])),
        ["C-1"]
    );
    assert_eq!(env.run(&["token", "assign", "vic", "987654321"]).code(), 3);

    let tokens = env.json(&["token", "list", "jan", "--json"]);
    assert_eq!(tokens[0]["label"], "Manufacturer 987654321");
    assert_eq!(tokens[0]["params"]["kind"], "hotp");
    assert_eq!(tokens[0]["params"]["digits"], 8);
    let id = tokens[0]["id"].to_string();
    // The engine accepts the token's own codes: its seed was re-sealed for
    // jan intact. Wrong codes are refused.
    let code = |counter| hotp(RFC_SECRET, counter, OathAlgorithm::Sha1, 8);
    assert_ne!(
        env.run(&["token", "resync", "jan", &id, "00000000", "11111111"])
            .code(),
        0
    );
    env.ok(&["token", "resync", "jan", &id, &code(0), &code(1)]);

    env.ok(&["token", "inventory-delete", "c-1"]);
    assert_eq!(env.run(&["token", "inventory-delete", "C-1"]).code(), 3);
    assert!(serials(&env.json(&["token", "inventory", "--json"])).is_empty());

    // One JSON event per line.
    let audit: Vec<serde_json::Value> = env
        .ok(&["audit", "tail", "-n", "100", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON event"))
        .collect();
    let events: Vec<&str> = audit
        .iter()
        .filter_map(|e| e["event"].as_str())
        .filter(|e| e.starts_with("tokens."))
        .collect();
    for expected in ["tokens.import", "tokens.assign", "tokens.inventory_delete"] {
        assert!(events.contains(&expected), "{events:?}");
    }
}
