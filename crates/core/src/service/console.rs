//! `AdminConsole`: what the admin pages need beyond `AdminService` — who
//! the portal administrator signed in at the portal is, as a principal.
//! The pages then call `AdminService` with that principal, so the engine
//! decides every action exactly as for the CLI's `--as` or an SDK account.

use async_trait::async_trait;

use super::Ctx;
use crate::error::Result;
use crate::principal::{Permissions, Scope};

/// A portal administrator at the admin pages: their principal and what
/// the pages may offer them (the engine still decides every action).
#[derive(Debug, Clone)]
pub struct ConsoleGrant {
    /// Acts as `admin:USERNAME`, with their permissions and scope.
    pub ctx: Ctx,
    pub permissions: Permissions,
    pub scope: Scope,
    /// Minutes without a request after which the admin session ends
    /// (the setting `admin.idle_minutes`).
    pub idle_minutes: u32,
}

#[async_trait]
pub trait AdminConsole: Send + Sync + 'static {
    /// The administrator `username`, whom the portal (the caller, with
    /// the `portal` grant) has signed in with their second step. Refused
    /// (`Forbidden`, audited) when they are not a portal administrator or
    /// may not sign in. Asked on every admin page, so a revoked right or a
    /// disabled administrator stops at the next click.
    async fn console_grant(&self, ctx: &Ctx, username: &str) -> Result<ConsoleGrant>;
}
