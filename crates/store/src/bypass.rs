//! `BypassRepo` for `SqlStore`: the one-time bypass (a user may sign in
//! once without a second factor until a given time).

use async_trait::async_trait;
use time::OffsetDateTime;
use twofold_core::audit::NewAuditEvent;
use twofold_core::ports::BypassRepo;
use twofold_core::user::UserId;
use twofold_core::{Error, Result};

use crate::errors::db_err;
use crate::rows::{from_seconds, get, unix_seconds};
use crate::SqlStore;

#[async_trait]
impl BypassRepo for SqlStore {
    async fn set_bypass(
        &self,
        user_id: UserId,
        until: Option<OffsetDateTime>,
        audit: &NewAuditEvent,
    ) -> Result<()> {
        let set = sqlx::query("UPDATE users SET bypass_until = $1 WHERE id = $2")
            .bind(until.map(unix_seconds))
            .bind(user_id);
        self.write_existing(set, "user", audit).await
    }

    async fn consume_bypass(
        &self,
        user_id: UserId,
        now: OffsetDateTime,
        audit: &NewAuditEvent,
    ) -> Result<bool> {
        // The condition and the clearing are one statement: of two racing
        // callers, the second finds `bypass_until` already NULL. Nothing
        // consumed: nothing to record, the transaction rolls back.
        let consume =
            sqlx::query("UPDATE users SET bypass_until = NULL WHERE id = $1 AND bypass_until > $2")
                .bind(user_id)
                .bind(unix_seconds(now));
        self.write_if_changed(consume, audit).await
    }

    async fn bypass_until(&self, user_id: UserId) -> Result<Option<OffsetDateTime>> {
        let row = sqlx::query("SELECT bypass_until FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .ok_or(Error::NotFound("user"))?;
        get::<Option<i64>>(&row, "bypass_until")?
            .map(|s| from_seconds("users.bypass_until", s))
            .transpose()
    }
}
