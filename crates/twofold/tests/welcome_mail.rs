//! The welcome mail (issue 10): with `[smtp]` configured and the setting
//! `portal.url` set, a user added with an email address receives, in their
//! language, the User Portal's address — delivered to a real SMTP server
//! (Debian's python3-aiosmtpd on a loopback port), through the real binary,
//! on SQLite and PostgreSQL. A mail server that is down does not undo the
//! user; it is audited.

#[macro_use]
mod common;

use common::Env;
use twofold_testkit::db::Backend;
use twofold_testkit::smtp::{readable_body, SmtpSink};

twofold_testkit::both_backends!(welcome_mail_in_the_users_language,);

fn env_with_mail(env: &mut Env, sink: &SmtpSink) {
    env.extra = vec![
        ("TWOFOLD_SMTP_HOST".into(), "127.0.0.1".into()),
        ("TWOFOLD_SMTP_PORT".into(), sink.port.to_string()),
        ("TWOFOLD_SMTP_TLS".into(), "none".into()),
        (
            "TWOFOLD_SMTP_FROM".into(),
            "Twofold <mfa@example.org>".into(),
        ),
    ];
}

fn header<'a>(raw: &'a str, name: &str) -> Option<&'a str> {
    raw.lines()
        .take_while(|l| !l.is_empty() && *l != "\r")
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .map(str::trim)
}

async fn welcome_mail_in_the_users_language(backend: Backend) {
    let sink = SmtpSink::start().expect("aiosmtpd");
    let mut env = Env::new(backend).await;
    env_with_mail(&mut env, &sink);

    // Without the portal's address there is nothing to tell: no mail.
    env.ok(&["user", "add", "piet", "--email", "piet@example.org"]);
    env.ok(&["settings", "set", "portal.url", "https://mfa.example.org"]);
    env.ok(&[
        "user",
        "add",
        "jan",
        "--email",
        "jan@example.org",
        "--language",
        "nl",
        "--display-name",
        "Jan de Vries",
    ]);
    // No address, no mail.
    env.ok(&["user", "add", "kim"]);
    env.ok(&["user", "add", "eva", "--email", "eva@example.org"]);

    let mails = sink.wait_for(2);
    assert_eq!(mails.len(), 2, "{mails:#?}");
    let jan = &mails[0];
    assert_eq!(header(jan, "To"), Some("jan@example.org"), "{jan}");
    assert!(
        header(jan, "From").unwrap().contains("mfa@example.org"),
        "{jan}"
    );
    assert!(
        header(jan, "Subject").unwrap().starts_with("Welkom"),
        "{jan}"
    );
    let body = readable_body(jan);
    assert!(body.contains("Hallo Jan de Vries"), "{body}");
    assert!(body.contains("https://mfa.example.org/portal"), "{body}");
    let eva = &mails[1];
    assert_eq!(header(eva, "To"), Some("eva@example.org"), "{eva}");
    assert!(
        header(eva, "Subject").unwrap().starts_with("Welcome"),
        "{eva}"
    );
    assert!(readable_body(eva).contains("https://mfa.example.org/portal"));

    let audit = env.ok(&["audit", "tail", "-n", "50", "--json"]);
    let sent: Vec<&str> = audit
        .lines()
        .filter(|l| l.contains("\"mail.welcome\""))
        .collect();
    assert_eq!(sent.len(), 2, "{audit}");
    assert!(
        sent.iter().all(|l| l.contains("SUCCESS_MAIL_SENT")),
        "{audit}"
    );

    // The mail server goes away: the user is still added, and the failed
    // mail is audited.
    drop(sink);
    env.ok(&["user", "add", "bob", "--email", "bob@example.org"]);
    env.ok(&["user", "show", "bob"]);
    let audit = env.ok(&["audit", "tail", "-n", "5", "--json", "--user", "bob"]);
    assert!(
        audit
            .lines()
            .any(|l| l.contains("\"mail.welcome\"") && l.contains("FAILED_PROVIDER_ERROR")),
        "{audit}"
    );
}

/// Plain SMTP to anything but this machine would send mail (and a
/// password) in the clear: the configuration is refused, naming the key.
#[tokio::test]
async fn plain_smtp_to_another_host_is_refused() {
    let mut env = Env::new(Backend::Sqlite).await;
    env.extra = vec![
        ("TWOFOLD_SMTP_HOST".into(), "mail.example.org".into()),
        ("TWOFOLD_SMTP_TLS".into(), "none".into()),
        ("TWOFOLD_SMTP_FROM".into(), "mfa@example.org".into()),
    ];
    let out = env.run(&["user", "list"]);
    assert_eq!(out.code(), 78, "{}", out.stderr());
    assert!(
        out.stderr().contains("smtp.tls (TWOFOLD_SMTP_TLS)"),
        "{}",
        out.stderr()
    );
    env.extra.pop();
    let out = env.run(&["user", "list"]);
    assert_eq!(out.code(), 78, "{}", out.stderr());
    assert!(out.stderr().contains("smtp.from"), "{}", out.stderr());
}
