//! An in-process Twofold server over TLS on a free loopback port, with a
//! manual clock, on a fresh SQLite or PostgreSQL database; and a cookie-keeping
//! HTTPS client that reads forms the way a browser would.
//!
//! The portal runs in one of two modes. `InProcess`: the server's own portal
//! on the engine. `Remote`: a second, portal-only server (no database) whose
//! `PortalService` is `twofold_sdk::RemoteService`, reaching the first server
//! over HTTPS through the Web Service SDK with a service account and the
//! server's pinned certificate fingerprint, as `twofold portal` does. Either
//! way `base` is the portal the browser talks to and `engine` the MFA
//! server's engine, for setup and checks.

#![allow(dead_code)]

use axum_server::tls_rustls::RustlsConfig;
use reqwest::redirect::Policy;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use sha2::Digest;
use std::net::SocketAddr;
use std::sync::{Arc, Once};
use time::OffsetDateTime;
use twofold_core::clock::{Clock, ManualClock};
use twofold_core::factors::{OathParams, SecurityQuestion};
use twofold_core::oath;
use twofold_core::password::{HashCost, Pepper, SecretHasher};
use twofold_core::sealing::SealingKey;
use twofold_core::service::CreateUser;
use twofold_core::service::ServiceAccountSpec;
use twofold_core::settings::{key_def, parse_text};
use twofold_core::{AdminService, Ctx, Engine, Permissions, Role, Scope};
use twofold_link::RemoteService;
use twofold_sdk::{ClientOptions, SdkClient, Trust};
use twofold_testkit::db::{Backend, TestDb};
use twofold_web::AppState;

/// Where the portal runs relative to the MFA server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    InProcess,
    Remote,
}

tokio::task_local! {
    static MODE: Mode;
}

/// Runs a test body with `Portal::start` starting portals in `mode`.
pub async fn in_mode<F: std::future::Future>(mode: Mode, body: F) -> F::Output {
    MODE.scope(mode, body).await
}

/// The remote portal connects from this loopback address, so the MFA server
/// sees the portal host apart from the browsers (127.0.0.1), as it would on
/// a separate server: a throttled end user does not throttle the portal.
pub const REMOTE_PORTAL_SOURCE: &str = "127.0.0.2";
pub const SERVICE_ACCOUNT: &str = "portal";

pub const PASSWORD: &str = "correct horse battery";

pub struct Portal {
    /// The portal the browser talks to.
    pub base: String,
    /// The MFA server (portal, SDK and health); `base` when in process.
    pub server_base: String,
    /// SHA-256 of the MFA server's certificate, as `twofold serve` prints it.
    pub server_fingerprint: String,
    /// The MFA server's certificate (PEM).
    pub server_cert_pem: String,
    pub mode: Mode,
    pub engine: Arc<Engine>,
    pub clock: Arc<ManualClock>,
    pub db: TestDb,
    cert_pem: String,
    /// The telephony provider's emulator, when started with phones.
    pub phone: Option<twofold_testkit::twilio::TwilioEmulator>,
    handles: Vec<axum_server::Handle>,
    /// Remote mode: how more portals are made (same certificate, same account).
    remote: Option<(Cert, String)>,
}

impl Drop for Portal {
    fn drop(&mut self) {
        for h in &self.handles {
            h.shutdown();
        }
    }
}

#[derive(Clone)]
struct Cert {
    pem: String,
    key_pem: String,
    fingerprint: String,
}

fn new_cert() -> Cert {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    Cert {
        pem: cert.pem(),
        key_pem: key.serialize_pem(),
        fingerprint: sha2::Sha256::digest(cert.der())
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":"),
    }
}

/// Serves `app` over TLS with `cert` on a free loopback port.
async fn serve(app: axum::Router, cert: &Cert) -> (String, axum_server::Handle) {
    let tls = RustlsConfig::from_pem(
        cert.pem.clone().into_bytes(),
        cert.key_pem.clone().into_bytes(),
    )
    .await
    .unwrap();
    let handle = axum_server::Handle::new();
    let server =
        axum_server::bind_rustls("127.0.0.1:0".parse().unwrap(), tls).handle(handle.clone());
    tokio::spawn(server.serve(app.into_make_service_with_connect_info::<SocketAddr>()));
    let addr = handle.listening().await.expect("listening");
    (format!("https://127.0.0.1:{}", addr.port()), handle)
}

fn install_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl Portal {
    /// A portal on a fresh database, in the mode of the surrounding
    /// `in_mode` (in process when there is none).
    pub async fn start(backend: Backend) -> Portal {
        let mode = MODE.try_with(|m| *m).unwrap_or(Mode::InProcess);
        Portal::start_in(backend, mode).await
    }

    pub async fn start_in(backend: Backend, mode: Mode) -> Portal {
        Portal::start_with(backend, mode, None).await
    }

    /// A portal whose MFA server calls and texts through the provider
    /// emulator (`phone`), in the mode of the surrounding `in_mode`.
    pub async fn start_with_phones(backend: Backend) -> Portal {
        let mode = MODE.try_with(|m| *m).unwrap_or(Mode::InProcess);
        let emu = twofold_testkit::twilio::TwilioEmulator::start().await;
        Portal::start_with(backend, mode, Some(emu)).await
    }

    async fn start_with(
        backend: Backend,
        mode: Mode,
        phone: Option<twofold_testkit::twilio::TwilioEmulator>,
    ) -> Portal {
        install_crypto();
        let db = TestDb::new(backend).await.expect("fresh database");
        let store = db.store().await.expect("store");
        // Whole 30-second steps keep code arithmetic simple.
        let start = OffsetDateTime::from_unix_timestamp(
            (OffsetDateTime::now_utc().unix_timestamp() / 30) * 30 + 5,
        )
        .unwrap();
        let clock = Arc::new(ManualClock::new(start));
        let engine = Engine::new(
            Arc::new(store),
            clock.clone(),
            SecretHasher::new(HashCost::Fast, Pepper::from_bytes(&[9; 32])),
            Arc::new(SealingKey::from_bytes(&rand_key())),
        )
        .with_push(Arc::new(
            twofold_delivery::PushWake::new().expect("push wake-ups"),
        ));
        let engine = Arc::new(match &phone {
            Some(emu) => engine.with_telephony(Arc::new(
                twofold_delivery::Twilio::new(twofold_delivery::TwilioConfig {
                    base_url: emu.base_url.clone(),
                    account_sid: twofold_testkit::twilio::ACCOUNT_SID.into(),
                    auth_token: twofold_testkit::twilio::AUTH_TOKEN.to_string().into(),
                    from: "+3197010260001".into(),
                })
                .expect("provider configuration"),
            )),
            None => engine,
        });
        let server_cert = new_cert();
        let app = twofold_web::app(
            AppState {
                service: engine.clone(),
            },
            Some(twofold_web::ServerParts::of(engine.clone())),
        );
        let (server_base, server_handle) = serve(app, &server_cert).await;
        // The provider reaches the webhooks on the MFA server.
        engine.listening_at(&server_base);
        let mut portal = Portal {
            base: server_base.clone(),
            server_base,
            server_fingerprint: server_cert.fingerprint.clone(),
            server_cert_pem: server_cert.pem.clone(),
            mode,
            engine,
            clock,
            db,
            cert_pem: server_cert.pem.clone(),
            phone,
            handles: vec![server_handle],
            remote: None,
        };
        if mode == Mode::Remote {
            let (_, secret) = portal
                .engine
                .create_service_account(&Ctx::cli(), SERVICE_ACCOUNT, full_admin())
                .await
                .expect("service account");
            portal.remote = Some((new_cert(), secret));
            let base = portal.another_portal().await;
            portal.base = base;
            portal.cert_pem = portal.remote.as_ref().unwrap().0.pem.clone();
        }
        portal
    }

    /// Remote mode: starts one more portal-only server on the same MFA
    /// server (same certificate, so browsers trust it too) and returns its
    /// base URL — the second node behind a load balancer.
    pub async fn another_portal(&mut self) -> String {
        let (cert, secret) = self
            .remote
            .clone()
            .expect("another_portal needs Mode::Remote");
        let mut options = ClientOptions::new(
            &self.server_base,
            SERVICE_ACCOUNT,
            &secret,
            Trust::fingerprint(&self.server_fingerprint).unwrap(),
        );
        options.local_address = Some(REMOTE_PORTAL_SOURCE.parse().unwrap());
        let remote = RemoteService::new(SdkClient::new(options).expect("SDK client"));
        // A portal-only server: no engine, so no SDK of its own.
        let app = twofold_web::app(
            AppState {
                service: Arc::new(remote),
            },
            None,
        );
        let (base, handle) = serve(app, &cert).await;
        self.handles.push(handle);
        base
    }

    /// The MFA server's SDK credentials in remote mode.
    pub fn sdk_secret(&self) -> Option<&str> {
        self.remote.as_ref().map(|(_, s)| s.as_str())
    }

    pub fn browser(&self) -> Browser {
        self.browser_with_language("en")
    }

    pub fn browser_with_language(&self, lang: &str) -> Browser {
        self.browser_with_headers(&[("accept-language", lang)])
    }

    /// A browser sending `extra` headers with every request.
    pub fn browser_with_headers(&self, extra: &[(&'static str, &str)]) -> Browser {
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in extra {
            headers.insert(*name, value.parse().unwrap());
        }
        Browser {
            base: self.base.clone(),
            client: reqwest::Client::builder()
                .add_root_certificate(
                    reqwest::Certificate::from_pem(self.cert_pem.as_bytes()).unwrap(),
                )
                .tls_built_in_root_certs(false)
                .cookie_store(true)
                .redirect(Policy::none())
                .default_headers(headers)
                .build()
                .unwrap(),
            page: String::new(),
        }
    }

    pub async fn set(&self, key: &str, value: &str) {
        let v = parse_text(key_def(key).unwrap(), value).unwrap();
        self.engine.set_setting(&Ctx::cli(), key, v).await.unwrap();
    }

    pub async fn user(&self, name: &str) -> twofold_core::user::User {
        self.engine
            .create_user(
                &Ctx::cli(),
                CreateUser {
                    username: name.into(),
                    password: Some(PASSWORD.into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap()
    }

    pub async fn questions(&self, n: usize) -> Vec<SecurityQuestion> {
        let mut out = Vec::new();
        for i in 0..n {
            out.push(
                self.engine
                    .add_question(
                        &Ctx::cli(),
                        "en",
                        &format!("What was the name of pet number {i}?"),
                    )
                    .await
                    .unwrap(),
            );
        }
        out
    }

    /// The code of a TOTP secret `steps` time steps from now.
    pub fn totp(&self, secret_b32: &str, steps: i64) -> String {
        let secret = oath::parse_base32_secret(secret_b32).unwrap();
        let step = oath::totp_step(self.clock.now().unix_timestamp(), 30) + steps;
        oath::hotp(
            &secret,
            u64::try_from(step).expect("a step after 1970"),
            OathParams::default().algorithm,
            6,
        )
    }

    pub fn advance(&self, seconds: i64) {
        self.clock.advance(time::Duration::seconds(seconds));
    }

    pub async fn audit_results(&self, subject: &str) -> Vec<String> {
        self.engine
            .audit_events(
                &Ctx::cli(),
                twofold_core::audit::AuditQuery {
                    limit: 1000,
                    subject: Some(subject.into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.result.as_str())
            .collect()
    }
}

fn rand_key() -> [u8; 32] {
    let mut k = [0u8; 32];
    for (b, i) in k.iter_mut().zip(0u8..) {
        *b = i.wrapping_mul(31).wrapping_add(7);
    }
    k
}

pub struct Browser {
    pub base: String,
    pub client: reqwest::Client,
    /// The last page fetched with `open`.
    pub page: String,
}

pub struct Posted {
    pub status: u16,
    pub location: String,
    pub refusal: Option<String>,
}

impl Browser {
    pub async fn open(&mut self, path: &str) -> &str {
        let res = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        assert!(
            res.status().is_success() || res.status().is_redirection(),
            "GET {path}: {}",
            res.status()
        );
        self.page = res.text().await.unwrap();
        &self.page
    }

    /// The CSRF token of the last page.
    pub fn csrf(&self) -> String {
        field_value(&self.page, "csrf").unwrap_or_default()
    }

    /// Posts a form with the last page's CSRF token; does not follow the redirect.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Posted {
        let csrf = self.csrf();
        let mut form: Vec<(&str, &str)> = vec![("csrf", &csrf)];
        form.extend_from_slice(fields);
        self.post_raw(path, &form).await
    }

    pub async fn post_raw(&mut self, path: &str, form: &[(&str, &str)]) -> Posted {
        let res = self
            .client
            .post(format!("{}{path}", self.base))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        assert_ne!(status, 500, "POST {path} gave 500");
        Posted {
            status,
            location: res
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string(),
            refusal: res
                .headers()
                .get("x-twofold-refusal")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        }
    }

    /// Posts, then opens where the server sent us (a browser's POST-redirect-GET).
    pub async fn submit(&mut self, path: &str, fields: &[(&str, &str)]) -> &str {
        let p = self.post(path, fields).await;
        assert_eq!(p.status, 303, "POST {path}");
        let to = p.location.clone();
        self.open(&to).await
    }

    pub async fn sign_in(&mut self, user: &str, password: &str) -> &str {
        self.open("/portal").await;
        self.submit(
            "/portal/sign-in",
            &[("username", user), ("password", password)],
        )
        .await
    }

    pub fn h1(&self) -> String {
        between(&self.page, "<h1>", "</h1>").unwrap_or_default()
    }

    pub fn error(&self) -> Option<String> {
        between(&self.page, "id=\"form-error\">", "</p>")
    }

    pub fn notice(&self) -> Option<String> {
        between(&self.page, "class=\"notice\" role=\"status\">", "</p>")
    }

    /// The secret shown on the OATH setup page, without spaces.
    pub fn secret(&self) -> String {
        between(&self.page, "id=\"secret\" class=\"secret\">", "</code>")
            .expect("secret on the page")
            .replace(' ', "")
    }

    pub fn has(&self, needle: &str) -> bool {
        self.page.contains(needle)
    }

    /// Question ids offered in the first select on the page.
    pub fn question_ids(&self) -> Vec<String> {
        let Some(start) = self.page.find("id=\"question-1\"") else {
            return vec![];
        };
        let end = self.page[start..]
            .find("</select>")
            .map_or(self.page.len(), |e| start + e);
        self.page[start..end]
            .split("<option value=\"")
            .skip(1)
            .filter_map(|s| s.split('"').next())
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// Question fields on the second-step page (`q-<id>`).
    pub fn fallback_question_ids(&self) -> Vec<String> {
        self.page
            .split("name=\"q-")
            .skip(1)
            .filter_map(|s| s.split('"').next())
            .map(str::to_string)
            .collect()
    }
}

pub fn field_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_string())
}

fn between(html: &str, a: &str, b: &str) -> Option<String> {
    let start = html.find(a)? + a.len();
    let end = html[start..].find(b)? + start;
    Some(html[start..end].trim().to_string())
}

/// Generates a test per backend and portal mode from one async body taking
/// `Backend`: `in_process::sqlite::NAME`, `remote::postgres::NAME`, ...
#[allow(unused_macros)]
macro_rules! portal_modes {
    ($($name:ident),* $(,)?) => {
        mod in_process {
            use super::*;
            twofold_testkit::both_backends!(
                via |test| crate::common::in_mode(crate::common::Mode::InProcess, test);
                $($name),*
            );
        }
        mod remote {
            use super::*;
            twofold_testkit::both_backends!(
                via |test| crate::common::in_mode(crate::common::Mode::Remote, test);
                $($name),*
            );
        }
    };
}

/// A service account that may do everything: what accounts made before
/// roles existed became, and what the SDK suites call with.
pub fn full_admin() -> ServiceAccountSpec {
    ServiceAccountSpec {
        role: Role::Admin,
        permissions: Permissions::all(),
        scope: Scope::All,
    }
}

/// An SDK caller with one set of credentials.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub client: reqwest::Client,
    pub user: String,
    pub secret: String,
}

impl Api {
    pub async fn new(p: &Portal, name: &str) -> Api {
        let (_, secret) = p
            .engine
            .create_service_account(&Ctx::cli(), name, full_admin())
            .await
            .unwrap();
        Api::with(p, name, &secret)
    }

    pub fn with(p: &Portal, user: &str, secret: &str) -> Api {
        let b = p.browser();
        Api {
            base: p.base.clone(),
            client: b.client,
            user: user.into(),
            secret: secret.into(),
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, format!("{}/sdk/v1{path}", self.base))
            .basic_auth(&self.user, Some(&self.secret));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "{path}: {text}");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }
    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(body)).await
    }
    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, None).await
    }
    pub async fn raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> (StatusCode, Value) {
        let res = self
            .client
            .post(format!("{}/sdk/v1{path}", self.base))
            .basic_auth(&self.user, Some(&self.secret))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }
}
