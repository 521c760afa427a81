//! An in-process Twofold server over TLS on a free loopback port, with a
//! manual clock, on a fresh SQLite or PostgreSQL database; and a cookie-keeping
//! HTTPS client that reads forms the way a browser would.

#![allow(dead_code)]

use axum_server::tls_rustls::RustlsConfig;
use reqwest::redirect::Policy;
use std::net::SocketAddr;
use std::sync::{Arc, Once};
use time::OffsetDateTime;
use twofold_core::clock::{Clock, ManualClock};
use twofold_core::factors::{OathParams, SecurityQuestion};
use twofold_core::oath;
use twofold_core::password::{HashCost, SecretHasher};
use twofold_core::sealing::SealingKey;
use twofold_core::service::CreateUser;
use twofold_core::settings::{key_def, parse_text};
use twofold_core::{Ctx, Engine, MfaService};
use twofold_testkit::db::{Backend, TestDb};
use twofold_web::AppState;

pub const PASSWORD: &str = "correct horse battery";

pub struct Portal {
    pub base: String,
    pub engine: Arc<Engine>,
    pub clock: Arc<ManualClock>,
    pub db: TestDb,
    cert_pem: String,
    handle: axum_server::Handle,
}

impl Drop for Portal {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

fn install_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl Portal {
    pub async fn start(backend: Backend) -> Portal {
        install_crypto();
        let db = TestDb::new(backend).await.expect("fresh database");
        let store = db.store().await.expect("store");
        // Whole 30-second steps keep code arithmetic simple.
        let start = OffsetDateTime::from_unix_timestamp(
            (OffsetDateTime::now_utc().unix_timestamp() / 30) * 30 + 5,
        )
        .unwrap();
        let clock = Arc::new(ManualClock::new(start));
        let engine = Arc::new(Engine::new(
            Arc::new(store),
            clock.clone(),
            SecretHasher::new(HashCost::Fast),
            Arc::new(SealingKey::from_bytes(&rand_key())),
        ));
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let tls = RustlsConfig::from_pem(cert.pem().into_bytes(), key.serialize_pem().into_bytes())
            .await
            .unwrap();
        let app = twofold_web::app(
            AppState {
                service: engine.clone(),
            },
            Some(engine.clone()),
        );
        let handle = axum_server::Handle::new();
        let server =
            axum_server::bind_rustls("127.0.0.1:0".parse().unwrap(), tls).handle(handle.clone());
        tokio::spawn(server.serve(app.into_make_service_with_connect_info::<SocketAddr>()));
        let addr = handle.listening().await.expect("listening");
        Portal {
            base: format!("https://127.0.0.1:{}", addr.port()),
            engine,
            clock,
            db,
            cert_pem: cert.pem(),
            handle,
        }
    }

    pub fn browser(&self) -> Browser {
        self.browser_with_language("en")
    }

    pub fn browser_with_language(&self, lang: &str) -> Browser {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::ACCEPT_LANGUAGE, lang.parse().unwrap());
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
                    .admin_add_question(
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
        oath::hotp(&secret, step as u64, OathParams::default().algorithm, 6)
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
    for (i, b) in k.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(31).wrapping_add(7);
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
            .map(|e| start + e)
            .unwrap_or(self.page.len());
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

/// Generates a test per backend from one async body taking `Backend`.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name(twofold_testkit::db::Backend::Sqlite).await }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name(twofold_testkit::db::Backend::Postgres).await }
            )*
        }
    };
}
