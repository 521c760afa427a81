//! A mobile-app device for tests: an Ed25519 key (ring) that activates
//! with a code and signs its requests to the Mobile App Web Service as
//! `docs/mobile-protocol.md` says, through `twofold_proto::mobile` — the
//! same definitions the server checks against. Tests that need a separate
//! process use the `twofold-authenticator` binary instead; this one lets
//! a test forge, replay and skew requests on purpose.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore;
use reqwest::{Method, StatusCode};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{json, Value};
use twofold_proto::mobile::{
    signed_message, DEVICE_HEADER, NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};

pub struct TestDevice {
    /// `https://127.0.0.1:PORT` (without `/mobile/v1`).
    pub base: String,
    pub device_id: Option<String>,
    key: Ed25519KeyPair,
    http: reqwest::Client,
    /// Seconds added to the wall clock when signing (a server on a manual
    /// clock, or a skewed device).
    pub clock_offset: i64,
}

/// A signed request as sent, to send again (a replay) or alter.
#[derive(Debug, Clone)]
pub struct Sent {
    pub method: Method,
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

pub fn nonce() -> String {
    let mut bytes = [0u8; 18];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

impl TestDevice {
    pub fn new(base: &str) -> TestDevice {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
            .expect("key generation");
        TestDevice {
            base: base.trim_end_matches('/').to_string(),
            device_id: None,
            key: Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("fresh key"),
            http: reqwest::Client::builder()
                .danger_accept_invalid_certs(true)
                .build()
                .expect("HTTP client"),
            clock_offset: 0,
        }
    }

    pub fn public_key(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.key.public_key().as_ref())
    }

    fn now(&self) -> i64 {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
        wall + self.clock_offset
    }

    /// Signs `method path body` as this device (with its id once activated).
    pub fn sign(&self, method: Method, path: &str, body: &[u8]) -> Sent {
        let ts = self.now().to_string();
        let nonce = nonce();
        let message = signed_message(method.as_str(), path, &ts, &nonce, body);
        let signature = URL_SAFE_NO_PAD.encode(self.key.sign(&message).as_ref());
        let mut headers = vec![
            (TIMESTAMP_HEADER, ts),
            (NONCE_HEADER, nonce),
            (SIGNATURE_HEADER, signature),
        ];
        if let Some(id) = &self.device_id {
            headers.push((DEVICE_HEADER, id.clone()));
        }
        Sent {
            method,
            path: path.to_string(),
            headers,
            body: body.to_vec(),
        }
    }

    /// Sends a signed request as it is; answers the status and JSON body
    /// (`Null` when empty).
    pub async fn send(&self, sent: &Sent) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(sent.method.clone(), format!("{}{}", self.base, sent.path))
            .header("content-type", "application/json")
            .body(sent.body.clone());
        for (k, v) in &sent.headers {
            req = req.header(*k, v);
        }
        let resp = req.send().await.expect("request to the mobile service");
        let status = resp.status();
        let bytes = resp.bytes().await.expect("response body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        (status, body)
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let sent = self.sign(method, path, &bytes);
        self.send(&sent).await
    }

    /// Activates with `code`; keeps the device id on success.
    pub async fn activate(&mut self, code: &str) -> (StatusCode, Value) {
        self.device_id = None;
        let body = json!({
            "code": code,
            "device_name": "Test phone",
            "public_key": self.public_key(),
        });
        let (status, v) = self
            .call(Method::POST, "/mobile/v1/activate", Some(body))
            .await;
        if status == StatusCode::OK {
            self.device_id = v["device_id"].as_str().map(str::to_string);
        }
        (status, v)
    }

    /// The pending requests (waiting up to `wait` seconds for one).
    pub async fn pending(&self, wait: u32) -> Vec<Value> {
        let (status, v) = self
            .call(
                Method::GET,
                &format!("/mobile/v1/requests?wait={wait}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "pending: {v}");
        v["requests"].as_array().cloned().unwrap_or_default()
    }

    pub async fn answer(
        &self,
        id: &str,
        decision: &str,
        number: Option<u64>,
        pin: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut body = json!({ "decision": decision });
        if let Some(n) = number {
            body["number"] = json!(n);
        }
        if let Some(p) = pin {
            body["pin"] = json!(p);
        }
        self.call(
            Method::POST,
            &format!("/mobile/v1/requests/{id}/answer"),
            Some(body),
        )
        .await
    }
}
