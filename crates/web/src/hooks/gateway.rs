//! `POST /hooks/gateway/sms`: a text message that came in through the
//! generic HTTP SMS gateway — form fields or a JSON object with `from` (the
//! sender, E.164) and `text` — believed only with the shared secret of
//! `sms_gateway.inbound_secret` in the `X-Twofold-Secret` header.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Extension, Router};
use std::sync::Arc;
use twofold_core::service::{ProviderHooks, SignedHook};

use crate::client_ip::ClientIp;
use crate::error::ApiError;

pub const SECRET_HEADER: &str = "x-twofold-secret";

type Hooks = Arc<dyn ProviderHooks>;

pub fn router(hooks: Hooks) -> Router {
    Router::new()
        .route("/hooks/gateway/sms", post(sms))
        .with_state(hooks)
}

/// The fields of a form or of a flat JSON object (strings only).
fn fields(headers: &HeaderMap, body: &Bytes) -> Vec<(String, String)> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    if json {
        serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(body)
            .map(|m| {
                m.into_iter()
                    .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    } else {
        serde_urlencoded::from_bytes(body).unwrap_or_default()
    }
}

async fn sms(
    State(hooks): State<Hooks>,
    ip: Option<Extension<ClientIp>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let hook = SignedHook {
        path_and_query: "sms".into(),
        fields: fields(&headers, &body),
        signature: headers
            .get(SECRET_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string(),
        source_ip: ip.map(|Extension(ClientIp(ip))| ip),
    };
    hooks.gateway_sms_received(&hook).await?;
    Ok(StatusCode::NO_CONTENT)
}
