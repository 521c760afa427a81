//! `ServiceAccountRepo` for `SqlStore`: service accounts of the Web Service
//! SDK. Every change of an account is `announce`d: nodes cache the
//! accounts callers authenticate as. (`last_used_at` is not: bookkeeping
//! that each node's cache keeps itself, see `Engine::record_use`.)

use async_trait::async_trait;
use sqlx::any::AnyRow;
use time::OffsetDateTime;
use twofold_core::audit::NewAuditEvent;
use twofold_core::factors::ServiceAccount;
use twofold_core::ports::{ServiceAccountRepo, SERVICE_ACCOUNT_CHANGED};
use twofold_core::service::ServiceAccountSpec;
use twofold_core::validate::username_key;
use twofold_core::Role;
use twofold_core::{ConflictReason, Error, Result};

use crate::errors::bad_column;
use crate::errors::db_err;
use crate::rows::{from_seconds, get, parse_permissions, unix_seconds};
use crate::wakeups::{announce, announced, SERVICE_ACCOUNTS_CACHE};
use crate::write::AnyQuery;
use crate::SqlStore;

const COLUMNS: &str = "id, name, created_at, rotated_at, secret_hash, role, permissions, \
                       scope_group, last_used_at";

fn account(row: &AnyRow) -> Result<(ServiceAccount, String)> {
    let rotated: Option<i64> = get(row, "rotated_at")?;
    let last_used: Option<i64> = get(row, "last_used_at")?;
    let role: String = get(row, "role")?;
    // A role this version does not know grants nothing: fail closed.
    let role = role
        .parse::<Role>()
        .map_err(|_| bad_column("service_accounts.role", format!("{role:?} is not a role")))?;
    Ok((
        ServiceAccount {
            id: get(row, "id")?,
            name: get(row, "name")?,
            created_at: from_seconds("created_at", get(row, "created_at")?)?,
            rotated_at: rotated.map(|s| from_seconds("rotated_at", s)).transpose()?,
            role,
            permissions: parse_permissions(&get::<String>(row, "permissions")?)?,
            scope_group: get(row, "scope_group")?,
            last_used_at: last_used
                .map(|s| from_seconds("last_used_at", s))
                .transpose()?,
        },
        get(row, "secret_hash")?,
    ))
}

/// The topic that makes every node drop its cached copy of `name`.
fn changed_topic(name: &str) -> String {
    format!("{SERVICE_ACCOUNT_CHANGED}{}", username_key(name))
}

impl SqlStore {
    /// `write_if_changed` for a change of the account `name`, `announce`d
    /// in the same transaction: nodes cache the accounts they authenticate,
    /// and a rotated or deleted one must stop working on all of them.
    async fn write_account_if_changed(
        &self,
        name: &str,
        change: AnyQuery<'_>,
        audit: &NewAuditEvent,
    ) -> Result<bool> {
        let mut tx = self.write(audit).await?;
        if tx.execute(change).await? == 0 {
            // Nothing changed: rolled back, nothing recorded or announced.
            return Ok(false);
        }
        let topic = changed_topic(name);
        announce(self, &mut tx, SERVICE_ACCOUNTS_CACHE, &topic).await?;
        tx.commit().await?;
        announced(self, &topic);
        Ok(true)
    }
}

#[async_trait]
impl ServiceAccountRepo for SqlStore {
    async fn create_service_account(
        &self,
        name: &str,
        secret_hash: &str,
        spec: &ServiceAccountSpec,
        audit: &NewAuditEvent,
    ) -> Result<ServiceAccount> {
        let permissions = spec
            .permissions
            .to_vec()
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let mut tx = self.write(audit).await?;
        let row = sqlx::query(&format!(
            "INSERT INTO service_accounts (name, name_key, secret_hash, created_at, role, permissions, scope_group) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
        ))
        .bind(name)
        .bind(username_key(name))
        .bind(secret_hash)
        .bind(unix_seconds(audit.at))
        .bind(spec.role.as_str())
        .bind(permissions)
        .bind(spec.scope.group())
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| match db_err(e) {
            Error::Conflict { .. } => Error::conflict(
                ConflictReason::Exists,
                format!("service account {name} already exists"),
            ),
            other => other,
        })?;
        let (acct, _) = account(&row)?;
        // Nodes cache hits only, so none holds this name yet; announced
        // anyway, so every change of an account is, whatever caches later.
        let topic = changed_topic(name);
        announce(self, &mut tx, SERVICE_ACCOUNTS_CACHE, &topic).await?;
        tx.commit().await?;
        announced(self, &topic);
        Ok(acct)
    }

    async fn service_account(&self, name: &str) -> Result<Option<(ServiceAccount, String)>> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM service_accounts WHERE name_key = $1"
        ))
        .bind(username_key(name))
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?
        .map(|r| account(&r))
        .transpose()
    }

    async fn service_accounts(&self) -> Result<Vec<ServiceAccount>> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM service_accounts ORDER BY name_key"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?
        .iter()
        .map(|r| account(r).map(|(a, _)| a))
        .collect()
    }

    async fn rotate_service_account(
        &self,
        name: &str,
        secret_hash: &str,
        audit: &NewAuditEvent,
    ) -> Result<bool> {
        let rotate = sqlx::query(
            "UPDATE service_accounts SET secret_hash = $1, rotated_at = $2 WHERE name_key = $3",
        )
        .bind(secret_hash)
        .bind(unix_seconds(audit.at))
        .bind(username_key(name));
        self.write_account_if_changed(name, rotate, audit).await
    }

    async fn delete_service_account(&self, name: &str, audit: &NewAuditEvent) -> Result<bool> {
        let delete = sqlx::query("DELETE FROM service_accounts WHERE name_key = $1")
            .bind(username_key(name));
        self.write_account_if_changed(name, delete, audit).await
    }

    async fn record_service_account_use(
        &self,
        id: i64,
        at: OffsetDateTime,
        stale_before: OffsetDateTime,
    ) -> Result<bool> {
        // Straight on the pool, with no audit event: a successful SDK call
        // is not a change anyone made. The condition makes a recent use
        // (another node's, a moment ago) a no-op, and never moves it back.
        let written = sqlx::query(
            "UPDATE service_accounts SET last_used_at = $1 \
             WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)",
        )
        .bind(unix_seconds(at))
        .bind(id)
        .bind(unix_seconds(stale_before))
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(written.rows_affected() > 0)
    }
}
