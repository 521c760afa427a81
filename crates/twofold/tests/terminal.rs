//! The administrator's terminal (issue 8): what anyone could type at a
//! sign-in form reaches `twofold audit tail`, so control characters in
//! output are shown as escapes, never acted on, and never start a line;
//! `--json` stays JSON. Usernames with control characters are refused.

#[macro_use]
mod common;

use common::Env;
use time::OffsetDateTime;
use twofold_core::audit::{NewAuditEvent, ResultCode};
use twofold_testkit::db::Backend;

twofold_testkit::both_backends!(
    audit_tail_shows_control_characters_as_escapes,
    usernames_with_control_characters_are_refused,
);

/// Retitles an xterm, rings its bell, turns text red, and starts a forged
/// audit line.
const HOSTILE: &str =
    "jan\u{1b}]0;owned\u{7}\u{1b}[31m\n2025-01-01T00:00:00.000Z  primary.password  SUCCESS";

fn assert_inert(what: &str, text: &str) {
    assert!(
        !text.contains(|c: char| c.is_control() && c != '\n'),
        "{what}: a control character reached the terminal: {text:?}"
    );
}

async fn audit_tail_shows_control_characters_as_escapes(backend: Backend) {
    let env = Env::new(backend).await;
    env.ok(&["user", "add", "jan"]);
    // A row as an older release (or a future bug) could have written it.
    let store = env.db.store().await.unwrap();
    store
        .append_audit(&NewAuditEvent {
            at: OffsetDateTime::now_utc(),
            actor: format!("user:{HOSTILE}"),
            via: Some("sdk:\u{1b}[2Jportal".into()),
            subject: Some(HOSTILE.into()),
            event: "portal.sign_in".into(),
            method: None,
            result: ResultCode::FailedPasswordWrong,
            source_ip: None,
            detail: Some(format!("detail {HOSTILE}")),
        })
        .await
        .unwrap();
    store.close().await;

    let text = env.ok(&["audit", "tail", "-n", "10"]);
    assert_inert("audit tail", &text);
    assert_eq!(
        text.lines().count(),
        3,
        "a header, then one line per event: {text}"
    );
    let last = text.lines().last().unwrap();
    assert!(
        last.contains(r"jan\u{1b}]0;owned\u{7}\u{1b}[31m\u{a}2025-01-01"),
        "{last}"
    );
    assert!(last.contains(r"sdk:\u{1b}[2Jportal"), "{last}");

    // JSON keeps the value exactly, escaped by JSON itself.
    let json = env.ok(&["audit", "tail", "-n", "10", "--json"]);
    assert_inert("audit tail --json", &json);
    let events: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON value per line"))
        .collect();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1]["subject"], HOSTILE);
}

async fn usernames_with_control_characters_are_refused(backend: Backend) {
    let env = Env::new(backend).await;
    env.ok(&["user", "add", "jan"]);
    for bad in ["a\u{1b}[31mb", "jan\nforged", "jan\u{7}"] {
        let out = env.run(&["user", "add", bad]);
        assert_eq!(out.code(), 2, "add {bad:?}: {}", out.stderr());
        assert!(
            out.stderr().contains("must not contain control characters"),
            "{}",
            out.stderr()
        );
        assert_inert("error message", &out.stderr());
        // Looking one up says what is wrong with the name, not "not found".
        let out = env.run(&["user", "show", bad]);
        assert_eq!(out.code(), 2, "show {bad:?}: {}", out.stderr());
        assert_inert("error message", &out.stderr());
    }
    let list = env.ok(&["user", "list"]);
    assert_eq!(list.lines().count(), 2, "{list}");
}
