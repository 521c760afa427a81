//! `twofold-authenticator` as a separate process against the real Twofold
//! server (the engine on SQLite or PostgreSQL behind its HTTPS front-end),
//! with the certificate pinned from the activation URI: activation by URI,
//! approval with the right number, a wrong number, denial, fraud (which
//! blocks), PIN mode with a right and a wrong PIN, an expired request, the
//! device limit, a reused code, a skewed clock, deactivation — and two nodes on
//! one PostgreSQL database, the request started on node A while the device
//! long-polls node B.

use assert_cmd::Command;
use axum_server::tls_rustls::RustlsConfig;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use twofold_core::clock::ManualClock;
use twofold_core::password::{HashCost, Pepper, SecretHasher};
use twofold_core::sealing::SealingKey;
use twofold_core::service::{CreateUser, ServiceAccountSpec};
use twofold_core::user::{DefaultMethod, MethodKind, Mode, UserPatch};
use twofold_core::{AdminService, Ctx, Engine, Permissions, Role, Scope};
use twofold_testkit::db::{Backend, TestDb};

twofold_testkit::both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)];
    approve_deny_and_fraud_from_the_command_line,
    pin_mode_expiry_and_limits,
);

const PIN: &str = "4826";
const KEY: [u8; 32] = [7; 32];

/// One node: an engine on `db` behind the HTTPS front-end.
struct Node {
    engine: Arc<Engine>,
    clock: Arc<ManualClock>,
    base: String,
    handle: axum_server::Handle,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

struct Cert {
    pem: String,
    key: String,
    sha256: [u8; 32],
}

fn cert() -> Cert {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let digest = ring::digest::digest(&ring::digest::SHA256, cert.der());
    Cert {
        pem: cert.pem(),
        key: key.serialize_pem(),
        sha256: digest.as_ref().try_into().unwrap(),
    }
}

impl Node {
    async fn start(db: &TestDb, cert: &Cert) -> Node {
        static ONCE: Once = Once::new();
        ONCE.call_once(|| {
            let _ = rustls::crypto::ring::default_provider().install_default();
        });
        let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
        let engine = Arc::new(
            Engine::new(
                Arc::new(db.store().await.unwrap()),
                clock.clone(),
                SecretHasher::new(HashCost::Fast, Pepper::from_bytes(&[9; 32])),
                Arc::new(SealingKey::from_bytes(&KEY)),
            )
            .with_tls_fingerprint(cert.sha256),
        );
        let app = twofold_web::app(
            twofold_web::AppState {
                service: engine.clone(),
            },
            Some(twofold_web::ServerParts::of(engine.clone())),
        );
        let tls =
            RustlsConfig::from_pem(cert.pem.clone().into_bytes(), cert.key.clone().into_bytes())
                .await
                .unwrap();
        let handle = axum_server::Handle::new();
        let server =
            axum_server::bind_rustls("127.0.0.1:0".parse().unwrap(), tls).handle(handle.clone());
        tokio::spawn(server.serve(app.into_make_service_with_connect_info::<SocketAddr>()));
        let addr = handle.listening().await.unwrap();
        let base = format!("https://127.0.0.1:{}", addr.port());
        engine.listening_at(&base);
        Node {
            engine,
            clock,
            base,
            handle,
        }
    }

    async fn user(&self, name: &str, mode: Mode) {
        let cli = Ctx::cli();
        self.engine
            .create_user(
                &cli,
                CreateUser {
                    username: name.into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        if mode.needs_pin() {
            self.engine.set_pin(&cli, name, PIN).await.unwrap();
        }
        self.engine
            .update_user(
                &cli,
                name,
                UserPatch {
                    default_method: Some(
                        DefaultMethod {
                            method: MethodKind::MobileApp,
                            mode,
                        }
                        .to_string(),
                    ),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }

    async fn uri(&self, name: &str) -> String {
        self.engine
            .device_activation_code(&Ctx::cli(), name)
            .await
            .unwrap()
            .uri
    }

    /// An SDK caller (role validate).
    async fn sdk(&self) -> Sdk {
        let name = format!("vpn{}", rand_suffix());
        let (_, secret) = self
            .engine
            .create_service_account(
                &Ctx::cli(),
                &name,
                ServiceAccountSpec {
                    role: Role::Validate,
                    permissions: Permissions::default(),
                    scope: Scope::All,
                },
            )
            .await
            .unwrap();
        Sdk {
            base: self.base.clone(),
            name,
            secret,
            http: reqwest::Client::builder()
                .danger_accept_invalid_certs(true)
                .build()
                .unwrap(),
        }
    }
}

fn rand_suffix() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

struct Sdk {
    base: String,
    name: String,
    secret: String,
    http: reqwest::Client,
}

impl Clone for Sdk {
    fn clone(&self) -> Sdk {
        Sdk {
            base: self.base.clone(),
            name: self.name.clone(),
            secret: self.secret.clone(),
            http: self.http.clone(),
        }
    }
}

impl Sdk {
    async fn start(&self, username: &str) -> (String, u64) {
        let v: Value = self
            .http
            .post(format!("{}/sdk/v1/authenticate", self.base))
            .basic_auth(&self.name, Some(&self.secret))
            .json(&json!({ "username": username }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["prompt"], "mobile_app", "{v}");
        (
            v["id"].as_str().unwrap().to_string(),
            v["number"].as_u64().unwrap(),
        )
    }

    async fn status(&self, id: &str, wait: u32) -> Value {
        self.http
            .get(format!(
                "{}/sdk/v1/authenticate/{id}?wait={wait}",
                self.base
            ))
            .basic_auth(&self.name, Some(&self.secret))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// The authenticator's store, in its own directory.
struct App {
    dir: tempfile::TempDir,
}

#[derive(Debug)]
struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl App {
    fn new() -> App {
        App {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Runs `twofold-authenticator` (off the runtime, which serves the node).
    async fn run(&self, args: &[&str]) -> Out {
        let home = self.dir.path().to_path_buf();
        let store = home.join("accounts.json");
        let args: Vec<String> = args.iter().map(|s| (*s).to_string()).collect();
        tokio::task::spawn_blocking(move || {
            let out = Command::cargo_bin("twofold-authenticator")
                .unwrap()
                .env_clear()
                .env("HOME", home)
                .env("TWOFOLD_AUTHENTICATOR_STORE", store)
                .args(&args)
                .timeout(Duration::from_secs(90))
                .output()
                .unwrap();
            Out {
                code: out.status.code(),
                stdout: String::from_utf8(out.stdout).unwrap(),
                stderr: String::from_utf8(out.stderr).unwrap(),
            }
        })
        .await
        .unwrap()
    }

    async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert_eq!(out.code, Some(0), "{args:?}: {out:?}");
        out.stdout
    }

    /// The pending requests as JSON.
    async fn pending(&self, wait: u32) -> Vec<Value> {
        let text = self
            .ok(&["pending", "--json", "--wait", &wait.to_string()])
            .await;
        serde_json::from_str::<Vec<Value>>(&text).unwrap()
    }
}

fn other(n: u64) -> u64 {
    if n == 99 {
        10
    } else {
        n + 1
    }
}

async fn approve_deny_and_fraud_from_the_command_line(backend: Backend) {
    let db = TestDb::new(backend).await.unwrap();
    let node = Node::start(&db, &cert()).await;
    node.user("jan", Mode::PhoneAppStandard).await;
    let sdk = node.sdk().await;
    let app = App::new();

    // Activated from the URI the portal's QR code carries (the certificate
    // pinned by its fingerprint: no CA involved).
    let out = app
        .ok(&["activate", &node.uri("jan").await, "--name", "Jan's phone"])
        .await;
    assert!(out.starts_with("activated jan at 127.0.0.1:"), "{out}");
    let code = app.ok(&["code"]).await;
    assert_eq!(code.split_whitespace().next().unwrap().len(), 6, "{code}");

    // Approved with the right number; the waiting SDK caller is released.
    let (id, number) = sdk.start("jan").await;
    let pending = app.pending(0).await;
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0]["id"], id.as_str());
    assert!(pending[0]["application"]
        .as_str()
        .unwrap()
        .starts_with("vpn"));
    let follow = {
        let id = id.clone();
        let sdk = sdk.clone();
        tokio::spawn(async move { sdk.status(&id, 30).await })
    };
    let out = app
        .ok(&["approve", &id, "--number", &number.to_string()])
        .await;
    assert_eq!(out.trim(), "accepted");
    let v = follow.await.unwrap();
    assert_eq!(v["state"], "accepted", "{v}");

    // A wrong number: refused, exit status 3, the SDK sees why.
    let (id, number) = sdk.start("jan").await;
    let out = app
        .run(&["approve", &id, "--number", &other(number).to_string()])
        .await;
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(out.stdout.contains("wrong_number"), "{out:?}");
    assert_eq!(sdk.status(&id, 0).await["reason"], "wrong_number");

    // Denied.
    let (id, _) = sdk.start("jan").await;
    assert!(app.ok(&["deny", &id]).await.contains("denied"));
    assert_eq!(sdk.status(&id, 0).await["reason"], "denied");

    // Fraud: rejected and the user blocked.
    let (id, _) = sdk.start("jan").await;
    assert!(app.ok(&["fraud", &id]).await.contains("fraud_reported"));
    assert!(
        node.engine
            .get_user(&Ctx::cli(), "jan")
            .await
            .unwrap()
            .fraud_blocked
    );

    // Deactivated: the account is gone from the app and the device from the user.
    node.engine.unblock_user(&Ctx::cli(), "jan").await.unwrap();
    app.ok(&["deactivate"]).await;
    assert!(app.ok(&["list"]).await.trim().is_empty());
    assert!(node
        .engine
        .mobile_devices(&Ctx::cli(), "jan")
        .await
        .unwrap()
        .is_empty());
}

async fn pin_mode_expiry_and_limits(backend: Backend) {
    let db = TestDb::new(backend).await.unwrap();
    let node = Node::start(&db, &cert()).await;
    node.user("kim", Mode::PhoneAppPin).await;
    let sdk = node.sdk().await;
    let app = App::new();
    let uri = node.uri("kim").await;
    app.ok(&["activate", &uri]).await;

    // The same code again, from another app: used.
    let other_app = App::new();
    let out = other_app.run(&["activate", &uri]).await;
    assert_ne!(out.code, Some(0));
    assert!(out.stderr.contains("activation_code"), "{out:?}");
    // One device is the limit: a second code is refused by the helpdesk.
    assert!(node
        .engine
        .device_activation_code(&Ctx::cli(), "kim")
        .await
        .is_err());

    // PIN mode: a wrong PIN leaves attempts; the right one approves.
    let (id, number) = sdk.start("kim").await;
    assert_eq!(app.pending(0).await[0]["pin_required"], true);
    let n = number.to_string();
    let out = app
        .run(&["approve", &id, "--number", &n, "--pin", "1111"])
        .await;
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(out.stdout.contains("pending: wrong_pin"), "{out:?}");
    let out = app
        .ok(&["approve", &id, "--number", &n, "--pin", PIN])
        .await;
    assert_eq!(out.trim(), "accepted");

    // Expired: gone from the app, and too late to answer.
    let (id, number) = sdk.start("kim").await;
    node.clock.advance(time::Duration::seconds(61));
    assert!(app.pending(0).await.is_empty());
    let out = app
        .run(&[
            "approve",
            &id,
            "--number",
            &number.to_string(),
            "--pin",
            PIN,
            "--account",
            "0",
        ])
        .await;
    assert_ne!(out.code, Some(0), "{out:?}");
    assert_eq!(sdk.status(&id, 0).await["state"], "expired");

    // A device whose clock is far off the server's is told so (expired
    // codes themselves are tested with a skewed test device in `web`).
    node.engine
        .remove_mobile_device(
            &Ctx::cli(),
            "kim",
            &node
                .engine
                .mobile_devices(&Ctx::cli(), "kim")
                .await
                .unwrap()[0]
                .id,
        )
        .await
        .unwrap();
    let late = node.uri("kim").await;
    node.clock.advance(time::Duration::minutes(11));
    let out = App::new().run(&["activate", &late]).await;
    assert_ne!(out.code, Some(0));
    assert!(out.stderr.contains("set the device's clock"), "{out:?}");
}

/// Two nodes on one PostgreSQL database: the SDK starts the request on
/// node A, the device long-polls node B and is woken at once (LISTEN/
/// NOTIFY, not a poll interval); its approval on B releases the SDK caller
/// waiting on A.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_on_one_postgres() {
    let db = TestDb::new(Backend::Postgres).await.unwrap();
    let shared = cert();
    let a = Node::start(&db, &shared).await;
    let b = Node::start(&db, &shared).await;
    a.user("jan", Mode::PhoneAppStandard).await;
    let sdk = a.sdk().await;
    let app = App::new();
    app.ok(&["activate", &b.uri("jan").await]).await;

    for _ in 0..3 {
        let poll = {
            let dir = app.dir.path().to_path_buf();
            tokio::spawn(async move {
                let t = Instant::now();
                let out = tokio::task::spawn_blocking(move || {
                    Command::cargo_bin("twofold-authenticator")
                        .unwrap()
                        .env_clear()
                        .env("TWOFOLD_AUTHENTICATOR_STORE", dir.join("accounts.json"))
                        .args(["pending", "--json", "--wait", "30"])
                        .timeout(Duration::from_mins(1))
                        .output()
                        .unwrap()
                })
                .await
                .unwrap();
                (t.elapsed(), String::from_utf8(out.stdout).unwrap())
            })
        };
        // Let the long-poll reach node B before the request exists.
        tokio::time::sleep(Duration::from_millis(800)).await;
        let (id, number) = sdk.start("jan").await;
        let (waited, out) = poll.await.unwrap();
        let got: Vec<Value> = serde_json::from_str(&out).unwrap();
        assert_eq!(got.len(), 1, "{out}");
        assert_eq!(got[0]["id"], id.as_str());
        assert!(waited < Duration::from_secs(10), "woken after {waited:?}");
        let follow = {
            let sdk = sdk.clone();
            let id = id.clone();
            tokio::spawn(async move {
                let t = Instant::now();
                (sdk.status(&id, 30).await, t.elapsed())
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            app.ok(&["approve", &id, "--number", &number.to_string()])
                .await
                .trim(),
            "accepted"
        );
        let (v, waited) = follow.await.unwrap();
        assert_eq!(v["state"], "accepted");
        assert!(
            waited < Duration::from_secs(10),
            "released after {waited:?}"
        );
    }
}
