//! The one domain error type. Adapters map it to their medium (HTTP status and
//! JSON code, CLI exit code) in one place each; `code()` is the stable name.

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Error)]
pub enum Error {
    /// Input that breaks a rule; `field` names what was wrong.
    #[error("{field}: {message}")]
    InvalidInput { field: String, message: String },
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request clashes with the current state; `reason` says how, for
    /// the front-ends to map (a page message, an audit result code).
    #[error("{message}")]
    Conflict {
        reason: ConflictReason,
        message: String,
    },
    #[error("{0}")]
    Forbidden(String),
    /// A request that does not prove who sent it (a device's signature,
    /// timestamp or nonce), or a one-time secret that opens nothing (an
    /// activation code); `reason` says which, for the caller to fix.
    #[error("{message}")]
    Unauthenticated {
        reason: AuthFailure,
        message: String,
    },
    /// Too many failed attempts from one source; try again later.
    #[error("too many attempts; try again in {retry_after_seconds} seconds")]
    RateLimited { retry_after_seconds: u64 },
    /// A dependency (the database) cannot be reached right now.
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// Why a request was not authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthFailure {
    /// Unknown device, or a signature that does not verify.
    Signature,
    /// The signed timestamp is too far from the server's clock.
    Timestamp,
    /// The nonce was used before.
    Nonce,
    /// The activation code is wrong, expired or used.
    ActivationCode,
}

impl AuthFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthFailure::Signature => "signature",
            AuthFailure::Timestamp => "timestamp",
            AuthFailure::Nonce => "nonce",
            AuthFailure::ActivationCode => "activation_code",
        }
    }
}

/// How a request clashed with the current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictReason {
    /// The name (user, question, service account, challenge id) is taken.
    Exists,
    /// Another change won: a stale version, a code used meanwhile.
    Concurrent,
    /// The user already finished enrollment.
    AlreadyEnrolled,
    /// Removing it would leave the user's method without what it needs.
    LastFactor,
    /// The last administrator who can manage administrators.
    LastAdministrator,
    /// An administrator exists, so bootstrap is closed.
    BootstrapClosed,
    /// The challenge was already decided.
    Finished,
    /// The challenge is answered on the phone (a call, a text message
    /// reply), not with a typed passcode.
    AnsweredElsewhere,
    /// The user already has `portal.max_mobile_devices` devices.
    DeviceLimit,
}

impl ConflictReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ConflictReason::Exists => "exists",
            ConflictReason::Concurrent => "concurrent",
            ConflictReason::AlreadyEnrolled => "already_enrolled",
            ConflictReason::LastFactor => "last_factor",
            ConflictReason::LastAdministrator => "last_administrator",
            ConflictReason::BootstrapClosed => "bootstrap_closed",
            ConflictReason::Finished => "finished",
            ConflictReason::AnsweredElsewhere => "answered_elsewhere",
            ConflictReason::DeviceLimit => "device_limit",
        }
    }

    pub fn parse(s: &str) -> Option<ConflictReason> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
    }
}

impl Error {
    pub fn conflict(reason: ConflictReason, message: impl Into<String>) -> Self {
        Error::Conflict {
            reason,
            message: message.into(),
        }
    }

    pub fn unauthenticated(reason: AuthFailure, message: impl Into<String>) -> Self {
        Error::Unauthenticated {
            reason,
            message: message.into(),
        }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidInput {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Stable machine-readable code, used by the API and the CLI's JSON output.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidInput { .. } => "invalid_input",
            Error::NotFound(_) => "not_found",
            Error::Conflict { .. } => "conflict",
            Error::Forbidden(_)
            | Error::Unauthenticated {
                reason: AuthFailure::ActivationCode,
                ..
            } => "forbidden",
            Error::Unauthenticated { .. } => "unauthorized",
            Error::RateLimited { .. } => "rate_limited",
            Error::Unavailable(_) => "unavailable",
            Error::Internal(_) => "internal",
        }
    }
}
