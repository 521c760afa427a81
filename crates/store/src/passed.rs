//! `PassedSessionRepo` for `SqlStore`: passed sessions of forward-auth
//! (migration 0015), by the hash of their token.

use async_trait::async_trait;
use time::OffsetDateTime;
use twofold_core::audit::NewAuditEvent;
use twofold_core::passed::{Level, PassedSession, PassedVia};
use twofold_core::ports::PassedSessionRepo;
use twofold_core::user::UserId;
use twofold_core::{Error, Result};

use crate::errors::db_err;
use crate::rows::{from_seconds, get, unix_seconds};
use crate::SqlStore;

#[async_trait]
impl PassedSessionRepo for SqlStore {
    async fn passed_put(
        &self,
        session: &PassedSession,
        user: UserId,
        audit: &NewAuditEvent,
    ) -> Result<()> {
        // Inserted only while the user exists: a session for a user deleted
        // a moment ago is refused, not left without its user.
        let insert = sqlx::query(
            "INSERT INTO passed_sessions \
             (id_hash, user_id, username, level, via, created_at, last_seen_at, expires_at) \
             SELECT $1, id, $2, $3, $4, $5, $6, $7 FROM users WHERE id = $8",
        )
        .bind(&session.id_hash)
        .bind(&session.username)
        .bind(session.level.as_str())
        .bind(session.via.as_str())
        .bind(unix_seconds(session.created_at))
        .bind(unix_seconds(session.last_seen_at))
        .bind(unix_seconds(session.expires_at))
        .bind(user);
        self.write_existing(insert, "user", audit).await
    }

    async fn passed_get(
        &self,
        id_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<PassedSession>> {
        let row = sqlx::query(
            "SELECT id_hash, username, level, via, created_at, last_seen_at, expires_at \
             FROM passed_sessions WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(id_hash)
        .bind(unix_seconds(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        let Some(r) = row else { return Ok(None) };
        let level: String = get(&r, "level")?;
        let via: String = get(&r, "via")?;
        let bad =
            |what: &str, v: &str| Error::Internal(format!("passed_sessions.{what} holds {v:?}"));
        Ok(Some(PassedSession {
            id_hash: get(&r, "id_hash")?,
            username: get(&r, "username")?,
            level: Level::parse(&level).ok_or_else(|| bad("level", &level))?,
            via: PassedVia::parse(&via).ok_or_else(|| bad("via", &via))?,
            created_at: from_seconds("passed_sessions.created_at", get(&r, "created_at")?)?,
            last_seen_at: from_seconds("passed_sessions.last_seen_at", get(&r, "last_seen_at")?)?,
            expires_at: from_seconds("passed_sessions.expires_at", get(&r, "expires_at")?)?,
        }))
    }

    async fn passed_touch(
        &self,
        id_hash: &str,
        last_seen_at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<()> {
        // Never moves a session backwards (two nodes touching at once).
        sqlx::query(
            "UPDATE passed_sessions SET last_seen_at = $1, expires_at = $2 \
             WHERE id_hash = $3 AND last_seen_at < $1",
        )
        .bind(unix_seconds(last_seen_at))
        .bind(unix_seconds(expires_at))
        .bind(id_hash)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn passed_delete(&self, id_hash: &str, audit: &NewAuditEvent) -> Result<bool> {
        let delete = sqlx::query("DELETE FROM passed_sessions WHERE id_hash = $1").bind(id_hash);
        self.write_if_changed(delete, audit).await
    }

    async fn passed_purge(&self, now: OffsetDateTime) -> Result<u64> {
        let purged = sqlx::query("DELETE FROM passed_sessions WHERE expires_at <= $1")
            .bind(unix_seconds(now))
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(purged.rows_affected())
    }
}
