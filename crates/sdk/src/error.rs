//! What can go wrong talking to the SDK. (`twofold_link::domain_error`
//! maps it back onto the engine's `Error` for a remote portal or verifier.)

use std::fmt;
use twofold_proto::ErrorBody;

#[derive(Debug)]
pub enum SdkError {
    /// The server answered with an error status and (usually) its JSON body.
    Api {
        status: u16,
        body: ErrorBody,
        retry_after: Option<u64>,
    },
    /// No answer: connection refused, TLS refused (e.g. fingerprint
    /// mismatch), timeout.
    Transport(String),
    /// A success status with a body that is not what this version expects.
    Decode(String),
    /// The client was given something unusable (URL, certificate, ...).
    Config(String),
}

impl SdkError {
    /// The server refused the credentials (HTTP 401).
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, SdkError::Api { status: 401, .. })
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            SdkError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl fmt::Display for SdkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SdkError::Api { status: 401, .. } => f.write_str(
                "the MFA server refused the SDK credentials (HTTP 401): check the service account's name and secret",
            ),
            SdkError::Api { status, body, .. } => {
                write!(f, "HTTP {status} {}: {}", body.error, body.message)
            }
            SdkError::Transport(detail) => write!(f, "cannot reach the MFA server's SDK: {detail}"),
            SdkError::Decode(detail) => {
                write!(f, "unexpected answer from the MFA server's SDK: {detail}")
            }
            SdkError::Config(detail) => f.write_str(detail),
        }
    }
}

impl std::error::Error for SdkError {}
