//! `DeviceRepo` for `SqlStore` — the mobile app (migration 0012): activated
//! devices, activation codes and the nonces of signed device requests.
//!
//! Using a code and remembering a nonce are single conditional statements
//! (compare-and-set, insert-if-absent), so two nodes racing with one code
//! or one replayed request cannot both win.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use time::OffsetDateTime;
use twofold_core::audit::NewAuditEvent;
use twofold_core::factors::NewOathToken;
use twofold_core::mobile::{
    ActivationCodeRecord, MobileDevice, NewMobileDevice, PushKind, PushTarget,
};
use twofold_core::ports::DeviceRepo;
use twofold_core::user::UserId;
use twofold_core::{ConflictReason, Error, Result};

use crate::errors::{bad_column, db_err};
use crate::factors::touch_user;
use crate::rows::{count, from_seconds, get, unix_seconds};
use crate::store::commit;
use crate::tokens::insert_token;
use crate::users::user_exists;
use crate::SqlStore;

const DEVICE_COLUMNS: &str = "d.id, d.user_id, u.username, d.name, d.public_key, d.push_kind, \
     d.push_url, d.token_id, d.activated_at, d.last_used_at";

/// How long after expiring a code is still kept: long enough to tell "used"
/// or "expired" from "wrong" while someone is still typing it, short enough
/// that the table does not grow with every code ever issued.
const KEEP_EXPIRED_CODES: time::Duration = time::Duration::days(1);

fn device_from_row(row: &AnyRow) -> Result<MobileDevice> {
    let push = match (
        get::<Option<String>>(row, "push_kind")?,
        get::<Option<String>>(row, "push_url")?,
    ) {
        (None, None) => None,
        (Some(kind), Some(url)) => Some(PushTarget {
            kind: PushKind::parse(&kind).ok_or_else(|| {
                bad_column(
                    "mobile_devices.push_kind",
                    format!("{kind:?} is not a push kind"),
                )
            })?,
            url,
        }),
        _ => {
            return Err(bad_column(
                "mobile_devices.push_url",
                "set without push_kind, or missing with it",
            ))
        }
    };
    Ok(MobileDevice {
        id: get(row, "id")?,
        user_id: get(row, "user_id")?,
        username: get(row, "username")?,
        name: get(row, "name")?,
        public_key: get(row, "public_key")?,
        push,
        token_id: get(row, "token_id")?,
        activated_at: from_seconds("mobile_devices.activated_at", get(row, "activated_at")?)?,
        last_used_at: get::<Option<i64>>(row, "last_used_at")?
            .map(|s| from_seconds("mobile_devices.last_used_at", s))
            .transpose()?,
    })
}

#[async_trait]
impl DeviceRepo for SqlStore {
    async fn create_activation_code(
        &self,
        user_id: UserId,
        code_hash: &str,
        expires_at: OffsetDateTime,
        audit: &NewAuditEvent,
    ) -> Result<()> {
        let mut tx = self.write(audit).await?;
        // A missing user would be a foreign-key error (Internal); say what it is.
        if !user_exists(&mut tx, user_id).await? {
            return Err(Error::NotFound("user"));
        }
        // Nothing else removes codes; the user's old ones go when a new one
        // is issued.
        let forget =
            sqlx::query("DELETE FROM activation_codes WHERE user_id = $1 AND expires_at < $2")
                .bind(user_id)
                .bind(unix_seconds(audit.at - KEEP_EXPIRED_CODES));
        tx.execute(forget).await?;
        let insert = sqlx::query(
            "INSERT INTO activation_codes (code_hash, user_id, created_at, expires_at, used_at) \
             VALUES ($1, $2, $3, $4, NULL)",
        )
        .bind(code_hash)
        .bind(user_id)
        .bind(unix_seconds(audit.at))
        .bind(unix_seconds(expires_at));
        tx.execute(insert).await?;
        tx.commit().await
    }

    async fn activation_code(&self, code_hash: &str) -> Result<Option<ActivationCodeRecord>> {
        let row = sqlx::query(
            "SELECT a.user_id, u.username, a.expires_at, a.used_at FROM activation_codes a \
             JOIN users u ON u.id = a.user_id WHERE a.code_hash = $1",
        )
        .bind(code_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.map(|row| {
            Ok(ActivationCodeRecord {
                user_id: get(&row, "user_id")?,
                username: get(&row, "username")?,
                expires_at: from_seconds("activation_codes.expires_at", get(&row, "expires_at")?)?,
                used: get::<Option<i64>>(&row, "used_at")?.is_some(),
            })
        })
        .transpose()
    }

    async fn activate_device(
        &self,
        code_hash: &str,
        now: OffsetDateTime,
        device: &NewMobileDevice,
        token: &NewOathToken,
        max_devices: u32,
        audit: &NewAuditEvent,
    ) -> Result<MobileDevice> {
        let at = unix_seconds(now);
        let mut tx = self.write(audit).await?;
        // The code's compare-and-set: of two racing activations only one
        // finds it unused.
        let used = sqlx::query(
            "UPDATE activation_codes SET used_at = $1 \
             WHERE code_hash = $2 AND used_at IS NULL AND expires_at > $1 RETURNING user_id",
        )
        .bind(at)
        .bind(code_hash)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let Some(used) = used else {
            return Err(Error::NotFound("activation code"));
        };
        let user_id: UserId = get(&used, "user_id")?;
        // Before counting: on PostgreSQL this locks the user's row, so two
        // activations with two codes of one user count one after the other
        // and cannot both fit under the limit.
        touch_user(&mut tx, user_id, now).await?;
        let devices = sqlx::query("SELECT COUNT(*) FROM mobile_devices WHERE user_id = $1")
            .bind(user_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
        if count(&devices)? >= u64::from(max_devices) {
            // Dropping the transaction rolls the code's use back: the user
            // may remove a device and use the same code.
            return Err(Error::conflict(
                ConflictReason::DeviceLimit,
                format!("the user already has {max_devices} mobile devices, the most allowed"),
            ));
        }
        let username: String = get(
            &sqlx::query("SELECT username FROM users WHERE id = $1")
                .bind(user_id)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err)?,
            "username",
        )?;
        let stored_token = insert_token(&mut tx, user_id, token, now).await?;
        let insert = sqlx::query(
            "INSERT INTO mobile_devices (id, user_id, name, public_key, push_kind, push_url, \
             token_id, activated_at, last_used_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL)",
        )
        .bind(&device.id)
        .bind(user_id)
        .bind(&device.name)
        .bind(device.public_key.clone())
        .bind(device.push.as_ref().map(|p| p.kind.as_str()))
        .bind(device.push.as_ref().map(|p| p.url.clone()))
        .bind(stored_token.id)
        .bind(at);
        tx.execute(insert).await.map_err(|e| match e {
            Error::Conflict { .. } => {
                Error::conflict(ConflictReason::Exists, "mobile device id already exists")
            }
            other => other,
        })?;
        tx.commit().await?;
        Ok(MobileDevice {
            id: device.id.clone(),
            user_id,
            username,
            name: device.name.clone(),
            public_key: device.public_key.clone(),
            push: device.push.clone(),
            token_id: Some(stored_token.id),
            activated_at: from_seconds("mobile_devices.activated_at", at)?,
            last_used_at: None,
        })
    }

    async fn mobile_devices(&self, user_id: UserId) -> Result<Vec<MobileDevice>> {
        let rows = sqlx::query(&format!(
            "SELECT {DEVICE_COLUMNS} FROM mobile_devices d JOIN users u ON u.id = d.user_id \
             WHERE d.user_id = $1 ORDER BY d.activated_at, d.id"
        ))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(device_from_row).collect()
    }

    async fn mobile_device(&self, id: &str) -> Result<Option<MobileDevice>> {
        sqlx::query(&format!(
            "SELECT {DEVICE_COLUMNS} FROM mobile_devices d JOIN users u ON u.id = d.user_id \
             WHERE d.id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?
        .map(|r| device_from_row(&r))
        .transpose()
    }

    async fn remove_mobile_device(
        &self,
        user_id: UserId,
        device_id: &str,
        audit: &NewAuditEvent,
    ) -> Result<bool> {
        let mut tx = self.write(audit).await?;
        let removed = sqlx::query(
            "DELETE FROM mobile_devices WHERE id = $1 AND user_id = $2 RETURNING token_id",
        )
        .bind(device_id)
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let Some(removed) = removed else {
            return Ok(false);
        };
        if let Some(token_id) = get::<Option<i64>>(&removed, "token_id")? {
            let token = sqlx::query("DELETE FROM oath_tokens WHERE id = $1 AND user_id = $2")
                .bind(token_id)
                .bind(user_id);
            tx.execute(token).await?;
        }
        // What the user signs in with changed, as when a token is deleted.
        touch_user(&mut tx, user_id, audit.at).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn device_request_seen(
        &self,
        device_id: &str,
        nonce: &str,
        now: OffsetDateTime,
        forget_before: OffsetDateTime,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        // First, so that on PostgreSQL the device's row lock queues one
        // device's requests: a second node with the same nonce waits for
        // the first to commit and then finds the nonce taken.
        let touched = sqlx::query("UPDATE mobile_devices SET last_used_at = $1 WHERE id = $2")
            .bind(unix_seconds(now))
            .bind(device_id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if touched.rows_affected() == 0 {
            return Err(Error::NotFound("mobile device"));
        }
        // Not a unique violation: on PostgreSQL a failed statement would
        // abort the transaction, and a replay is an expected outcome.
        let remembered = sqlx::query(
            "INSERT INTO device_nonces (device_id, nonce, seen_at) VALUES ($1, $2, $3) \
             ON CONFLICT (device_id, nonce) DO NOTHING",
        )
        .bind(device_id)
        .bind(nonce)
        .bind(unix_seconds(now))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if remembered.rows_affected() == 0 {
            // A replay: dropping the transaction undoes `last_used_at`.
            return Ok(false);
        }
        sqlx::query("DELETE FROM device_nonces WHERE device_id = $1 AND seen_at < $2")
            .bind(device_id)
            .bind(unix_seconds(forget_before))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        commit(tx).await?;
        Ok(true)
    }
}
