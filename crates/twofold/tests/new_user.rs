//! A new administrator's first hour (issue 9, item 10): output that fits
//! and explains itself, warnings before a user finds the problem, and
//! `admin bootstrap` that neither wastes a password nor gives up on a typo.

#[macro_use]
mod common;

use common::Env;
use serde_json::Value;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use twofold_testkit::db::Backend;

twofold_testkit::both_backends!(
    settings_show_fits_a_100_column_terminal,
    audit_tail_has_a_header_row,
    a_user_without_a_password_is_flagged,
    not_found_names_the_user,
    bootstrap_is_refused_before_a_password_is_asked,
    bootstrap_asks_again_after_a_short_password,
    no_colour_codes_without_a_terminal,
);

const WIDTH: usize = 100;

async fn settings_show_fits_a_100_column_terminal(backend: Backend) {
    let env = Env::new(backend).await;
    // Long values wrap too, not only the allowed values.
    env.ok(&[
        "settings",
        "set",
        "trusted_ips.ranges",
        "10.0.0.0/8,192.168.100.0/24,172.16.0.0/12,2001:db8::/32",
    ]);
    env.ok(&[
        "settings",
        "set",
        "portal.url",
        "https://mfa-portal.internal.contoso-corporation.example/portal",
    ]);
    let text = env.ok(&["settings", "show"]);
    for line in text.lines() {
        assert!(
            line.chars().count() <= WIDTH,
            "{} columns: {line:?}",
            line.chars().count()
        );
    }
    let json = env.json(&["settings", "show", "--json"]);
    let rows = json.as_array().unwrap();
    for row in rows {
        let key = row["key"].as_str().unwrap();
        assert!(
            text.lines().any(|l| l
                .get(1..)
                .is_some_and(|l| l.starts_with(&format!("{key} ")))),
            "{key} missing from the table:\n{text}"
        );
    }
    assert!(text.contains("*trusted_ips.ranges"), "{text}");
    // The table wraps; JSON stays whole.
    let methods = rows
        .iter()
        .find(|r| r["key"] == "portal.selectable_methods")
        .unwrap();
    assert_eq!(
        methods["allowed"],
        "comma-separated subset of oath_token, phone_call, text_message, mobile_app",
        "only the methods this build can verify with"
    );
    let ranges = rows
        .iter()
        .find(|r| r["key"] == "trusted_ips.ranges")
        .unwrap();
    assert_eq!(
        ranges["value"],
        serde_json::json!([
            "10.0.0.0/8",
            "192.168.100.0/24",
            "172.16.0.0/12",
            "2001:db8::/32"
        ])
    );
    assert!(
        ranges["description"].as_str().unwrap().len() > 10,
        "{ranges}"
    );
}

async fn audit_tail_has_a_header_row(backend: Backend) {
    let env = Env::new(backend).await;
    let empty = env.ok(&["audit", "tail"]);
    assert_eq!(empty.lines().count(), 1, "a header alone: {empty}");
    env.ok(&["user", "add", "jan"]);
    let text = env.ok(&["audit", "tail"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        ["TIME", "(UTC)", "EVENT", "RESULT", "ACTOR", "SUBJECT", "SOURCE", "DETAIL"]
    );
    // The columns line up under their names.
    for (name, value) in [
        ("EVENT", "user.create"),
        ("RESULT", "SUCCESS_USER_CREATED"),
        ("SUBJECT", "jan"),
    ] {
        assert_eq!(lines[0].find(name), lines[1].find(value), "{name}:\n{text}");
    }
    // Scripts reading --json get JSON only.
    for line in env.ok(&["audit", "tail", "--json"]).lines() {
        serde_json::from_str::<Value>(line).expect("one JSON value per line");
    }
}

async fn a_user_without_a_password_is_flagged(backend: Backend) {
    let env = Env::new(backend).await;
    let out = env.run(&["user", "add", "jan"]);
    assert_eq!(out.code(), 0, "{}", out.stderr());
    assert!(
        out.stderr().contains("warning: jan has no password")
            && out.stderr().contains("cannot sign in yet")
            && out.stderr().contains("twofold user passwd jan"),
        "{}",
        out.stderr()
    );
    assert_eq!(
        out.stdout().trim(),
        "created user jan",
        "stdout stays clean"
    );
    let out = env.run_with_stdin(
        &["user", "add", "piet", "--password-stdin"],
        "a long password\n",
    );
    assert_eq!(out.code(), 0, "{}", out.stderr());
    assert!(!out.stderr().contains("warning"), "{}", out.stderr());
}

async fn not_found_names_the_user(backend: Backend) {
    let env = Env::new(backend).await;
    env.ok(&["user", "add", "jan"]);
    for args in [
        &["user", "show", "ghost"][..],
        &["user", "delete", "ghost"],
        &["user", "enable", "ghost"],
        &["user", "unblock", "ghost"],
        &["user", "set", "ghost", "--email", "g@contoso.com"],
        &["token", "list", "ghost"],
        &["admin", "grant", "ghost", "--all", "--scope", "all"],
    ] {
        let out = env.run(args);
        assert_eq!(out.code(), 3, "{args:?}: {}", out.stderr());
        assert_eq!(
            out.stderr().trim(),
            r#"error: user "ghost" not found"#,
            "{args:?}"
        );
    }
    let out = env.run_with_stdin(
        &["user", "passwd", "Ghost", "--password-stdin"],
        "a long password\n",
    );
    assert_eq!(out.code(), 3);
    assert!(
        out.stderr().contains(r#"user "Ghost" not found"#),
        "{}",
        out.stderr()
    );
    // Someone who is a user but not an administrator.
    for args in [
        &["--as", "jan", "user", "list"][..],
        &["admin", "revoke", "jan"],
    ] {
        let out = env.run(args);
        assert_eq!(out.code(), 3, "{args:?}: {}", out.stderr());
        assert!(
            out.stderr().contains(r#"administrator "jan" not found"#),
            "{args:?}: {}",
            out.stderr()
        );
    }
}

fn audit_results(env: &Env) -> Vec<(String, String)> {
    env.ok(&["audit", "tail", "-n", "1000", "--json"])
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|e| {
            (
                e["event"].as_str().unwrap().to_string(),
                e["result"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn bootstrap_is_refused_before_a_password_is_asked(backend: Backend) {
    let env = Env::new(backend).await;
    let out = env.run_with_stdin(
        &["admin", "bootstrap", "root", "--password-stdin"],
        "correct horse battery\n",
    );
    assert_eq!(out.code(), 0, "{}", out.stderr());
    // No --password-stdin and no terminal: were a password asked for, this
    // would fail for want of one. It fails because bootstrap is closed.
    for name in ["mallory", "root"] {
        let out = env.run(&["admin", "bootstrap", name]);
        assert_eq!(out.code(), 4, "{name}: {}", out.stderr());
        assert!(
            out.stderr().contains("an administrator already exists"),
            "{name}: {}",
            out.stderr()
        );
        assert!(!out.stderr().contains("password"), "{}", out.stderr());
    }
    let refusals: Vec<String> = audit_results(&env)
        .into_iter()
        .filter(|(event, _)| event == "admin.bootstrap")
        .map(|(_, result)| result)
        .collect();
    assert_eq!(
        refusals,
        [
            "SUCCESS_ADMIN_GRANTED",
            "FAILED_NOT_ALLOWED",
            "FAILED_NOT_ALLOWED"
        ]
    );
    assert!(
        !audit_results(&env)
            .iter()
            .any(|(_, r)| r == "FAILED_USER_EXISTS"),
        "a closed bootstrap is not a duplicate user"
    );
}

/// Runs `twofold ARGS` on a pseudo-terminal (util-linux `script`), typing
/// `input`; returns the exit code and what the terminal showed.
fn at_terminal(env: &Env, args: &[&str], input: &str) -> (i32, String) {
    let inner = env.command();
    let mut line = common::BIN.to_string();
    for a in args {
        let _ = write!(line, " '{a}'");
    }
    let mut cmd = Command::new("script");
    cmd.args(["-q", "-e", "-c", &line, "/dev/null"]);
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.current_dir(env.dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("util-linux script");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    stdin.flush().unwrap();
    // Kept open until the program ends: an end of input would reach it as
    // Ctrl-D, which gives up.
    let deadline = Instant::now() + Duration::from_mins(1);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "no exit at the terminal");
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(stdin);
    let mut shown = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut shown)
        .unwrap();
    (status.code().unwrap_or(-1), shown)
}

async fn bootstrap_asks_again_after_a_short_password(backend: Backend) {
    let env = Env::new(backend).await;
    let (code, shown) = at_terminal(
        &env,
        &["admin", "bootstrap", "root"],
        "short\ncorrect horse\ncorrect horse battery\ncorrect horse battery\ncorrect horse battery\n",
    );
    assert_eq!(code, 0, "{shown}");
    assert!(
        shown.contains("password: must be at least 8 characters; try again"),
        "{shown}"
    );
    assert!(
        shown.contains("the two passwords differ; try again"),
        "{shown}"
    );
    assert!(
        shown.contains("root is now a portal administrator"),
        "{shown}"
    );
    // The password that was accepted is the one set.
    let out = env.run_with_stdin(
        &["user", "passwd", "root", "--password-stdin"],
        "another long one\n",
    );
    assert_eq!(out.code(), 0, "{}", out.stderr());
    assert_eq!(
        env.json(&["admin", "list", "--json"])[0]["username"],
        "root"
    );
    // Nothing but the one user and the grant was written: no refusals.
    assert!(
        !audit_results(&env)
            .iter()
            .any(|(_, r)| r.starts_with("FAILED")),
        "{:?}",
        audit_results(&env)
    );
}

async fn no_colour_codes_without_a_terminal(backend: Backend) {
    let env = Env::new(backend).await;
    let mut child = env
        .command()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("TWOFOLD_LOG_LEVEL", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("twofold serve");
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_mins(1);
    while !seen.contains("Twofold is serving") {
        assert!(Instant::now() < deadline, "no announcement: {seen}");
        let mut line = String::new();
        let read = std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
        assert!(read > 0, "server ended: {seen}");
        seen.push_str(&line);
    }
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("serving"), "the log was written: {log}");
    assert!(!log.contains('\u{1b}'), "colour codes in a pipe: {log:?}");
    assert!(!seen.contains('\u{1b}'), "{seen:?}");
}
