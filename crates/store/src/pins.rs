//! `PinRepo` for `SqlStore`: the PIN and its history.

use async_trait::async_trait;
use sqlx::AnyConnection;
use time::OffsetDateTime;
use twofold_core::audit::NewAuditEvent;
use twofold_core::factors::PinRecord;
use twofold_core::ports::PinRepo;
use twofold_core::user::UserId;
use twofold_core::Result;

use crate::errors::db_err;
use crate::factors::touch_user;
use crate::rows::{from_seconds, get, unix_seconds};
use crate::SqlStore;

/// Makes `hash` the current PIN; the previous one (if any) moves to the
/// history, which is then trimmed to the newest `keep_history` entries
/// (`None`: not trimmed).
pub(crate) async fn write_pin(
    conn: &mut AnyConnection,
    user_id: UserId,
    hash: &str,
    set_at: OffsetDateTime,
    keep_history: Option<u32>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO pin_history (user_id, hash, set_at) \
         SELECT user_id, hash, set_at FROM user_pins WHERE user_id = $1",
    )
    .bind(user_id)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    sqlx::query(
        "INSERT INTO user_pins (user_id, hash, set_at) VALUES ($1, $2, $3) \
         ON CONFLICT (user_id) DO UPDATE SET hash = excluded.hash, set_at = excluded.set_at",
    )
    .bind(user_id)
    .bind(hash)
    .bind(unix_seconds(set_at))
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    if let Some(keep) = keep_history {
        sqlx::query(
            "DELETE FROM pin_history WHERE user_id = $1 AND id NOT IN \
             (SELECT id FROM pin_history WHERE user_id = $1 ORDER BY id DESC LIMIT $2)",
        )
        .bind(user_id)
        .bind(i64::from(keep))
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    }
    Ok(())
}

#[async_trait]
impl PinRepo for SqlStore {
    async fn pin(&self, user_id: UserId) -> Result<Option<PinRecord>> {
        let row = sqlx::query("SELECT hash, set_at FROM user_pins WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.map(|r| {
            Ok(PinRecord {
                hash: get(&r, "hash")?,
                set_at: from_seconds("user_pins.set_at", get(&r, "set_at")?)?,
            })
        })
        .transpose()
    }

    async fn pin_history(&self, user_id: UserId) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT hash FROM pin_history WHERE user_id = $1 ORDER BY id DESC")
            .bind(user_id)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(|r| get(r, "hash")).collect()
    }

    async fn set_pin(
        &self,
        user_id: UserId,
        hash: &str,
        set_at: OffsetDateTime,
        keep_history: u32,
        audit: &NewAuditEvent,
    ) -> Result<()> {
        let mut tx = self.write(audit).await?;
        touch_user(&mut tx, user_id, audit.at).await?;
        write_pin(&mut tx, user_id, hash, set_at, Some(keep_history)).await?;
        tx.commit().await
    }

    async fn rehash_pin(&self, user_id: UserId, old: &str, new: &str) -> Result<bool> {
        // One statement: a PIN set in between no longer matches `old`, and
        // stays.
        let updated =
            sqlx::query("UPDATE user_pins SET hash = $1 WHERE user_id = $2 AND hash = $3")
                .bind(new)
                .bind(user_id)
                .bind(old)
                .execute(&self.pool)
                .await
                .map_err(db_err)?;
        Ok(updated.rows_affected() == 1)
    }
}
