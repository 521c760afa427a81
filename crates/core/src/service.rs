//! `MfaService`: everything the portal, the CLI and the SDK API need from the
//! MFA server. `Engine` implements it in-process; the SDK client implements it
//! over HTTPS, so the portal runs the same either way.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

use time::OffsetDateTime;

use crate::audit::{AuditEvent, AuditQuery};
use crate::error::Result;
use crate::factors::OathToken;
use crate::portal::{
    Account, EnrollmentOptions, FinishEnrollment, ImportOath, PendingOath, Proof, SignIn, Verified,
};
use crate::ports::UserQuery;
use crate::settings::Settings;
use crate::user::{MethodKind, User, UserPatch};

/// Who is asking; recorded in every audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The local command line (whoever can read the configuration).
    Cli,
    Admin(String),
    ServiceAccount(String),
    User(String),
    System,
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Cli => f.write_str("cli"),
            Actor::Admin(n) => write!(f, "admin:{n}"),
            Actor::ServiceAccount(n) => write!(f, "sdk:{n}"),
            Actor::User(n) => write!(f, "user:{n}"),
            Actor::System => f.write_str("system"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Ctx {
    pub actor: Actor,
    pub source_ip: Option<IpAddr>,
}

impl Ctx {
    pub fn cli() -> Self {
        Ctx {
            actor: Actor::Cli,
            source_ip: None,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub username: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub language: Option<String>,
    /// Local password; users of a directory have none here.
    #[serde(default)]
    pub password: Option<String>,
}

/// Result of a primary (username + password) check. Deliberately says nothing
/// about why a sign-in was refused: the audit log has that.
#[derive(Debug, Clone)]
pub enum PrimaryOutcome {
    Accepted(Box<User>),
    Rejected,
}

#[async_trait]
pub trait MfaService: Send + Sync + 'static {
    /// Ready to serve: the database answers.
    async fn ready(&self) -> Result<()>;

    async fn settings(&self) -> Result<Settings>;
    /// Changes one setting; the value is validated against its key's rule.
    async fn set_setting(&self, ctx: &Ctx, key: &str, value: serde_json::Value)
        -> Result<Settings>;
    /// Returns one setting to its default.
    async fn reset_setting(&self, ctx: &Ctx, key: &str) -> Result<Settings>;

    async fn create_user(&self, ctx: &Ctx, req: CreateUser) -> Result<User>;
    async fn get_user(&self, ctx: &Ctx, username: &str) -> Result<User>;
    async fn list_users(&self, ctx: &Ctx, query: UserQuery) -> Result<Vec<User>>;
    async fn update_user(&self, ctx: &Ctx, username: &str, patch: UserPatch) -> Result<User>;
    async fn set_user_enabled(&self, ctx: &Ctx, username: &str, enabled: bool) -> Result<User>;
    /// Clears a lockout and a fraud block.
    async fn unblock_user(&self, ctx: &Ctx, username: &str) -> Result<User>;
    async fn delete_user(&self, ctx: &Ctx, username: &str) -> Result<()>;
    async fn set_password(&self, ctx: &Ctx, username: &str, password: String) -> Result<()>;

    /// Primary authentication against the configured source.
    async fn check_password(
        &self,
        ctx: &Ctx,
        username: &str,
        password: String,
    ) -> Result<PrimaryOutcome>;

    async fn audit_events(&self, ctx: &Ctx, query: AuditQuery) -> Result<Vec<AuditEvent>>;

    // --- User Portal: sign-in ------------------------------------------------
    /// Username and password, then what comes next (second step, enrollment,
    /// or signed in through a trusted IP or a one-time bypass).
    async fn begin_sign_in(&self, ctx: &Ctx, username: &str, password: String) -> Result<SignIn>;
    /// The second step: a code for the user's method or the OATH fallback, or
    /// answers to security questions. Failures count towards lockout.
    async fn verify(
        &self,
        ctx: &Ctx,
        username: &str,
        proof: Proof,
        code: Option<String>,
        answers: Vec<(i64, String)>,
    ) -> Result<Verified>;

    // --- User Portal: enrollment wizard ----------------------------------------
    async fn enrollment_options(&self, ctx: &Ctx, username: &str) -> Result<EnrollmentOptions>;
    /// A new authenticator-app secret, sealed for the round trip.
    async fn new_oath_secret(&self, ctx: &Ctx, username: &str) -> Result<PendingOath>;
    /// A third-party token's secret typed in by the user.
    async fn import_oath_secret(
        &self,
        ctx: &Ctx,
        username: &str,
        import: ImportOath,
    ) -> Result<PendingOath>;
    /// Proves the user holds the secret; returns it sealed as confirmed.
    async fn confirm_oath(
        &self,
        ctx: &Ctx,
        username: &str,
        pending: String,
        code: String,
    ) -> Result<String>;
    /// Writes everything the wizard collected, in one transaction.
    async fn finish_enrollment(
        &self,
        ctx: &Ctx,
        username: &str,
        finish: FinishEnrollment,
    ) -> Result<User>;

    // --- User Portal: account maintenance ----------------------------------------
    async fn account(&self, ctx: &Ctx, username: &str) -> Result<Account>;
    async fn change_pin(&self, ctx: &Ctx, username: &str, pin: String) -> Result<()>;
    async fn change_answers(
        &self,
        ctx: &Ctx,
        username: &str,
        answers: Vec<(i64, String)>,
    ) -> Result<()>;
    async fn add_oath_token(
        &self,
        ctx: &Ctx,
        username: &str,
        confirmed: String,
        label: String,
    ) -> Result<OathToken>;
    async fn delete_oath_token(&self, ctx: &Ctx, username: &str, token_id: i64) -> Result<()>;
    async fn change_language(&self, ctx: &Ctx, username: &str, language: String) -> Result<User>;
    async fn change_method(&self, ctx: &Ctx, username: &str, method: MethodKind) -> Result<User>;
    /// Lets the next sign-on skip the second step within the returned time.
    async fn start_bypass(
        &self,
        ctx: &Ctx,
        username: &str,
        seconds: Option<u32>,
    ) -> Result<OffsetDateTime>;

    // --- Applications (SDK) ----------------------------------------------------
    /// Checks a passcode (OTP, or PIN + OTP when the mode needs a PIN) in one
    /// call; failures count towards lockout.
    async fn validate(
        &self,
        ctx: &Ctx,
        username: &str,
        passcode: &str,
    ) -> Result<crate::engine::Validation>;
    /// Starts authenticating a user with their method, for applications
    /// that collect the answer in a later request. Refuses (without storing
    /// anything) whom `validate` would refuse, with the same reasons.
    async fn start_authentication(
        &self,
        ctx: &Ctx,
        username: &str,
    ) -> Result<crate::challenge::Authentication>;
    /// Where a challenge stands; only its starter may ask (others: not found).
    async fn authentication_status(
        &self,
        ctx: &Ctx,
        id: &str,
    ) -> Result<crate::challenge::Authentication>;
    /// Answers a pending challenge (a passcode, like `validate`'s); wrong
    /// answers count towards lockout, the third rejects the challenge.
    async fn answer_authentication(
        &self,
        ctx: &Ctx,
        id: &str,
        passcode: &str,
    ) -> Result<crate::challenge::Authentication>;

    // --- Portal sessions (server-side, shared by every portal node) -------------
    async fn session_load(&self, id_hash: &str) -> Result<Option<String>>;
    async fn session_save(&self, id_hash: &str, data: String, ttl_seconds: i64) -> Result<()>;
    async fn session_drop(&self, id_hash: &str) -> Result<()>;
}
