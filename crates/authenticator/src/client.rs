//! Signed HTTPS calls to one Mobile App Web Service (`/mobile/v1`).
//!
//! Trust is per account: the certificate pinned by the activation URI's
//! `fp`, else the PEM certificates of `--ca-file`, else the public web PKI
//! (webpki roots). Plain `http://` is accepted only on loopback, where
//! there is no network to protect (tests, a local proxy).

use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use twofold_proto::mobile::{
    ActivateRequest, ActivateResponse, DeviceAnswer, DeviceAnswerResult, PendingRequests,
    DEVICE_HEADER, NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};
use twofold_proto::ErrorBody;
use twofold_sdk::Trust;

use crate::error::chain;
use crate::signing::DeviceKey;
use crate::Error;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A call that is not a long-poll gives up after this long.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// The most `wait` the server honours (seconds).
pub const MAX_WAIT_SECONDS: u32 = 60;

/// How the server's certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustChoice {
    /// Exactly this certificate (SHA-256 of its DER).
    Pinned([u8; 32]),
    /// A chain to these PEM certificates, with the host name checked.
    CaFile(PathBuf),
    /// A chain to the public CAs, with the host name checked.
    WebPki,
}

impl TrustChoice {
    /// The trust stored with an account: the pin wins, then the CA file.
    pub fn stored(
        fingerprint: Option<&str>,
        ca_file: Option<&std::path::Path>,
    ) -> Result<TrustChoice, Error> {
        if let Some(fp) = fingerprint {
            let bytes = twofold_sdk::parse_fingerprint(fp)
                .map_err(|e| Error::Other(format!("the stored fingerprint is unusable: {e}")))?;
            return Ok(TrustChoice::Pinned(bytes));
        }
        Ok(match ca_file {
            Some(path) => TrustChoice::CaFile(path.to_path_buf()),
            None => TrustChoice::WebPki,
        })
    }

    fn tls_config(&self) -> Result<rustls::ClientConfig, Error> {
        let sdk = |trust: &Trust| {
            twofold_sdk::client_config(trust).map_err(|e| Error::Other(e.to_string()))
        };
        match self {
            TrustChoice::Pinned(fp) => sdk(&Trust::Fingerprint(*fp)),
            TrustChoice::CaFile(path) => {
                sdk(&Trust::ca_file(path).map_err(|e| Error::Usage(e.to_string()))?)
            }
            TrustChoice::WebPki => {
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let roots = rustls::RootCertStore {
                    roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                };
                let mut config = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(|e| Error::Other(format!("TLS: {e}")))?
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                config.alpn_protocols = vec![b"http/1.1".to_vec()];
                Ok(config)
            }
        }
    }
}

/// Checks a Mobile App Web Service URL and returns it without a trailing
/// slash: `https://` with a host, no credentials, query or fragment;
/// `http://` only to a loopback host.
pub fn check_service_url(url: &str) -> Result<String, Error> {
    let url = url.trim();
    let parsed = Url::parse(url).map_err(|e| {
        Error::Usage(format!(
            "{} is not a valid URL: {e}",
            crate::text::clean(url)
        ))
    })?;
    let host = parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| Error::Usage("the service URL has no host".into()))?;
    let host_is_loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" => {}
        "http" if host_is_loopback => {}
        "http" => {
            return Err(Error::Usage(
                "the service URL must use https:// (plain http:// is only accepted on loopback)"
                    .into(),
            ))
        }
        _ => {
            return Err(Error::Usage(
                "the service URL must start with https://".into(),
            ))
        }
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(Error::Usage(
            "the service URL must not contain credentials".into(),
        ));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(Error::Usage(
            "the service URL must not have a query or fragment".into(),
        ));
    }
    Ok(parsed.as_str().trim_end_matches('/').to_string())
}

/// A client of one Mobile App Web Service. Cheap to clone.
#[derive(Debug, Clone)]
pub struct MobileClient {
    http: reqwest::Client,
    base: Arc<str>,
}

impl MobileClient {
    pub fn new(service_url: &str, trust: &TrustChoice) -> Result<MobileClient, Error> {
        let base = check_service_url(service_url)?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(trust.tls_config()?)
            .connect_timeout(CONNECT_TIMEOUT)
            // A redirect would be followed without the signature matching
            // its path; the protocol has none.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("twofold-authenticator/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Other(format!("HTTP client: {}", chain(&e))))?;
        Ok(MobileClient {
            http,
            base: base.into(),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `POST /activate`, signed with the new key (no device header yet).
    pub async fn activate(
        &self,
        key: &DeviceKey,
        request: &ActivateRequest,
    ) -> Result<ActivateResponse, Error> {
        let body = to_json(request)?;
        let url = self.url("/activate")?;
        let (_, answer) = self
            .send(
                Method::POST,
                url.clone(),
                Some(body),
                key,
                None,
                CALL_TIMEOUT,
            )
            .await?;
        decode(&url, &answer)
    }

    /// `GET /requests?wait=N`: returns when a request is pending or after
    /// `wait` seconds (at most [`MAX_WAIT_SECONDS`]).
    pub async fn pending(
        &self,
        key: &DeviceKey,
        device_id: &str,
        wait: u32,
    ) -> Result<PendingRequests, Error> {
        let wait = wait.min(MAX_WAIT_SECONDS);
        let url = self.url(&format!("/requests?wait={wait}"))?;
        // The server may hold the request the whole `wait`, then answer.
        let timeout = CALL_TIMEOUT + Duration::from_secs(u64::from(wait));
        let (_, answer) = self
            .send(
                Method::GET,
                url.clone(),
                None,
                key,
                Some(device_id),
                timeout,
            )
            .await?;
        decode(&url, &answer)
    }

    /// `POST /requests/{id}/answer`.
    pub async fn answer(
        &self,
        key: &DeviceKey,
        device_id: &str,
        request_id: &str,
        answer: &DeviceAnswer,
    ) -> Result<DeviceAnswerResult, Error> {
        check_request_id(request_id)?;
        let url = self.url(&format!("/requests/{request_id}/answer"))?;
        let body = to_json(answer)?;
        let (_, result) = self
            .send(
                Method::POST,
                url.clone(),
                Some(body),
                key,
                Some(device_id),
                CALL_TIMEOUT,
            )
            .await?;
        decode(&url, &result)
    }

    /// `POST /deactivate` with an empty body.
    pub async fn deactivate(&self, key: &DeviceKey, device_id: &str) -> Result<(), Error> {
        let url = self.url("/deactivate")?;
        self.send(
            Method::POST,
            url,
            Some(Vec::new()),
            key,
            Some(device_id),
            CALL_TIMEOUT,
        )
        .await
        .map(|_| ())
    }

    fn url(&self, suffix: &str) -> Result<Url, Error> {
        let text = format!("{}{suffix}", self.base);
        Url::parse(&text).map_err(|e| Error::Other(format!("{}: {e}", crate::text::clean(&text))))
    }

    /// Signs and sends one request. The path and query are taken from the
    /// parsed URL, which is what reqwest writes on the request line, and the
    /// body bytes signed are the body bytes sent.
    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
        key: &DeviceKey,
        device_id: Option<&str>,
        timeout: Duration,
    ) -> Result<(StatusCode, Vec<u8>), Error> {
        let path_and_query = path_and_query(&url);
        let body_bytes: &[u8] = body.as_deref().unwrap_or_default();
        let signature = key.sign(
            method.as_str(),
            &path_and_query,
            body_bytes,
            crate::now_unix(),
        )?;
        let shown = url.to_string();
        let mut rb = self
            .http
            .request(method, url)
            .timeout(timeout)
            .header(TIMESTAMP_HEADER, &signature.timestamp)
            .header(NONCE_HEADER, &signature.nonce)
            .header(SIGNATURE_HEADER, &signature.signature);
        if let Some(id) = device_id {
            rb = rb.header(DEVICE_HEADER, id);
        }
        if let Some(body) = body {
            if !body.is_empty() {
                rb = rb.header(CONTENT_TYPE, "application/json");
            }
            rb = rb.body(body);
        }
        let transport = |e: reqwest::Error| Error::Transport {
            url: shown.clone(),
            detail: chain(&e),
        };
        let response = rb.send().await.map_err(transport)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(transport)?.to_vec();
        if status.is_success() {
            return Ok((status, bytes));
        }
        let body = serde_json::from_slice::<ErrorBody>(&bytes).unwrap_or_else(|_| ErrorBody {
            error: status
                .canonical_reason()
                .unwrap_or("error")
                .to_ascii_lowercase()
                .replace(' ', "_"),
            message: format!("HTTP {}", status.as_u16()),
            field: None,
            reason: None,
        });
        Err(Error::Api {
            url: shown,
            status: status.as_u16(),
            body: Box::new(body),
        })
    }
}

/// The path and query of a URL as they appear on the request line.
pub fn path_and_query(url: &Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    }
}

/// Request ids are 32 hex digits; anything outside `A-Za-z0-9-_` is refused
/// before it can change the path it is put into.
pub fn check_request_id(id: &str) -> Result<(), Error> {
    if id.is_empty()
        || id.len() > 64
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(Error::Usage(format!(
            "{} is not a request id (32 hex digits, as `pending` prints them)",
            crate::text::clean(id)
        )));
    }
    Ok(())
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value).map_err(|e| Error::Other(format!("cannot encode the request: {e}")))
}

fn decode<T: DeserializeOwned>(url: &Url, body: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|e| Error::Decode {
        url: url.to_string(),
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_urls_are_checked() {
        assert_eq!(
            check_service_url("https://mfa.example.org:8443/mobile/v1/").unwrap(),
            "https://mfa.example.org:8443/mobile/v1"
        );
        assert_eq!(
            check_service_url("http://127.0.0.1:8080/mobile/v1").unwrap(),
            "http://127.0.0.1:8080/mobile/v1"
        );
        assert!(check_service_url("http://localhost/mobile/v1").is_ok());
        assert!(check_service_url("http://[::1]/mobile/v1").is_ok());
        assert!(check_service_url("http://mfa.example.org/mobile/v1").is_err());
        assert!(check_service_url("ftp://mfa.example.org/").is_err());
        assert!(check_service_url("https://u:p@mfa.example.org/").is_err());
        assert!(check_service_url("https://mfa.example.org/?x=1").is_err());
        assert!(check_service_url("not a url").is_err());
    }

    #[test]
    fn the_signed_path_is_the_request_line() {
        let url = Url::parse("https://mfa.example.org:8443/mobile/v1/requests?wait=30").unwrap();
        assert_eq!(path_and_query(&url), "/mobile/v1/requests?wait=30");
        let url = Url::parse("https://mfa.example.org/mobile/v1/activate").unwrap();
        assert_eq!(path_and_query(&url), "/mobile/v1/activate");
    }

    #[test]
    fn request_ids_cannot_change_the_path() {
        assert!(check_request_id(&"c0f3".repeat(8)).is_ok());
        for bad in ["", "../deactivate", "a/b", "a?b", "a b", &"a".repeat(65)] {
            assert!(check_request_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn stored_trust_prefers_the_pin() {
        let fp = "ab".repeat(32);
        let ca = std::path::Path::new("/ca.pem");
        assert_eq!(
            TrustChoice::stored(Some(&fp), Some(ca)).unwrap(),
            TrustChoice::Pinned([0xab; 32])
        );
        assert_eq!(
            TrustChoice::stored(None, Some(ca)).unwrap(),
            TrustChoice::CaFile(ca.to_path_buf())
        );
        assert_eq!(
            TrustChoice::stored(None, None).unwrap(),
            TrustChoice::WebPki
        );
        assert!(TrustChoice::stored(Some("zz"), None).is_err());
    }

    #[test]
    fn every_trust_choice_builds_a_client() {
        assert!(
            MobileClient::new("https://mfa.example.org/mobile/v1", &TrustChoice::WebPki).is_ok()
        );
        assert!(MobileClient::new(
            "https://mfa.example.org/mobile/v1",
            &TrustChoice::Pinned([1; 32])
        )
        .is_ok());
        let missing = TrustChoice::CaFile("/nonexistent/ca.pem".into());
        assert!(MobileClient::new("https://mfa.example.org/mobile/v1", &missing).is_err());
    }
}
