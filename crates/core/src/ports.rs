//! Ports: what the engine needs from the outside world. Adapters implement
//! them; only the binary chooses which.

use async_trait::async_trait;

use crate::audit::{AuditEvent, AuditQuery, NewAuditEvent};
use crate::error::Result;
use crate::user::{Admin, NewUser, Permission, User, UserId};

pub use crate::clock::Clock;

/// Listing users: `prefix` matches the start of the username (any case),
/// `after` pages by username.
#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    pub prefix: Option<String>,
    pub group: Option<String>,
    pub after: Option<String>,
    pub limit: u32,
}

/// Persistent state. Every method that changes something is one transaction
/// and writes the audit event it is given inside that same transaction, so a
/// change and its record land together or not at all.
///
/// Errors: a duplicate username is `Error::Conflict`, a write based on a stale
/// `User::version` is `Error::Conflict`, an unreachable database is
/// `Error::Unavailable`.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// "sqlite" or "postgres".
    fn backend(&self) -> &'static str;

    /// Proves the database answers (used by `/readyz`).
    async fn ping(&self) -> Result<()>;

    async fn create_user(&self, user: &NewUser, audit: &NewAuditEvent) -> Result<User>;
    /// Case-insensitive lookup.
    async fn find_user(&self, username: &str) -> Result<Option<User>>;
    async fn list_users(&self, query: &UserQuery) -> Result<Vec<User>>;
    async fn count_users(&self) -> Result<u64>;
    /// Writes the profile fields of `user` if its `version` is still current;
    /// returns the stored user with its new version.
    async fn update_user(&self, user: &User, audit: &NewAuditEvent) -> Result<User>;
    /// Returns false when there was no such user.
    async fn delete_user(&self, id: UserId, audit: &NewAuditEvent) -> Result<bool>;

    async fn password_hash(&self, id: UserId) -> Result<Option<String>>;
    async fn set_password_hash(&self, id: UserId, hash: &str, audit: &NewAuditEvent) -> Result<()>;

    /// Stored settings rows (key, JSON text): only keys that differ from defaults.
    async fn settings_rows(&self) -> Result<Vec<(String, String)>>;
    /// Sets (`Some`) or removes (`None`, back to default) rows in one transaction.
    async fn write_settings(
        &self,
        rows: &[(String, Option<String>)],
        audit: &NewAuditEvent,
    ) -> Result<()>;

    /// Records an event that has no change attached (a refusal, a sign-in).
    async fn append_audit(&self, event: &NewAuditEvent) -> Result<i64>;
    async fn audit_events(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>>;

    async fn put_admin(
        &self,
        user_id: UserId,
        permissions: &[Permission],
        scope_group: Option<&str>,
        audit: &NewAuditEvent,
    ) -> Result<()>;
    async fn list_admins(&self) -> Result<Vec<Admin>>;
    async fn count_admins(&self) -> Result<u64>;
}
