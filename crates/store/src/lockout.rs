//! `LockoutRepo` for `SqlStore`: counting denials, and locking a user when
//! they reach the policy's threshold.

use async_trait::async_trait;
use time::macros::datetime;
use time::OffsetDateTime;
use twofold_core::factors::{DenialOutcome, DenialPolicy};
use twofold_core::ports::LockoutRepo;
use twofold_core::user::UserId;
use twofold_core::{Error, Result};

use crate::errors::{bad_column, db_err};
use crate::rows::{get, unix_seconds};
use crate::store::commit;
use crate::SqlStore;

/// `locked_until` written when a denial locks a user and the policy has no
/// `lock_seconds`: a date so far away that it means "until an administrator
/// unblocks". Unblocking is clearing `locked_until` (`update_user`).
pub const LOCKED_UNTIL_UNBLOCKED: OffsetDateTime = datetime!(9999-12-31 00:00 UTC);

#[async_trait]
impl LockoutRepo for SqlStore {
    async fn record_denial(
        &self,
        user_id: UserId,
        now: OffsetDateTime,
        policy: &DenialPolicy,
    ) -> Result<DenialOutcome> {
        let now_s = unix_seconds(now);
        // A window that started before this instant is over.
        let window_floor = now_s.saturating_sub(policy.window_seconds.max(0));
        let mut tx = self.begin_write().await?;
        // Every right-hand side sees the row as it was, on both databases.
        let row = sqlx::query(
            "UPDATE users SET \
             failed_count = CASE WHEN failed_window_start IS NULL OR failed_window_start < $2 \
               THEN 1 ELSE failed_count + 1 END, \
             failed_window_start = CASE WHEN failed_window_start IS NULL OR failed_window_start < $2 \
               THEN $3 ELSE failed_window_start END \
             WHERE id = $1 RETURNING failed_count",
        )
        .bind(user_id)
        .bind(window_floor)
        .bind(now_s)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?
        .ok_or(Error::NotFound("user"))?;
        let count = u32::try_from(get::<i64>(&row, "failed_count")?)
            .map_err(|e| bad_column("users.failed_count", e))?;

        let locked = policy.threshold.is_some_and(|t| count >= t);
        if locked {
            let forever = LOCKED_UNTIL_UNBLOCKED.unix_timestamp();
            let until = match policy.lock_seconds {
                Some(secs) => now_s.saturating_add(secs.max(0)).min(forever),
                None => forever,
            };
            // A lock never shortens one already in place (e.g. set by an
            // administrator); see `factors.rs` for the version bump.
            sqlx::query(
                "UPDATE users SET \
                 locked_until = CASE WHEN locked_until IS NOT NULL AND locked_until > $1 \
                   THEN locked_until ELSE $1 END, \
                 failed_count = 0, failed_window_start = NULL, \
                 version = version + 1, updated_at = $2 \
                 WHERE id = $3",
            )
            .bind(until)
            .bind(now_s)
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        commit(tx).await?;
        Ok(DenialOutcome { count, locked })
    }

    async fn clear_denials(&self, user_id: UserId) -> Result<()> {
        let updated = sqlx::query(
            "UPDATE users SET failed_count = 0, failed_window_start = NULL WHERE id = $1",
        )
        .bind(user_id)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        if updated.rows_affected() == 0 {
            return Err(Error::NotFound("user"));
        }
        Ok(())
    }
}
