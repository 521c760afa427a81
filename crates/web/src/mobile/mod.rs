//! The Mobile App Web Service under `/mobile/v1` (`docs/mobile-protocol.md`):
//! activation, pending requests by long-poll, answers, deactivation. The
//! handlers hand the request over exactly as it arrived — signature
//! headers, method, path and query, body bytes, address — and the engine's
//! `MobileService` checks the device's signature and decides; they only
//! translate between the wire types (`twofold_proto::mobile`) and the
//! engine's.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use time::format_description::well_known::Rfc3339;
use twofold_core::mobile::{PushKind, PushTarget};
use twofold_core::service::mobile::{ActivateDevice, DeviceDecision, SignedRequest};
use twofold_core::service::MobileService;
use twofold_core::Error;
use twofold_proto::mobile::{
    ActivateRequest, ActivateResponse, Decision, DeviceAnswer, DeviceAnswerResult, OathSeed,
    PendingRequest, PendingRequests, DEVICE_HEADER, NONCE_HEADER, SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
};
use twofold_proto::ErrorBody;

use crate::client_ip::ClientIp;
use crate::error::ApiError;

pub mod relay;

type Mobile = Arc<dyn MobileService>;
type ApiResult<T> = Result<T, ApiError>;

pub fn router(mobile: Mobile) -> Router {
    Router::new()
        .route("/mobile/v1/activate", post(activate))
        .route("/mobile/v1/requests", get(requests))
        .route("/mobile/v1/requests/{id}/answer", post(answer))
        .route("/mobile/v1/deactivate", post(deactivate))
        .with_state(mobile)
}

fn header(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// The request as the device signed it.
fn signed(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
    ip: Option<Extension<ClientIp>>,
) -> SignedRequest {
    let device = header(headers, DEVICE_HEADER);
    SignedRequest {
        device_id: (!device.is_empty()).then_some(device),
        timestamp: header(headers, TIMESTAMP_HEADER),
        nonce: header(headers, NONCE_HEADER),
        signature: header(headers, SIGNATURE_HEADER),
        method: method.as_str().to_string(),
        path_and_query: uri
            .path_and_query()
            .map_or_else(|| uri.path().to_string(), |p| p.as_str().to_string()),
        body: body.to_vec(),
        source_ip: ip.map(|Extension(ClientIp(ip))| ip),
    }
}

/// The JSON body, or a 422 naming what is wrong with it.
fn json<T: DeserializeOwned>(body: &Bytes) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|e| Error::invalid("body", e.to_string()))
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// Activates a device with an activation code. The request is signed with
/// the Ed25519 key it registers (no `X-Twofold-Device` yet). Answers the
/// device id and the OATH secret the app shows codes of.
#[utoipa::path(post, path = "/mobile/v1/activate", tag = "mobile", operation_id = "mobile_activate", security(()),
    params(
        ("x-twofold-timestamp" = String, Header, description = "Unix seconds when signed", pattern = "^[0-9]{1,12}$"),
        ("x-twofold-nonce" = String, Header, description = "16-64 characters of A-Z a-z 0-9 - _, never reused", pattern = "^[A-Za-z0-9_-]{16,64}$"),
        ("x-twofold-signature" = String, Header, description = "Ed25519 signature, base64url, of the signed message (docs/mobile-protocol.md)", pattern = "^[A-Za-z0-9_-]{86}$"),
    ),
    request_body = ActivateRequest,
    responses((status = 200, body = ActivateResponse),
              (status = 401, body = ErrorBody, description = "Bad signature or timestamp"),
              (status = 403, body = ErrorBody, description = "The activation code is wrong, expired or used"),
              (status = 409, body = ErrorBody, description = "The user has as many devices as allowed (`device_limit`)"),
              (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub(crate) async fn activate(
    State(mobile): State<Mobile>,
    method: Method,
    uri: Uri,
    ip: Option<Extension<ClientIp>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<ActivateResponse>> {
    let request = signed(&method, &uri, &headers, &body, ip);
    let r: ActivateRequest = json(&body)?;
    let push = r.push.map(|p| PushTarget {
        kind: match p.kind {
            twofold_proto::mobile::PushKind::Ntfy => PushKind::Ntfy,
            twofold_proto::mobile::PushKind::Webhook => PushKind::Webhook,
        },
        url: p.url,
    });
    let a = mobile
        .activate_device(
            &request,
            ActivateDevice {
                code: r.code,
                device_name: r.device_name,
                public_key: r.public_key,
                push,
            },
        )
        .await?;
    Ok(Json(ActivateResponse {
        device_id: a.device_id,
        username: a.username,
        account: a.account,
        oath: OathSeed {
            secret: a.oath_secret,
            algorithm: "SHA1".into(),
            digits: a.oath.digits,
            period: a.oath.period,
        },
        request_lifetime_seconds: a.request_lifetime_seconds,
    }))
}

/// The device's user's pending sign-in requests. With `wait`, answers the
/// moment one arrives, or after `wait` seconds with none (a long-poll).
#[utoipa::path(get, path = "/mobile/v1/requests", tag = "mobile", operation_id = "mobile_requests", security(()),
    params(
        ("wait" = Option<u32>, Query, minimum = 0, maximum = 60, description = "Seconds to wait for a request (0-60)"),
        ("x-twofold-device" = String, Header, description = "The device id", pattern = "^[0-9a-f]{32}$"),
        ("x-twofold-timestamp" = String, Header, description = "Unix seconds when signed", pattern = "^[0-9]{1,12}$"),
        ("x-twofold-nonce" = String, Header, description = "16-64 characters of A-Z a-z 0-9 - _, never reused", pattern = "^[A-Za-z0-9_-]{16,64}$"),
        ("x-twofold-signature" = String, Header, description = "Ed25519 signature, base64url", pattern = "^[A-Za-z0-9_-]{86}$"),
    ),
    responses((status = 200, body = PendingRequests),
              (status = 401, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub(crate) async fn requests(
    State(mobile): State<Mobile>,
    method: Method,
    uri: Uri,
    ip: Option<Extension<ClientIp>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<PendingRequests>> {
    let request = signed(&method, &uri, &headers, &Bytes::new(), ip);
    let wait = match query.get("wait").map(|w| w.parse::<u64>()) {
        None => Duration::ZERO,
        Some(Ok(n)) if n <= 60 => Duration::from_secs(n),
        Some(_) => {
            return Err(
                Error::invalid("wait", "must be a whole number of seconds from 0 to 60").into(),
            )
        }
    };
    let pending = mobile.device_requests(&request, wait).await?;
    Ok(Json(PendingRequests {
        requests: pending
            .into_iter()
            .map(|r| PendingRequest {
                id: r.id,
                username: r.username,
                account: r.account,
                application: r.application,
                source_address: r.source_address,
                created_at: rfc3339(r.created_at),
                expires_at: rfc3339(r.expires_at),
                pin_required: r.pin_required,
            })
            .collect(),
    }))
}

/// Approves (with the number shown on the sign-in screen, and the PIN when
/// `pin_required`), denies or reports fraud for one pending request.
#[utoipa::path(post, path = "/mobile/v1/requests/{id}/answer", tag = "mobile", operation_id = "mobile_answer", security(()),
    params(
        ("id" = String, Path, description = "The request id", pattern = "^[0-9a-f]{32}$"),
        ("x-twofold-device" = String, Header, description = "The device id", pattern = "^[0-9a-f]{32}$"),
        ("x-twofold-timestamp" = String, Header, description = "Unix seconds when signed", pattern = "^[0-9]{1,12}$"),
        ("x-twofold-nonce" = String, Header, description = "16-64 characters of A-Z a-z 0-9 - _, never reused", pattern = "^[A-Za-z0-9_-]{16,64}$"),
        ("x-twofold-signature" = String, Header, description = "Ed25519 signature, base64url", pattern = "^[A-Za-z0-9_-]{86}$"),
    ),
    request_body = DeviceAnswer,
    responses((status = 200, body = DeviceAnswerResult),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "The request is no longer pending (`finished`)"),
              (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub(crate) async fn answer(
    State(mobile): State<Mobile>,
    method: Method,
    uri: Uri,
    ip: Option<Extension<ClientIp>>,
    headers: HeaderMap,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
    body: Bytes,
) -> ApiResult<Json<DeviceAnswerResult>> {
    let request = signed(&method, &uri, &headers, &body, ip);
    let id = path
        .map(|Path(id)| id)
        .map_err(|_| Error::NotFound("request"))?;
    let r: DeviceAnswer = json(&body)?;
    let decision = match r.decision {
        Decision::Approve => DeviceDecision::Approve {
            number: r.number,
            pin: r.pin,
        },
        Decision::Deny => DeviceDecision::Deny,
        Decision::Fraud => DeviceDecision::Fraud,
    };
    let a = mobile
        .answer_device_request(&request, &id, decision)
        .await?;
    Ok(Json(DeviceAnswerResult {
        state: a.state.as_str().to_string(),
        reason: a
            .reason
            .map(twofold_core::challenge::ChallengeReason::as_str),
    }))
}

/// Removes this device and its OATH secret.
#[utoipa::path(post, path = "/mobile/v1/deactivate", tag = "mobile", operation_id = "mobile_deactivate", security(()),
    params(
        ("x-twofold-device" = String, Header, description = "The device id", pattern = "^[0-9a-f]{32}$"),
        ("x-twofold-timestamp" = String, Header, description = "Unix seconds when signed", pattern = "^[0-9]{1,12}$"),
        ("x-twofold-nonce" = String, Header, description = "16-64 characters of A-Z a-z 0-9 - _, never reused", pattern = "^[A-Za-z0-9_-]{16,64}$"),
        ("x-twofold-signature" = String, Header, description = "Ed25519 signature, base64url", pattern = "^[A-Za-z0-9_-]{86}$"),
    ),
    responses((status = 204, description = "Removed"),
              (status = 401, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub(crate) async fn deactivate(
    State(mobile): State<Mobile>,
    method: Method,
    uri: Uri,
    ip: Option<Extension<ClientIp>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let request = signed(&method, &uri, &headers, &body, ip);
    mobile.deactivate_device(&request).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    /// The engine and the wire crate define the signed message and the
    /// activation URI separately (neither depends on the other): they
    /// must agree byte for byte.
    #[test]
    fn the_engine_and_the_protocol_agree() {
        let a = twofold_core::engine::mobile_signed_message(
            "POST",
            "/mobile/v1/requests/ab/answer",
            "17",
            "nonce-nonce-nonce",
            b"{}",
        );
        let b = twofold_proto::mobile::signed_message(
            "POST",
            "/mobile/v1/requests/ab/answer",
            "17",
            "nonce-nonce-nonce",
            b"{}",
        );
        assert_eq!(a, b);
        let fp = "ab".repeat(32);
        let uri = twofold_core::engine::activation_uri(
            "https://h:1/mobile/v1",
            "123412341234",
            Some(&fp),
        );
        let parsed = twofold_proto::mobile::ActivationUri::parse(&uri).unwrap();
        assert_eq!(parsed.url, "https://h:1/mobile/v1");
        assert_eq!(parsed.code, "123412341234");
        assert_eq!(parsed.fingerprint.as_deref(), Some(fp.as_str()));
        assert_eq!(parsed.render(), uri);
    }
}
