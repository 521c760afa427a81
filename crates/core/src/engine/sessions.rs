//! Portal sessions, stored server-side so any node can serve any request.

use time::Duration;

use crate::error::{Error, Result};
use crate::factors::SessionRecord;

use super::Engine;

/// Session data is small; a cap keeps a bad caller from filling the table.
const MAX_SESSION_BYTES: usize = 16 * 1024;

impl Engine {
    pub(super) async fn sessions_load(&self, id_hash: &str) -> Result<Option<String>> {
        Ok(self
            .store
            .session_get(id_hash, self.clock.now())
            .await?
            .map(|s| s.data))
    }

    pub(super) async fn sessions_save(
        &self,
        id_hash: &str,
        data: String,
        ttl_seconds: i64,
    ) -> Result<()> {
        if data.len() > MAX_SESSION_BYTES {
            return Err(Error::invalid("session", "session data too large"));
        }
        if !(1..=86_400).contains(&ttl_seconds) || id_hash.len() != 64 {
            return Err(Error::invalid("session", "bad session id or lifetime"));
        }
        self.store
            .session_put(&SessionRecord {
                id_hash: id_hash.to_string(),
                data,
                expires_at: self.clock.now() + Duration::seconds(ttl_seconds),
            })
            .await
    }

    /// Removes expired sessions, and challenges that ended over a day ago
    /// (kept that long so applications can still read how they ended); the
    /// server runs this periodically.
    pub async fn purge_sessions(&self) -> Result<u64> {
        let now = self.clock.now();
        let sessions = self.store.session_purge(now).await? + self.store.passed_purge(now).await?;
        let challenges = self.store.purge_challenges(now - Duration::days(1)).await?;
        Ok(sessions + challenges)
    }
}
