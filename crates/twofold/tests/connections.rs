//! `twofold serve` keeps connections from piling up: slow request heads,
//! idle keep-alive and idle HTTP/2 connections are closed, connections over
//! the limit are refused at once, and a body over the limit gets 413 on
//! HTTP/2 as on HTTP/1.1.
//!
//! These are properties of the server, not of the store, so they run on
//! SQLite only. The slow clients speak TLS by hand (rustls over a blocking
//! socket) because no HTTP client can be made to stall on purpose.

mod common;

use common::Env;
use rustls::pki_types::ServerName;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use twofold_testkit::db::Backend;

/// As in `serve/connections.rs`.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
const IDLE_TIMEOUT: Duration = Duration::from_secs(15);
const MAX_CONNECTIONS: usize = 512;
/// Timers fire late on a busy machine; this much late is still "within".
const SLACK: Duration = Duration::from_secs(4);

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A TLS connection to the server, offering `alpn`.
fn tls_connect(addr: &str, cert: &Path, alpn: &[u8]) -> Tls {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(cert).unwrap();
    for c in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(c.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let conn =
        rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("127.0.0.1").unwrap())
            .unwrap();
    let sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).unwrap();
    }
    tls
}

/// Whether the server has closed the connection: reads what it sent and
/// waits up to the socket's read timeout for more.
fn closed(tls: &mut Tls) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match tls.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// Runs `tick` about every half second until the server closes the
/// connection; returns how long that took, or `None` after `limit`.
fn time_until_closed(
    tls: &mut Tls,
    limit: Duration,
    mut tick: impl FnMut(&mut Tls),
) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        tick(tls);
        if tls.flush().is_err() || closed(tls) {
            return Some(start.elapsed());
        }
    }
    None
}

fn assert_closed_within(what: &str, took: Option<Duration>, low: Duration, high: Duration) {
    let took = took.unwrap_or_else(|| panic!("{what}: still open after {high:?}"));
    assert!(
        took >= low && took <= high,
        "{what}: closed after {took:?}, expected {low:?}..{high:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_connections_are_closed() {
    let env = Env::new(Backend::Sqlite).await;
    let server = env.start();
    let cert = env.data_dir().join("tls/cert.pem");
    let limit = IDLE_TIMEOUT + SLACK * 3;

    // Slowloris: a request head that never ends, one header line a second.
    let slow_head = {
        let (addr, cert) = (server.addr.clone(), cert.clone());
        std::thread::spawn(move || {
            let mut tls = tls_connect(&addr, &cert, b"http/1.1");
            tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                .unwrap();
            let mut n = 0;
            time_until_closed(&mut tls, limit, |tls| {
                n += 1;
                let _ = write!(tls, "X-Slow-{n}: still typing\r\n");
            })
        })
    };
    // A keep-alive connection left open after one request.
    let kept_alive = {
        let (addr, cert) = (server.addr.clone(), cert.clone());
        std::thread::spawn(move || {
            let mut tls = tls_connect(&addr, &cert, b"http/1.1");
            tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                .unwrap();
            let mut head = [0u8; 12];
            tls.read_exact(&mut head).unwrap();
            assert_eq!(&head, b"HTTP/1.1 200");
            time_until_closed(&mut tls, limit, |_| {})
        })
    };
    // TLS, then nothing at all.
    let silent = {
        let (addr, cert) = (server.addr.clone(), cert.clone());
        std::thread::spawn(move || {
            let mut tls = tls_connect(&addr, &cert, b"h2");
            time_until_closed(&mut tls, limit, |_| {})
        })
    };
    // HTTP/2 with no request, kept busy with pings (which the server
    // answers): being talked to is not being used.
    let h2_pings = {
        let (addr, cert) = (server.addr.clone(), cert.clone());
        std::thread::spawn(move || {
            let mut tls = tls_connect(&addr, &cert, b"h2");
            tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
            // An empty SETTINGS frame.
            tls.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).unwrap();
            time_until_closed(&mut tls, limit, |tls| {
                // PING: length 8, type 6, no flags, stream 0, 8 bytes of data.
                let _ = tls.write_all(&[0, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
            })
        })
    };

    assert_closed_within(
        "slow request head",
        slow_head.join().unwrap(),
        HEADER_READ_TIMEOUT.saturating_sub(Duration::from_secs(1)),
        HEADER_READ_TIMEOUT + SLACK,
    );
    assert_closed_within(
        "idle keep-alive",
        kept_alive.join().unwrap(),
        Duration::from_secs(1),
        IDLE_TIMEOUT + SLACK,
    );
    assert_closed_within(
        "silent TLS connection",
        silent.join().unwrap(),
        IDLE_TIMEOUT.saturating_sub(Duration::from_secs(1)),
        IDLE_TIMEOUT + SLACK,
    );
    assert_closed_within(
        "idle HTTP/2 with pings",
        h2_pings.join().unwrap(),
        IDLE_TIMEOUT.saturating_sub(Duration::from_secs(1)),
        IDLE_TIMEOUT + SLACK,
    );

    // The server still serves.
    let client = common::client_trusting(&cert);
    let res = client.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_limit_are_refused_at_once() {
    let env = Env::new(Backend::Sqlite).await;
    let server = env.start();
    let cert = env.data_dir().join("tls/cert.pem");
    let addr = server.addr.clone();

    let extra = 8;
    let socks = tokio::task::spawn_blocking(move || {
        (0..MAX_CONNECTIONS + extra)
            .map(|_| {
                let s = TcpStream::connect(&addr).unwrap();
                // Looked at once below: no answer yet is `WouldBlock`.
                s.set_nonblocking(true).unwrap();
                s
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    // Accepting is asynchronous: give the server a moment to take them all.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (refused, socks) = tokio::task::spawn_blocking(move || {
        // Closed by the server: end of stream (or a reset); held: no answer.
        let refused = socks
            .iter()
            .filter(|s| match (&**s).read(&mut [0u8; 1]) {
                Ok(n) => n == 0,
                Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
            })
            .count();
        (refused, socks)
    })
    .await
    .unwrap();
    assert_eq!(
        refused, extra,
        "connections beyond {MAX_CONNECTIONS} are closed at once"
    );

    // While full, nobody else gets in; once the holders leave, they do.
    let client = common::client_trusting(&cert);
    assert!(client.get(server.url("/healthz")).send().await.is_err());
    drop(socks);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(res) = client.get(server.url("/healthz")).send().await {
            assert_eq!(res.status(), 200);
            break;
        }
        assert!(Instant::now() < deadline, "slots were not given back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_get_413_on_http2() {
    let env = Env::new(Backend::Sqlite).await;
    let secret = env
        .ok(&["service-account", "create", "app", "--role", "validate"])
        .lines()
        .last()
        .unwrap()
        .to_string();
    let server = env.start();
    let pem = std::fs::read(env.data_dir().join("tls/cert.pem")).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .tls_built_in_root_certs(false)
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let big = "x".repeat(100 * 1024);

    let res = client
        .post(server.url("/sdk/v1/validate"))
        .basic_auth("app", Some(&secret))
        .header("content-type", "application/json")
        .body(format!(r#"{{"username":"{big}","passcode":"123456"}}"#))
        .send()
        .await
        .expect("an answer, not a reset stream");
    assert_eq!(res.version(), reqwest::Version::HTTP_2);
    assert_eq!(res.status(), 413);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "too_large");

    let res = client
        .post(server.url("/portal/sign-in"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("username={big}&password=x"))
        .send()
        .await
        .expect("an answer, not a reset stream");
    assert_eq!(res.version(), reqwest::Version::HTTP_2);
    assert_eq!(res.status(), 413);

    // Streamed, with no length announced: the limit is found while reading.
    let file = env.dir.path().join("big-body");
    std::fs::write(
        &file,
        format!(r#"{{"username":"{big}","passcode":"123456"}}"#),
    )
    .unwrap();
    let res = client
        .post(server.url("/sdk/v1/validate"))
        .basic_auth("app", Some(&secret))
        .header("content-type", "application/json")
        .body(tokio::fs::File::open(&file).await.unwrap())
        .send()
        .await
        .expect("an answer, not a reset stream");
    assert_eq!(res.version(), reqwest::Version::HTTP_2);
    assert_eq!(res.status(), 413);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["error"],
        "too_large"
    );

    // Within the limit, HTTP/2 works as usual.
    let res = client
        .post(server.url("/sdk/v1/validate"))
        .basic_auth("app", Some(&secret))
        .json(&serde_json::json!({"username": "nobody", "passcode": "123456"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.version(), reqwest::Version::HTTP_2);
    assert_eq!(res.status(), 200);
}
