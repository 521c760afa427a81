//! The mobile app's devices as stored: an activated device holds an Ed25519
//! public key (its requests are signed with the private key, which never
//! leaves it), an OATH token (the codes the app shows as the `oath`
//! fallback) and, optionally, where to send a wake-up. Activation codes are
//! kept only as SHA-256 hashes: a code is 40 random bits, valid 10 minutes,
//! used once, and guessing is throttled per address.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::user::UserId;

/// Digits of an activation code (about 40 bits).
pub const ACTIVATION_CODE_DIGITS: usize = 12;
/// How long an activation code may be used.
pub const ACTIVATION_CODE_LIFETIME: time::Duration = time::Duration::minutes(10);
/// The path of the Mobile App Web Service under the public URL.
pub const SERVICE_PATH: &str = "/mobile/v1";

/// Where a device wants a wake-up when a request arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PushKind {
    Ntfy,
    Webhook,
}

impl PushKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PushKind::Ntfy => "ntfy",
            PushKind::Webhook => "webhook",
        }
    }

    pub fn parse(s: &str) -> Option<PushKind> {
        match s {
            "ntfy" => Some(PushKind::Ntfy),
            "webhook" => Some(PushKind::Webhook),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushTarget {
    pub kind: PushKind,
    pub url: String,
}

/// A device to store with its activation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMobileDevice {
    /// 32 lowercase hex digits, random.
    pub id: String,
    pub name: String,
    /// The Ed25519 public key, 32 bytes.
    pub public_key: Vec<u8>,
    pub push: Option<PushTarget>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MobileDevice {
    pub id: String,
    pub user_id: UserId,
    /// The user's name (joined from the users table when read).
    pub username: String,
    pub name: String,
    pub public_key: Vec<u8>,
    pub push: Option<PushTarget>,
    /// The OATH token created with it (removed with it).
    pub token_id: Option<i64>,
    pub activated_at: OffsetDateTime,
    pub last_used_at: Option<OffsetDateTime>,
}

/// A stored activation code (found by its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivationCodeRecord {
    pub user_id: UserId,
    /// The user's name (joined from the users table when read).
    pub username: String,
    pub expires_at: OffsetDateTime,
    pub used: bool,
}

/// The hash an activation code is stored and found by: SHA-256 of its
/// digits, hex. The code has 40 random bits and lives 10 minutes, so a
/// fast hash is enough; what bounds guessing is the per-address throttle.
pub fn activation_code_hash(code: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(code.as_bytes()))
}

/// The digits of a typed code: spaces and dashes dropped. `None` when
/// anything else is in it or it has the wrong length.
pub fn normalize_activation_code(typed: &str) -> Option<String> {
    let digits: String = typed.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    (digits.len() == ACTIVATION_CODE_DIGITS && digits.bytes().all(|b| b.is_ascii_digit()))
        .then_some(digits)
}

/// `4821 0937 5526`: how a code is shown.
pub fn grouped_code(code: &str) -> String {
    code.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// What the portal and `twofold device activation-code` show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivationOffer {
    /// 12 digits.
    pub code: String,
    /// The Mobile App Web Service URL.
    pub url: String,
    /// `twofold://activate?url=…&code=…&fp=…` (the QR code's content).
    pub uri: String,
    /// SHA-256 of the server's certificate, 64 hex digits, when known.
    pub fingerprint: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// A device as the account page and `twofold device list` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceView {
    pub id: String,
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub activated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    /// `ntfy`, `webhook` or none.
    pub push: Option<PushKind>,
}

impl From<&MobileDevice> for DeviceView {
    fn from(d: &MobileDevice) -> Self {
        DeviceView {
            id: d.id.clone(),
            name: d.name.clone(),
            activated_at: d.activated_at,
            last_used_at: d.last_used_at,
            push: d.push.as_ref().map(|p| p.kind),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_typed_loosely_and_hashed_exactly() {
        assert_eq!(
            normalize_activation_code("4821 0937-5526").as_deref(),
            Some("482109375526")
        );
        assert_eq!(normalize_activation_code("48210937552"), None);
        assert_eq!(normalize_activation_code("48210937552x"), None);
        assert_eq!(grouped_code("482109375526"), "4821 0937 5526");
        assert_eq!(activation_code_hash("482109375526").len(), 64);
        assert_ne!(
            activation_code_hash("482109375526"),
            activation_code_hash("482109375527")
        );
    }
}
