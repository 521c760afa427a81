//! What the User Portal asks of the engine and gets back. These types cross
//! the `PortalService` boundary, so they serialise (the remote portal receives
//! them over the SDK).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::challenge::{ChallengeReason, Prompt};
use crate::factors::{OathKind, OathParams, OathToken, SecurityQuestion};
use crate::settings::PinRules;
use crate::user::{DefaultMethod, MethodKind, User};

/// The settings a portal renders by: a projection of the runtime settings,
/// so a portal on a separate server receives only what it needs (never a
/// secret setting, never the policies).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalConfig {
    /// "Allow users to log in".
    pub allow_login: bool,
    /// "Enable logging": JSON log files while on.
    pub logging: bool,
    /// The languages the portal speaks (`portal.languages`).
    pub languages: Vec<String>,
    /// The time zone of its dates (`portal.time_zone`).
    pub time_zone: String,
}

impl PortalConfig {
    pub fn of(s: &crate::settings::Settings) -> PortalConfig {
        PortalConfig {
            allow_login: s.portal.allow_login,
            logging: s.portal.logging,
            languages: s.portal.languages.clone(),
            time_zone: s.portal.time_zone.clone(),
        }
    }
}

impl Default for PortalConfig {
    fn default() -> Self {
        PortalConfig::of(&crate::settings::Settings::default())
    }
}

/// Why the second step was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Skip {
    TrustedIp,
    Bypass,
}

/// Where a sign-in goes after the username and password.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "next", rename_all = "snake_case")]
pub enum SignIn {
    /// Wrong username or password (deliberately not which).
    Rejected,
    /// The password was right but the account is disabled, locked or blocked.
    Blocked { user: User },
    /// "Allow users to log in" is off.
    LoginDisabled,
    /// Signed in without a second step.
    Complete { user: User, skip: Skip },
    /// Verify with the user's method, or a fallback.
    SecondStep { user: User, step: SecondStep },
    /// Not enrolled yet, and enrollment is allowed.
    Enroll { user: User },
    /// Not enrolled and enrollment is off: only an administrator can help.
    NotEnrolled { user: User },
}

impl SignIn {
    /// The user the password was right for, if any.
    pub fn user(&self) -> Option<&User> {
        match self {
            SignIn::Rejected | SignIn::LoginDisabled => None,
            SignIn::Blocked { user }
            | SignIn::Complete { user, .. }
            | SignIn::SecondStep { user, .. }
            | SignIn::Enroll { user }
            | SignIn::NotEnrolled { user } => Some(user),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecondStep {
    pub method: DefaultMethod,
    /// The method can be used here (an OATH code, today).
    pub method_available: bool,
    /// Security questions offered as fallback: exactly these must be answered.
    pub fallback_questions: Vec<SecurityQuestion>,
    /// An OATH code is accepted as fallback.
    pub fallback_oath: bool,
    /// The mode needs a PIN the user has not chosen yet (an administrator
    /// moved an enrolled user to a PIN mode): the code alone verifies, and
    /// the user then chooses their PIN.
    #[serde(default)]
    pub choose_pin: bool,
    /// The user has a backup phone a call or text may go to instead.
    #[serde(default)]
    pub backup_phone: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Proof {
    /// The user's own method.
    Method,
    SecurityQuestions,
    OathFallback,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Verified {
    /// Verified; the portal session may last `session_minutes` at most.
    Accepted {
        user: Box<User>,
        session_minutes: Option<u32>,
        /// Verified without the PIN the mode needs, as none was chosen: the
        /// portal asks for one before anything else.
        #[serde(default)]
        choose_pin: bool,
    },
    Rejected {
        locked: bool,
        /// Wrong secrets still allowed before this factor pauses (or the
        /// user is locked), when the lockout rules bound it: the portal warns
        /// before the last one.
        #[serde(default)]
        attempts_left: Option<u32>,
        /// This failure paused the factor for this long: the portal says
        /// until when.
        #[serde(default)]
        paused_seconds: Option<u64>,
        /// Why a call or text message did not verify (`no_answer`,
        /// `fraud_reported`, `provider_error`, ...).
        #[serde(default)]
        reason: Option<ChallengeReason>,
    },
    /// A call or text message is under way: the user answers on the phone
    /// (or types the code of a one-way text) and the portal asks again.
    Waiting {
        /// The number called or texted, masked (`…78`).
        phone: Option<String>,
        prompt: Prompt,
        /// What was wrong with the last typed code, if anything.
        reason: Option<ChallengeReason>,
        /// Mobile app: the number to pick in the app.
        #[serde(default)]
        number: Option<u8>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnrollmentOptions {
    /// Methods the user may choose (one means no choice).
    pub methods: Vec<MethodKind>,
    /// The method and mode an administrator configured for this user in
    /// advance; the wizard then sets that up (with a PIN if the mode needs one).
    pub preset: Option<DefaultMethod>,
    pub allow_third_party_oath: bool,
    /// The user must pick and answer this many questions from `questions`.
    pub questions_required: usize,
    pub questions: Vec<SecurityQuestion>,
    pub pin_rules: PinRules,
    /// The phone step also asks for a backup phone.
    #[serde(default)]
    pub prompt_backup_phone: bool,
}

impl EnrollmentOptions {
    /// The mode the wizard sets up for `method`.
    pub fn mode_for(&self, method: MethodKind) -> crate::user::Mode {
        match self.preset {
            Some(p) if p.method == method => p.mode,
            _ => method.modes()[0],
        }
    }
}

/// An OATH secret being set up: shown to the user, sealed for the round trip
/// through the portal session (only the engine can open it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingOath {
    pub sealed: String,
    pub secret_base32: String,
    pub uri: String,
    pub params: OathParams,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImportOath {
    pub secret_base32: String,
    pub kind: OathKind,
    #[serde(default)]
    pub digits: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FinishEnrollment {
    pub method: DefaultMethod,
    /// Sealed confirmed OATH token from `confirm_oath`.
    pub oath: Option<String>,
    pub pin: Option<String>,
    /// (question id, answer)
    pub answers: Vec<(i64, String)>,
    /// The accepted challenge of `enrollment_phone` that proved the phone
    /// (phone call and text message); its PIN is the one chosen with it.
    #[serde(default)]
    pub phone_challenge: Option<String>,
    /// A backup phone, as typed (when the wizard asks for one).
    #[serde(default)]
    pub backup_phone: Option<String>,
}

/// Which of a user's numbers a change on the account page is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhoneSlot {
    /// The phone calls go to (with its extension).
    Phone,
    Backup,
    /// The mobile number text messages go to.
    Mobile,
}

impl PhoneSlot {
    pub fn as_str(self) -> &'static str {
        match self {
            PhoneSlot::Phone => "phone",
            PhoneSlot::Backup => "backup",
            PhoneSlot::Mobile => "mobile",
        }
    }
}

/// A new number for the account page, proved by a call or text to it
/// before it is saved.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChangePhone {
    pub slot: PhoneSlot,
    /// As typed: E.164, or national in `phone.default_country`.
    pub phone: String,
    /// The primary phone's extension.
    #[serde(default)]
    pub extension: String,
}

/// "Call Me Now to Authenticate" / "Text Me Now to Authenticate": the phone
/// a user enrolls, proved by a call or text before anything is saved.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnrollPhone {
    pub method: MethodKind,
    /// As typed: E.164, or national in `phone.default_country`.
    pub phone: String,
    /// Dialled after the call connects (phone call only).
    #[serde(default)]
    pub extension: String,
    /// The PIN chosen now, when the mode needs one: the call or the reply
    /// asks for it.
    #[serde(default)]
    pub pin: Option<String>,
}

/// What the account page shows and allows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Account {
    pub user: User,
    pub tokens: Vec<OathToken>,
    pub has_pin: bool,
    pub pin_expired: bool,
    pub pin_rules: PinRules,
    pub answers_set: usize,
    #[serde(with = "time::serde::rfc3339::option")]
    pub bypass_until: Option<OffsetDateTime>,
    pub allow: AccountAllows,
    pub selectable_methods: Vec<MethodKind>,
    pub questions: Vec<SecurityQuestion>,
    pub questions_required: usize,
    /// The questions the user answered (any language), to show them.
    #[serde(default)]
    pub answered: Vec<SecurityQuestion>,
    /// Activated mobile-app devices.
    #[serde(default)]
    pub devices: Vec<crate::mobile::DeviceView>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct AccountAllows {
    pub select_method: bool,
    pub select_language: bool,
    pub bypass: bool,
    pub bypass_prompt_seconds: bool,
    pub bypass_default_seconds: u32,
    pub bypass_max_seconds: u32,
    pub third_party_oath: bool,
    pub security_questions: bool,
    pub change_pin: bool,
    /// Numbers can be changed here (a provider can prove them).
    #[serde(default)]
    pub change_phone: bool,
    /// "Generate Activation Code" for the mobile app is offered.
    #[serde(default)]
    pub activate_mobile_app: bool,
    #[serde(default)]
    pub max_mobile_devices: u32,
}
