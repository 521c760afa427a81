//! `LockoutRepo` for `SqlStore`: the guessing record of each factor of each
//! user (`secret_failures`), and the hard lock it may lead to.
//!
//! Every change reads the row through a statement that also locks it (an
//! upsert or an `UPDATE … RETURNING`), decides in `twofold_core::factors`
//! and writes back in the same transaction: on PostgreSQL parallel requests
//! for one user queue on the row, on SQLite on the write lock, so the gate
//! and the count are one atomic step on both — two nodes cannot check an
//! eleventh code between them.

use async_trait::async_trait;
use time::macros::datetime;
use time::OffsetDateTime;
use twofold_core::factors::{Factor, FailureOutcome, FailureState, GuessPolicy};
use twofold_core::ports::LockoutRepo;
use twofold_core::user::UserId;
use twofold_core::{Error, Result};

use crate::conn::Conn;
use crate::errors::{bad_column, db_err};
use crate::group_commit::GroupedWrite;
use crate::held::held_read;
use crate::rows::{cell, from_seconds, unix_seconds, Cells};
use crate::SqlStore;

/// `locked_until` written by a hard lock: a date so far away that it means
/// "until an administrator unblocks". Unblocking is clearing `locked_until`
/// (`update_user`), which also clears the user's guessing records.
pub const LOCKED_UNTIL_UNBLOCKED: OffsetDateTime = datetime!(9999-12-31 00:00 UTC);

pub(crate) const COLUMNS: &str =
    "streak, consecutive, last_failure_at, blocked_until, hour_start, hour_failures";

fn count(row: &impl Cells, column: &str) -> Result<u32> {
    u32::try_from(cell::<i64>(row, column)?.max(0))
        .map_err(|e| bad_column(&format!("secret_failures.{column}"), e))
}

fn moment(row: &impl Cells, column: &str) -> Result<Option<OffsetDateTime>> {
    cell::<Option<i64>>(row, column)?
        .map(|s| from_seconds(&format!("secret_failures.{column}"), s))
        .transpose()
}

pub(crate) fn state(row: &impl Cells) -> Result<FailureState> {
    Ok(FailureState {
        streak: count(row, "streak")?,
        consecutive: count(row, "consecutive")?,
        last_failure_at: moment(row, "last_failure_at")?,
        blocked_until: moment(row, "blocked_until")?,
        hour_start: moment(row, "hour_start")?,
        hour_failures: count(row, "hour_failures")?,
    })
}

/// Reads the factor's row and locks it until the transaction ends; `None`
/// when there is no row (nothing ever failed).
pub(crate) async fn lock_state(
    conn: &mut Conn<'_>,
    user_id: UserId,
    factor: Factor,
) -> Result<Option<FailureState>> {
    conn.fetch_optional(
        &format!(
            "UPDATE secret_failures SET streak = streak \
             WHERE user_id = $1 AND factor = $2 RETURNING {COLUMNS}"
        ),
        &[user_id.into(), factor.as_str().into()],
    )
    .await?
    .as_ref()
    .map(state)
    .transpose()
}

/// Writes the factor's row (insert or replace).
pub(crate) async fn write_state(
    conn: &mut Conn<'_>,
    user_id: UserId,
    factor: Factor,
    s: &FailureState,
) -> Result<()> {
    conn.execute(
        &format!(
            "INSERT INTO secret_failures (user_id, factor, {COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (user_id, factor) DO UPDATE SET \
             streak = $3, consecutive = $4, last_failure_at = $5, blocked_until = $6, \
             hour_start = $7, hour_failures = $8"
        ),
        &[
            user_id.into(),
            factor.as_str().into(),
            i64::from(s.streak).into(),
            i64::from(s.consecutive).into(),
            s.last_failure_at.map(unix_seconds).into(),
            s.blocked_until.map(unix_seconds).into(),
            s.hour_start.map(unix_seconds).into(),
            i64::from(s.hour_failures).into(),
        ],
    )
    .await?;
    Ok(())
}

/// Ends the factor's streak after a right secret, in the caller's
/// transaction: `Err(until)` — and nothing written — when it is closed.
pub(crate) async fn clear_streak(
    conn: &mut Conn<'_>,
    user_id: UserId,
    factor: Factor,
    now: OffsetDateTime,
    gate: Option<&GuessPolicy>,
) -> Result<std::result::Result<(), OffsetDateTime>> {
    let Some(current) = lock_state(conn, user_id, factor).await? else {
        return Ok(Ok(()));
    };
    if let Some(until) = gate.and_then(|p| current.closed_until(now, p)) {
        return Ok(Err(until));
    }
    if !current.is_clear() {
        write_state(conn, user_id, factor, &current.after_success()).await?;
    }
    Ok(Ok(()))
}

#[async_trait]
impl LockoutRepo for SqlStore {
    async fn failures(&self, user_id: UserId, factor: Factor) -> Result<FailureState> {
        let sql =
            format!("SELECT {COLUMNS} FROM secret_failures WHERE user_id = $1 AND factor = $2");
        if let Some(direct) = &self.direct {
            let found = direct.all(&sql, (user_id, factor.as_str()), |row| state(row))?;
            return Ok(found.into_iter().next().unwrap_or_default());
        }
        let row = match self.held.as_deref() {
            Some(held) => held_read!(held, |conn| sqlx::query(&sql)
                .bind(user_id)
                .bind(factor.as_str())
                .fetch_optional(&mut *conn)
                .await)?,
            None => sqlx::query(&sql)
                .bind(user_id)
                .bind(factor.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?,
        };
        row.as_ref()
            .map(state)
            .transpose()
            .map(Option::unwrap_or_default)
    }

    async fn record_failure(
        &self,
        user_id: UserId,
        factor: Factor,
        now: OffsetDateTime,
        policy: &GuessPolicy,
    ) -> Result<FailureOutcome> {
        // Stored in whole seconds: decide on what will be read back.
        let now = from_seconds("now", unix_seconds(now))?;
        self.grouped(
            user_id,
            CountFailure {
                user_id,
                factor,
                now,
                policy: *policy,
            },
        )
        .await?
    }

    async fn record_success(
        &self,
        user_id: UserId,
        factor: Factor,
        now: OffsetDateTime,
        policy: &GuessPolicy,
    ) -> Result<Option<OffsetDateTime>> {
        // The common case — nothing ever failed — costs a read, not a write.
        let seen = self.failures(user_id, factor).await?;
        if let Some(until) = seen.closed_until(now, policy) {
            return Ok(Some(until));
        }
        if seen.is_clear() {
            return Ok(None);
        }
        self.grouped(
            user_id,
            EndStreak {
                user_id,
                factor,
                now,
                policy: *policy,
            },
        )
        .await
    }

    async fn clear_failures(&self, user_id: UserId) -> Result<()> {
        sqlx::query("DELETE FROM secret_failures WHERE user_id = $1")
            .bind(user_id)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }
}

/// A wrong secret: the gate and the count in one step, and the hard lock
/// it may lead to.
struct CountFailure {
    user_id: UserId,
    factor: Factor,
    now: OffsetDateTime,
    policy: GuessPolicy,
}

#[async_trait]
impl GroupedWrite for CountFailure {
    /// A user deleted meanwhile is this request's answer (`NotFound`), not
    /// a failure of the batch.
    type Output = Result<FailureOutcome>;

    async fn run(&mut self, conn: &mut Conn<'_>) -> Result<Result<FailureOutcome>> {
        let (user_id, factor, now, policy) = (self.user_id, self.factor, self.now, &self.policy);
        let exists = conn
            .fetch_optional("SELECT 1 FROM users WHERE id = $1", &[user_id.into()])
            .await?;
        if exists.is_none() {
            return Ok(Err(Error::NotFound("user")));
        }
        // Creating the row first makes the read below lock it on PostgreSQL
        // even for a user's very first failure. (An empty row means what no
        // row means, so a decision to count nothing may follow it.)
        conn.execute(
            "INSERT INTO secret_failures (user_id, factor) VALUES ($1, $2) \
             ON CONFLICT (user_id, factor) DO NOTHING",
            &[user_id.into(), factor.as_str().into()],
        )
        .await?;
        let current = lock_state(conn, user_id, factor).await?.unwrap_or_default();
        if let Some(until) = current.closed_until(now, policy) {
            return Ok(Ok(FailureOutcome::Closed { until }));
        }
        let (next, hard_locked) = current.after_failure(now, policy);
        write_state(conn, user_id, factor, &next).await?;
        if hard_locked {
            // A lock never shortens one already in place (e.g. set by an
            // administrator); the version moves so a concurrent edit of the
            // user cannot silently undo it.
            conn.execute(
                "UPDATE users SET \
                 locked_until = CASE WHEN locked_until IS NOT NULL AND locked_until > $1 \
                   THEN locked_until ELSE $1 END, \
                 version = version + 1, updated_at = $2 \
                 WHERE id = $3",
                &[
                    LOCKED_UNTIL_UNBLOCKED.unix_timestamp().into(),
                    unix_seconds(now).into(),
                    user_id.into(),
                ],
            )
            .await?;
        }
        Ok(Ok(FailureOutcome::Counted {
            state: next,
            hard_locked,
        }))
    }
}

/// A right secret after failures: the streak ends, unless the factor was
/// closed meanwhile (`Some(until)`, nothing written).
struct EndStreak {
    user_id: UserId,
    factor: Factor,
    now: OffsetDateTime,
    policy: GuessPolicy,
}

#[async_trait]
impl GroupedWrite for EndStreak {
    type Output = Option<OffsetDateTime>;

    async fn run(&mut self, conn: &mut Conn<'_>) -> Result<Option<OffsetDateTime>> {
        let outcome = clear_streak(
            conn,
            self.user_id,
            self.factor,
            self.now,
            Some(&self.policy),
        )
        .await?;
        Ok(outcome.err())
    }
}
