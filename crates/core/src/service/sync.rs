//! Synchronisation with the directory: `twofold sync`, and the server's
//! schedule.

use async_trait::async_trait;

use crate::error::Result;
use crate::service::Ctx;
use crate::sync::{NewSyncItem, SyncItem, SyncReport, SyncState};

#[async_trait]
pub trait SyncService: Send + Sync + 'static {
    /// Every call needs "manage settings".
    async fn add_sync_item(&self, ctx: &Ctx, item: NewSyncItem) -> Result<SyncItem>;
    async fn sync_items(&self, ctx: &Ctx) -> Result<Vec<SyncItem>>;
    async fn remove_sync_item(&self, ctx: &Ctx, name: &str) -> Result<()>;
    async fn sync_status(&self, ctx: &Ctx) -> Result<SyncState>;
    /// Runs now (`holder` names this node for the lease). With `dry_run`,
    /// reports without changing anything.
    async fn sync_now(&self, ctx: &Ctx, holder: &str, dry_run: bool) -> Result<SyncReport>;
    /// Lets the held run remove the users it named, then runs it.
    async fn approve_sync(&self, ctx: &Ctx, holder: &str) -> Result<SyncReport>;
}
