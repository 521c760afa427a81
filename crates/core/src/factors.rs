//! What a user proves themselves with, as stored: OATH tokens, the PIN,
//! security questions and answers, one-time bypass, denial counters, and the
//! portal's server-side sessions. Secrets here are always hashed or sealed.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::user::{DefaultMethod, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OathKind {
    /// Time-based (RFC 6238).
    Totp,
    /// Event-based (RFC 4226).
    Hotp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OathAlgorithm {
    Sha1,
    Sha256,
    Sha512,
}

/// How a token computes its codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OathParams {
    pub kind: OathKind,
    pub algorithm: OathAlgorithm,
    /// 6 or 8.
    pub digits: u32,
    /// TOTP time step in seconds (ignored for HOTP).
    pub period: u32,
}

impl Default for OathParams {
    fn default() -> Self {
        OathParams {
            kind: OathKind::Totp,
            algorithm: OathAlgorithm::Sha1,
            digits: 6,
            period: 30,
        }
    }
}

/// A token to store. `sealed_secret` is the seed sealed with the label
/// `oath_seed_label(user_id)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOathToken {
    pub label: String,
    pub params: OathParams,
    pub sealed_secret: String,
    /// TOTP: last time step accepted (replay guard); HOTP: next counter expected.
    pub counter: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OathToken {
    pub id: i64,
    pub user_id: UserId,
    pub label: String,
    pub params: OathParams,
    /// Never leaves the server; empty in a token read back from JSON.
    #[serde(skip_serializing, default)]
    pub sealed_secret: String,
    pub counter: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

pub fn oath_seed_label(user_id: UserId) -> String {
    format!("oath-seed:user:{user_id}")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinRecord {
    pub hash: String,
    pub set_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityQuestion {
    pub id: i64,
    pub language: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    pub question_id: i64,
    pub hash: String,
}

/// Everything the enrollment wizard collected; written in one transaction
/// when the wizard completes, so an abandoned wizard leaves nothing behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrollment {
    pub method: DefaultMethod,
    pub token: Option<NewOathToken>,
    pub pin_hash: Option<String>,
    /// (question id, answer hash); empty when questions are not configured.
    pub answers: Vec<(i64, String)>,
    /// When set, the user row must still be at this version (a method an
    /// administrator configured in advance is kept; a second wizard
    /// finishing late is refused). When `None`, the user must not have a
    /// method yet.
    pub expected_version: Option<i64>,
}

/// Lockout policy applied to one denial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DenialPolicy {
    /// Denials within `window_seconds` that lock the user (None: never lock).
    pub threshold: Option<u32>,
    pub window_seconds: i64,
    /// Where a lock ends (None with a threshold: until an administrator unblocks).
    pub lock_seconds: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DenialOutcome {
    pub count: u32,
    /// The denial locked the user now.
    pub locked: bool,
}

/// A portal session as stored: the id is kept only as its SHA-256 hash so a
/// database copy holds no live session ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub id_hash: String,
    pub data: String,
    pub expires_at: OffsetDateTime,
}

/// An application's credentials for the Web Service SDK. The secret itself
/// is shown once at creation; only its SHA-256 is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAccount {
    pub id: i64,
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub rotated_at: Option<OffsetDateTime>,
    pub role: crate::principal::Role,
    /// Only meaningful for role `admin`.
    pub permissions: Vec<crate::user::Permission>,
    /// Only meaningful for role `admin`; `None` is all users.
    pub scope_group: Option<String>,
}
