//! The Web Service SDK's wire types: what applications and the remote portal
//! send and receive under `/sdk/v1`. They are deliberately separate from the
//! domain types so the API stays stable while the domain grows, and this
//! crate does not know the engine at all: the server converts its types in
//! `twofold_web::sdk_api`, and `twofold_link` converts them back for
//! applications that want the engine's types.

pub mod link;
pub mod mobile;
pub mod rules;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Every error: a stable code, a message for people, and the field at fault.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// `invalid_input`, `unauthorized`, `forbidden`, `not_found`, `conflict`,
    /// `rate_limited`, `unavailable`, `internal`.
    pub error: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For `conflict`: `exists`, `concurrent`, `already_enrolled`,
    /// `last_factor`, `last_administrator`, `bootstrap_closed`, `finished`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The header an authenticated SDK caller sets to the address of the person
/// it acts for (a remote portal: the browser's; a RADIUS front-end: the
/// user's). Ignored without valid credentials.
pub const CLIENT_IP_HEADER: &str = "x-twofold-client-ip";

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingValue {
    /// The key's JSON value: a boolean, a number, a string or a list,
    /// checked against the key's rule (`twofold settings show`).
    #[schema(value_type = Value)]
    pub value: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TestResponse {
    pub ok: bool,
    /// The account the call was made with.
    pub account: String,
    #[schema(schema_with = rules::timestamp)]
    pub server_time: String,
    pub version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateRequest {
    #[schema(schema_with = rules::username)]
    pub username: String,
    #[schema(schema_with = rules::passcode)]
    pub passcode: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ValidateResult {
    Accept,
    Reject,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ValidateResponse {
    pub result: ValidateResult,
    /// `accepted`, `wrong_passcode`, `replayed_passcode`, `wrong_pin`,
    /// `pin_not_set`, `no_token`, `not_enrolled`, `method_not_supported`,
    /// `user_disabled`, `user_locked`, `unknown_user`.
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrimaryRequest {
    #[schema(schema_with = rules::sign_in_name)]
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PrimaryResponse {
    pub result: ValidateResult,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    pub username: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub groups: Vec<String>,
    pub language: Option<String>,
    /// Primary phone, E.164.
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub phone_extension: Option<String>,
    #[serde(default)]
    pub backup_phone: Option<String>,
    #[serde(default)]
    pub mobile_phone: Option<String>,
    /// `enabled`, `disabled`, `locked until …`, `blocked (fraud reported)`.
    pub status: String,
    pub enabled: bool,
    /// `method:mode`, e.g. `oath_token:oath`; absent until enrolled.
    pub method: Option<String>,
    #[schema(schema_with = rules::timestamp)]
    pub created_at: String,
    #[schema(schema_with = rules::timestamp)]
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserList {
    pub users: Vec<UserView>,
    /// Pass as `after` to get the next page; absent on the last page.
    pub next_after: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    #[schema(schema_with = rules::new_username)]
    pub username: String,
    #[serde(default)]
    #[schema(schema_with = rules::display_name)]
    pub display_name: Option<String>,
    #[serde(default)]
    #[schema(schema_with = rules::email)]
    pub email: Option<String>,
    /// At most 200 groups (the same name in another case counts once).
    #[serde(default)]
    #[schema(schema_with = rules::groups)]
    pub groups: Vec<String>,
    #[serde(default)]
    #[schema(schema_with = rules::language_or_null)]
    pub language: Option<String>,
    /// A local password; leave out for users of a directory.
    #[serde(default)]
    #[schema(schema_with = rules::new_password_or_null)]
    pub password: Option<String>,
    /// `method` or `method:mode`, e.g. `oath_token:oath_pin`.
    #[serde(default)]
    pub method: Option<String>,
    /// E.164 (`+31…`), or national in the setting `phone.default_country`.
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    #[schema(schema_with = rules::phone_extension)]
    pub phone_extension: Option<String>,
    #[serde(default)]
    pub backup_phone: Option<String>,
    #[serde(default)]
    pub mobile_phone: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    #[serde(default)]
    #[schema(schema_with = rules::display_name)]
    pub display_name: Option<String>,
    #[serde(default)]
    #[schema(schema_with = rules::email)]
    pub email: Option<String>,
    /// The user's groups from now on, at most 200.
    #[serde(default)]
    #[schema(schema_with = rules::groups_or_null)]
    pub groups: Option<Vec<String>>,
    #[serde(default)]
    #[schema(schema_with = rules::language_or_null)]
    pub language: Option<String>,
    /// `method` or `method:mode`; "" clears.
    #[serde(default)]
    pub method: Option<String>,
    /// E.164 (`+31…`), or national in the setting `phone.default_country`; "" clears.
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    #[schema(schema_with = rules::phone_extension)]
    pub phone_extension: Option<String>,
    #[serde(default)]
    pub backup_phone: Option<String>,
    #[serde(default)]
    pub mobile_phone: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordRequest {
    #[schema(schema_with = rules::new_password)]
    pub password: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PinRequest {
    #[schema(schema_with = rules::pin)]
    pub pin: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MethodRequest {
    /// `method` or `method:mode`, e.g. `oath_token:oath_pin`.
    pub method: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LanguageRequest {
    #[schema(schema_with = rules::language_or_empty)]
    pub language: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BypassRequest {
    /// The setting `portal.bypass_default_seconds` when absent. (An
    /// administrator is not bound by `portal.bypass_max_seconds`, which
    /// limits what users grant themselves in the portal.)
    #[serde(default, deserialize_with = "rules::whole::option_u32")]
    #[schema(minimum = 1, maximum = 86400)]
    pub seconds: Option<u32>,
    #[serde(default)]
    #[schema(schema_with = rules::reason)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BypassResponse {
    #[schema(schema_with = rules::timestamp)]
    pub until: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenType {
    Totp,
    Hotp,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenAlgorithm {
    Sha1,
    Sha256,
    Sha512,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    #[serde(rename = "type")]
    pub kind: TokenType,
    #[schema(schema_with = rules::secret)]
    pub secret: String,
    #[serde(default, deserialize_with = "rules::whole::option_u32")]
    #[schema(schema_with = rules::digits_or_null)]
    pub digits: Option<u32>,
    /// Seconds per code of a time-based token: 15 to 300, 30 by default.
    #[serde(default, deserialize_with = "rules::whole::option_u32")]
    #[schema(minimum = 15, maximum = 300)]
    pub period: Option<u32>,
    /// SHA-1 by default.
    #[serde(default)]
    pub algorithm: Option<TokenAlgorithm>,
    #[serde(default)]
    #[schema(schema_with = rules::label)]
    pub label: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenView {
    pub id: i64,
    pub label: String,
    #[serde(rename = "type")]
    pub kind: TokenType,
    pub algorithm: TokenAlgorithm,
    #[schema(schema_with = rules::digits)]
    pub digits: u32,
    #[schema(minimum = 15, maximum = 300)]
    pub period: u32,
    #[schema(schema_with = rules::timestamp)]
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResyncRequest {
    pub code1: String,
    pub code2: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuestionRequest {
    #[schema(schema_with = rules::question_language)]
    pub language: String,
    #[schema(schema_with = rules::question_text)]
    pub text: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QuestionView {
    pub id: i64,
    pub language: String,
    pub text: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditView {
    pub id: i64,
    #[schema(schema_with = rules::timestamp)]
    pub at: String,
    pub actor: String,
    /// Who relayed the call for `actor`, e.g. a remote portal's account
    /// (`sdk:portal`) for an end user (`user:jan`).
    pub via: Option<String>,
    pub subject: Option<String>,
    pub event: String,
    pub method: Option<String>,
    /// SUCCESS_… or FAILED_….
    pub result: String,
    pub source_ip: Option<String>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    /// Newest first.
    pub events: Vec<AuditView>,
    /// Pass as `before_id` for the next (older) page; absent on the last page.
    pub next_before_id: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ServiceAccountView {
    pub name: String,
    /// `validate`, `portal` or `admin`.
    pub role: String,
    /// Permissions of an `admin` account (empty for the other roles).
    pub permissions: Vec<String>,
    /// `all` or `group:NAME` (an `admin` account's reach).
    pub scope: String,
    #[schema(schema_with = rules::timestamp)]
    pub created_at: String,
    #[schema(schema_with = rules::timestamp_or_null)]
    pub rotated_at: Option<String>,
    /// When the account last authenticated; absent or null if never. Kept
    /// to the minute, so it may lag the latest call by up to a minute.
    /// Defaulted so a reader of older output still parses it.
    #[serde(default)]
    #[schema(schema_with = rules::timestamp_or_null)]
    pub last_used_at: Option<String>,
}

// --- Authenticate in steps: start, follow, answer ------------------------------

/// Where an authentication stands. `pending` waits for an answer; the
/// others are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthenticationState {
    Pending,
    Accepted,
    Rejected,
    Expired,
}

/// What to collect from the user to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthenticationPrompt {
    /// A code the user types — the OATH code, or the code of the text
    /// message just sent — or the PIN followed by the code when
    /// `pin_required`: send it to `answer`.
    Passcode,
    /// Twofold is calling the user, who approves on the phone (`#`, or the
    /// PIN and `#`): follow the challenge (`?wait=` to wait for it).
    PhoneCall,
    /// Twofold texted the user, who replies to the message with the code
    /// (and the PIN when `pin_required`): follow the challenge.
    SmsReply,
    /// Twofold asked the user's mobile app: show the user `number`, which
    /// they pick in the app to approve; follow the challenge.
    MobileApp,
}

/// Which of the user's phones to call or text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PhoneChoiceView {
    /// The primary phone (text messages: the mobile number when set).
    #[default]
    Primary,
    /// The backup phone (when the primary does not answer).
    Backup,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartAuthenticationRequest {
    #[schema(schema_with = rules::username)]
    pub username: String,
    /// For phone call and text message users: which phone (default
    /// `primary`). Ignored for other methods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<PhoneChoiceView>,
}

/// Reasons, stable: `validate`'s (`accepted`, `wrong_passcode`,
/// `replayed_passcode`, `wrong_pin`, `pin_not_set`, `no_token`,
/// `not_enrolled`, `method_not_supported`, `user_disabled`, `user_locked`,
/// `unknown_user`) and `too_many_attempts`, `expired`, `method_changed`;
/// for calls and text messages `no_phone`, `fraud_reported`, `no_answer`,
/// `provider_error` and `rate_limited`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StartAuthenticationResponse {
    /// The challenge (32 hex digits). A bearer secret: only the account that
    /// started it can follow or answer it. Null when refused.
    pub id: Option<String>,
    /// `pending` when started; `rejected` when refused.
    pub state: AuthenticationState,
    /// Null when started; why it was refused otherwise (`unknown_user`,
    /// `not_enrolled`, `user_locked`, ... as `validate` says).
    pub reason: Option<String>,
    /// The user's `method:mode`, e.g. `oath_token:oath_pin`.
    pub method: Option<String>,
    pub prompt: Option<AuthenticationPrompt>,
    /// The answer is the PIN followed by the code.
    pub pin_required: bool,
    /// The answer must arrive before.
    #[schema(schema_with = rules::timestamp_or_null)]
    pub expires_at: Option<String>,
    /// The number called or texted, masked to its last two digits (`…78`);
    /// null for other methods.
    #[serde(default)]
    pub phone: Option<String>,
    /// Mobile app (`prompt` `mobile_app`): the number to show the user,
    /// who picks it in the app to approve (number matching); null for
    /// other methods.
    #[serde(default)]
    pub number: Option<u8>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuthenticationStatus {
    pub id: String,
    pub state: AuthenticationState,
    /// Null while pending; why once final (`accepted`, `too_many_attempts`,
    /// `user_locked`, `expired`, ...).
    pub reason: Option<String>,
    #[schema(schema_with = rules::timestamp)]
    pub expires_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerRequest {
    #[schema(schema_with = rules::passcode)]
    pub passcode: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AnswerResponse {
    /// `accepted`; `pending` after a wrong answer that leaves attempts;
    /// `rejected` after the last one.
    pub state: AuthenticationState,
    /// This answer's outcome while pending (`wrong_passcode`, `wrong_pin`,
    /// `replayed_passcode`, ...); the final reason otherwise (`accepted`,
    /// `too_many_attempts`, `user_locked`, `expired`, `method_changed`, ...).
    pub reason: Option<String>,
}

/// What an import did (or, in a dry run, would do).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImportReportView {
    pub dry_run: bool,
    pub added: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub refused: u64,
    /// Every row added, updated or refused, in file order (refused lines
    /// found while reading the file first); unchanged rows are only counted.
    pub rows: Vec<ImportRowView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImportRowView {
    /// The row's line in the file (1-based).
    pub line: u64,
    pub username: String,
    /// `added`, `updated` or `refused`.
    pub outcome: String,
    /// For `updated`: the fields that changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// For `refused`: why (the field first, as `phone: ...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
