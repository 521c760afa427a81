//! Audit events: every decision the engine takes leaves one, with a result code
//! in the spirit of the original product (SUCCESS_..., FAILED_...).

use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ResultCode {
    Success,
    SuccessUserCreated,
    SuccessUserUpdated,
    SuccessUserDeleted,
    SuccessUserEnabled,
    SuccessUserDisabled,
    SuccessUserUnlocked,
    SuccessPasswordChanged,
    SuccessPasswordVerified,
    SuccessSettingChanged,
    SuccessAdminGranted,
    SuccessAdminRevoked,
    SuccessOathCode,
    SuccessOathFallback,
    SuccessSecurityQuestions,
    SuccessTrustedIp,
    SuccessBypassUsed,
    SuccessBypassStarted,
    SuccessBypassCancelled,
    SuccessEnrolled,
    SuccessOathConfirmed,
    SuccessPinChanged,
    SuccessAnswersChanged,
    SuccessTokenAdded,
    SuccessTokenDeleted,
    SuccessLanguageChanged,
    SuccessMethodChanged,
    SuccessQuestionAdded,
    SuccessQuestionDeleted,
    SuccessPasscode,
    SuccessMailSent,
    /// A call or text message was handed to the provider.
    SuccessDeliverySent,
    /// A call was approved on the phone (`#`, or the PIN and `#`).
    SuccessPhoneCall,
    /// The code of a text message was typed or replied.
    SuccessSmsCode,
    /// A sign-in was approved in the mobile app with the right number.
    SuccessMobileApp,
    /// A mobile-app activation code was issued.
    SuccessActivationCode,
    SuccessDeviceActivated,
    SuccessDeviceRemoved,
    /// A passed session (forward-auth) was opened after the portal's sign-in.
    SuccessSessionPassed,
    /// A passed session was ended by signing out.
    SuccessSignedOut,
    FailedInvalidInput,
    /// The user reported the sign-in as fraud.
    FailedFraudReported,
    /// A call was not answered, busy, or ended without keys.
    FailedNoAnswer,
    /// The method needs a phone number the user does not have.
    FailedNoPhone,
    /// A provider webhook or a device request without a valid signature,
    /// or with a nonce used before.
    FailedForgedRequest,
    /// The user denied a sign-in in the mobile app.
    FailedDenied,
    /// A mobile-app approval with another number than the one shown.
    FailedWrongNumber,
    /// The method is the mobile app and no device is activated.
    FailedNoDevice,
    /// An activation code that is wrong, expired or used.
    FailedActivationCode,
    /// An activation beyond `portal.max_mobile_devices`.
    FailedDeviceLimit,
    /// A provider (mail server, telephony) refused or did not answer.
    FailedProviderError,
    /// The primary directory (LDAP, RADIUS) could not be reached: not the
    /// user's failed attempt.
    FailedDirectoryUnavailable,
    FailedOathCode,
    FailedOathCodeDuplicate,
    FailedSecurityAnswers,
    FailedLockedOut,
    FailedRateLimited,
    FailedLoginDisabled,
    FailedNotEnrolled,
    FailedPinRule,
    FailedPinWrong,
    FailedNoToken,
    FailedMethodNotSupported,
    /// A challenge was not answered within its lifetime.
    FailedChallengeExpired,
    /// A challenge got its last allowed wrong answer.
    FailedTooManyAttempts,
    FailedUserExists,
    FailedUserNotFound,
    FailedUserDisabled,
    FailedUserLocked,
    FailedPasswordWrong,
    FailedConcurrentChange,
    FailedNotAllowed,
}

impl ResultCode {
    pub fn as_str(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
    }

    pub fn is_success(self) -> bool {
        self.as_str().starts_with("SUCCESS")
    }
}

/// An event about to be recorded. Store calls that change something take one
/// and write it in the same transaction as the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEvent {
    pub at: OffsetDateTime,
    pub actor: String,
    /// Who relayed the call for `actor` (e.g. `sdk:portal` for `user:jan`).
    pub via: Option<String>,
    pub subject: Option<String>,
    pub event: String,
    pub method: Option<String>,
    pub result: ResultCode,
    pub source_ip: Option<IpAddr>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub id: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub actor: String,
    #[serde(default)]
    pub via: Option<String>,
    pub subject: Option<String>,
    pub event: String,
    pub method: Option<String>,
    pub result: ResultCode,
    pub source_ip: Option<IpAddr>,
    pub detail: Option<String>,
}

/// Newest first; `before_id` pages backwards, `after_id` follows new events.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub limit: u32,
    pub before_id: Option<i64>,
    pub after_id: Option<i64>,
    pub subject: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_codes_round_trip() {
        assert_eq!(
            ResultCode::SuccessUserCreated.as_str(),
            "SUCCESS_USER_CREATED"
        );
        assert_eq!(
            ResultCode::parse("FAILED_USER_EXISTS"),
            Some(ResultCode::FailedUserExists)
        );
        assert_eq!(ResultCode::parse("nope"), None);
        assert!(!ResultCode::FailedPasswordWrong.is_success());
    }
}
