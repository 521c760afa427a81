//! SDK errors as the engine's `Error`: what the public client
//! (`twofold_sdk`) reports, mapped back onto the domain so a portal or
//! application behind this crate behaves as if the engine were local. The
//! mapping lives here because the client knows nothing of the engine.

use twofold_core::{ConflictReason, Error};
use twofold_sdk::SdkError;

/// `NotFound` carries a static name; these are the ones the engine uses.
fn not_found_name(message: &str) -> &'static str {
    const NAMES: &[&str] = &[
        "service account",
        "question",
        "token",
        "session",
        "user",
        "challenge",
    ];
    let thing = message.strip_suffix(" not found").unwrap_or(message);
    NAMES
        .iter()
        .copied()
        .find(|n| *n == thing)
        .unwrap_or("resource")
}

/// "try again in 42 seconds" → 42.
fn seconds_in(message: &str) -> Option<u64> {
    message
        .split(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())
        .and_then(|s| s.parse().ok())
}

/// An SDK error as the engine's `Error`, so a remote portal or verifier
/// behaves like a local one: the status and the body's `field` and `reason`
/// pick the variant.
pub fn domain_error(e: SdkError) -> Error {
    match e {
        SdkError::Api {
            status,
            body,
            retry_after,
        } => match status {
            400 | 413 | 422 => {
                let field = body.field.unwrap_or_else(|| "body".into());
                // The server's message is the error's Display: "field: message".
                let message = body
                    .message
                    .strip_prefix(&format!("{field}: "))
                    .map(str::to_string)
                    .unwrap_or(body.message);
                Error::InvalidInput { field, message }
            }
            401 => {
                Error::Unavailable("the MFA server refused the SDK credentials (HTTP 401)".into())
            }
            403 => Error::Forbidden(body.message),
            404 => Error::NotFound(not_found_name(&body.message)),
            409 => Error::conflict(
                body.reason
                    .as_deref()
                    .and_then(ConflictReason::parse)
                    .unwrap_or(ConflictReason::Concurrent),
                body.message,
            ),
            429 => Error::RateLimited {
                retry_after_seconds: retry_after
                    .or_else(|| seconds_in(&body.message))
                    .unwrap_or(60),
            },
            502..=504 => Error::Unavailable(format!("MFA server: {}", body.message)),
            _ => Error::Internal(format!(
                "MFA server answered HTTP {status}: {}",
                body.message
            )),
        },
        SdkError::Transport(detail) => Error::Unavailable(detail),
        e @ (SdkError::Decode(_) | SdkError::Config(_)) => Error::Internal(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use twofold_proto::ErrorBody;

    fn api(status: u16, error: &str, message: &str, field: Option<&str>) -> SdkError {
        SdkError::Api {
            status,
            body: ErrorBody {
                error: error.into(),
                message: message.into(),
                field: field.map(str::to_string),
                reason: None,
            },
            retry_after: None,
        }
    }

    #[test]
    fn conflicts_keep_their_reason() {
        let mut e = api(409, "conflict", "this is your only token", None);
        if let SdkError::Api { body, .. } = &mut e {
            body.reason = Some("last_factor".into());
        }
        assert!(matches!(
            domain_error(e),
            Error::Conflict {
                reason: ConflictReason::LastFactor,
                ..
            }
        ));
        // An older server says no reason: the safe reading is "changed meanwhile".
        assert!(matches!(
            domain_error(api(409, "conflict", "x", None)),
            Error::Conflict {
                reason: ConflictReason::Concurrent,
                ..
            }
        ));
    }

    #[test]
    fn statuses_map_to_the_same_domain_errors() {
        match domain_error(api(422, "invalid_input", "code: has expired", Some("code"))) {
            Error::InvalidInput { field, message } => {
                assert_eq!(field, "code");
                assert_eq!(message, "has expired");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            domain_error(api(404, "not_found", "token not found", None)),
            Error::NotFound("token")
        ));
        assert!(matches!(
            domain_error(api(404, "not_found", "", None)),
            Error::NotFound("resource")
        ));
        assert!(
            matches!(domain_error(api(409, "conflict", "the only token", None)), Error::Conflict { message: m, .. } if m == "the only token")
        );
        assert!(matches!(
            domain_error(api(403, "forbidden", "not allowed", None)),
            Error::Forbidden(_)
        ));
        assert!(matches!(
            domain_error(api(
                429,
                "rate_limited",
                "too many attempts; try again in 42 seconds",
                None
            )),
            Error::RateLimited {
                retry_after_seconds: 42
            }
        ));
        assert!(matches!(
            domain_error(SdkError::Api {
                status: 429,
                body: ErrorBody {
                    error: "rate_limited".into(),
                    message: String::new(),
                    field: None,
                    reason: None,
                },
                retry_after: Some(7)
            }),
            Error::RateLimited {
                retry_after_seconds: 7
            }
        ));
        assert!(matches!(
            domain_error(api(503, "unavailable", "service unavailable", None)),
            Error::Unavailable(_)
        ));
        assert!(matches!(
            domain_error(api(401, "unauthorized", "", None)),
            Error::Unavailable(_)
        ));
        assert!(matches!(
            domain_error(SdkError::Transport("connection refused".into())),
            Error::Unavailable(_)
        ));
        assert!(matches!(
            domain_error(api(500, "internal", "internal error", None)),
            Error::Internal(_)
        ));
    }
}
