//! `MfaService`: everything the portal, the CLI and the SDK API need from the
//! MFA server. `Engine` implements it in-process; the SDK client implements it
//! over HTTPS, so the portal runs the same either way.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

use crate::audit::{AuditEvent, AuditQuery};
use crate::error::Result;
use crate::ports::UserQuery;
use crate::settings::Settings;
use crate::user::{User, UserPatch};

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
    Accepted(User),
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
}
