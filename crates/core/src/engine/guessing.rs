//! Bounded guessing. Every check of a secret passes its factor's gate first
//! and counts its outcome after, per user and factor, in the database (so
//! every node and channel shares one count):
//!
//! * from `lockout.denials_to_lock` failures in a row a growing back-off
//!   closes the factor (1, 2, 4 … minutes, at most
//!   `lockout.auto_unblock_minutes`); a streak ends after
//!   `lockout.reset_counter_minutes` without failures;
//! * `lockout.hard_lock_after` failures since the last success lock the
//!   user until an administrator unblocks;
//! * at most `lockout.code_failures_per_hour` wrong codes per user per hour,
//!   counted atomically with the gate so parallel requests cannot slip an
//!   extra check through.
//!
//! Per source address, `source_throttle` bounds one address spraying many
//! users — the person's own address, never a gateway's (`Ctx::guess_source`).

use time::OffsetDateTime;

use crate::audit::ResultCode;
use crate::error::{Error, Result};
use crate::factors::{Backoff, Factor, FailureOutcome, FailureState, GuessPolicy};
use crate::service::Ctx;
use crate::settings::Settings;
use crate::user::User;

use super::Engine;

/// The first back-off; each further failure doubles it.
const BACKOFF_BASE_SECONDS: i64 = 60;

/// The bounds `settings` put on guessing `factor`.
pub(crate) fn guess_policy(settings: &Settings, factor: Factor) -> GuessPolicy {
    let l = &settings.lockout;
    GuessPolicy {
        backoff: l.enabled.then(|| Backoff {
            after: l.denials_to_lock,
            base_seconds: BACKOFF_BASE_SECONDS,
            cap_seconds: (l.auto_unblock_minutes > 0)
                .then(|| i64::from(l.auto_unblock_minutes) * 60),
            quiet_seconds: i64::from(l.reset_counter_minutes) * 60,
        }),
        hard_lock_after: l.enabled.then_some(l.hard_lock_after),
        // The bound on one-time codes holds even with lockout off: six
        // digits are guessed in days at any faster rate.
        hourly_limit: (factor == Factor::Code).then_some(l.code_failures_per_hour),
    }
}

/// Whole seconds from `now` until `until`, at least one.
pub(crate) fn seconds_until(until: OffsetDateTime, now: OffsetDateTime) -> u64 {
    (until - now).whole_seconds().max(1).cast_unsigned()
}

impl Engine {
    /// Refuses while the person's own address has failed too often.
    pub(super) fn rate_limit(&self, ctx: &Ctx) -> Result<()> {
        match self
            .source_throttle
            .check(ctx.guess_source, self.clock.now())
        {
            Some(retry_after_seconds) => Err(Error::RateLimited {
                retry_after_seconds,
            }),
            None => Ok(()),
        }
    }

    /// Refuses — audited, and without checking anything — while `factor`
    /// of `user` is closed.
    pub(super) async fn gate(
        &self,
        ctx: &Ctx,
        event: &str,
        user: &User,
        factor: Factor,
        settings: &Settings,
    ) -> Result<()> {
        let state = self.store.failures(user.id, factor).await?;
        self.gate_on(ctx, event, user, factor, settings, &state)
            .await
    }

    /// `gate` on a guessing record already read (`Store::passcode_view`).
    pub(super) async fn gate_on(
        &self,
        ctx: &Ctx,
        event: &str,
        user: &User,
        factor: Factor,
        settings: &Settings,
        state: &FailureState,
    ) -> Result<()> {
        let policy = guess_policy(settings, factor);
        match state.closed_until(self.clock.now(), &policy) {
            Some(until) => self.closed(ctx, event, &user.username, factor, until).await,
            None => Ok(()),
        }
    }

    /// The refusal for a closed factor: 429 with the wait, audited.
    pub(super) async fn closed<T>(
        &self,
        ctx: &Ctx,
        event: &str,
        username: &str,
        factor: Factor,
        until: OffsetDateTime,
    ) -> Result<T> {
        let retry_after_seconds = seconds_until(until, self.clock.now());
        let mut ev = self.event(ctx, event, Some(username), ResultCode::FailedRateLimited);
        ev.detail = Some(format!(
            "{}: not checked, too many wrong attempts; open again in {retry_after_seconds} s",
            factor.as_str()
        ));
        self.store.append_audit(&ev).await?;
        Err(Error::RateLimited {
            retry_after_seconds,
        })
    }

    /// Counts a wrong secret of `factor` for `user` (and for the person's
    /// address). Returns whether it locked the user until an administrator
    /// unblocks; refuses as `closed` when a parallel request closed the
    /// factor first.
    pub(super) async fn count_failure(
        &self,
        ctx: &Ctx,
        event: &str,
        user: &User,
        factor: Factor,
        settings: &Settings,
    ) -> Result<bool> {
        let now = self.clock.now();
        self.source_throttle.fail(ctx.guess_source, now);
        let policy = guess_policy(settings, factor);
        let (state, hard_locked) = match self
            .store
            .record_failure(user.id, factor, now, &policy)
            .await?
        {
            FailureOutcome::Closed { until } => {
                return self.closed(ctx, event, &user.username, factor, until).await
            }
            FailureOutcome::Counted { state, hard_locked } => (state, hard_locked),
        };
        let name = factor.as_str();
        let audit = if hard_locked {
            Some((
                "user.lockout",
                ResultCode::FailedLockedOut,
                format!(
                    "{name}: {} wrong since the last success; locked until an administrator unblocks",
                    state.consecutive
                ),
            ))
        } else {
            state.blocked_until.map(|until| {
                (
                    "user.backoff",
                    ResultCode::FailedRateLimited,
                    format!(
                        "{name}: {} wrong in a row ({} since the last success, {} this hour); closed for {} s",
                        state.streak,
                        state.consecutive,
                        state.hour_failures,
                        seconds_until(until, now)
                    ),
                )
            })
        };
        if let Some((event, code, detail)) = audit {
            self.audit_result(ctx, event, &user.username, code, Some(detail))
                .await?;
        }
        Ok(hard_locked)
    }

    /// A right secret of `factor`: ends its streak. Refuses as `closed`
    /// when a parallel request closed the factor first.
    pub(super) async fn count_success(
        &self,
        ctx: &Ctx,
        event: &str,
        user: &User,
        factor: Factor,
        settings: &Settings,
    ) -> Result<()> {
        let policy = guess_policy(settings, factor);
        match self
            .store
            .record_success(user.id, factor, self.clock.now(), &policy)
            .await?
        {
            Some(until) => self.closed(ctx, event, &user.username, factor, until).await,
            None => Ok(()),
        }
    }
}
