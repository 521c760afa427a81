//! `OutboxRepo` for `SqlStore`: the development outbox (migration 0010),
//! where calls and text messages are kept instead of sent.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use twofold_core::ports::{NewOutboxMessage, OutboxKind, OutboxMessage, OutboxRepo, OUTBOX_KEEP};
use twofold_core::Result;

use crate::errors::{bad_column, db_err};
use crate::rows::{from_seconds, get, unix_seconds};
use crate::SqlStore;

fn message_from_row(row: &AnyRow) -> Result<OutboxMessage> {
    let kind: String = get(row, "kind")?;
    let kind = match kind.as_str() {
        "call" => OutboxKind::Call,
        "sms" => OutboxKind::Sms,
        other => return Err(bad_column("dev_outbox.kind", format!("{other:?}"))),
    };
    Ok(OutboxMessage {
        id: get(row, "id")?,
        at: from_seconds("dev_outbox.at", get(row, "at")?)?,
        kind,
        destination: get(row, "destination")?,
        body: get(row, "body")?,
        challenge_id: get(row, "challenge_id")?,
    })
}

const COLUMNS: &str = "id, at, kind, destination, body, challenge_id";

#[async_trait]
impl OutboxRepo for SqlStore {
    async fn outbox_put(&self, m: &NewOutboxMessage) -> Result<i64> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "INSERT INTO dev_outbox (at, kind, destination, body, challenge_id) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(unix_seconds(m.at))
        .bind(m.kind.as_str())
        .bind(&m.destination)
        .bind(&m.body)
        .bind(m.challenge_id.as_deref())
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        let id: i64 = get(&row, "id")?;
        sqlx::query("DELETE FROM dev_outbox WHERE id <= $1")
            .bind(id - OUTBOX_KEEP)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        crate::store::commit(tx).await?;
        Ok(id)
    }

    async fn outbox(&self, limit: u32) -> Result<Vec<OutboxMessage>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM dev_outbox ORDER BY id DESC LIMIT $1"
        ))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(message_from_row).collect()
    }

    async fn outbox_message(&self, id: i64) -> Result<Option<OutboxMessage>> {
        sqlx::query(&format!("SELECT {COLUMNS} FROM dev_outbox WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .map(|r| message_from_row(&r))
            .transpose()
    }
}
