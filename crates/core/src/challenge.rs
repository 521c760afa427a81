//! Challenges: an authentication of a user with their method that an
//! application starts, follows and answers in separate requests (a RADIUS
//! front-end, an IdP with its own prompt). A challenge is a stored state
//! machine so any node can advance it — today an OATH passcode typed by the
//! user; later a call's DTMF, an SMS reply or an app's decision.
//!
//! ```text
//!             answer accepted
//!   pending ──────────────────▶ accepted
//!      │  ╲   too many wrong answers, user locked/disabled, method changed
//!      │   ╲─────────────────▶ rejected
//!      │ expires_at passed
//!      └─────────────────────▶ expired
//! ```
//!
//! Only `pending` moves, and only by compare-and-set in the store
//! (`Store::finish_challenge`): to `accepted`/`rejected` before `expires_at`,
//! to `expired` after it. The final states never change again.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::engine::ValidateReason;
use crate::user::{DefaultMethod, UserId};

/// Challenge ids are 128 random bits as 32 lowercase hex digits.
pub const CHALLENGE_ID_LEN: usize = 32;

/// True for a well-formed challenge id (says nothing about existence).
pub fn is_challenge_id(id: &str) -> bool {
    id.len() == CHALLENGE_ID_LEN && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChallengeState {
    Pending,
    Accepted,
    Rejected,
    Expired,
}

impl ChallengeState {
    pub const ALL: [ChallengeState; 4] = [
        ChallengeState::Pending,
        ChallengeState::Accepted,
        ChallengeState::Rejected,
        ChallengeState::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChallengeState::Pending => "pending",
            ChallengeState::Accepted => "accepted",
            ChallengeState::Rejected => "rejected",
            ChallengeState::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Accepted, rejected and expired never change again.
    pub fn is_final(self) -> bool {
        self != ChallengeState::Pending
    }
}

impl std::fmt::Display for ChallengeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a challenge is where it is, or what the last answer was. The names
/// are stable (the SDK returns them); the first eleven are `validate`'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChallengeReason {
    Accepted,
    WrongPasscode,
    ReplayedPasscode,
    WrongPin,
    PinNotSet,
    NoToken,
    NotEnrolled,
    MethodNotSupported,
    UserDisabled,
    UserLocked,
    UnknownUser,
    /// The third wrong answer.
    TooManyAttempts,
    /// Not answered within its lifetime.
    Expired,
    /// The user's method or mode changed after the challenge started.
    MethodChanged,
    /// The method needs a phone number the user does not have.
    NoPhone,
    /// The user reported the sign-in as fraud (the fraud code on a call).
    FraudReported,
    /// The call was not answered, was busy, or ended without keys.
    NoAnswer,
    /// The telephony provider refused, failed or did not answer.
    ProviderError,
    /// Too many calls or text messages for this user or number lately.
    RateLimited,
    /// The method is the mobile app and the user has no activated device.
    NoDevice,
    /// The user denied the request in the mobile app.
    Denied,
    /// The mobile app's approval carried another number than the one
    /// shown: someone else started the sign-in.
    WrongNumber,
}

impl ChallengeReason {
    pub fn as_str(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
    }
}

impl From<ValidateReason> for ChallengeReason {
    fn from(r: ValidateReason) -> Self {
        match r {
            ValidateReason::Accepted => ChallengeReason::Accepted,
            ValidateReason::WrongPasscode => ChallengeReason::WrongPasscode,
            ValidateReason::ReplayedPasscode => ChallengeReason::ReplayedPasscode,
            ValidateReason::WrongPin => ChallengeReason::WrongPin,
            ValidateReason::PinNotSet => ChallengeReason::PinNotSet,
            ValidateReason::NoToken => ChallengeReason::NoToken,
            ValidateReason::NotEnrolled => ChallengeReason::NotEnrolled,
            ValidateReason::MethodNotSupported => ChallengeReason::MethodNotSupported,
            ValidateReason::UserDisabled => ChallengeReason::UserDisabled,
            ValidateReason::UserLocked => ChallengeReason::UserLocked,
            ValidateReason::UnknownUser => ChallengeReason::UnknownUser,
        }
    }
}

/// What the application must collect from the user to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Prompt {
    /// A code the user types — an OATH code, or the code of a text message —
    /// or the PIN followed by the code (`pin_required`).
    Passcode,
    /// Twofold calls the user, who answers on the phone (`#`, or the PIN
    /// and `#`); the application follows the challenge.
    PhoneCall,
    /// Twofold texts the user a code, who replies to the message with it
    /// (or the PIN and the code); the application follows the challenge.
    SmsReply,
    /// Twofold asks the user's mobile app; the application shows `number`,
    /// which the user picks in the app to approve, and follows the challenge.
    MobileApp,
}

/// Which of the user's phones a call or text message goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhoneChoice {
    /// The primary phone (text messages: the mobile number when set).
    #[default]
    Primary,
    /// The backup phone.
    Backup,
}

/// A challenge about to be stored (always `pending`, no attempts yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChallenge {
    pub id: String,
    pub user_id: UserId,
    pub method: DefaultMethod,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    /// The actor that started it (`sdk:vpn`); only it may follow or answer.
    pub created_by: String,
    /// The number called or texted (E.164), for methods that use a phone.
    pub destination: Option<String>,
    /// The one-time code sent in a text message, sealed with the sealing
    /// key under `challenge_secret_label(id)`.
    pub sealed_code: Option<String>,
    /// Proving a phone for the enrollment wizard rather than signing in.
    pub enrolling: bool,
    /// Dialled after the call connects.
    pub extension: Option<String>,
    /// The PIN chosen in the wizard (argon2id hash, sealed like the code):
    /// asked by the call or the reply instead of a stored PIN.
    pub sealed_pin: Option<String>,
    /// Mobile app: the number (10..=99) the application shows and the user
    /// picks in the app.
    pub number: Option<u8>,
    /// The address the sign-in comes from, as the application said (shown
    /// in the mobile app).
    pub source_address: Option<String>,
}

/// The sealing label of a challenge's one-time code: bound to the challenge,
/// so a sealed code cannot be moved to another one.
pub fn challenge_secret_label(id: &str) -> String {
    format!("challenge:{id}")
}

impl NewChallenge {
    /// The challenge as stored: pending, no attempts, for `username`.
    pub fn stored(self, username: String) -> Challenge {
        Challenge {
            id: self.id,
            user_id: self.user_id,
            username,
            method: self.method,
            state: ChallengeState::Pending,
            reason: None,
            attempts: 0,
            created_at: self.created_at,
            expires_at: self.expires_at,
            completed_at: None,
            created_by: self.created_by,
            destination: self.destination,
            sealed_code: self.sealed_code,
            enrolling: self.enrolling,
            extension: self.extension,
            sealed_pin: self.sealed_pin,
            number: self.number,
            source_address: self.source_address,
        }
    }
}

/// The sealing label of the PIN hash an enrollment challenge carries.
pub fn challenge_pin_label(id: &str) -> String {
    format!("challenge-pin:{id}")
}

/// A stored challenge, with its user's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub id: String,
    pub user_id: UserId,
    pub username: String,
    pub method: DefaultMethod,
    pub state: ChallengeState,
    /// A `ChallengeReason` name once final.
    pub reason: Option<String>,
    /// Wrong answers so far.
    pub attempts: u32,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub completed_at: Option<OffsetDateTime>,
    pub created_by: String,
    pub destination: Option<String>,
    pub sealed_code: Option<String>,
    pub enrolling: bool,
    pub extension: Option<String>,
    pub sealed_pin: Option<String>,
    pub number: Option<u8>,
    pub source_address: Option<String>,
}

/// What the SDK's authenticate calls return. A refused start has no `id`
/// (nothing was stored) and is `rejected` with `validate`'s reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authentication {
    pub id: Option<String>,
    pub state: ChallengeState,
    /// Final: why. Pending: none, except in the answer to a wrong answer,
    /// which says what was wrong with it.
    pub reason: Option<ChallengeReason>,
    pub method: Option<DefaultMethod>,
    pub prompt: Option<Prompt>,
    pub pin_required: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// The number called or texted, masked to its last two digits (`…78`).
    #[serde(default)]
    pub phone: Option<String>,
    /// Mobile app: the number to show, which the user picks in the app.
    #[serde(default)]
    pub number: Option<u8>,
}

impl Authentication {
    /// A start refused before anything was stored.
    pub fn refused(reason: ChallengeReason) -> Self {
        Authentication {
            id: None,
            state: ChallengeState::Rejected,
            reason: Some(reason),
            method: None,
            prompt: None,
            pin_required: false,
            expires_at: None,
            phone: None,
            number: None,
        }
    }

    /// The view of a stored challenge.
    pub fn of(c: &Challenge) -> Self {
        Authentication {
            id: Some(c.id.clone()),
            state: c.state,
            reason: c.reason.as_deref().and_then(ChallengeReason::parse),
            method: Some(c.method),
            prompt: crate::methods::method(c.method.method).map(|m| m.prompt(c.method.mode)),
            pin_required: crate::methods::method(c.method.method)
                .is_some_and(|m| m.pin_in_passcode(c.method.mode)),
            expires_at: Some(c.expires_at),
            phone: c
                .destination
                .as_deref()
                .map(crate::engine::telephony::masked),
            number: c.number,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_and_reasons_round_trip() {
        for s in ChallengeState::ALL {
            assert_eq!(ChallengeState::parse(s.as_str()), Some(s));
        }
        assert_eq!(ChallengeState::parse("PENDING"), None);
        assert!(!ChallengeState::Pending.is_final());
        assert!(ChallengeState::Expired.is_final());
        assert_eq!(
            ChallengeReason::TooManyAttempts.as_str(),
            "too_many_attempts"
        );
        assert_eq!(
            ChallengeReason::parse("unknown_user"),
            Some(ChallengeReason::UnknownUser)
        );
        assert_eq!(ChallengeReason::parse("nope"), None);
        // Every validate reason keeps its name.
        let v = serde_json::to_value(ValidateReason::ReplayedPasscode).unwrap();
        assert_eq!(
            v.as_str().unwrap(),
            ChallengeReason::from(ValidateReason::ReplayedPasscode).as_str()
        );
    }

    #[test]
    fn ids() {
        assert!(is_challenge_id(&"0123456789abcdef".repeat(2)));
        for bad in [
            "",
            "0123456789abcdef",
            &"0123456789ABCDEF".repeat(2),
            &"0123456789abcdeg".repeat(2),
            &"a".repeat(33),
        ] {
            assert!(!is_challenge_id(bad), "{bad}");
        }
    }
}
