//! `SyncRepo` for `SqlStore` — directory synchronisation (migration 0014):
//! sync items, the users they added (`users.synced_by`), and the one
//! `sync_state` row with the cluster's lease and what runs leave behind.
//!
//! The lease is a single conditional `UPDATE` (compare-and-set), so of two
//! nodes racing for it only one wins.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use time::OffsetDateTime;
use twofold_core::audit::NewAuditEvent;
use twofold_core::ports::SyncRepo;
use twofold_core::sync::{GoneAction, NewSyncItem, SyncItem, SyncState};
use twofold_core::user::{User, UserId};
use twofold_core::validate::username_key;
use twofold_core::{ConflictReason, Error, Result};

use crate::errors::{bad_column, db_err};
use crate::rows::{flag, from_seconds, get, unix_seconds};
use crate::store::commit;
use crate::users::{user_exists, users_synced_by};
use crate::SqlStore;

const ITEM_COLUMNS: &str =
    "id, name, filter, group_name, default_method, default_mode, default_language, gone";

fn item_from_row(row: &AnyRow) -> Result<SyncItem> {
    let default_method = crate::users::default_method_of(row, "sync_items")?;
    let gone: String = get(row, "gone")?;
    Ok(SyncItem {
        id: get(row, "id")?,
        name: get(row, "name")?,
        filter: get(row, "filter")?,
        group: get(row, "group_name")?,
        default_method,
        default_language: get(row, "default_language")?,
        gone: GoneAction::parse(&gone).map_err(|e| bad_column("sync_items.gone", e))?,
    })
}

/// Replaces what runs leave behind; the lease columns stay as they are.
async fn write_state(conn: &mut AnyConnection, state: &SyncState) -> Result<()> {
    let written = sqlx::query(
        "UPDATE sync_state SET last_run_at = $1, last_report = $2, held = $3, approved = $4 \
         WHERE id = 1",
    )
    .bind(state.last_run_at.map(unix_seconds))
    .bind(state.last_report.as_deref())
    .bind(state.held.as_deref())
    .bind(i64::from(state.approved))
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    if written.rows_affected() == 0 {
        return Err(Error::Internal(
            "the sync_state row is missing (migration 0014 creates it)".into(),
        ));
    }
    Ok(())
}

#[async_trait]
impl SyncRepo for SqlStore {
    async fn create_sync_item(
        &self,
        item: &NewSyncItem,
        audit: &NewAuditEvent,
    ) -> Result<SyncItem> {
        let (method, mode) = match item.default_method {
            Some(d) => (Some(d.method.as_str()), Some(d.mode.as_str())),
            None => (None, None),
        };
        let gone = item.gone.unwrap_or(GoneAction::Disable);
        let mut tx = self.write(audit).await?;
        let row = sqlx::query(&format!(
            "INSERT INTO sync_items (name, name_key, filter, group_name, default_method, \
             default_mode, default_language, gone, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {ITEM_COLUMNS}"
        ))
        .bind(&item.name)
        .bind(username_key(&item.name))
        .bind(item.filter.as_deref())
        .bind(item.group.as_deref())
        .bind(method)
        .bind(mode)
        .bind(item.default_language.as_deref())
        .bind(gone.as_str())
        .bind(unix_seconds(audit.at))
        .fetch_one(&mut *tx)
        .await
        // Dropping `tx` rolls back: a refused create writes nothing.
        .map_err(|e| match db_err(e) {
            Error::Conflict { .. } => Error::conflict(
                ConflictReason::Exists,
                format!("sync item {} already exists", item.name),
            ),
            other => other,
        })?;
        let created = item_from_row(&row)?;
        tx.commit().await?;
        Ok(created)
    }

    async fn sync_items(&self) -> Result<Vec<SyncItem>> {
        sqlx::query(&format!(
            "SELECT {ITEM_COLUMNS} FROM sync_items ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?
        .iter()
        .map(item_from_row)
        .collect()
    }

    async fn delete_sync_item(&self, name: &str, audit: &NewAuditEvent) -> Result<bool> {
        let mut tx = self.write(audit).await?;
        let found = sqlx::query("SELECT id FROM sync_items WHERE name_key = $1")
            .bind(username_key(name))
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
        // No such item: nothing changed, nothing recorded (the transaction
        // rolls back when dropped).
        let Some(found) = found else {
            return Ok(false);
        };
        let id: i64 = get(&found, "id")?;
        // The users stay, no longer marked as the item's. The foreign key
        // would do it too (ON DELETE SET NULL); explicit, it does not
        // depend on SQLite's `foreign_keys` pragma.
        tx.execute(sqlx::query("UPDATE users SET synced_by = NULL WHERE synced_by = $1").bind(id))
            .await?;
        let deleted = tx
            .execute(sqlx::query("DELETE FROM sync_items WHERE id = $1").bind(id))
            .await?;
        tx.commit_if(deleted > 0).await
    }

    async fn synced_users(&self, item_id: i64) -> Result<Vec<User>> {
        let mut conn = self.acquire().await?;
        users_synced_by(&mut conn, item_id).await
    }

    async fn set_synced_by(&self, user_id: UserId, item_id: Option<i64>) -> Result<()> {
        // Bookkeeping of the sync, not a change of the user's profile: no
        // audit row, no version bump.
        let mut tx = self.begin_write().await?;
        if let Some(item_id) = item_id {
            let item = sqlx::query("SELECT 1 FROM sync_items WHERE id = $1")
                .bind(item_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
            if item.is_none() {
                return Err(Error::NotFound("sync item"));
            }
        }
        let updated = sqlx::query("UPDATE users SET synced_by = $1 WHERE id = $2")
            .bind(item_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if updated.rows_affected() == 0 && !user_exists(&mut tx, user_id).await? {
            return Err(Error::NotFound("user"));
        }
        commit(tx).await
    }

    async fn acquire_sync_lease(
        &self,
        holder: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<bool> {
        // One statement: the row is free, expired (`lease_until` is
        // exclusive, as every expiry in the store) or already the holder's.
        let taken = sqlx::query(
            "UPDATE sync_state SET lease_holder = $1, lease_until = $2 \
             WHERE id = 1 AND (lease_holder IS NULL OR lease_until IS NULL \
             OR lease_until <= $3 OR lease_holder = $1)",
        )
        .bind(holder)
        .bind(unix_seconds(until))
        .bind(unix_seconds(now))
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(taken.rows_affected() > 0)
    }

    async fn release_sync_lease(&self, holder: &str) -> Result<()> {
        sqlx::query(
            "UPDATE sync_state SET lease_holder = NULL, lease_until = NULL \
             WHERE id = 1 AND lease_holder = $1",
        )
        .bind(holder)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn sync_state(&self) -> Result<SyncState> {
        let row = sqlx::query(
            "SELECT last_run_at, last_report, held, approved FROM sync_state WHERE id = 1",
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        let Some(row) = row else {
            return Ok(SyncState::default());
        };
        Ok(SyncState {
            last_run_at: get::<Option<i64>>(&row, "last_run_at")?
                .map(|s| from_seconds("sync_state.last_run_at", s))
                .transpose()?,
            last_report: get(&row, "last_report")?,
            held: get(&row, "held")?,
            approved: flag(&row, "approved")?,
        })
    }

    async fn set_sync_state(&self, state: &SyncState, audit: Option<&NewAuditEvent>) -> Result<()> {
        if let Some(audit) = audit {
            let mut tx = self.write(audit).await?;
            write_state(&mut tx, state).await?;
            tx.commit().await
        } else {
            let mut tx = self.begin_write().await?;
            write_state(&mut tx, state).await?;
            commit(tx).await
        }
    }
}
