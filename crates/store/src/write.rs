//! The recurring shape of every audited change, written once: begin the
//! write transaction → make the change (and look at the rows it affected) →
//! write the audit event → commit. A change that changed nothing rolls back
//! and records nothing; an error anywhere rolls back everything.

use std::ops::{Deref, DerefMut};

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, Transaction};
use twofold_core::audit::NewAuditEvent;
use twofold_core::{Error, Result};

use crate::audit::insert_audit;
use crate::errors::db_err;
use crate::store::commit;
use crate::SqlStore;

/// A statement ready to run on either backend.
pub(crate) type AnyQuery<'q> = Query<'q, Any, AnyArguments<'q>>;

/// An audited change in progress: the write transaction and the event to
/// record with it. Make the change on it (it derefs to the connection),
/// then `commit` — which writes the event in the same transaction — or drop
/// it (an early `return` or `?`) to roll back with nothing recorded.
pub(crate) struct WriteTx<'a> {
    tx: Transaction<'static, Any>,
    audit: &'a NewAuditEvent,
}

impl SqlStore {
    /// Begins an audited change (a write transaction, see `begin_write`).
    pub(crate) async fn write<'a>(&self, audit: &'a NewAuditEvent) -> Result<WriteTx<'a>> {
        Ok(WriteTx {
            tx: self.begin_write().await?,
            audit,
        })
    }

    /// A change of one statement that may find nothing to change (a delete,
    /// a rotation, a compare-and-set): when `query` affects no row it rolls
    /// back and returns false — nothing changed, nothing recorded; otherwise
    /// the audit event is written, the transaction commits and it returns
    /// true.
    pub(crate) async fn write_if_changed(
        &self,
        query: AnyQuery<'_>,
        audit: &NewAuditEvent,
    ) -> Result<bool> {
        let mut tx = self.write(audit).await?;
        let changed = tx.execute(query).await? > 0;
        tx.commit_if(changed).await
    }

    /// A change of one statement to something that must exist: when `query`
    /// affects no row it rolls back with `NotFound(what)`; otherwise the
    /// audit event is written and the transaction commits.
    pub(crate) async fn write_existing(
        &self,
        query: AnyQuery<'_>,
        what: &'static str,
        audit: &NewAuditEvent,
    ) -> Result<()> {
        let mut tx = self.write(audit).await?;
        if tx.execute(query).await? == 0 {
            return Err(Error::NotFound(what));
        }
        tx.commit().await
    }
}

impl WriteTx<'_> {
    /// Runs one statement of the change; returns how many rows it affected.
    pub(crate) async fn execute(&mut self, query: AnyQuery<'_>) -> Result<u64> {
        Ok(query
            .execute(&mut *self.tx)
            .await
            .map_err(db_err)?
            .rows_affected())
    }

    /// Writes the audit event in this transaction and commits: the change
    /// and its record land together or not at all.
    pub(crate) async fn commit(mut self) -> Result<()> {
        insert_audit(&mut self.tx, self.audit).await?;
        commit(self.tx).await
    }

    /// `commit` when the change `changed` something; otherwise rolls back,
    /// since there is nothing to record. Returns `changed`.
    pub(crate) async fn commit_if(self, changed: bool) -> Result<bool> {
        if changed {
            self.commit().await?;
        }
        Ok(changed)
    }
}

impl Deref for WriteTx<'_> {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        &self.tx
    }
}

impl DerefMut for WriteTx<'_> {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }
}
