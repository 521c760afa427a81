//! Audit retention: events older than `audit.retention_days` are deleted
//! (by `twofold serve` every hour, or by `twofold audit prune`), so the
//! log does not grow without bound. Each prune that deletes something
//! leaves one `audit.prune` event saying how many and up to when.

use time::Duration;

use crate::audit::ResultCode;
use crate::error::Result;
use crate::principal::Need;
use crate::service::Ctx;
use crate::user::Permission;

use super::Engine;

/// Events deleted per statement: a first prune of years of events holds
/// the database's writer for a moment at a time.
const BATCH: u32 = 5_000;

/// What one prune did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub removed: u64,
    /// The setting it applied; 0: retention is off and nothing was removed.
    pub retention_days: u32,
}

impl Engine {
    /// Deletes the audit events older than `audit.retention_days`.
    pub async fn prune_audit(&self, ctx: &Ctx) -> Result<Pruned> {
        const EVENT: &str = "audit.prune";
        // Deleting history is a settings-level power, like changing the
        // retention itself.
        self.authorize_global(ctx, EVENT, Need::Permission(Permission::ManageSettings))
            .await?;
        let settings = self.settings_now().await?;
        let days = settings.audit.retention_days;
        if days == 0 {
            return Ok(Pruned {
                removed: 0,
                retention_days: 0,
            });
        }
        let before = self.clock.now() - Duration::days(i64::from(days));
        let mut removed = 0;
        loop {
            let n = self.store.prune_audit(before, BATCH).await?;
            removed += n;
            if n < u64::from(BATCH) {
                break;
            }
        }
        if removed > 0 {
            let mut ev = self.event(ctx, EVENT, None, ResultCode::Success);
            ev.detail = Some(format!(
                "{removed} events from before {} removed ({days} days kept)",
                before.date()
            ));
            self.store.append_audit(&ev).await?;
        }
        Ok(Pruned {
            removed,
            retention_days: days,
        })
    }
}

/// Challenges expired per sweep (a backlog after downtime clears over a few
/// sweeps rather than in one long burst).
const SWEEP_BATCH: u32 = 500;
/// Decided challenges are kept this long (for the hourly call and text
/// counts and the wizard's proofs), then deleted.
const CHALLENGES_KEPT: Duration = Duration::days(1);

impl Engine {
    /// Moves every pending challenge past its lifetime to `expired`
    /// (audited `FAILED_CHALLENGE_EXPIRED`, waiters woken on every node), so
    /// none stays pending because nobody asked about it; returns how many.
    /// Run by `twofold serve` every few seconds on each node; the store's
    /// compare-and-set lets exactly one node record each.
    pub async fn expire_overdue_challenges(&self) -> Result<u64> {
        let ctx = Ctx::system();
        let overdue = self
            .store
            .overdue_challenges(self.clock.now(), SWEEP_BATCH)
            .await?;
        let mut expired = 0;
        for c in overdue {
            let (won, _) = self
                .finish(
                    &ctx,
                    c,
                    crate::challenge::ChallengeState::Expired,
                    crate::challenge::ChallengeReason::Expired,
                    ResultCode::FailedChallengeExpired,
                )
                .await?;
            expired += u64::from(won);
        }
        Ok(expired)
    }

    /// Deletes challenges that expired more than a day ago.
    pub async fn purge_old_challenges(&self) -> Result<u64> {
        self.store
            .purge_challenges(self.clock.now() - CHALLENGES_KEPT)
            .await
    }
}
