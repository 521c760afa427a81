//! `SettingsRepo` for `SqlStore`: the settings that differ from their
//! defaults, as (key, JSON text) rows. Every write is `announce`d: nodes
//! cache the settings.

use async_trait::async_trait;
use twofold_core::audit::NewAuditEvent;
use twofold_core::ports::{SettingsRepo, SETTINGS_CHANGED};
use twofold_core::Result;

use crate::errors::db_err;
use crate::rows::{get, unix_seconds};
use crate::wakeups::{announce, announced, SETTINGS_CACHE};
use crate::SqlStore;

#[async_trait]
impl SettingsRepo for SqlStore {
    async fn settings_rows(&self) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT key, value FROM settings ORDER BY key")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|r| Ok((get(r, "key")?, get(r, "value")?)))
            .collect()
    }

    async fn write_settings(
        &self,
        rows: &[(String, Option<String>)],
        audit: &NewAuditEvent,
    ) -> Result<()> {
        let now = unix_seconds(audit.at);
        let mut tx = self.write(audit).await?;
        for (key, value) in rows {
            let statement = match value {
                Some(value) => sqlx::query(
                    "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value, \
                     updated_at = excluded.updated_at",
                )
                .bind(key)
                .bind(value)
                .bind(now),
                None => sqlx::query("DELETE FROM settings WHERE key = $1").bind(key),
            };
            tx.execute(statement).await?;
        }
        // Every node caches the settings (see `Engine::settings_now`).
        announce(self, &mut tx, SETTINGS_CACHE, SETTINGS_CHANGED).await?;
        tx.commit().await?;
        announced(self, SETTINGS_CHANGED);
        Ok(())
    }
}
