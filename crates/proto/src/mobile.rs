//! The Mobile App Web Service's wire types (`/mobile/v1`) and the one thing
//! both ends must compute identically: the bytes a device signs. The
//! protocol is described for app authors in `docs/mobile-protocol.md`; the
//! server (`twofold_web::mobile`) and the reference authenticator
//! (`twofold-authenticator`) both use this module, so they cannot drift.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::rules;

/// The device id (32 lowercase hex digits) of a signed request.
pub const DEVICE_HEADER: &str = "x-twofold-device";
/// Unix seconds when the device signed the request.
pub const TIMESTAMP_HEADER: &str = "x-twofold-timestamp";
/// 16 to 64 characters of `A-Z a-z 0-9 - _`, never reused by a device.
pub const NONCE_HEADER: &str = "x-twofold-nonce";
/// The Ed25519 signature of [`signed_message`], base64url without padding.
pub const SIGNATURE_HEADER: &str = "x-twofold-signature";
/// How far a request's timestamp may be from the server's clock.
pub const MAX_CLOCK_SKEW_SECONDS: i64 = 300;
/// The first line of every signed message: a signature made for this
/// protocol (and version) means nothing anywhere else.
pub const SIGNING_CONTEXT: &str = "twofold-mobile-v1";
/// The scheme of the activation URI shown as a QR code.
pub const ACTIVATION_URI_PREFIX: &str = "twofold://activate?";

/// The bytes a device signs for one request:
///
/// ```text
/// twofold-mobile-v1\n
/// METHOD\n                 (upper case: GET, POST)
/// /mobile/v1/path?query\n  (exactly as sent on the request line)
/// TIMESTAMP\n              (decimal unix seconds, as in the header)
/// NONCE\n
/// hex(SHA-256(body))       (lower case; the hash of nothing for GET)
/// ```
pub fn signed_message(
    method: &str,
    path_and_query: &str,
    timestamp: &str,
    nonce: &str,
    body: &[u8],
) -> Vec<u8> {
    let digest = Sha256::digest(body);
    let mut hex = String::with_capacity(64);
    for b in digest {
        use std::fmt::Write as _;
        let _ = write!(hex, "{b:02x}");
    }
    format!("{SIGNING_CONTEXT}\n{method}\n{path_and_query}\n{timestamp}\n{nonce}\n{hex}")
        .into_bytes()
}

/// True for a nonce the server accepts (says nothing about reuse).
pub fn is_nonce(nonce: &str) -> bool {
    (16..=64).contains(&nonce.len())
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Where a device wants to be woken when a request arrives. Optional: the
/// long-poll of `GET /mobile/v1/requests` works without it. The wake-up
/// carries no detail of the request; the device fetches it, signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushTarget {
    pub kind: PushKind,
    /// `https://` (or `http://` on loopback): an ntfy topic URL
    /// (`https://ntfy.example.org/twofold-3f9a…`) or the webhook to POST to.
    #[schema(max_length = 2048)]
    pub url: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PushKind {
    /// POST a short text to an ntfy topic.
    Ntfy,
    /// POST `{"event":"request","device_id":…}` as JSON.
    Webhook,
}

/// `POST /mobile/v1/activate`, signed with the key being registered (no
/// device header: the device has no id yet).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivateRequest {
    /// The activation code shown by the portal or `twofold device
    /// activation-code` (digits; spaces are ignored).
    #[schema(max_length = 32)]
    pub code: String,
    /// What the user calls the device (shown on their account page).
    #[schema(min_length = 1, max_length = 64)]
    pub device_name: String,
    /// The device's Ed25519 public key: 32 bytes, base64url without padding.
    #[schema(min_length = 43, max_length = 43)]
    pub public_key: String,
    #[serde(default)]
    pub push: Option<PushTarget>,
}

/// The OATH (TOTP) secret a device shows codes of, usable as the `oath`
/// fallback.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OathSeed {
    /// Base32 (RFC 4648, no padding).
    pub secret: String,
    /// `SHA1`.
    pub algorithm: String,
    pub digits: u32,
    /// Seconds per time step.
    pub period: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ActivateResponse {
    /// 32 lowercase hex digits: the device header of every later request.
    pub device_id: String,
    pub username: String,
    /// The name the app shows for this account (`mobile_app.account_name`).
    pub account: String,
    pub oath: OathSeed,
    /// How long a sign-in request waits for an answer.
    pub request_lifetime_seconds: u32,
}

/// `GET /mobile/v1/requests?wait=SECONDS`: the device's pending requests.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PendingRequests {
    pub requests: Vec<PendingRequest>,
}

/// A sign-in waiting for the user's answer. The number to pick is not in
/// it: the user reads it on the screen they are signing in on.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PendingRequest {
    /// 32 lowercase hex digits.
    pub id: String,
    pub username: String,
    pub account: String,
    /// Who asked: `portal`, or the SDK service account (`vpn`).
    pub application: String,
    /// The address the sign-in comes from, when the application said.
    pub source_address: Option<String>,
    #[schema(schema_with = rules::timestamp)]
    pub created_at: String,
    #[schema(schema_with = rules::timestamp)]
    pub expires_at: String,
    /// The user's PIN must come with an approval.
    pub pin_required: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approve,
    Deny,
    /// Deny and report fraud (blocks the user when `fraud.block_on_report`).
    Fraud,
}

/// `POST /mobile/v1/requests/{id}/answer`, signed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceAnswer {
    pub decision: Decision,
    /// The number shown on the sign-in screen (number matching); required
    /// to approve.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 99)]
    pub number: Option<u32>,
    /// The user's PIN, when the request says `pin_required`.
    #[serde(default)]
    #[schema(max_length = 16)]
    pub pin: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeviceAnswerResult {
    /// `accepted`, `rejected`, or `pending` after a wrong PIN that leaves
    /// attempts.
    pub state: String,
    /// `accepted`, `denied`, `fraud_reported`, `wrong_number`, `wrong_pin`,
    /// `too_many_attempts`, `user_locked`, ...
    pub reason: Option<String>,
}

/// Parsed activation URI: `twofold://activate?url=…&code=…&fp=…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivationUri {
    /// The Mobile App Web Service URL (`https://mfa.example.org/mobile/v1`).
    pub url: String,
    pub code: String,
    /// SHA-256 of the server certificate (DER), 64 lowercase hex digits,
    /// when the server knows the certificate it serves.
    pub fingerprint: Option<String>,
}

impl ActivationUri {
    /// The URI as the QR code carries it.
    pub fn render(&self) -> String {
        let mut s = format!(
            "{ACTIVATION_URI_PREFIX}url={}&code={}",
            percent_encode(&self.url),
            percent_encode(&self.code)
        );
        if let Some(fp) = &self.fingerprint {
            s.push_str("&fp=");
            s.push_str(&percent_encode(fp));
        }
        s
    }

    pub fn parse(uri: &str) -> Result<ActivationUri, String> {
        let query = uri
            .strip_prefix(ACTIVATION_URI_PREFIX)
            .ok_or_else(|| format!("an activation URI starts with {ACTIVATION_URI_PREFIX}"))?;
        let (mut url, mut code, mut fp) = (None, None, None);
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(v).ok_or_else(|| format!("{k}: bad percent-encoding"))?;
            let slot = match k {
                "url" => &mut url,
                "code" => &mut code,
                "fp" => &mut fp,
                _ => continue,
            };
            if slot.replace(v).is_some() {
                return Err(format!("{k} appears twice"));
            }
        }
        let url: String = url.ok_or("the URI has no url")?;
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err("url must be an https:// URL".into());
        }
        let code = code.ok_or("the URI has no code")?;
        if let Some(fp) = &fp {
            if fp.len() != 64 || !fp.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                return Err("fp must be 64 lowercase hex digits (SHA-256)".into());
            }
        }
        Ok(ActivationUri {
            url,
            code,
            fingerprint: fp,
        })
    }
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            use std::fmt::Write as _;
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signed_message_is_fixed() {
        let m = signed_message(
            "GET",
            "/mobile/v1/requests?wait=30",
            "1700000000",
            "abcdefghijklmnop",
            b"",
        );
        assert_eq!(
            String::from_utf8(m).unwrap(),
            "twofold-mobile-v1\nGET\n/mobile/v1/requests?wait=30\n1700000000\nabcdefghijklmnop\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn activation_uris_round_trip() {
        let uri = ActivationUri {
            url: "https://mfa.example.org:8443/mobile/v1".into(),
            code: "123456789012".into(),
            fingerprint: Some("ab".repeat(32)),
        };
        let text = uri.render();
        assert_eq!(
            text,
            format!(
                "twofold://activate?url=https%3A%2F%2Fmfa.example.org%3A8443%2Fmobile%2Fv1&code=123456789012&fp={}",
                "ab".repeat(32)
            )
        );
        assert_eq!(ActivationUri::parse(&text).unwrap(), uri);
        assert!(ActivationUri::parse("otpauth://totp/x").is_err());
        assert!(ActivationUri::parse("twofold://activate?code=1").is_err());
        assert!(ActivationUri::parse("twofold://activate?url=ftp%3A%2F%2Fx&code=1").is_err());
        assert!(
            ActivationUri::parse("twofold://activate?url=https%3A%2F%2Fx&code=1&fp=AB").is_err()
        );
        assert!(ActivationUri::parse(
            "twofold://activate?url=https%3A%2F%2Fx&url=https%3A%2F%2Fy&code=1"
        )
        .is_err());
    }

    #[test]
    fn nonces() {
        assert!(is_nonce("abcdefghijklmnop"));
        assert!(is_nonce(&"A-_9".repeat(16)));
        assert!(!is_nonce("short"));
        assert!(!is_nonce(&"a".repeat(65)));
        assert!(!is_nonce("abcdefghijklmnop\n"));
    }
}
