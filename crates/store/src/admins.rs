//! `AdminRepo` for `SqlStore`: portal administrators, their permissions and
//! the group their rights are limited to.

use async_trait::async_trait;
use twofold_core::audit::NewAuditEvent;
use twofold_core::ports::AdminRepo;
use twofold_core::user::{Admin, Permission, UserId};
use twofold_core::{Error, Result};

use crate::errors::db_err;
use crate::rows::{count, get, parse_permissions, unix_seconds};
use crate::users::user_exists;
use crate::SqlStore;

#[async_trait]
impl AdminRepo for SqlStore {
    async fn put_admin(
        &self,
        user_id: UserId,
        permissions: &[Permission],
        scope_group: Option<&str>,
        audit: &NewAuditEvent,
    ) -> Result<()> {
        let mut perms = permissions.to_vec();
        perms.sort();
        perms.dedup();
        let perms = perms
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let mut tx = self.write(audit).await?;
        if !user_exists(&mut tx, user_id).await? {
            return Err(Error::NotFound("user"));
        }
        let grant = sqlx::query(
            "INSERT INTO portal_admins (user_id, permissions, scope_group, created_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id) DO UPDATE SET permissions = excluded.permissions, \
             scope_group = excluded.scope_group",
        )
        .bind(user_id)
        .bind(perms)
        .bind(scope_group.map(str::trim))
        .bind(unix_seconds(audit.at));
        tx.execute(grant).await?;
        tx.commit().await
    }

    async fn list_admins(&self) -> Result<Vec<Admin>> {
        let rows = sqlx::query(
            "SELECT a.user_id, u.username, a.permissions, a.scope_group \
             FROM portal_admins a JOIN users u ON u.id = a.user_id \
             ORDER BY u.username_key",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok(Admin {
                    user_id: get(r, "user_id")?,
                    username: get(r, "username")?,
                    permissions: parse_permissions(&get::<String>(r, "permissions")?)?,
                    scope_group: get(r, "scope_group")?,
                })
            })
            .collect()
    }

    async fn delete_admin(&self, user_id: UserId, audit: &NewAuditEvent) -> Result<bool> {
        self.write_if_changed(
            sqlx::query("DELETE FROM portal_admins WHERE user_id = $1").bind(user_id),
            audit,
        )
        .await
    }

    async fn count_admins(&self) -> Result<u64> {
        let row = sqlx::query("SELECT COUNT(*) FROM portal_admins")
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        count(&row)
    }
}
