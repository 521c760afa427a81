//! `SessionRepo` for `SqlStore`: portal sessions, by the hash of their id.

use async_trait::async_trait;
use time::OffsetDateTime;
use twofold_core::factors::SessionRecord;
use twofold_core::ports::SessionRepo;
use twofold_core::Result;

use crate::errors::db_err;
use crate::rows::{from_seconds, get, unix_seconds};
use crate::SqlStore;

#[async_trait]
impl SessionRepo for SqlStore {
    async fn session_put(&self, session: &SessionRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO portal_sessions (id_hash, data, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (id_hash) DO UPDATE SET data = excluded.data, \
             expires_at = excluded.expires_at",
        )
        .bind(&session.id_hash)
        .bind(&session.data)
        .bind(unix_seconds(session.expires_at))
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn session_get(
        &self,
        id_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<SessionRecord>> {
        let row = sqlx::query(
            "SELECT id_hash, data, expires_at FROM portal_sessions \
             WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(id_hash)
        .bind(unix_seconds(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.map(|r| {
            Ok(SessionRecord {
                id_hash: get(&r, "id_hash")?,
                data: get(&r, "data")?,
                expires_at: from_seconds("portal_sessions.expires_at", get(&r, "expires_at")?)?,
            })
        })
        .transpose()
    }

    async fn session_delete(&self, id_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM portal_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn session_purge(&self, now: OffsetDateTime) -> Result<u64> {
        let purged = sqlx::query("DELETE FROM portal_sessions WHERE expires_at <= $1")
            .bind(unix_seconds(now))
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(purged.rows_affected())
    }
}
