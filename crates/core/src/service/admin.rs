//! `AdminService`: administering users and the server. Every operation is
//! authorized by the engine against the caller's permissions and scope
//! (`Access::authorize`), whichever front-end it came through.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{CreateUser, Ctx};
use crate::audit::{AuditEvent, AuditQuery};
use crate::error::Result;
use crate::factors::{FactorFailures, OathParams, OathToken, SecurityQuestion, ServiceAccount};
use crate::ports::UserQuery;
use crate::principal::{Permissions, Role, Scope};
use crate::settings::Settings;
use crate::user::{Admin, User, UserPatch};

/// What a new service account may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccountSpec {
    pub role: Role,
    /// Only for role `admin`.
    pub permissions: Permissions,
    /// Only for role `admin`.
    pub scope: Scope,
}

/// A token added by an administrator, and what it did to the user's method.
#[derive(Debug, Clone)]
pub struct AddedToken {
    pub token: OathToken,
    /// Set when the user had no method and now has `oath_token`.
    pub method_set: bool,
}

#[async_trait]
pub trait AdminService: Send + Sync + 'static {
    /// The engine's clock (for showing a user's status as of now).
    fn now(&self) -> OffsetDateTime;

    // --- Settings -------------------------------------------------------------
    async fn settings(&self, ctx: &Ctx) -> Result<Settings>;
    /// Changes one setting; the value is validated against its key's rule.
    async fn set_setting(&self, ctx: &Ctx, key: &str, value: serde_json::Value)
        -> Result<Settings>;
    /// Returns one setting to its default.
    async fn reset_setting(&self, ctx: &Ctx, key: &str) -> Result<Settings>;

    // --- Users -------------------------------------------------------------------
    async fn create_user(&self, ctx: &Ctx, req: CreateUser) -> Result<User>;
    async fn get_user(&self, ctx: &Ctx, username: &str) -> Result<User>;
    /// The user's guessing record, one entry per factor (see
    /// `docs/security.md`): failures in a row, since the last success and
    /// this hour, and until when the factor is paused.
    async fn failures(&self, ctx: &Ctx, username: &str) -> Result<Vec<FactorFailures>>;
    async fn list_users(&self, ctx: &Ctx, query: UserQuery) -> Result<Vec<User>>;
    async fn update_user(&self, ctx: &Ctx, username: &str, patch: UserPatch) -> Result<User>;
    async fn set_user_enabled(&self, ctx: &Ctx, username: &str, enabled: bool) -> Result<User>;
    /// Clears a lockout and a fraud block.
    async fn unblock_user(&self, ctx: &Ctx, username: &str) -> Result<User>;
    async fn delete_user(&self, ctx: &Ctx, username: &str) -> Result<()>;
    async fn set_password(&self, ctx: &Ctx, username: &str, password: String) -> Result<()>;
    /// Clears a user's answers to the security questions (they answer new
    /// ones at their next sign-in).
    async fn reset_answers(&self, ctx: &Ctx, username: &str) -> Result<()>;
    /// Sets (or resets) a user's PIN; the PIN rules apply.
    async fn set_pin(&self, ctx: &Ctx, username: &str, pin: &str) -> Result<()>;
    /// Grants a one-time bypass (not bound by the portal's setting that lets
    /// users start one themselves).
    async fn grant_bypass(
        &self,
        ctx: &Ctx,
        username: &str,
        seconds: Option<u32>,
        reason: Option<&str>,
    ) -> Result<OffsetDateTime>;

    // --- OATH tokens ---------------------------------------------------------------
    /// Gives a user a token; a user with no method gets `oath_token`.
    async fn add_token(
        &self,
        ctx: &Ctx,
        username: &str,
        secret_base32: &str,
        params: OathParams,
        label: &str,
    ) -> Result<AddedToken>;
    async fn tokens(&self, ctx: &Ctx, username: &str) -> Result<Vec<OathToken>>;
    async fn delete_token(&self, ctx: &Ctx, username: &str, token_id: i64) -> Result<()>;
    /// A mobile-app activation code for the user (helpdesk), with the
    /// service URL and the activation URI.
    async fn device_activation_code(
        &self,
        ctx: &Ctx,
        username: &str,
    ) -> Result<crate::mobile::ActivationOffer>;
    async fn mobile_devices(
        &self,
        ctx: &Ctx,
        username: &str,
    ) -> Result<Vec<crate::mobile::DeviceView>>;
    async fn remove_mobile_device(&self, ctx: &Ctx, username: &str, device_id: &str) -> Result<()>;
    /// Brings an event-based token that drifted back in step with two codes.
    async fn resync_token(
        &self,
        ctx: &Ctx,
        username: &str,
        token_id: i64,
        code1: &str,
        code2: &str,
    ) -> Result<()>;

    // --- Token inventory ------------------------------------------------------------------
    /// Adds the tokens of a vendor's seed file (`token_import::parse_csv`,
    /// `parse_pskc`) to the inventory; a serial already there is reported
    /// as a duplicate and kept. Nothing is written in a dry run.
    async fn import_tokens(
        &self,
        ctx: &Ctx,
        tokens: crate::token_import::ImportedTokens,
        dry_run: bool,
    ) -> Result<crate::token_import::TokenImportReport>;
    /// Inventory tokens whose serial starts with `serial_prefix`, by serial.
    async fn inventory(
        &self,
        ctx: &Ctx,
        serial_prefix: Option<&str>,
        limit: u32,
    ) -> Result<Vec<crate::token_import::InventoryToken>>;
    /// Gives a user the inventory token `serial`; a user with no method
    /// gets `oath_token`. An empty label names it after the token.
    async fn assign_token(
        &self,
        ctx: &Ctx,
        username: &str,
        serial: &str,
        label: &str,
    ) -> Result<AddedToken>;
    /// Removes a token from the inventory (lost, broken, returned).
    async fn delete_inventory_token(&self, ctx: &Ctx, serial: &str) -> Result<()>;

    // --- Security questions ------------------------------------------------------------
    async fn add_question(&self, ctx: &Ctx, language: &str, text: &str)
        -> Result<SecurityQuestion>;
    async fn questions(&self, ctx: &Ctx, language: Option<&str>) -> Result<Vec<SecurityQuestion>>;
    async fn delete_question(&self, ctx: &Ctx, id: i64) -> Result<()>;
    /// Moves a question one place up or down within its language.
    async fn move_question(&self, ctx: &Ctx, id: i64, up: bool) -> Result<()>;

    // --- Audit log -------------------------------------------------------------------
    async fn audit_events(&self, ctx: &Ctx, query: AuditQuery) -> Result<Vec<AuditEvent>>;
    /// Records a read (an SDK call that changes nothing), so every call
    /// appears in the audit log with its caller.
    async fn record_read(&self, ctx: &Ctx, event: &str, subject: Option<&str>) -> Result<()>;

    // --- Administrators -------------------------------------------------------------
    /// The first portal administrator (refused once one exists).
    async fn bootstrap_admin(
        &self,
        ctx: &Ctx,
        username: &str,
        password: Option<String>,
    ) -> Result<Admin>;
    async fn admins(&self, ctx: &Ctx) -> Result<Vec<Admin>>;
    /// Makes `username` a portal administrator with these permissions over
    /// this scope (replacing what they had). Nobody grants a permission they
    /// do not hold themselves.
    async fn grant_admin(
        &self,
        ctx: &Ctx,
        username: &str,
        permissions: Permissions,
        scope: Scope,
    ) -> Result<Admin>;
    /// Takes the rights away; the last administrator who can manage
    /// administrators stays.
    async fn revoke_admin(&self, ctx: &Ctx, username: &str) -> Result<()>;
    async fn admin_count(&self, ctx: &Ctx) -> Result<u64>;
    /// A context acting as the portal administrator `username`, with their
    /// permissions and scope (the CLI's `--as`, for trying a delegation).
    /// Only a full administrator may ask.
    async fn act_as(&self, ctx: &Ctx, username: &str) -> Result<Ctx>;

    // --- Service accounts ---------------------------------------------------------------
    /// Creates an account; returns it with its secret, which is not stored.
    async fn create_service_account(
        &self,
        ctx: &Ctx,
        name: &str,
        spec: ServiceAccountSpec,
    ) -> Result<(ServiceAccount, String)>;
    async fn rotate_service_account(&self, ctx: &Ctx, name: &str) -> Result<String>;
    async fn delete_service_account(&self, ctx: &Ctx, name: &str) -> Result<()>;
    async fn service_accounts(&self, ctx: &Ctx) -> Result<Vec<ServiceAccount>>;
}
