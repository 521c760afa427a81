//! Wire types of the User Portal's operations (`/sdk/v1/portal/...`,
//! `/sdk/v1/settings`, `/sdk/v1/ready`): what a portal on a separate server
//! sends to the MFA server. Responses are the domain's own serde types
//! (`twofold_core::portal::*`, `User`, `Settings`), documented as objects.
//!
//! Every portal operation names the end user it acts for; the server audits
//! it as `user:<name>`, exactly as an in-process portal would, and takes the
//! end user's address from the `X-Twofold-Client-Ip` header.

use serde::{Deserialize, Serialize};
use twofold_core::factors::OathKind;
use twofold_core::portal::Proof;
use twofold_core::user::{DefaultMethod, MethodKind};
use utoipa::ToSchema;

/// The header an authenticated SDK caller sets to the address of the person
/// it acts for (the portal: the browser's address). Ignored without valid
/// credentials.
pub const CLIENT_IP_HEADER: &str = "x-twofold-client-ip";

/// One answer to a security question.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    pub question_id: i64,
    pub answer: String,
}

pub fn answers_to_pairs(answers: Vec<Answer>) -> Vec<(i64, String)> {
    answers
        .into_iter()
        .map(|a| (a.question_id, a.answer))
        .collect()
}

pub fn answers_from_pairs(pairs: Vec<(i64, String)>) -> Vec<Answer> {
    pairs
        .into_iter()
        .map(|(question_id, answer)| Answer {
            question_id,
            answer,
        })
        .collect()
}

/// Names the end user an operation is for.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PortalUser {
    pub username: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInRequest {
    /// As typed by the person (the server trims it).
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    pub username: String,
    /// `method`, `security_questions` or `oath_fallback`.
    #[schema(value_type = String)]
    pub proof: Proof,
    /// The code (with the PIN in front when the mode needs one).
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub answers: Vec<Answer>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportOathRequest {
    pub username: String,
    pub secret_base32: String,
    /// `totp` or `hotp`.
    #[schema(value_type = String)]
    pub kind: OathKind,
    #[serde(default)]
    pub digits: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmOathRequest {
    pub username: String,
    /// `sealed` of the pending secret.
    pub pending: String,
    pub code: String,
}

/// A confirmed OATH secret, sealed: only the MFA server can open it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConfirmedOath {
    pub confirmed: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FinishEnrollmentRequest {
    pub username: String,
    /// `{"method": "oath_token", "mode": "oath"}`.
    #[schema(value_type = Object)]
    pub method: DefaultMethod,
    /// The sealed confirmed token from `confirm`.
    #[serde(default)]
    pub oath: Option<String>,
    #[serde(default)]
    pub pin: Option<String>,
    #[serde(default)]
    pub answers: Vec<Answer>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePinRequest {
    pub username: String,
    pub pin: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeAnswersRequest {
    pub username: String,
    pub answers: Vec<Answer>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddPortalTokenRequest {
    pub username: String,
    /// The sealed confirmed token from `confirm`.
    pub confirmed: String,
    #[serde(default)]
    pub label: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeletePortalTokenRequest {
    pub username: String,
    pub token_id: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeLanguageRequest {
    pub username: String,
    pub language: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeMethodRequest {
    pub username: String,
    /// `phone_call`, `text_message`, `mobile_app` or `oath_token`.
    #[schema(value_type = String)]
    pub method: MethodKind,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartBypassRequest {
    pub username: String,
    /// Only when the setting `portal.bypass_prompt_seconds` allows choosing.
    #[serde(default)]
    pub seconds: Option<u32>,
}

/// A stored portal session (opaque JSON text written by the portal).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SessionBody {
    /// Absent when there is no such session or it has expired.
    pub data: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionPut {
    /// At most 16 KiB.
    pub data: String,
    /// 1..=86400.
    pub ttl_seconds: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingValue {
    /// The key's JSON value: a boolean, a number, a string or a list,
    /// checked against the key's rule (`twofold settings show`).
    #[schema(value_type = Object)]
    pub value: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReadyResponse {
    /// `ready`.
    pub status: String,
}
