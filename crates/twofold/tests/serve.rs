//! `twofold serve`: TLS with the printed fingerprint, health and readiness,
//! graceful shutdown, file logging, configuration errors.

#[macro_use]
mod common;

use common::{client_trusting, Env};
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};
use twofold_testkit::db::Backend;

fn fingerprint_of_pem(path: &std::path::Path) -> String {
    let pem = std::fs::read(path).unwrap();
    let der = rustls_pemfile::certs(&mut pem.as_slice())
        .next()
        .unwrap()
        .unwrap();
    Sha256::digest(der.as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

async fn serves_https_with_printed_fingerprint(backend: Backend) {
    let env = Env::new(backend).await;
    let mut server = env.start();
    let cert = env.data_dir().join("tls/cert.pem");
    assert_eq!(server.fingerprint, fingerprint_of_pem(&cert));
    assert!(server
        .stdout
        .iter()
        .any(|l| l.contains("self-signed, generated now")));
    assert!(server
        .stdout
        .iter()
        .any(|l| l.contains("twofold admin bootstrap <USERNAME>")));

    // The client trusts only the generated certificate: the handshake proves
    // the server presents it, valid for 127.0.0.1.
    let client = client_trusting(&cert);
    let res = client.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let h = res.headers();
    assert!(h["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    assert!(h["strict-transport-security"]
        .to_str()
        .unwrap()
        .contains("max-age="));
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["status"],
        "ok"
    );
    let res = client.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 200);

    // Plain HTTP on the TLS port gets nothing useful.
    let plain = reqwest::Client::new()
        .get(format!("http://{}/healthz", server.addr))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.map_or(true, |r| r.status() != 200));

    let (status, _) = server.terminate();
    assert!(status.success());

    // A restart keeps the same certificate and key.
    let server = env.start();
    assert_eq!(server.fingerprint, fingerprint_of_pem(&cert));
    assert!(!server.stdout.iter().any(|l| l.contains("generated now")));
}

async fn readyz_fails_when_the_database_is_gone(backend: Backend) {
    let env = Env::new(backend).await;
    let server = env.start();
    let client = client_trusting(&env.data_dir().join("tls/cert.pem"));
    assert_eq!(
        client
            .get(server.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    env.db.destroy().await.unwrap();

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let res = client.get(server.url("/readyz")).send().await.unwrap();
        if res.status() == 503 {
            let body: serde_json::Value = res.json().await.unwrap();
            assert_eq!(body["status"], "unavailable");
            break;
        }
        assert!(Instant::now() < deadline, "readyz stayed {}", res.status());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Liveness does not depend on the database.
    assert_eq!(
        client
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

async fn sigterm_stops_gracefully(backend: Backend) {
    let env = Env::new(backend).await;
    let mut server = env.start();
    let (status, rest) = server.terminate();
    assert!(status.success(), "{status:?}");
    assert!(
        rest.iter().any(|l| l.contains("Twofold stopped")),
        "{rest:?}"
    );
}

async fn file_logging_follows_the_setting(backend: Backend) {
    let env = Env::new(backend).await;
    let logs = env.data_dir().join("logs");
    let server = env.start();
    let client = client_trusting(&env.data_dir().join("tls/cert.pem"));
    client.get(server.url("/healthz")).send().await.unwrap();
    assert!(!logs.exists(), "logging is off by default: no log files");

    env.ok(&["settings", "set", "portal.logging", "true"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        client.get(server.url("/readyz")).send().await.unwrap();
        let lines: Vec<String> = std::fs::read_dir(&logs)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .flat_map(|t| t.lines().map(str::to_string).collect::<Vec<_>>())
            .collect();
        if let Some(line) = lines.iter().find(|l| l.contains("file logging switched")) {
            let v: serde_json::Value = serde_json::from_str(line).expect("JSON log line");
            assert_eq!(v["level"], "INFO");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no JSON log line in {}",
            logs.display()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn own_certificate_is_served(backend: Backend) {
    // Make a pair with a first run, then configure it explicitly elsewhere.
    let env = Env::new(backend).await;
    drop(env.start());
    let own = env.dir.path().join("own");
    std::fs::create_dir_all(&own).unwrap();
    std::fs::copy(env.data_dir().join("tls/cert.pem"), own.join("c.pem")).unwrap();
    std::fs::copy(env.data_dir().join("tls/key.pem"), own.join("k.pem")).unwrap();
    std::fs::remove_dir_all(env.data_dir().join("tls")).unwrap();

    let mut env = env;
    env.extra = vec![
        (
            "TWOFOLD_TLS_CERT_FILE".into(),
            own.join("c.pem").display().to_string(),
        ),
        (
            "TWOFOLD_TLS_KEY_FILE".into(),
            own.join("k.pem").display().to_string(),
        ),
    ];
    let server = env.start();
    assert_eq!(server.fingerprint, fingerprint_of_pem(&own.join("c.pem")));
    assert!(
        !env.data_dir().join("tls").exists(),
        "no self-signed pair when one is configured"
    );
    let client = client_trusting(&own.join("c.pem"));
    assert_eq!(
        client
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

twofold_testkit::both_backends!(
    serves_https_with_printed_fingerprint,
    readyz_fails_when_the_database_is_gone,
    sigterm_stops_gracefully,
    file_logging_follows_the_setting,
    own_certificate_is_served,
);

#[tokio::test]
async fn bad_configuration_stops_with_the_key_named() {
    let env = Env::new(Backend::Sqlite).await;
    let cfg = env.dir.path().join("twofold.toml");

    std::fs::write(&cfg, "listen = \"127.0.0.1:0\"\nlisen = \"x\"\n").unwrap();
    let out = env.run(&["--config", cfg.to_str().unwrap(), "serve"]);
    assert_eq!(out.code(), 78, "{}", out.stderr());
    assert!(
        out.stderr().contains("unknown key \"lisen\""),
        "{}",
        out.stderr()
    );

    std::fs::write(&cfg, "[database]\nmax_connections = 0\n").unwrap();
    let out = env.run(&["--config", cfg.to_str().unwrap(), "serve"]);
    assert_eq!(out.code(), 78);
    assert!(
        out.stderr().contains("database.max_connections"),
        "{}",
        out.stderr()
    );

    std::fs::write(&cfg, "listen = [\n").unwrap();
    let out = env.run(&["--config", cfg.to_str().unwrap(), "serve"]);
    assert_eq!(out.code(), 78);
    assert!(out.stderr().contains("not valid TOML"), "{}", out.stderr());

    let out = env.run(&["--config", "/nonexistent/twofold.toml", "serve"]);
    assert_eq!(out.code(), 78);
    assert!(
        out.stderr().contains("cannot read config file"),
        "{}",
        out.stderr()
    );

    let out = env.run(&["serve", "--listen", "nowhere"]);
    assert_eq!(out.code(), 78);
    assert!(out.stderr().contains("--listen"), "{}", out.stderr());

    // Nothing was created by the refused starts.
    assert!(!env.data_dir().exists());
}

#[tokio::test]
async fn a_port_in_use_is_reported() {
    let env = Env::new(Backend::Sqlite).await;
    let server = env.start();
    let out = env.run(&["serve", "--listen", &server.addr]);
    assert_ne!(out.code(), 0);
    assert!(out.stderr().contains("cannot serve on"), "{}", out.stderr());
}

#[tokio::test]
async fn mismatched_certificate_and_key_are_refused() {
    let env_a = Env::new(Backend::Sqlite).await;
    drop(env_a.start());
    let env_b = Env::new(Backend::Sqlite).await;
    drop(env_b.start());
    let mut env = env_b;
    env.extra = vec![
        (
            "TWOFOLD_TLS_CERT_FILE".into(),
            env_a.data_dir().join("tls/cert.pem").display().to_string(),
        ),
        (
            "TWOFOLD_TLS_KEY_FILE".into(),
            env.data_dir().join("tls/key.pem").display().to_string(),
        ),
    ];
    let out = env.run(&["serve", "--listen", "127.0.0.1:0"]);
    assert_ne!(out.code(), 0);
    assert!(
        out.stderr().contains("do not fit together"),
        "{}",
        out.stderr()
    );
}

/// Behind a trusted proxy the client is taken from X-Forwarded-For (the
/// rightmost untrusted hop); otherwise the header is ignored.
#[tokio::test]
async fn client_addresses_behind_trusted_proxies() {
    async fn seen_ip(env: &Env, forwarded: &str) -> String {
        let secret = env
            .ok(&["service-account", "create", "probe", "--role", "validate"])
            .lines()
            .last()
            .unwrap()
            .to_string();
        let server = env.start();
        let client = client_trusting(&env.data_dir().join("tls/cert.pem"));
        let res = client
            .get(server.url("/sdk/v1/test"))
            .basic_auth("probe", Some(&secret))
            .header("x-forwarded-for", forwarded)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let events: Vec<serde_json::Value> = env
            .ok(&["audit", "tail", "-n", "5", "--json"])
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let probe = events
            .iter()
            .rev()
            .find(|e| e["event"] == "sdk.test")
            .expect("sdk.test event");
        probe["source_ip"].as_str().unwrap().to_string()
    }

    let direct = Env::new(Backend::Sqlite).await;
    assert_eq!(
        seen_ip(&direct, "203.0.113.7").await,
        "127.0.0.1",
        "header ignored without trust"
    );

    let mut proxied = Env::new(Backend::Sqlite).await;
    proxied.extra = vec![("TWOFOLD_TRUSTED_PROXIES".into(), "127.0.0.1".into())];
    assert_eq!(
        seen_ip(&proxied, "198.51.100.1, 203.0.113.7").await,
        "203.0.113.7"
    );

    let mut bad = Env::new(Backend::Sqlite).await;
    bad.extra = vec![("TWOFOLD_TRUSTED_PROXIES".into(), "not-a-network".into())];
    let out = bad.run(&["serve"]);
    assert_eq!(out.code(), 78);
    assert!(out.stderr().contains("proxy.trusted"), "{}", out.stderr());
}
