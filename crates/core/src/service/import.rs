//! Users from a CSV file or the LDAP directory: `twofold import`, `POST
//! /sdk/v1/import`, and (later) the admin pages.

use async_trait::async_trait;

use crate::error::Result;
use crate::import::{ImportBatch, ImportReport, ImportRow};
use crate::service::Ctx;

/// Told the number of rows done after each row (a progress bar).
pub type Progress<'a> = &'a (dyn Fn(usize) + Send + Sync);

#[async_trait]
pub trait ImportService: Send + Sync + 'static {
    /// Adds new users and updates existing ones, each user in its own
    /// transaction (a refused row changes nothing and does not stop the
    /// others). New users need "add users", changes the permission of each
    /// field, both within the caller's scope. With `dry_run`, nothing is
    /// written and the report says what would change. New users get the
    /// welcome mail.
    async fn import_users(
        &self,
        ctx: &Ctx,
        batch: ImportBatch,
        dry_run: bool,
        progress: Option<Progress<'_>>,
    ) -> Result<ImportReport>;

    /// The people of the LDAP directory (`[ldap]`) that `filter` (an LDAP
    /// filter) and `group` select, as rows to import.
    async fn directory_rows(
        &self,
        ctx: &Ctx,
        filter: Option<&str>,
        group: Option<&str>,
    ) -> Result<Vec<ImportRow>>;
}
