//! The private portal link: what a User Portal on a separate server
//! (`twofold portal`) asks of the MFA server, and what it gets back.
//!
//! One route, `POST /link/v1`, takes a [`LinkRequest`] tagged by `op` and
//! answers the operation's response type (below) or the SDK's error body.
//! It needs a service account of role `portal`, is not part of the public
//! SDK or its OpenAPI document, and speaks only the types of this module —
//! never the engine's — so the server and its portals can be upgraded one
//! after the other within a version:
//!
//! * a field added within `v1` is optional (`#[serde(default)]`), and
//!   unknown fields are ignored, so an older peer still reads a newer one;
//! * an operation's meaning never changes within `v1`; a change that an
//!   older peer could not read makes `v2`, served beside `v1` for a release.
//!
//! Values that the engine has as enums travel as their stable snake_case
//! names (`oath_token`, `oath_token:oath_pin`, `totp`, `sha1`, ...).

use serde::{Deserialize, Serialize};

/// The link's path; the version is part of it.
pub const LINK_PATH: &str = "/link/v1";

/// One answer to a security question.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkAnswer {
    pub question_id: i64,
    pub answer: String,
}

/// What the portal asks; every operation acting for an end user names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum LinkRequest {
    /// → [`Ready`]
    Ready,
    /// → [`PortalSettings`]
    Settings,
    /// → [`LinkUser`]
    User { username: String },
    /// → [`SessionData`]
    SessionLoad { id_hash: String },
    /// → [`Done`]
    SessionSave {
        id_hash: String,
        data: String,
        ttl_seconds: i64,
    },
    /// → [`Done`]
    SessionDrop { id_hash: String },
    /// → [`LinkSignIn`]
    SignIn { username: String, password: String },
    /// → [`LinkVerified`]
    Verify {
        username: String,
        /// `method`, `security_questions` or `oath_fallback`.
        proof: String,
        #[serde(default)]
        code: Option<String>,
        #[serde(default)]
        answers: Vec<LinkAnswer>,
    },
    /// → [`LinkPhoneStarted`] (added in v1)
    CallOrText {
        username: String,
        /// `primary` or `backup`.
        #[serde(default)]
        phone: Option<String>,
    },
    /// → [`LinkVerified`] (added in v1)
    VerifyPhone {
        username: String,
        challenge: String,
        /// The code of a one-way text message, as typed.
        #[serde(default)]
        code: Option<String>,
        /// Seconds to wait for a decision (at most 8).
        #[serde(default)]
        wait_seconds: Option<u32>,
    },
    /// → [`LinkEnrollmentOptions`]
    EnrollmentOptions { username: String },
    /// → [`LinkPendingOath`]
    NewOathSecret { username: String },
    /// → [`LinkPendingOath`]
    ImportOathSecret {
        username: String,
        secret_base32: String,
        /// `totp` or `hotp`.
        kind: String,
        #[serde(default)]
        digits: Option<u32>,
    },
    /// → [`Confirmed`]
    ConfirmOath {
        username: String,
        pending: String,
        code: String,
    },
    /// → [`LinkUser`]
    FinishEnrollment {
        username: String,
        /// `method:mode`, e.g. `oath_token:oath`.
        method: String,
        #[serde(default)]
        oath: Option<String>,
        #[serde(default)]
        pin: Option<String>,
        #[serde(default)]
        answers: Vec<LinkAnswer>,
        /// The accepted `enrollment_phone` challenge (added in v1).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        phone_challenge: Option<String>,
        /// (added in v1)
        #[serde(default, skip_serializing_if = "Option::is_none")]
        backup_phone: Option<String>,
    },
    /// → [`LinkPhoneStarted`]: "Call Me Now" / "Text Me Now" in the wizard
    /// (added in v1).
    EnrollmentPhone {
        username: String,
        /// `phone_call` or `text_message`.
        method: String,
        phone: String,
        #[serde(default)]
        extension: String,
        #[serde(default)]
        pin: Option<String>,
    },
    /// → [`LinkPhoneStarted`] (added in v1)
    EnrollmentPhoneStatus {
        username: String,
        challenge: String,
        #[serde(default)]
        code: Option<String>,
        #[serde(default)]
        wait_seconds: Option<u32>,
    },
    /// → [`LinkAccount`]
    Account { username: String },
    /// → [`LinkPhoneStarted`] (added in v1)
    ChangePhone {
        username: String,
        /// `phone`, `backup` or `mobile`.
        slot: String,
        phone: String,
        #[serde(default)]
        extension: String,
    },
    /// → [`LinkPhoneStarted`] (added in v1)
    ChangePhoneStatus {
        username: String,
        challenge: String,
        slot: String,
        #[serde(default)]
        code: Option<String>,
        #[serde(default)]
        wait_seconds: Option<u32>,
    },
    /// → [`Done`]
    ChangePin { username: String, pin: String },
    /// → [`Done`]
    ChangeAnswers {
        username: String,
        answers: Vec<LinkAnswer>,
    },
    /// → [`LinkToken`]
    AddToken {
        username: String,
        confirmed: String,
        #[serde(default)]
        label: String,
    },
    /// → [`Done`]
    DeleteToken { username: String, token_id: i64 },
    /// → [`LinkUser`]
    ChangeLanguage { username: String, language: String },
    /// → [`LinkUser`]
    ChangeMethod {
        username: String,
        /// `phone_call`, `text_message`, `mobile_app` or `oath_token`.
        method: String,
    },
    /// → [`Bypass`]
    StartBypass {
        username: String,
        #[serde(default)]
        seconds: Option<u32>,
    },
    /// → [`LinkActivation`] (added in v1)
    ActivationCode { username: String },
    /// → [`Done`] (added in v1)
    RemoveDevice { username: String, device_id: String },
    /// → [`LinkPassed`] (added in v1)
    PassSession {
        username: String,
        /// `second_step`, `bypass`, `trusted_ip` or `enrollment`.
        via: String,
        #[serde(default)]
        return_to: Option<String>,
    },
    /// → [`LinkCookieDomain`] (added in v1)
    EndPassedSession { token: String },
}

impl LinkRequest {
    /// The operation's name, as in the `op` tag (for logs).
    pub fn op(&self) -> &'static str {
        match self {
            LinkRequest::Ready => "ready",
            LinkRequest::Settings => "settings",
            LinkRequest::User { .. } => "user",
            LinkRequest::SessionLoad { .. } => "session_load",
            LinkRequest::SessionSave { .. } => "session_save",
            LinkRequest::SessionDrop { .. } => "session_drop",
            LinkRequest::SignIn { .. } => "sign_in",
            LinkRequest::Verify { .. } => "verify",
            LinkRequest::CallOrText { .. } => "call_or_text",
            LinkRequest::VerifyPhone { .. } => "verify_phone",
            LinkRequest::EnrollmentPhone { .. } => "enrollment_phone",
            LinkRequest::ChangePhone { .. } => "change_phone",
            LinkRequest::ChangePhoneStatus { .. } => "change_phone_status",
            LinkRequest::EnrollmentPhoneStatus { .. } => "enrollment_phone_status",
            LinkRequest::EnrollmentOptions { .. } => "enrollment_options",
            LinkRequest::NewOathSecret { .. } => "new_oath_secret",
            LinkRequest::ImportOathSecret { .. } => "import_oath_secret",
            LinkRequest::ConfirmOath { .. } => "confirm_oath",
            LinkRequest::FinishEnrollment { .. } => "finish_enrollment",
            LinkRequest::Account { .. } => "account",
            LinkRequest::ChangePin { .. } => "change_pin",
            LinkRequest::ChangeAnswers { .. } => "change_answers",
            LinkRequest::AddToken { .. } => "add_token",
            LinkRequest::DeleteToken { .. } => "delete_token",
            LinkRequest::ChangeLanguage { .. } => "change_language",
            LinkRequest::ChangeMethod { .. } => "change_method",
            LinkRequest::StartBypass { .. } => "start_bypass",
            LinkRequest::ActivationCode { .. } => "activation_code",
            LinkRequest::RemoveDevice { .. } => "remove_device",
            LinkRequest::PassSession { .. } => "pass_session",
            LinkRequest::EndPassedSession { .. } => "end_passed_session",
        }
    }
}

/// A passed session opened (forward-auth); all empty while passed
/// sessions are off (`enabled: false`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkPassed {
    pub enabled: bool,
    /// The cookie's value.
    #[serde(default)]
    pub token: String,
    #[serde(default)]
    pub cookie_domain: Option<String>,
    #[serde(default)]
    pub max_age_seconds: i64,
    #[serde(default)]
    pub return_to: Option<String>,
    /// `not_protected`, `needs_second_step` or `denied`.
    #[serde(default)]
    pub refused: Option<String>,
}

/// The domain of the passed-session cookie, to clear it there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkCookieDomain {
    #[serde(default)]
    pub cookie_domain: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ready {
    /// `ready`.
    pub status: String,
    /// The primary directory (LDAP, RADIUS) when it is not the local one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<DirectoryStatus>,
}

/// Whether the primary directory answers (`/readyz` shows it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryStatus {
    /// `ldap` or `radius`.
    pub kind: String,
    /// `reachable` or `unreachable`.
    pub status: String,
    /// Why not, when unreachable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An operation that returns nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {}

/// The settings a portal renders by: a projection, never the whole set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalSettings {
    /// "Allow users to log in".
    pub allow_login: bool,
    /// "Enable logging": the portal writes JSON log files while on.
    pub logging: bool,
    /// Languages the portal speaks (added in v1; absent from older
    /// servers: every language).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub languages: Vec<String>,
    /// Time zone of the portal's dates (added in v1; absent: UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionData {
    pub data: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmed {
    /// The confirmed secret, sealed: only the MFA server can open it.
    pub confirmed: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bypass {
    /// RFC 3339.
    pub until: String,
}

/// A user as the portal shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkUser {
    pub id: i64,
    pub username: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub phone_extension: Option<String>,
    #[serde(default)]
    pub backup_phone: Option<String>,
    #[serde(default)]
    pub mobile_phone: Option<String>,
    pub enabled: bool,
    /// RFC 3339.
    #[serde(default)]
    pub locked_until: Option<String>,
    #[serde(default)]
    pub fraud_blocked: bool,
    /// `method:mode`.
    #[serde(default)]
    pub method: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkQuestion {
    pub id: i64,
    pub language: String,
    pub text: String,
}

/// Where a sign-in goes after the username and password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "next", rename_all = "snake_case")]
pub enum LinkSignIn {
    Rejected,
    Blocked {
        user: LinkUser,
    },
    LoginDisabled,
    Complete {
        user: LinkUser,
        /// `trusted_ip` or `bypass`.
        skip: String,
    },
    SecondStep {
        user: LinkUser,
        step: LinkSecondStep,
    },
    Enroll {
        user: LinkUser,
    },
    NotEnrolled {
        user: LinkUser,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkSecondStep {
    /// `method:mode`.
    pub method: String,
    pub method_available: bool,
    #[serde(default)]
    pub fallback_questions: Vec<LinkQuestion>,
    #[serde(default)]
    pub fallback_oath: bool,
    /// The mode needs a PIN not chosen yet: the code alone, then a PIN
    /// (added in v1; absent from older servers).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub choose_pin: bool,
    /// A backup phone can be called or texted instead (added in v1).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub backup_phone: bool,
}

/// A call placed or a text sent for the second step (or refused).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkPhoneStarted {
    /// The challenge to follow; none when refused before anything was sent.
    #[serde(default)]
    pub challenge: Option<String>,
    /// `pending`, `rejected`, ...
    pub state: String,
    #[serde(default)]
    pub reason: Option<String>,
    /// `passcode`, `phone_call` or `sms_reply`.
    #[serde(default)]
    pub prompt: Option<String>,
    /// The number, masked (`…78`).
    #[serde(default)]
    pub phone: Option<String>,
    /// Mobile app: the number to pick in the app (added in v1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum LinkVerified {
    Accepted {
        user: Box<LinkUser>,
        #[serde(default)]
        session_minutes: Option<u32>,
        /// Verified without the PIN the mode needs: choose one now (added
        /// in v1).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        choose_pin: bool,
    },
    Rejected {
        locked: bool,
        /// Wrong secrets left before a pause or lock (added in v1; absent
        /// from older servers).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attempts_left: Option<u32>,
        /// Seconds this failure paused the factor for (added in v1).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        paused_seconds: Option<u64>,
        /// Why a call or text did not verify (added in v1).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A call or text is under way (added in v1).
    Waiting {
        #[serde(default)]
        phone: Option<String>,
        /// `passcode`, `phone_call`, `sms_reply` or `mobile_app`.
        prompt: String,
        #[serde(default)]
        reason: Option<String>,
        /// Mobile app: the number to pick in the app (added in v1).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        number: Option<u8>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkPinRules {
    pub min_length: u32,
    pub prevent_weak: bool,
    pub expiry_days: u32,
    pub history: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkEnrollmentOptions {
    /// Method names.
    pub methods: Vec<String>,
    /// `method:mode` configured in advance by an administrator.
    #[serde(default)]
    pub preset: Option<String>,
    pub allow_third_party_oath: bool,
    pub questions_required: u32,
    #[serde(default)]
    pub questions: Vec<LinkQuestion>,
    pub pin_rules: LinkPinRules,
    /// (added in v1)
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub prompt_backup_phone: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkOathParams {
    /// `totp` or `hotp`.
    pub kind: String,
    /// `sha1`, `sha256` or `sha512`.
    pub algorithm: String,
    pub digits: u32,
    pub period: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkPendingOath {
    /// Sealed by the server; the portal carries it but cannot open it.
    pub sealed: String,
    pub secret_base32: String,
    pub uri: String,
    pub params: LinkOathParams,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkToken {
    pub id: i64,
    pub label: String,
    pub params: LinkOathParams,
    /// RFC 3339.
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkAllows {
    pub select_method: bool,
    pub select_language: bool,
    pub bypass: bool,
    pub bypass_prompt_seconds: bool,
    pub bypass_default_seconds: u32,
    pub bypass_max_seconds: u32,
    pub third_party_oath: bool,
    pub security_questions: bool,
    pub change_pin: bool,
    /// (added in v1)
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub change_phone: bool,
    /// (added in v1)
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub activate_mobile_app: bool,
    /// (added in v1)
    #[serde(default)]
    pub max_mobile_devices: u32,
}

/// A mobile-app device on the account page (added in v1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkDevice {
    pub id: String,
    pub name: String,
    /// RFC 3339.
    pub activated_at: String,
    /// RFC 3339.
    #[serde(default)]
    pub last_used_at: Option<String>,
    /// `ntfy`, `webhook` or none.
    #[serde(default)]
    pub push: Option<String>,
}

/// "Generate Activation Code" (added in v1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkActivation {
    pub code: String,
    pub url: String,
    pub uri: String,
    #[serde(default)]
    pub fingerprint: Option<String>,
    /// RFC 3339.
    pub expires_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkAccount {
    pub user: LinkUser,
    #[serde(default)]
    pub tokens: Vec<LinkToken>,
    pub has_pin: bool,
    pub pin_expired: bool,
    pub pin_rules: LinkPinRules,
    pub answers_set: u32,
    /// RFC 3339.
    #[serde(default)]
    pub bypass_until: Option<String>,
    pub allow: LinkAllows,
    #[serde(default)]
    pub selectable_methods: Vec<String>,
    #[serde(default)]
    pub questions: Vec<LinkQuestion>,
    pub questions_required: u32,
    /// The questions the user answered (added in v1; absent from older
    /// servers).
    #[serde(default)]
    pub answered: Vec<LinkQuestion>,
    /// Activated mobile-app devices (added in v1).
    #[serde(default)]
    pub devices: Vec<LinkDevice>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Requests as a `v1` portal writes them. They must keep parsing for as
    /// long as `v1` is served: change this list only by adding to it.
    const V1_REQUESTS: &[&str] = &[
        r#"{"op":"ready"}"#,
        r#"{"op":"settings"}"#,
        r#"{"op":"user","username":"jan"}"#,
        r#"{"op":"session_load","id_hash":"ab"}"#,
        r#"{"op":"session_save","id_hash":"ab","data":"{}","ttl_seconds":60}"#,
        r#"{"op":"session_drop","id_hash":"ab"}"#,
        r#"{"op":"sign_in","username":"jan","password":"pw"}"#,
        r#"{"op":"verify","username":"jan","proof":"method","code":"123456"}"#,
        r#"{"op":"verify","username":"jan","proof":"security_questions","answers":[{"question_id":1,"answer":"x"}]}"#,
        r#"{"op":"enrollment_options","username":"jan"}"#,
        r#"{"op":"new_oath_secret","username":"jan"}"#,
        r#"{"op":"import_oath_secret","username":"jan","secret_base32":"JBSWY3DP","kind":"hotp"}"#,
        r#"{"op":"confirm_oath","username":"jan","pending":"s","code":"1"}"#,
        r#"{"op":"finish_enrollment","username":"jan","method":"oath_token:oath","oath":"s"}"#,
        r#"{"op":"account","username":"jan"}"#,
        r#"{"op":"change_pin","username":"jan","pin":"4829"}"#,
        r#"{"op":"change_answers","username":"jan","answers":[]}"#,
        r#"{"op":"add_token","username":"jan","confirmed":"s"}"#,
        r#"{"op":"delete_token","username":"jan","token_id":3}"#,
        r#"{"op":"change_language","username":"jan","language":"nl"}"#,
        r#"{"op":"change_method","username":"jan","method":"oath_token"}"#,
        r#"{"op":"start_bypass","username":"jan"}"#,
        r#"{"op":"activation_code","username":"jan"}"#,
        r#"{"op":"remove_device","username":"jan","device_id":"ab"}"#,
    ];

    #[test]
    fn v1_requests_still_parse_and_round_trip() {
        for text in V1_REQUESTS {
            let req: LinkRequest =
                serde_json::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let again: LinkRequest =
                serde_json::from_str(&serde_json::to_string(&req).unwrap()).unwrap();
            assert_eq!(req, again);
            assert!(text.contains(&format!("\"op\":\"{}\"", req.op())));
        }
    }

    #[test]
    fn newer_peers_fields_are_ignored() {
        // A newer portal may send a field this server does not know yet.
        let req: LinkRequest =
            serde_json::from_str(r#"{"op":"user","username":"jan","trace":"x"}"#).unwrap();
        assert_eq!(
            req,
            LinkRequest::User {
                username: "jan".into()
            }
        );
        // A newer server may answer with fields this portal does not know.
        let s: PortalSettings =
            serde_json::from_str(r#"{"allow_login":true,"logging":false,"theme":"dark"}"#).unwrap();
        assert!(s.allow_login);
        let v: LinkVerified =
            serde_json::from_str(r#"{"result":"rejected","locked":false,"why":"x"}"#).unwrap();
        assert_eq!(
            v,
            LinkVerified::Rejected {
                locked: false,
                attempts_left: None,
                paused_seconds: None,
                reason: None,
            }
        );
    }

    #[test]
    fn responses_round_trip() {
        let user = LinkUser {
            id: 1,
            username: "jan".into(),
            display_name: None,
            email: None,
            groups: vec!["VPN".into()],
            language: Some("nl".into()),
            phone: None,
            phone_extension: None,
            backup_phone: None,
            mobile_phone: None,
            enabled: true,
            locked_until: None,
            fraud_blocked: false,
            method: Some("oath_token:oath".into()),
            created_at: "2026-01-01T00:00:00Z".into(),
            updated_at: "2026-01-01T00:00:00Z".into(),
            version: 3,
        };
        let s = LinkSignIn::SecondStep {
            user: user.clone(),
            step: LinkSecondStep {
                method: "oath_token:oath".into(),
                method_available: true,
                fallback_questions: vec![LinkQuestion {
                    id: 1,
                    language: "en".into(),
                    text: "Pet?".into(),
                }],
                fallback_oath: false,
                choose_pin: false,
                backup_phone: false,
            },
        };
        let text = serde_json::to_string(&s).unwrap();
        assert!(text.contains(r#""next":"second_step""#));
        assert_eq!(serde_json::from_str::<LinkSignIn>(&text).unwrap(), s);
        // A minimal user as an older server would send it.
        let old: LinkUser = serde_json::from_str(
            r#"{"id":1,"username":"jan","enabled":true,"created_at":"t","updated_at":"t","version":1}"#,
        )
        .unwrap();
        assert!(old.groups.is_empty() && old.method.is_none());
    }
}
