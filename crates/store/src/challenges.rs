//! `ChallengeRepo` for `SqlStore` — challenges (migration 0004): the stored
//! state machine of the SDK's start / follow / answer authentication.
//!
//! Every state change is one conditional statement (compare-and-set), so
//! two nodes racing on one challenge cannot both move it.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use time::OffsetDateTime;
use twofold_core::audit::NewAuditEvent;
use twofold_core::challenge::{Challenge, ChallengeState, NewChallenge};
use twofold_core::ports::ChallengeRepo;
use twofold_core::user::{DefaultMethod, UserId};

/// What a count is bound to.
enum Either {
    User(UserId),
    Number(String),
}
use twofold_core::{ConflictReason, Error, Result};

use crate::audit::{audit_row, lane_key};
use crate::conn::Conn;
use crate::errors::{bad_column, db_err};
use crate::group_commit::GroupedWrite;
use crate::rows::{cell, from_seconds, get, unix_seconds};
use crate::users::user_exists;
use crate::SqlStore;

fn challenge_from_row(row: &AnyRow) -> Result<Challenge> {
    let method: String = get(row, "method")?;
    let mode: String = get(row, "mode")?;
    let method = DefaultMethod::from_parts(&method, &mode)
        .map_err(|e| bad_column("challenges.method", e))?;
    let state: String = get(row, "state")?;
    let state = ChallengeState::parse(&state).ok_or_else(|| {
        bad_column(
            "challenges.state",
            format!("{state:?} is not a challenge state"),
        )
    })?;
    let attempts: i64 = get(row, "attempts")?;
    Ok(Challenge {
        id: get(row, "id")?,
        user_id: get(row, "user_id")?,
        username: get(row, "username")?,
        method,
        state,
        reason: get(row, "reason")?,
        attempts: u32::try_from(attempts).map_err(|e| bad_column("challenges.attempts", e))?,
        created_at: from_seconds("challenges.created_at", get(row, "created_at")?)?,
        expires_at: from_seconds("challenges.expires_at", get(row, "expires_at")?)?,
        completed_at: get::<Option<i64>>(row, "completed_at")?
            .map(|s| from_seconds("challenges.completed_at", s))
            .transpose()?,
        created_by: get(row, "created_by")?,
        destination: get(row, "destination")?,
        sealed_code: get(row, "sealed_code")?,
        enrolling: get::<String>(row, "purpose")? == "enroll",
        extension: get(row, "extension")?,
        sealed_pin: get(row, "sealed_pin")?,
        number: get::<Option<i64>>(row, "number")?
            .map(|n| u8::try_from(n).map_err(|e| bad_column("challenges.number", e)))
            .transpose()?,
        source_address: get(row, "source_address")?,
    })
}

const CHALLENGE_COLUMNS: &str = "c.id, c.user_id, u.username, c.method, c.mode, c.state, \
     c.reason, c.attempts, c.created_at, c.expires_at, c.completed_at, c.created_by, \
     c.destination, c.sealed_code, c.purpose, c.extension, c.sealed_pin, c.number, \
     c.source_address";

#[async_trait]
impl ChallengeRepo for SqlStore {
    async fn create_challenge(
        &self,
        challenge: &NewChallenge,
        audit: &NewAuditEvent,
    ) -> Result<()> {
        let mut tx = self.write(audit).await?;
        // A missing user would be a foreign-key error (Internal); say what it is.
        if !user_exists(&mut tx, challenge.user_id).await? {
            return Err(Error::NotFound("user"));
        }
        sqlx::query(
            "INSERT INTO challenges (id, user_id, method, mode, state, reason, attempts, \
             created_at, expires_at, completed_at, created_by, destination, sealed_code, \
             purpose, extension, sealed_pin, number, source_address) \
             VALUES ($1, $2, $3, $4, 'pending', NULL, 0, $5, $6, NULL, $7, $8, $9, $10, $11, $12, \
             $13, $14)",
        )
        .bind(&challenge.id)
        .bind(challenge.user_id)
        .bind(challenge.method.method.as_str())
        .bind(challenge.method.mode.as_str())
        .bind(unix_seconds(challenge.created_at))
        .bind(unix_seconds(challenge.expires_at))
        .bind(&challenge.created_by)
        .bind(challenge.destination.as_deref())
        .bind(challenge.sealed_code.as_deref())
        .bind(if challenge.enrolling {
            "enroll"
        } else {
            "verify"
        })
        .bind(challenge.extension.as_deref())
        .bind(challenge.sealed_pin.as_deref())
        .bind(challenge.number.map(i64::from))
        .bind(challenge.source_address.as_deref())
        .execute(&mut *tx)
        .await
        .map_err(|e| match db_err(e) {
            Error::Conflict { .. } => {
                Error::conflict(ConflictReason::Exists, "challenge id already exists")
            }
            other => other,
        })?;
        tx.commit().await
    }

    async fn challenge(&self, id: &str) -> Result<Option<Challenge>> {
        sqlx::query(&format!(
            "SELECT {CHALLENGE_COLUMNS} FROM challenges c JOIN users u ON u.id = c.user_id \
             WHERE c.id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?
        .map(|r| challenge_from_row(&r))
        .transpose()
    }

    async fn finish_challenge(
        &self,
        id: &str,
        from: ChallengeState,
        to: ChallengeState,
        reason: Option<&str>,
        now: OffsetDateTime,
        audit: &NewAuditEvent,
    ) -> Result<bool> {
        if from != ChallengeState::Pending || !to.is_final() {
            return Err(Error::Internal(format!(
                "a challenge cannot move from {from} to {to}"
            )));
        }
        // Expiry is part of the condition: an answer that wins the race with
        // the clock still cannot accept a challenge that has just expired, and
        // nothing expires a challenge early.
        let deadline = if to == ChallengeState::Expired {
            "expires_at <= $3"
        } else {
            "expires_at > $3"
        };
        let key = audit.subject.as_deref().map_or(0, lane_key);
        self.grouped(
            key,
            FinishChallenge {
                sql: format!(
                    "UPDATE challenges SET state = $1, reason = $2, completed_at = $3 \
                     WHERE id = $4 AND state = $5 AND {deadline}"
                ),
                id: id.to_string(),
                from,
                to,
                reason: reason.map(str::to_string),
                now,
                audit: audit.clone(),
            },
        )
        .await
    }

    async fn count_attempt(&self, id: &str) -> Result<u32> {
        // One statement: racing answers each get their own number.
        self.grouped(lane_key(id), CountAttempt(id.to_string()))
            .await
    }

    async fn pending_challenges_to(
        &self,
        destination: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<Challenge>> {
        let rows = sqlx::query(&format!(
            "SELECT {CHALLENGE_COLUMNS} FROM challenges c JOIN users u ON u.id = c.user_id \
             WHERE c.destination = $1 AND c.state = 'pending' AND c.expires_at > $2 \
             ORDER BY c.created_at DESC, c.id LIMIT 10"
        ))
        .bind(destination)
        .bind(unix_seconds(now))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(challenge_from_row).collect()
    }

    async fn deliveries_since(
        &self,
        user_id: UserId,
        destination: &str,
        since: OffsetDateTime,
    ) -> Result<(u64, u64)> {
        let count = |sql: &'static str, bind: Either| async move {
            let q = sqlx::query(sql);
            let q = match bind {
                Either::User(id) => q.bind(id),
                Either::Number(n) => q.bind(n),
            };
            let row = q
                .bind(unix_seconds(since))
                .fetch_one(&self.pool)
                .await
                .map_err(db_err)?;
            let n: i64 = get(&row, "n")?;
            u64::try_from(n).map_err(|e| bad_column("challenges", e))
        };
        let by_user = count(
            "SELECT COUNT(*) AS n FROM challenges \
             WHERE user_id = $1 AND destination IS NOT NULL AND created_at >= $2",
            Either::User(user_id),
        )
        .await?;
        let to_number = count(
            "SELECT COUNT(*) AS n FROM challenges WHERE destination = $1 AND created_at >= $2",
            Either::Number(destination.to_string()),
        )
        .await?;
        Ok((by_user, to_number))
    }

    async fn pending_mobile_challenges(
        &self,
        user_id: UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<Challenge>> {
        let rows = sqlx::query(&format!(
            "SELECT {CHALLENGE_COLUMNS} FROM challenges c JOIN users u ON u.id = c.user_id \
             WHERE c.user_id = $1 AND c.method = 'mobile_app' AND c.state = 'pending' \
             AND c.expires_at > $2 \
             ORDER BY c.created_at, c.id LIMIT 10"
        ))
        .bind(user_id)
        .bind(unix_seconds(now))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(challenge_from_row).collect()
    }

    async fn overdue_challenges(&self, now: OffsetDateTime, limit: u32) -> Result<Vec<Challenge>> {
        let rows = sqlx::query(&format!(
            "SELECT {CHALLENGE_COLUMNS} FROM challenges c JOIN users u ON u.id = c.user_id \
             WHERE c.state = 'pending' AND c.expires_at <= $1 \
             ORDER BY c.expires_at, c.id LIMIT $2"
        ))
        .bind(unix_seconds(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(challenge_from_row).collect()
    }

    async fn purge_challenges(&self, before: OffsetDateTime) -> Result<u64> {
        let purged = sqlx::query("DELETE FROM challenges WHERE expires_at < $1")
            .bind(before.unix_timestamp())
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(purged.rows_affected())
    }
}

/// A challenge moves from `from` to its final state `to`, with its audit
/// row; losing the race (or no such challenge) changes and records nothing.
struct FinishChallenge {
    sql: String,
    id: String,
    from: ChallengeState,
    to: ChallengeState,
    reason: Option<String>,
    now: OffsetDateTime,
    audit: NewAuditEvent,
}

#[async_trait]
impl GroupedWrite for FinishChallenge {
    type Output = bool;

    async fn run(&mut self, conn: &mut Conn<'_>) -> Result<bool> {
        let moved = conn
            .execute(
                &self.sql,
                &[
                    self.to.as_str().into(),
                    self.reason.as_deref().into(),
                    unix_seconds(self.now).into(),
                    self.id.as_str().into(),
                    self.from.as_str().into(),
                ],
            )
            .await?;
        if moved != 1 {
            return Ok(false);
        }
        audit_row(conn, &self.audit).await?;
        Ok(true)
    }
}

/// One more answer to a pending challenge: its number (0 when it is no
/// longer pending).
struct CountAttempt(String);

#[async_trait]
impl GroupedWrite for CountAttempt {
    type Output = u32;

    async fn run(&mut self, conn: &mut Conn<'_>) -> Result<u32> {
        let row = conn
            .fetch_optional(
                "UPDATE challenges SET attempts = attempts + 1 \
                 WHERE id = $1 AND state = 'pending' RETURNING attempts",
                &[self.0.as_str().into()],
            )
            .await?;
        match row {
            None => Ok(0),
            Some(r) => {
                let n: i64 = cell(&r, "attempts")?;
                u32::try_from(n).map_err(|e| bad_column("challenges.attempts", e))
            }
        }
    }
}
