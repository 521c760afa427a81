//! The Mobile App Web Service through a portal on a separate server
//! (`twofold portal`): phones on the internet reach the portal, which holds
//! no database, so it passes `/mobile/v1` requests on to the MFA server as
//! they came — the path, query, signature headers and body exactly, since
//! the device's signature covers them — and the answer back. It adds
//! `X-Forwarded-For` with the phone's address; the MFA server believes it
//! only from addresses in its `proxy.trusted`, so list the portal there (or
//! every phone's failures count against the portal's one address).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use std::sync::Arc;
use std::time::Duration;
use twofold_proto::mobile::{DEVICE_HEADER, NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use twofold_proto::ErrorBody;

use crate::client_ip::ClientIp;

/// Longer than the longest long-poll the server answers (60 s).
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(80);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// What is passed on: the body's type and the device's proof.
const PASSED: [&str; 5] = [
    "content-type",
    DEVICE_HEADER,
    TIMESTAMP_HEADER,
    NONCE_HEADER,
    SIGNATURE_HEADER,
];

pub struct Relay {
    /// The MFA server's base URL (`sdk.url`), without a trailing slash.
    upstream: String,
    http: reqwest::Client,
}

impl Relay {
    /// A relay to `upstream` trusting exactly what `tls` trusts (the
    /// portal's `sdk.ca_file` or `sdk.fingerprint`).
    pub fn new(upstream: &str, tls: rustls::ClientConfig) -> Result<Relay, String> {
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .https_only(true)
            .timeout(UPSTREAM_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("twofold-portal/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Relay {
            upstream: upstream.trim_end_matches('/').to_string(),
            http,
        })
    }
}

/// The same routes as the MFA server's `/mobile/v1`, passed on.
pub fn router(relay: Arc<Relay>) -> Router {
    Router::new()
        .route("/mobile/v1/activate", post(forward))
        .route("/mobile/v1/requests", get(forward))
        .route("/mobile/v1/requests/{id}/answer", post(forward))
        .route("/mobile/v1/deactivate", post(forward))
        .with_state(relay)
}

fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(ErrorBody {
            error: "unavailable".into(),
            message: "the MFA server cannot be reached; try again".into(),
            field: None,
            reason: None,
        }),
    )
        .into_response()
}

async fn forward(
    State(relay): State<Arc<Relay>>,
    method: Method,
    uri: Uri,
    ip: Option<Extension<ClientIp>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_string(), |p| p.as_str().to_string());
    let mut request = relay
        .http
        .request(method, format!("{}{path}", relay.upstream))
        .body(body);
    for name in PASSED {
        if let Some(v) = headers.get(name) {
            request = request.header(name, v);
        }
    }
    if let Some(Extension(ClientIp(ip))) = ip {
        request = request.header("x-forwarded-for", ip.to_string());
    }
    let answer = match request.send().await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, "cannot pass a mobile-app request on to the MFA server");
            return unavailable();
        }
    };
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let content_type = answer
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok());
    let bytes = match answer.bytes().await {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %e, "the MFA server's answer to a mobile-app request broke off");
            return unavailable();
        }
    };
    let mut response = (status, bytes).into_response();
    if let Some(ct) = content_type {
        response.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    response
}
