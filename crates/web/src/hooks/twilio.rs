//! The Twilio-compatible webhooks, under `/hooks/twilio/` on the public URL:
//!
//! * `POST voice/{id}` — the call of challenge `id` connected: TwiML that
//!   says the prompt and gathers keys (`#` finishing);
//! * `POST gather/{id}` — the keys (`Digits`, `FinishedOnKey`): TwiML that
//!   approves, asks again or hangs up;
//! * `POST status/{id}` — the call's status (`CallStatus`);
//! * `POST sms` — an inbound text message (`From`, `Body`).
//!
//! Every one is believed only with a valid `X-Twilio-Signature` (checked by
//! the engine through the provider's adapter); a forgery gets 403.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Router};
use std::sync::Arc;
use twofold_core::service::{CallStep, ProviderHooks, SignedHook};

use crate::client_ip::ClientIp;
use crate::error::ApiError;

const SIGNATURE: &str = "x-twilio-signature";
const BASE: &str = "/hooks/twilio/";

type Hooks = Arc<dyn ProviderHooks>;

pub fn router(hooks: Hooks) -> Router {
    Router::new()
        .route("/hooks/twilio/voice/{id}", post(voice))
        .route("/hooks/twilio/gather/{id}", post(gather))
        .route("/hooks/twilio/status/{id}", post(status))
        .route("/hooks/twilio/sms", post(sms))
        .with_state(hooks)
}

/// The request as the engine checks it: path and query under the hooks'
/// base, the form fields in their order, the signature and the address.
fn signed(uri: &Uri, headers: &HeaderMap, body: &Bytes, ip: Option<ClientIp>) -> SignedHook {
    let path_and_query = uri
        .path_and_query()
        .map_or("", |p| p.as_str())
        .strip_prefix(BASE)
        .unwrap_or_default()
        .to_string();
    SignedHook {
        path_and_query,
        // A body that is no form carries no fields (and then no signature
        // matches).
        fields: serde_urlencoded::from_bytes(body).unwrap_or_default(),
        signature: headers
            .get(SIGNATURE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string(),
        source_ip: ip.map(|ClientIp(ip)| ip),
    }
}

/// Text inside XML.
fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

fn twiml(inner: &str) -> Response {
    (
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response>{inner}</Response>\n"),
    )
        .into_response()
}

/// The TwiML of a call's next step. The gather's action is relative to the
/// document (`voice/{id}` and `gather/{id}` are siblings), so it follows the
/// public URL whatever its path.
fn call_step(id: &str, step: &CallStep) -> Response {
    match step {
        CallStep::Gather { voice, say } => twiml(&format!(
            "<Gather input=\"dtmf\" finishOnKey=\"#\" timeout=\"10\" actionOnEmptyResult=\"true\" \
             action=\"../gather/{}\" method=\"POST\"><Say language=\"{}\">{}</Say></Gather>",
            xml_escape(id),
            xml_escape(voice),
            xml_escape(say)
        )),
        CallStep::Hangup { voice, say } => twiml(&format!(
            "<Say language=\"{}\">{}</Say><Hangup/>",
            xml_escape(voice),
            xml_escape(say)
        )),
    }
}

async fn voice(
    State(hooks): State<Hooks>,
    Path(id): Path<String>,
    ip: Option<Extension<ClientIp>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let hook = signed(&uri, &headers, &body, ip.map(|Extension(i)| i));
    let step = hooks.call_answered(&hook, &id).await?;
    Ok(call_step(&id, &step))
}

async fn gather(
    State(hooks): State<Hooks>,
    Path(id): Path<String>,
    ip: Option<Extension<ClientIp>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let hook = signed(&uri, &headers, &body, ip.map(|Extension(i)| i));
    let step = hooks.call_keys(&hook, &id).await?;
    Ok(call_step(&id, &step))
}

async fn status(
    State(hooks): State<Hooks>,
    Path(id): Path<String>,
    ip: Option<Extension<ClientIp>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let hook = signed(&uri, &headers, &body, ip.map(|Extension(i)| i));
    hooks.call_status(&hook, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn sms(
    State(hooks): State<Hooks>,
    ip: Option<Extension<ClientIp>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let hook = signed(&uri, &headers, &body, ip.map(|Extension(i)| i));
    hooks.sms_received(&hook).await?;
    // No reply message: each would cost the organisation a text.
    Ok(twiml(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spoken_text_is_escaped() {
        assert_eq!(xml_escape("a<b>&\"'\u{7}"), "a&lt;b&gt;&amp;&quot;&apos;");
    }
}
