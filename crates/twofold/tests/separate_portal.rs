//! `twofold portal` on its own: the real binary against a real `twofold
//! serve`, reaching it only through the Web Service SDK — readiness, a
//! sign-in over HTTPS, no database of its own, refused credentials, and its
//! configuration errors.

#[allow(unused_macros)]
mod common;

use common::{client_trusting, Env, MiniBrowser, BIN};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use twofold_testkit::db::Backend;

const PASSWORD: &str = "correct horse battery";

/// A running `twofold portal`.
struct PortalProcess {
    child: Child,
    addr: String,
    stdout: Vec<String>,
    stderr: mpsc::Receiver<String>,
}

impl Drop for PortalProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl PortalProcess {
    fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    /// Standard error so far (and for a moment longer).
    fn stderr_now(&self) -> String {
        std::thread::sleep(Duration::from_millis(200));
        self.stderr.try_iter().collect::<Vec<_>>().join("\n")
    }

    fn terminate(&mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().expect("try_wait").is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "portal did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `twofold portal` with only the given environment (no database URL).
fn portal_command(data_dir: &Path, vars: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("TWOFOLD_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("TWOFOLD_DATA_DIR", data_dir)
        .current_dir(data_dir.parent().expect("parent"))
        .stdin(Stdio::null());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.args(["portal", "--listen", "127.0.0.1:0"]);
    cmd
}

fn start_portal(mut cmd: Command) -> PortalProcess {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn twofold portal");
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let (etx, erx) = mpsc::channel();
    let stderr = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[twofold portal] {line}");
            if etx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    loop {
        let Ok(line) = rx.recv_timeout(Duration::from_mins(1)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("portal did not announce its address; stdout so far: {seen:?}");
        };
        let announced = line
            .strip_prefix("Twofold portal is serving https://")
            .and_then(|rest| rest.split('/').next())
            .map(str::to_string);
        seen.push(line);
        if let Some(addr) = announced {
            return PortalProcess {
                child,
                addr,
                stdout: seen,
                stderr: erx,
            };
        }
    }
}

fn secret_file(dir: &Path, name: &str, secret: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("{secret}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// Every file under `dir`, relative to it.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_on_its_own_server_signs_users_in_through_the_sdk() {
    let env = Env::new(Backend::Sqlite).await;
    let server = env.start();
    let created = env.ok(&["service-account", "create", "portal", "--role", "portal"]);
    let sdk_secret = created.lines().last().unwrap().trim().to_string();
    let added = env.run_with_stdin(
        &["user", "add", "jan", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(added.code(), 0, "{}", added.stderr());

    let host = tempfile::tempdir().unwrap();
    let data_dir = host.path().join("portal-data");
    let password_file = secret_file(host.path(), "sdk-password", &sdk_secret);
    let vars = vec![
        ("TWOFOLD_SDK_URL", format!("https://{}", server.addr)),
        ("TWOFOLD_SDK_USERNAME", "portal".to_string()),
        (
            "TWOFOLD_SDK_PASSWORD_FILE",
            password_file.display().to_string(),
        ),
        ("TWOFOLD_SDK_FINGERPRINT", server.fingerprint.clone()),
    ];
    let mut portal = start_portal(portal_command(&data_dir, &vars));
    assert!(
        portal
            .stdout
            .iter()
            .any(|l| l.contains("signed in as sdk:portal")),
        "{:?}",
        portal.stdout
    );
    assert!(portal
        .stdout
        .iter()
        .any(|l| l.contains("SHA-256 fingerprint")));

    let client = client_trusting(&data_dir.join("tls/cert.pem"));
    let res = client.get(portal.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    // A portal-only process has no SDK of its own.
    let res = client
        .get(portal.url("/sdk/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    let mut b = MiniBrowser::new(
        &data_dir.join("tls/cert.pem"),
        &format!("https://{}", portal.addr),
    );
    assert_eq!(b.open("/portal").await, 200);
    assert_eq!(b.h1(), "Sign in");
    b.submit(
        "/portal/sign-in",
        &[("username", "jan"), ("password", "not the password")],
    )
    .await;
    assert_eq!(b.h1(), "Sign in");
    assert!(b.page.contains("not right"), "{}", b.page);
    b.submit(
        "/portal/sign-in",
        &[("username", "jan"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(b.h1(), "Set up your account", "{}", b.page);

    // The MFA server audited the sign-in as the end user, from the
    // browser's address, exactly as its own portal would.
    let audit = env.ok(&["audit", "tail", "--user", "jan", "-n", "50", "--json"]);
    let signed_in: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|e: &serde_json::Value| e["event"] == "primary.password")
        .collect();
    assert_eq!(signed_in.len(), 2, "{audit}");
    for e in &signed_in {
        assert_eq!(e["actor"], "user:jan", "{e}");
        assert_eq!(e["source_ip"], "127.0.0.1", "{e}");
    }

    portal.terminate();
    // The portal host holds its certificate (and perhaps logs), never a
    // database or a sealing key.
    let files = files_under(&data_dir);
    assert!(
        files
            .iter()
            .all(|f| f.starts_with("tls/") || f.starts_with("logs/")),
        "{files:?}"
    );
    assert!(files.contains(&"tls/cert.pem".to_string()), "{files:?}");
    assert!(!files
        .iter()
        .any(|f| f.contains(".db") || f.contains("sealing")));
    let host_files = files_under(host.path());
    assert!(
        !host_files.iter().any(|f| f.contains(".db")),
        "{host_files:?}"
    );

    // Wrong credentials: the portal starts, says why, and is not ready.
    let wrong_file = secret_file(host.path(), "wrong-password", "tf_not-the-secret");
    let mut wrong_vars = vars.clone();
    wrong_vars[2].1 = wrong_file.display().to_string();
    let wrong = start_portal(portal_command(&data_dir, &wrong_vars));
    let said = wrong.stdout.join("\n");
    assert!(
        said.contains("WARNING: the Web Service SDK")
            && said.contains("refused the SDK credentials")
            && said.contains("sdk.password"),
        "{said}"
    );
    assert!(
        !said.contains("tf_not-the-secret"),
        "the password is never printed"
    );
    let res = client.get(wrong.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    let errors = wrong.stderr_now();
    assert!(errors.contains("refused the SDK credentials"), "{errors}");
    assert!(!errors.contains("tf_not-the-secret"));
    // The page says the service is unavailable instead of failing.
    let res = client.get(wrong.url("/portal")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    drop(wrong);
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_sdk_is_reported_and_readyz_fails() {
    let host = tempfile::tempdir().unwrap();
    let data_dir = host.path().join("portal-data");
    // A port nobody listens on.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let fp = vec!["AB"; 32].join(":");
    let vars = vec![
        ("TWOFOLD_SDK_URL", format!("https://127.0.0.1:{port}")),
        ("TWOFOLD_SDK_USERNAME", "portal".to_string()),
        ("TWOFOLD_SDK_PASSWORD", "tf_whatever".to_string()),
        ("TWOFOLD_SDK_FINGERPRINT", fp),
    ];
    let portal = start_portal(portal_command(&data_dir, &vars));
    let said = portal.stdout.join("\n");
    assert!(said.contains("cannot reach"), "{said}");
    let client = client_trusting(&data_dir.join("tls/cert.pem"));
    let res = client.get(portal.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    let res = client.get(portal.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200, "alive, just not ready");
}

/// Started while the MFA server is down, the portal serves, is not ready,
/// and becomes ready by itself once the server answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_becomes_ready_when_the_server_comes_back() {
    let env = Env::new(Backend::Sqlite).await;
    let mut server = env.start();
    let created = env.ok(&["service-account", "create", "portal", "--role", "portal"]);
    let sdk_secret = created.lines().last().unwrap().trim().to_string();
    let (addr, fingerprint) = (server.addr.clone(), server.fingerprint.clone());
    server.terminate();

    let host = tempfile::tempdir().unwrap();
    let data_dir = host.path().join("portal-data");
    let vars = vec![
        ("TWOFOLD_SDK_URL", format!("https://{addr}")),
        ("TWOFOLD_SDK_USERNAME", "portal".to_string()),
        ("TWOFOLD_SDK_PASSWORD", sdk_secret),
        ("TWOFOLD_SDK_FINGERPRINT", fingerprint),
    ];
    let portal = start_portal(portal_command(&data_dir, &vars));
    assert!(portal.stdout.join("\n").contains("cannot reach"));
    let client = client_trusting(&data_dir.join("tls/cert.pem"));
    let res = client.get(portal.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 503);

    // The server comes back on the same address, with the same certificate.
    let mut again = env
        .command()
        .args(["serve", "--listen", &addr])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("restart twofold serve");
    let deadline = std::time::Instant::now() + Duration::from_mins(1);
    loop {
        let res = client.get(portal.url("/readyz")).send().await.unwrap();
        if res.status() == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "portal never became ready"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = again.kill();
    let _ = again.wait();
}

#[test]
fn portal_configuration_errors_name_the_key() {
    let host = tempfile::tempdir().unwrap();
    let data_dir = host.path().join("portal-data");
    let ca = host.path().join("ca.pem");
    std::fs::write(&ca, "not a certificate").unwrap();
    let fp = vec!["AB"; 32].join(":");
    let url = ("TWOFOLD_SDK_URL", "https://mfa.internal:8443".to_string());
    let user = ("TWOFOLD_SDK_USERNAME", "portal".to_string());
    let pass = ("TWOFOLD_SDK_PASSWORD", "tf_whatever".to_string());
    let pin = ("TWOFOLD_SDK_FINGERPRINT", fp);
    let ca_file = ("TWOFOLD_SDK_CA_FILE", ca.display().to_string());
    let cases: Vec<(Vec<(&str, String)>, &str)> = vec![
        (
            vec![user.clone(), pass.clone(), pin.clone()],
            "sdk.url (TWOFOLD_SDK_URL) is required",
        ),
        (
            vec![url.clone(), user.clone(), pass.clone()],
            "one of sdk.ca_file (TWOFOLD_SDK_CA_FILE) or sdk.fingerprint (TWOFOLD_SDK_FINGERPRINT)",
        ),
        (
            vec![url.clone(), user.clone(), pass.clone(), pin.clone(), ca_file.clone()],
            "sdk.ca_file (TWOFOLD_SDK_CA_FILE) and sdk.fingerprint (TWOFOLD_SDK_FINGERPRINT) are both set",
        ),
        (
            vec![
                ("TWOFOLD_SDK_URL", "http://mfa.internal:8443".to_string()),
                user.clone(),
                pass.clone(),
                pin.clone(),
            ],
            "sdk.url (TWOFOLD_SDK_URL): the SDK URL must use https://",
        ),
        (
            vec![url.clone(), user.clone(), pin.clone()],
            "sdk.password (TWOFOLD_SDK_PASSWORD) is required",
        ),
        (
            vec![url.clone(), pass.clone(), pin.clone()],
            "sdk.username (TWOFOLD_SDK_USERNAME) is required",
        ),
        (
            vec![
                url.clone(),
                user.clone(),
                pass.clone(),
                ("TWOFOLD_SDK_FINGERPRINT", "AB:CD".to_string()),
            ],
            "sdk.fingerprint (TWOFOLD_SDK_FINGERPRINT)",
        ),
        (
            vec![url.clone(), user.clone(), pass.clone(), ca_file.clone()],
            "sdk.ca_file (TWOFOLD_SDK_CA_FILE)",
        ),
    ];
    for (vars, want) in cases {
        let out = portal_command(&data_dir, &vars).output().expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{vars:?}: {stderr}");
        assert!(stderr.contains(want), "want {want:?}, got {stderr}");
        assert!(!stderr.contains("tf_whatever"));
    }
    assert!(
        !data_dir.exists(),
        "a portal that cannot be configured creates nothing"
    );

    // `config example` documents every SDK key.
    let out = Command::new(BIN)
        .args(["config", "example"])
        .output()
        .unwrap();
    let example = String::from_utf8_lossy(&out.stdout);
    for var in [
        "TWOFOLD_SDK_URL",
        "TWOFOLD_SDK_USERNAME",
        "TWOFOLD_SDK_PASSWORD (or TWOFOLD_SDK_PASSWORD_FILE)",
        "TWOFOLD_SDK_CA_FILE",
        "TWOFOLD_SDK_FINGERPRINT",
    ] {
        assert!(example.contains(var), "{var} missing from config example");
    }
}

/// Phones reach the portal on its own server: `/mobile/v1` is passed on to
/// the MFA server exactly as signed (activation, the long-poll, the
/// answer), and the SDK caller on the MFA server sees the approval. With
/// the MFA server gone, the portal answers 503 `unavailable`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phones_reach_the_mobile_app_service_through_the_portal() {
    let mut env = Env::new(Backend::Sqlite).await;
    // The portal (127.0.0.1) is a trusted proxy: the phone's address counts.
    env.extra
        .push(("TWOFOLD_TRUSTED_PROXIES".into(), "127.0.0.1".into()));
    let mut server = env.start();
    let created = env.ok(&["service-account", "create", "portal", "--role", "portal"]);
    let sdk_secret = created.lines().last().unwrap().trim().to_string();
    let vpn = env.ok(&["service-account", "create", "vpn", "--role", "validate"]);
    let vpn_secret = vpn.lines().last().unwrap().trim().to_string();
    env.ok(&["user", "add", "jan"]);
    env.ok(&["user", "set", "jan", "--method", "mobile_app"]);

    let host = tempfile::tempdir().unwrap();
    let data_dir = host.path().join("portal-data");
    let vars = vec![
        ("TWOFOLD_SDK_URL", format!("https://{}", server.addr)),
        ("TWOFOLD_SDK_USERNAME", "portal".to_string()),
        ("TWOFOLD_SDK_PASSWORD", sdk_secret),
        ("TWOFOLD_SDK_FINGERPRINT", server.fingerprint.clone()),
    ];
    let portal = start_portal(portal_command(&data_dir, &vars));
    // Activation codes point phones at the portal.
    env.extra
        .push(("TWOFOLD_PUBLIC_URL".into(), portal.url("")));
    let offer = env.json(&["device", "activation-code", "jan", "--json"]);
    assert_eq!(offer["url"], portal.url("/mobile/v1").as_str());

    let mut device = twofold_testkit::mobile::TestDevice::new(&portal.url(""));
    let (status, v) = device.activate(offer["code"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{v}");
    let sdk = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let started: serde_json::Value = sdk
        .post(server.url("/sdk/v1/authenticate"))
        .basic_auth("vpn", Some(&vpn_secret))
        .json(&serde_json::json!({"username": "jan"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = started["id"].as_str().unwrap();
    let pending = device.pending(10).await;
    assert_eq!(pending[0]["id"], id);
    let (status, v) = device
        .answer(id, "approve", started["number"].as_u64(), None)
        .await;
    assert_eq!(
        (status.as_u16(), &v["state"]),
        (200, &serde_json::json!("accepted"))
    );
    // A replay through the portal is still a replay at the MFA server.
    let sent = device.sign(reqwest::Method::GET, "/mobile/v1/requests", b"");
    assert_eq!(device.send(&sent).await.0, 200);
    let (status, v) = device.send(&sent).await;
    assert_eq!(
        (status.as_u16(), &v["reason"]),
        (401, &serde_json::json!("nonce"))
    );

    server.terminate();
    let (status, v) = device
        .call(reqwest::Method::GET, "/mobile/v1/requests", None)
        .await;
    assert_eq!(
        (status.as_u16(), &v["error"]),
        (503, &serde_json::json!("unavailable")),
        "{v}"
    );
}
