//! `OathTokenRepo` for `SqlStore`: OATH tokens and their counters.

use async_trait::async_trait;
use sqlx::AnyConnection;
use time::OffsetDateTime;
use twofold_core::audit::NewAuditEvent;
use twofold_core::factors::{
    CodeUse, Factor, GuessPolicy, NewOathToken, OathAlgorithm, OathKind, OathParams, OathToken,
};
use twofold_core::ports::OathTokenRepo;
use twofold_core::user::{DefaultMethod, UserId};
use twofold_core::Result;

use crate::audit::{audit_row, AuditValues};
use crate::conn::{Arg, Conn};
use crate::errors::{bad_column, db_err};
use crate::factors::touch_user;
use crate::fast_accept::{FastAccept, ACCEPT_WITH_AUDIT, FAST_ACCEPT};
use crate::group_commit::GroupedWrite;
use crate::held::held_read;
use crate::lockout::{lock_state, write_state};
use crate::rows::{cell, from_seconds, get, unix_seconds, Cells};
use crate::SqlStore;

pub(crate) const TOKEN_COLUMNS: &str =
    "id, user_id, label, kind, algorithm, digits, period, sealed_secret, counter, created_at";

pub(crate) fn kind_str(kind: OathKind) -> &'static str {
    match kind {
        OathKind::Totp => "totp",
        OathKind::Hotp => "hotp",
    }
}

pub(crate) fn algorithm_str(algorithm: OathAlgorithm) -> &'static str {
    match algorithm {
        OathAlgorithm::Sha1 => "sha1",
        OathAlgorithm::Sha256 => "sha256",
        OathAlgorithm::Sha512 => "sha512",
    }
}

fn small(row: &impl Cells, column: &str) -> Result<u32> {
    let n: i64 = cell(row, column)?;
    u32::try_from(n).map_err(|e| bad_column(column, e))
}

/// The `kind`, `algorithm`, `digits` and `period` columns of `table`
/// (oath_tokens and token_inventory share them).
pub(crate) fn params_from_row(row: &impl Cells, table: &str) -> Result<OathParams> {
    let kind = match cell::<String>(row, "kind")?.as_str() {
        "totp" => OathKind::Totp,
        "hotp" => OathKind::Hotp,
        other => {
            return Err(bad_column(
                &format!("{table}.kind"),
                format!("{other:?} is not a token kind"),
            ))
        }
    };
    let algorithm = match cell::<String>(row, "algorithm")?.as_str() {
        "sha1" => OathAlgorithm::Sha1,
        "sha256" => OathAlgorithm::Sha256,
        "sha512" => OathAlgorithm::Sha512,
        other => {
            return Err(bad_column(
                &format!("{table}.algorithm"),
                format!("{other:?} is not an algorithm"),
            ))
        }
    };
    Ok(OathParams {
        kind,
        algorithm,
        digits: small(row, "digits")?,
        period: small(row, "period")?,
    })
}

pub(crate) fn token_from_row(row: &impl Cells) -> Result<OathToken> {
    Ok(OathToken {
        id: cell(row, "id")?,
        user_id: cell(row, "user_id")?,
        label: cell(row, "label")?,
        params: params_from_row(row, "oath_tokens")?,
        sealed_secret: cell(row, "sealed_secret")?,
        counter: cell(row, "counter")?,
        created_at: from_seconds("oath_tokens.created_at", cell(row, "created_at")?)?,
    })
}

pub(crate) async fn insert_token(
    conn: &mut AnyConnection,
    user_id: UserId,
    token: &NewOathToken,
    at: OffsetDateTime,
) -> Result<OathToken> {
    let created_at = unix_seconds(at);
    let row = sqlx::query(
        "INSERT INTO oath_tokens (user_id, label, kind, algorithm, digits, period, \
         sealed_secret, counter, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .bind(user_id)
    .bind(&token.label)
    .bind(kind_str(token.params.kind))
    .bind(algorithm_str(token.params.algorithm))
    .bind(i64::from(token.params.digits))
    .bind(i64::from(token.params.period))
    .bind(&token.sealed_secret)
    .bind(token.counter)
    .bind(created_at)
    .fetch_one(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(OathToken {
        id: get(&row, "id")?,
        user_id,
        label: token.label.clone(),
        params: token.params,
        sealed_secret: token.sealed_secret.clone(),
        counter: token.counter,
        created_at: from_seconds("oath_tokens.created_at", created_at)?,
    })
}

#[async_trait]
impl OathTokenRepo for SqlStore {
    async fn add_oath_token(
        &self,
        user_id: UserId,
        token: &NewOathToken,
        audit: &NewAuditEvent,
    ) -> Result<OathToken> {
        let mut tx = self.write(audit).await?;
        touch_user(&mut tx, user_id, audit.at).await?;
        let stored = insert_token(&mut tx, user_id, token, audit.at).await?;
        tx.commit().await?;
        Ok(stored)
    }

    async fn give_oath_token(
        &self,
        user_id: UserId,
        token: &NewOathToken,
        method: DefaultMethod,
        audit: &NewAuditEvent,
    ) -> Result<(OathToken, bool)> {
        let mut tx = self.write(audit).await?;
        touch_user(&mut tx, user_id, audit.at).await?;
        let stored = insert_token(&mut tx, user_id, token, audit.at).await?;
        let set_method = sqlx::query(
            "UPDATE users SET default_method = $1, default_mode = $2 \
             WHERE id = $3 AND default_method IS NULL",
        )
        .bind(method.method.as_str())
        .bind(method.mode.as_str())
        .bind(user_id);
        let set = tx.execute(set_method).await? == 1;
        tx.commit().await?;
        Ok((stored, set))
    }

    async fn oath_tokens(&self, user_id: UserId) -> Result<Vec<OathToken>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM oath_tokens WHERE user_id = $1 ORDER BY id");
        if let Some(direct) = &self.direct {
            return direct.all(&sql, [user_id], |row| token_from_row(row));
        }
        let rows = match self.held.as_deref() {
            Some(held) => held_read!(held, |conn| sqlx::query(&sql)
                .bind(user_id)
                .fetch_all(&mut *conn)
                .await)?,
            None => sqlx::query(&sql)
                .bind(user_id)
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?,
        };
        rows.iter().map(token_from_row).collect()
    }

    async fn delete_oath_token(
        &self,
        user_id: UserId,
        token_id: i64,
        audit: &NewAuditEvent,
    ) -> Result<bool> {
        let mut tx = self.write(audit).await?;
        let delete = sqlx::query("DELETE FROM oath_tokens WHERE id = $1 AND user_id = $2")
            .bind(token_id)
            .bind(user_id);
        if tx.execute(delete).await? == 0 {
            return Ok(false);
        }
        touch_user(&mut tx, user_id, audit.at).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn advance_oath_counter(&self, token_id: i64, from: i64, to: i64) -> Result<bool> {
        // One statement: the database decides which of two racing callers still
        // sees `from`; the loser updates nothing.
        let updated =
            sqlx::query("UPDATE oath_tokens SET counter = $1 WHERE id = $2 AND counter = $3")
                .bind(to)
                .bind(token_id)
                .bind(from)
                .execute(&self.pool)
                .await
                .map_err(db_err)?;
        Ok(updated.rows_affected() == 1)
    }

    async fn accept_code(
        &self,
        user_id: UserId,
        token_id: i64,
        from: i64,
        to: i64,
        gate: Option<&GuessPolicy>,
        audit: &NewAuditEvent,
    ) -> Result<CodeUse> {
        // The hot path of every sign-in: gate, counter, streak and audit row
        // together, committed with the other requests' writes of the moment.
        self.grouped(
            user_id,
            AcceptCode {
                user_id,
                token_id,
                from,
                to,
                gate: gate.copied(),
                audit: audit.clone(),
            },
        )
        .await
    }
}

/// A right code: the factor's gate, the counter's compare-and-set from
/// `from` to `to` (so a code is accepted once, across nodes), the end of the
/// code factor's streak, and the success's audit row — all or nothing.
struct AcceptCode {
    user_id: UserId,
    token_id: i64,
    from: i64,
    to: i64,
    gate: Option<GuessPolicy>,
    audit: NewAuditEvent,
}

#[async_trait]
impl GroupedWrite for AcceptCode {
    type Output = CodeUse;

    fn fast_accept(&self) -> Option<(FastAccept, &NewAuditEvent)> {
        let accept = FastAccept {
            user_id: self.user_id,
            token_id: self.token_id,
            from: self.from,
            to: self.to,
        };
        Some((accept, &self.audit))
    }

    fn fast_accepted(&self) -> Option<CodeUse> {
        Some(CodeUse::Accepted)
    }

    async fn run(&mut self, conn: &mut Conn<'_>) -> Result<CodeUse> {
        // Almost always the code factor has no record of failures, or a
        // clear one: then the compare-and-set alone is the whole change.
        let cas = [
            self.to.into(),
            self.token_id.into(),
            self.from.into(),
            self.user_id.into(),
            Factor::Code.as_str().into(),
        ];
        let advanced = if conn.is_postgres() {
            // The compare-and-set and, when it moved the counter, the audit
            // row: one statement, one round trip.
            let audit = AuditValues::of(&self.audit)?;
            let args: Vec<Arg<'_>> = cas.iter().copied().chain(audit.args()).collect();
            if conn
                .fetch_optional(&ACCEPT_WITH_AUDIT, &args)
                .await?
                .is_some()
            {
                return Ok(CodeUse::Accepted);
            }
            false
        } else {
            conn.execute(&FAST_ACCEPT, &cas).await? == 1
        };
        if advanced {
            audit_row(conn, &self.audit).await?;
            return Ok(CodeUse::Accepted);
        }
        // Otherwise: the record, locked; the gate; the compare-and-set; and
        // only then any write (a write decides before it changes anything).
        let Some(current) = lock_state(conn, self.user_id, Factor::Code).await? else {
            return Ok(CodeUse::Taken);
        };
        if let Some(until) = self
            .gate
            .as_ref()
            .and_then(|p| current.closed_until(self.audit.at, p))
        {
            return Ok(CodeUse::Closed { until });
        }
        let advanced = conn
            .execute(
                "UPDATE oath_tokens SET counter = $1 WHERE id = $2 AND counter = $3 AND user_id = $4",
                &[
                    self.to.into(),
                    self.token_id.into(),
                    self.from.into(),
                    self.user_id.into(),
                ],
            )
            .await?;
        if advanced != 1 {
            return Ok(CodeUse::Taken);
        }
        if !current.is_clear() {
            write_state(conn, self.user_id, Factor::Code, &current.after_success()).await?;
        }
        audit_row(conn, &self.audit).await?;
        Ok(CodeUse::Accepted)
    }
}
