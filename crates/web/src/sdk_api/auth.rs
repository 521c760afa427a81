//! HTTP Basic authentication of SDK callers: a service account, or a
//! directory account in the administrators' group.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use std::net::IpAddr;
use twofold_core::{Ctx, Error};
use twofold_proto::ErrorBody;
use twofold_proto::CLIENT_IP_HEADER;

use super::{SdkError, SdkState};

/// The authenticated caller, as the `Ctx` every engine call takes: who it
/// is and what its role, permissions and scope allow.
pub struct Caller(pub Ctx);

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            "Basic realm=\"twofold-sdk\", charset=\"UTF-8\"",
        )],
        Json(ErrorBody {
            error: "unauthorized".into(),
            message: "valid service account credentials are required".into(),
            field: None,
            reason: None,
        }),
    )
        .into_response()
}

fn credentials(parts: &Parts) -> Option<(String, String)> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    if encoded.len() > 2048 {
        return None;
    }
    let decoded = String::from_utf8(B64.decode(encoded.trim()).ok()?).ok()?;
    let (name, secret) = decoded.split_once(':')?;
    // No account is named with control characters: such a name is wrong
    // credentials, answered before it reaches the database or the audit log.
    twofold_core::validate::identifier("name", name).ok()?;
    Some((name.to_string(), secret.to_string()))
}

impl FromRequestParts<SdkState> for Caller {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SdkState,
    ) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<crate::client_ip::ClientIp>()
            .map(|c| c.0);
        let Some((name, secret)) = credentials(parts) else {
            return Err(unauthorized());
        };
        // Credentials are checked (and throttled) against the connection's
        // address; only an authenticated caller may say whom it acts for.
        let ctx = match state.engine.authenticate_caller(&name, &secret, ip).await {
            Ok(ctx) => ctx,
            Err(Error::Forbidden(_)) => return Err(unauthorized()),
            Err(e) => return Err(SdkError(e).into_response()),
        };
        match client_ip(parts) {
            Ok(Some(end_user)) => Ok(Caller(ctx.located_at(end_user))),
            Ok(None) => Ok(Caller(ctx)),
            Err(e) => Err(SdkError(e).into_response()),
        }
    }
}

/// The end user's address as the caller (a remote portal) reports it in
/// `X-Twofold-Client-Ip`: one IPv4 or IPv6 address, nothing else.
fn client_ip(parts: &Parts) -> Result<Option<IpAddr>, Error> {
    let mut values = parts.headers.get_all(CLIENT_IP_HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let bad = || {
        Error::invalid(
            "X-Twofold-Client-Ip",
            "must be one IPv4 or IPv6 address, given once",
        )
    };
    if values.next().is_some() {
        return Err(bad());
    }
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<IpAddr>().ok())
        .map(Some)
        .ok_or_else(bad)
}
