//! `TokenInventoryRepo` for `SqlStore`: hardware tokens imported from their
//! vendor's seed file and not yet anyone's (migration 0016), by serial.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use twofold_core::audit::NewAuditEvent;
use twofold_core::factors::{NewOathToken, OathToken};
use twofold_core::ports::TokenInventoryRepo;
use twofold_core::token_import::{serial_key, InventoryToken, NewInventoryToken};
use twofold_core::user::{DefaultMethod, UserId};
use twofold_core::{Error, Result};

use crate::errors::db_err;
use crate::factors::touch_user;
use crate::rows::{from_seconds, get, limit, unix_seconds};
use crate::tokens::{algorithm_str, insert_token, kind_str, params_from_row};
use crate::users::like_prefix;
use crate::SqlStore;

const COLUMNS: &str = "id, serial, manufacturer, model, kind, algorithm, digits, period, \
                       sealed_secret, counter, imported_at";

fn from_row(row: &AnyRow) -> Result<InventoryToken> {
    Ok(InventoryToken {
        id: get(row, "id")?,
        serial: get(row, "serial")?,
        manufacturer: get(row, "manufacturer")?,
        model: get(row, "model")?,
        params: params_from_row(row, "token_inventory")?,
        sealed_secret: get(row, "sealed_secret")?,
        counter: get(row, "counter")?,
        imported_at: from_seconds("token_inventory.imported_at", get(row, "imported_at")?)?,
    })
}

#[async_trait]
impl TokenInventoryRepo for SqlStore {
    async fn import_inventory(
        &self,
        tokens: &[NewInventoryToken],
        audit: &NewAuditEvent,
    ) -> Result<Vec<String>> {
        // One transaction for the batch: a file is in the inventory whole
        // or not at all. `DO NOTHING` keeps a serial that is already there
        // (and its seed) untouched; no row affected marks the duplicate.
        let mut tx = self.write(audit).await?;
        let mut duplicates = Vec::new();
        for token in tokens {
            let insert = sqlx::query(
                "INSERT INTO token_inventory (serial, serial_key, manufacturer, model, kind, \
                 algorithm, digits, period, sealed_secret, counter, imported_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                 ON CONFLICT (serial_key) DO NOTHING",
            )
            .bind(&token.serial)
            .bind(serial_key(&token.serial))
            .bind(&token.manufacturer)
            .bind(&token.model)
            .bind(kind_str(token.params.kind))
            .bind(algorithm_str(token.params.algorithm))
            .bind(i64::from(token.params.digits))
            .bind(i64::from(token.params.period))
            .bind(&token.sealed_secret)
            .bind(token.counter)
            .bind(unix_seconds(audit.at));
            if tx.execute(insert).await? == 0 {
                duplicates.push(token.serial.clone());
            }
        }
        tx.commit().await?;
        Ok(duplicates)
    }

    async fn inventory(&self, prefix: Option<&str>, limit_to: u32) -> Result<Vec<InventoryToken>> {
        let prefix = prefix.map(serial_key).unwrap_or_default();
        let sql = format!(
            "SELECT {COLUMNS} FROM token_inventory WHERE serial_key LIKE $1 ESCAPE '\\' \
             ORDER BY serial_key LIMIT $2"
        );
        let rows = sqlx::query(&sql)
            .bind(like_prefix(&prefix))
            .bind(limit(limit_to))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(from_row).collect()
    }

    async fn inventory_token(&self, serial: &str) -> Result<Option<InventoryToken>> {
        let sql = format!("SELECT {COLUMNS} FROM token_inventory WHERE serial_key = $1");
        let row = sqlx::query(&sql)
            .bind(serial_key(serial))
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(from_row).transpose()
    }

    async fn assign_inventory_token(
        &self,
        serial: &str,
        sealed_from: &str,
        user_id: UserId,
        token: &NewOathToken,
        method: DefaultMethod,
        audit: &NewAuditEvent,
    ) -> Result<(OathToken, bool)> {
        let mut tx = self.write(audit).await?;
        // Only the row whose seed the caller opened: two administrators
        // assigning the same token at once — or a delete and re-import in
        // between — leave one winner and no copy.
        let take =
            sqlx::query("DELETE FROM token_inventory WHERE serial_key = $1 AND sealed_secret = $2")
                .bind(serial_key(serial))
                .bind(sealed_from);
        if tx.execute(take).await? == 0 {
            return Err(Error::NotFound("token"));
        }
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

    async fn delete_inventory_token(&self, serial: &str, audit: &NewAuditEvent) -> Result<bool> {
        let delete = sqlx::query("DELETE FROM token_inventory WHERE serial_key = $1")
            .bind(serial_key(serial));
        self.write_if_changed(delete, audit).await
    }
}
