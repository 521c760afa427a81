//! The binary against a stub Mobile App Web Service over HTTPS: the stub
//! verifies every signature the way the protocol says (exact path, exact
//! body bytes, fresh nonce, the device's key), so these tests show the
//! client's requests are acceptable, and pin the command-line output.

use assert_cmd::Command;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path as UrlPath, Query, State};
use axum::http::uri::PathAndQuery;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use axum_server::tls_rustls::RustlsConfig;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::signature::{UnparsedPublicKey, ED25519};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};
use twofold_authenticator::totp::Totp;
use twofold_proto::mobile::{
    is_nonce, signed_message, ActivateRequest, ActivateResponse, ActivationUri, Decision,
    DeviceAnswer, DeviceAnswerResult, OathSeed, PendingRequest, PendingRequests, DEVICE_HEADER,
    NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};
use twofold_proto::ErrorBody;

const CODE: &str = "482109375526";
const PIN: &str = "7294";
const NUMBER: u32 = 42;
const SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

#[derive(Default)]
struct Book {
    /// device id → raw public key.
    devices: HashMap<String, Vec<u8>>,
    device_names: Vec<String>,
    push: Vec<Option<String>>,
    nonces: HashSet<String>,
    requests: Vec<PendingRequest>,
    answers: Vec<(String, DeviceAnswer)>,
    deactivated: Vec<String>,
}

type Shared = Arc<Mutex<Book>>;

fn error(status: StatusCode, error: &str, message: &str, reason: Option<&str>) -> Response {
    let body = ErrorBody {
        error: error.into(),
        message: message.into(),
        field: None,
        reason: reason.map(Into::into),
    };
    (status, Json(body)).into_response()
}

/// The server's check of §2: the signature over the exact request line
/// path, timestamp, nonce and body, by `key`.
fn verify(
    book: &mut Book,
    headers: &HeaderMap,
    method: &str,
    uri: &OriginalUri,
    body: &[u8],
    key: &[u8],
) -> Result<(), Box<Response>> {
    let h = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let (ts, nonce, sig) = (h(TIMESTAMP_HEADER), h(NONCE_HEADER), h(SIGNATURE_HEADER));
    let unauthorized = |reason| {
        Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "bad signature",
            Some(reason),
        )))
    };
    let now = twofold_authenticator::now_unix();
    match ts.parse::<u64>() {
        Ok(t) if t.abs_diff(now) <= 300 => {}
        _ => return unauthorized("timestamp"),
    }
    if !is_nonce(&nonce) || !book.nonces.insert(nonce.clone()) {
        return unauthorized("nonce");
    }
    let path = uri.0.path_and_query().map_or("", PathAndQuery::as_str);
    let message = signed_message(method, path, &ts, &nonce, body);
    let Ok(raw) = URL_SAFE_NO_PAD.decode(&sig) else {
        return unauthorized("signature");
    };
    if UnparsedPublicKey::new(&ED25519, key)
        .verify(&message, &raw)
        .is_err()
    {
        return unauthorized("signature");
    }
    Ok(())
}

fn device(book: &mut Book, headers: &HeaderMap) -> Result<(String, Vec<u8>), Box<Response>> {
    let id = headers
        .get(DEVICE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match book.devices.get(id) {
        Some(key) => Ok((id.to_string(), key.clone())),
        None => Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "unknown device",
            Some("signature"),
        ))),
    }
}

async fn activate(
    State(book): State<Shared>,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(request) = serde_json::from_slice::<ActivateRequest>(&body) else {
        return error(StatusCode::BAD_REQUEST, "invalid_input", "bad body", None);
    };
    let Ok(key) = URL_SAFE_NO_PAD.decode(&request.public_key) else {
        return error(StatusCode::BAD_REQUEST, "invalid_input", "bad key", None);
    };
    let mut book = book.lock().unwrap();
    if headers.contains_key(DEVICE_HEADER) {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "no device yet",
            None,
        );
    }
    if let Err(r) = verify(&mut book, &headers, "POST", &uri, &body, &key) {
        return *r;
    }
    if request.code != CODE {
        // A hostile message: the client must not print the escape raw.
        return error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "wrong code\u{1b}[2J",
            Some("activation_code"),
        );
    }
    let device_id = format!("{:032x}", book.devices.len() + 0x9b2f);
    book.devices.insert(device_id.clone(), key);
    book.device_names.push(request.device_name);
    book.push
        .push(request.push.map(|p| format!("{:?} {}", p.kind, p.url)));
    Json(ActivateResponse {
        device_id,
        username: "jan".into(),
        account: "mfa.example.org".into(),
        oath: OathSeed {
            secret: SECRET.into(),
            algorithm: "SHA1".into(),
            digits: 6,
            period: 30,
        },
        request_lifetime_seconds: 60,
    })
    .into_response()
}

async fn requests(
    State(shared): State<Shared>,
    uri: OriginalUri,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, u64>>,
) -> Response {
    {
        let mut book = shared.lock().unwrap();
        let (_, key) = match device(&mut book, &headers) {
            Ok(d) => d,
            Err(r) => return *r,
        };
        if let Err(r) = verify(&mut book, &headers, "GET", &uri, b"", &key) {
            return *r;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(query.get("wait").copied().unwrap_or(0));
    loop {
        let requests = shared.lock().unwrap().requests.clone();
        if !requests.is_empty() || Instant::now() >= deadline {
            return Json(PendingRequests { requests }).into_response();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn answer(
    State(shared): State<Shared>,
    UrlPath(id): UrlPath<String>,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut book = shared.lock().unwrap();
    let (_, key) = match device(&mut book, &headers) {
        Ok(d) => d,
        Err(r) => return *r,
    };
    if let Err(r) = verify(&mut book, &headers, "POST", &uri, &body, &key) {
        return *r;
    }
    let Ok(answer) = serde_json::from_slice::<DeviceAnswer>(&body) else {
        return error(StatusCode::BAD_REQUEST, "invalid_input", "bad body", None);
    };
    book.answers.push((id.clone(), answer.clone()));
    let Some(pos) = book.requests.iter().position(|r| r.id == id) else {
        return error(
            StatusCode::CONFLICT,
            "conflict",
            "the request is no longer pending",
            Some("finished"),
        );
    };
    let (state, reason) = match answer.decision {
        Decision::Deny => ("rejected", "denied"),
        Decision::Fraud => ("rejected", "fraud_reported"),
        Decision::Approve if answer.number != Some(NUMBER) => ("rejected", "wrong_number"),
        Decision::Approve
            if book.requests[pos].pin_required && answer.pin.as_deref() != Some(PIN) =>
        {
            ("pending", "wrong_pin")
        }
        Decision::Approve => ("accepted", "accepted"),
    };
    if state != "pending" {
        book.requests.remove(pos);
    }
    Json(DeviceAnswerResult {
        state: state.into(),
        reason: Some(reason.into()),
    })
    .into_response()
}

async fn deactivate(
    State(shared): State<Shared>,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut book = shared.lock().unwrap();
    let (id, key) = match device(&mut book, &headers) {
        Ok(d) => d,
        Err(r) => return *r,
    };
    if let Err(r) = verify(&mut book, &headers, "POST", &uri, &body, &key) {
        return *r;
    }
    book.devices.remove(&id);
    book.deactivated.push(id);
    StatusCode::NO_CONTENT.into_response()
}

struct Stub {
    url: String,
    cert_pem: String,
    fingerprint: String,
    book: Shared,
    handle: axum_server::Handle,
    dir: tempfile::TempDir,
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

impl Stub {
    async fn start() -> Stub {
        static ONCE: Once = Once::new();
        ONCE.call_once(|| {
            let _ = rustls::crypto::ring::default_provider().install_default();
        });
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let cert_pem = cert.pem();
        let fingerprint = twofold_authenticator::hex(
            ring::digest::digest(&ring::digest::SHA256, cert.der()).as_ref(),
        );
        let tls = RustlsConfig::from_pem(
            cert_pem.clone().into_bytes(),
            key.serialize_pem().into_bytes(),
        )
        .await
        .unwrap();
        let book = Shared::default();
        let app = Router::new()
            .route("/mobile/v1/activate", post(activate))
            .route("/mobile/v1/requests", get(requests))
            .route("/mobile/v1/requests/{id}/answer", post(answer))
            .route("/mobile/v1/deactivate", post(deactivate))
            .with_state(book.clone());
        let handle = axum_server::Handle::new();
        let server =
            axum_server::bind_rustls("127.0.0.1:0".parse().unwrap(), tls).handle(handle.clone());
        tokio::spawn(server.serve(app.into_make_service_with_connect_info::<SocketAddr>()));
        let addr = handle.listening().await.unwrap();
        Stub {
            url: format!("https://127.0.0.1:{}/mobile/v1", addr.port()),
            cert_pem,
            fingerprint,
            book,
            handle,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn store(&self) -> PathBuf {
        self.dir.path().join("config").join("accounts.json")
    }

    fn uri(&self, code: &str, fingerprint: Option<&str>) -> String {
        ActivationUri {
            url: self.url.clone(),
            code: code.into(),
            fingerprint: fingerprint.map(Into::into),
        }
        .render()
    }

    fn add_request(&self, id: &str, pin_required: bool) {
        self.book.lock().unwrap().requests.push(PendingRequest {
            id: id.into(),
            username: "jan".into(),
            account: "mfa.example.org".into(),
            application: "vpn".into(),
            source_address: Some("203.0.113.7".into()),
            created_at: "2026-11-30T09:00:00Z".into(),
            expires_at: "2026-11-30T09:01:00Z".into(),
            pin_required,
        });
    }

    /// Runs the binary (off the async runtime, which serves the stub).
    async fn run(&self, args: &[&str]) -> Output {
        let store = self.store();
        let home = self.dir.path().to_path_buf();
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
            Output {
                code: out.status.code(),
                stdout: String::from_utf8(out.stdout).unwrap(),
                stderr: String::from_utf8(out.stderr).unwrap(),
            }
        })
        .await
        .unwrap()
    }
}

#[derive(Debug)]
struct Output {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn id(n: u8) -> String {
    format!("{n:02x}").repeat(16)
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn activate_answer_and_deactivate_with_a_pinned_certificate() {
    let stub = Stub::start().await;

    // Activation: the URI's fingerprint pins the self-signed certificate.
    let out = stub
        .run(&[
            "activate",
            &stub.uri("4821 0937 5526", Some(&stub.fingerprint)),
            "--name",
            "Jan's laptop",
            "--ntfy",
            "https://ntfy.example.org/twofold-x",
        ])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let device = format!("{:032x}", 0x9b2f);
    assert_eq!(
        out.stdout,
        format!("activated jan at mfa.example.org (device {device})\n")
    );
    assert_eq!(mode(&stub.store()), 0o600);
    assert_eq!(mode(stub.store().parent().unwrap()), 0o700);
    {
        let book = stub.book.lock().unwrap();
        assert_eq!(book.device_names, vec!["Jan's laptop".to_string()]);
        assert_eq!(
            book.push,
            vec![Some("Ntfy https://ntfy.example.org/twofold-x".to_string())]
        );
    }

    let out = stub.run(&["list"]).await;
    assert_eq!(
        out.stdout,
        format!("0\tmfa.example.org\tjan\t{device}\t{}\n", stub.url)
    );
    let out = stub.run(&["list", "--json"]).await;
    let listed: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(listed[0]["device_id"], device.as_str());
    assert_eq!(listed[0]["fingerprint"], stub.fingerprint.as_str());

    // Nothing pending: no output, success.
    let out = stub.run(&["pending"]).await;
    assert_eq!((out.code, out.stdout.as_str()), (Some(0), ""), "{out:?}");

    stub.add_request(&id(1), false);
    stub.add_request(&id(2), true);
    let out = stub.run(&["pending"]).await;
    assert_eq!(
        out.stdout,
        format!(
            "{}\tjan@mfa.example.org\tvpn\t203.0.113.7\t2026-11-30T09:00:00Z\t-\n\
             {}\tjan@mfa.example.org\tvpn\t203.0.113.7\t2026-11-30T09:00:00Z\tpin\n",
            id(1),
            id(2)
        )
    );
    let out = stub.run(&["pending", "--json", "--account", "jan"]).await;
    let pending: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(pending[1]["id"], id(2).as_str());
    assert_eq!(pending[1]["pin_required"], true);
    assert_eq!(pending[1]["account_index"], 0);
    assert_eq!(pending[1]["expires_at"], "2026-11-30T09:01:00Z");

    // A wrong number refuses the sign-in: exit 3.
    let out = stub.run(&["approve", &id(1), "--number", "41"]).await;
    assert_eq!(out.code, Some(3), "{out:?}");
    assert_eq!(out.stdout, "rejected: wrong_number\n");
    assert!(out.stderr.contains("did not accept"), "{out:?}");

    // The PIN: not on a terminal and not given is a usage error.
    let out = stub.run(&["approve", &id(2), "--number", "42"]).await;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("--pin"), "{out:?}");
    let out = stub
        .run(&["approve", &id(2), "--number", "42", "--pin", "0000"])
        .await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(3), "pending: wrong_pin (attempts left)\n")
    );
    let out = stub
        .run(&[
            "approve",
            &id(2),
            "--number",
            "42",
            "--pin",
            PIN,
            "--account",
            "0",
        ])
        .await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "accepted\n"),
        "{out:?}"
    );

    stub.add_request(&id(3), false);
    stub.add_request(&id(4), false);
    let out = stub.run(&["deny", &id(3)]).await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "rejected: denied\n")
    );
    let out = stub.run(&["fraud", &id(4)]).await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "rejected: fraud_reported\n")
    );
    {
        let book = stub.book.lock().unwrap();
        let (_, fraud) = book.answers.last().unwrap();
        assert_eq!(
            (fraud.decision, fraud.number, fraud.pin.as_deref()),
            (Decision::Fraud, None, None)
        );
    }

    // A request nobody has: found nowhere, nothing sent.
    let sent = stub.book.lock().unwrap().answers.len();
    let out = stub.run(&["approve", &id(9), "--number", "42"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("no pending request"), "{out:?}");
    assert_eq!(stub.book.lock().unwrap().answers.len(), sent);
    // Named account: sent, and the server's refusal is shown.
    let out = stub
        .run(&["deny", &id(9), "--account", "jan@mfa.example.org"])
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("the request is no longer pending (reason: finished) [HTTP 409 conflict]"),
        "{out:?}"
    );

    // The TOTP code of the stored seed.
    let totp = Totp::from_seed(&OathSeed {
        secret: SECRET.into(),
        algorithm: "SHA1".into(),
        digits: 6,
        period: 30,
    })
    .unwrap();
    let before = totp.at(twofold_authenticator::now_unix()).code;
    let out = stub.run(&["code"]).await;
    let after = totp.at(twofold_authenticator::now_unix()).code;
    let (code, rest) = out.stdout.split_once(' ').unwrap();
    assert!(code == before || code == after, "{out:?}");
    assert!(rest.ends_with(" s left)\n"), "{out:?}");

    // Every nonce was fresh (the stub refuses a repeat).
    let out = stub.run(&["deactivate"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout,
        format!("deactivated jan at mfa.example.org (device {device})\n")
    );
    assert_eq!(stub.book.lock().unwrap().deactivated, vec![device]);
    assert_eq!(stub.run(&["list"]).await.stdout, "");
    let out = stub.run(&["code"]).await;
    assert_eq!(out.code, Some(2), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refusals_and_trust() {
    let stub = Stub::start().await;

    // A wrong code: the server's message, escaped, and its reason.
    let out = stub
        .run(&[
            "activate",
            &stub.uri("000000000000", Some(&stub.fingerprint)),
        ])
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("wrong code\\u{1b}[2J (reason: activation_code) [HTTP 403 forbidden]"),
        "{out:?}"
    );
    assert!(!out.stderr.contains('\u{1b}'));

    // Another certificate's fingerprint: refused during the handshake.
    let other = "00".repeat(32);
    let out = stub.run(&["activate", &stub.uri(CODE, Some(&other))]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("cannot reach https://127.0.0.1"),
        "{out:?}"
    );
    assert!(out.stderr.contains("pinned"), "{out:?}");

    // No pin and no CA file: the public CAs do not know the stub.
    let out = stub.run(&["activate", &stub.uri(CODE, None)]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("UnknownIssuer"), "{out:?}");
    assert!(out.stderr.contains("--ca-file"), "{out:?}");
    assert!(stub.book.lock().unwrap().devices.is_empty());

    // --url/--code with the certificate as the CA file: two devices.
    let ca = stub.dir.path().join("server.pem");
    std::fs::write(&ca, &stub.cert_pem).unwrap();
    for _ in 0..2 {
        let out = stub
            .run(&[
                "activate",
                "--url",
                &stub.url,
                "--code",
                "4821 0937 5526",
                "--ca-file",
                ca.to_str().unwrap(),
            ])
            .await;
        assert_eq!(out.code, Some(0), "{out:?}");
    }
    // Both accounts are jan@mfa.example.org: an account name is ambiguous.
    let out = stub.run(&["code", "--account", "jan"]).await;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("several"), "{out:?}");
    assert_eq!(stub.run(&["code", "--account", "1"]).await.code, Some(0));

    // Waiting on both: returns when the request arrives, with both lines.
    let book = stub.book.clone();
    let started = Instant::now();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        book.lock().unwrap().requests.push(PendingRequest {
            id: id(7),
            username: "jan".into(),
            account: "mfa.example.org".into(),
            application: "portal\nx".into(),
            source_address: None,
            created_at: "2026-11-30T09:00:00Z".into(),
            expires_at: "2026-11-30T09:01:00Z".into(),
            pin_required: false,
        });
    });
    let out = stub.run(&["pending", "--wait", "30"]).await;
    assert!(started.elapsed() < Duration::from_secs(20), "{out:?}");
    assert_eq!(out.code, Some(0), "{out:?}");
    let line = format!(
        "{}\tjan@mfa.example.org\tportal\\nx\t-\t2026-11-30T09:00:00Z\t-\n",
        id(7)
    );
    assert_eq!(out.stdout, format!("{line}{line}"));

    // A store others can read is refused.
    std::fs::set_permissions(stub.store(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = stub.run(&["list"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("chmod 600"), "{out:?}");
    std::fs::set_permissions(stub.store(), std::fs::Permissions::from_mode(0o600)).unwrap();

    // The server does not know the device any more: --force forgets it.
    stub.book.lock().unwrap().devices.clear();
    let out = stub.run(&["deactivate", "--account", "0"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("--force"), "{out:?}");
    let out = stub.run(&["deactivate", "--account", "0", "--force"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(stub.run(&["list"]).await.stdout.lines().count(), 1);

    // Nothing listens: the URL is named.
    let out = stub
        .run(&[
            "activate",
            "--url",
            "https://127.0.0.1:1/mobile/v1",
            "--code",
            CODE,
            "--fingerprint",
            &stub.fingerprint,
        ])
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("cannot reach https://127.0.0.1:1/mobile/v1/activate"),
        "{out:?}"
    );
}

/// Output of a running child, read by a thread.
struct Screen {
    text: Arc<Mutex<String>>,
    seen: usize,
}

impl Screen {
    fn start(mut out: impl std::io::Read + Send + 'static) -> Screen {
        let text = Arc::new(Mutex::new(String::new()));
        let sink = text.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 1024];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Screen { text, seen: 0 }
    }

    /// Waits until `needle` appears after what was already waited for.
    fn expect(&mut self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = self.text.lock().unwrap().clone();
            if let Some(at) = text[self.seen..].find(needle) {
                self.seen += at + needle.len();
                return;
            }
            assert!(Instant::now() < deadline, "no {needle:?} in {text:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn watch_answers_what_the_user_types() {
    use std::io::Write as _;
    use std::process::Stdio;

    let stub = Stub::start().await;
    let out = stub
        .run(&["activate", &stub.uri(CODE, Some(&stub.fingerprint))])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    stub.add_request(&id(1), true);
    stub.add_request(&id(2), false);

    let store = stub.store();
    let status = tokio::task::spawn_blocking(move || {
        let mut child =
            std::process::Command::new(assert_cmd::cargo::cargo_bin("twofold-authenticator"))
                .args(["watch", "--store"])
                .arg(&store)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut screen = Screen::start(child.stdout.take().unwrap());
        let mut say = |line: &str| stdin.write_all(format!("{line}\n").as_bytes()).unwrap();

        screen.expect(&format!("sign-in request {}", id(1)));
        screen.expect("the PIN is required to approve");
        screen.expect("number on the sign-in screen");
        say("x");
        screen.expect("type the number shown");
        say("42");
        screen.expect("PIN: ");
        say("0000");
        screen.expect("pending: wrong_pin (attempts left)");
        screen.expect("number on the sign-in screen");
        say("42");
        screen.expect("PIN: ");
        say(PIN);
        screen.expect("accepted");

        screen.expect(&format!("sign-in request {}", id(2)));
        screen.expect("from:        203.0.113.7");
        screen.expect("number on the sign-in screen");
        say("d");
        screen.expect("rejected: denied");
        say("q");
        child.wait().unwrap()
    })
    .await
    .unwrap();
    assert!(status.success());
    let book = stub.book.lock().unwrap();
    let decisions: Vec<_> = book
        .answers
        .iter()
        .map(|(id, a)| (id.clone(), a.decision, a.pin.clone()))
        .collect();
    assert_eq!(
        decisions,
        vec![
            (id(1), Decision::Approve, Some("0000".into())),
            (id(1), Decision::Approve, Some(PIN.into())),
            (id(2), Decision::Deny, None),
        ]
    );
    assert!(book.requests.is_empty());
}
