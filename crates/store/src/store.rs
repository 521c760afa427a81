//! `Store` for `SqlStore`: the queries, shared by both backends. The factor
//! methods (tokens, PIN, questions, bypass, lockout, enrollment, sessions)
//! live in `factors.rs`; the impl here delegates to them.

use std::collections::HashMap;
use std::net::IpAddr;

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, Row, Transaction};
use time::OffsetDateTime;
use twofold_core::audit::{AuditEvent, AuditQuery, NewAuditEvent, ResultCode};
use twofold_core::factors::{
    DenialOutcome, DenialPolicy, Enrollment, NewOathToken, OathToken, PinRecord, SecurityQuestion,
    ServiceAccount, SessionRecord, StoredAnswer,
};
use twofold_core::ports::{Store, UserQuery};
use twofold_core::user::{Admin, DefaultMethod, NewUser, Permission, User, UserId};
use twofold_core::validate::username_key;
use twofold_core::{ConflictReason, Error, Result};

use crate::errors::{bad_column, db_err};
use crate::{accounts, factors, Backend, SqlStore};

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

const USER_COLUMNS: &str = "id, username, display_name, email, language, enabled, locked_until, \
     fraud_blocked, default_method, default_mode, created_at, updated_at, version, \
     phone, phone_extension, backup_phone, mobile_phone";

const AUDIT_COLUMNS: &str = "id, at, actor, via, subject, event, method, result, source_ip, detail";

fn limit(requested: u32) -> i64 {
    i64::from(match requested {
        0 => DEFAULT_LIMIT,
        n => n.min(MAX_LIMIT),
    })
}

fn group_key(name: &str) -> String {
    name.trim().to_lowercase()
}

/// `LIKE` pattern matching everything that starts with `prefix` literally.
fn like_prefix(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

pub(crate) fn unix_seconds(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

fn unix_millis(t: OffsetDateTime) -> Result<i64> {
    i64::try_from(t.unix_timestamp_nanos().div_euclid(1_000_000))
        .map_err(|_| Error::invalid("at", "timestamp out of range"))
}

pub(crate) fn get<'r, T>(row: &'r AnyRow, column: &str) -> Result<T>
where
    T: sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    row.try_get::<T, _>(column)
        .map_err(|e| bad_column(column, e))
}

fn flag(row: &AnyRow, column: &str) -> Result<bool> {
    match get::<i64>(row, column)? {
        0 => Ok(false),
        1 => Ok(true),
        n => Err(bad_column(column, format!("{n} is not 0 or 1"))),
    }
}

pub(crate) fn from_seconds(column: &str, secs: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(secs).map_err(|e| bad_column(column, e))
}

fn from_millis(column: &str, ms: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|e| bad_column(column, e))
}

/// A user row without its groups.
fn user_from_row(row: &AnyRow) -> Result<User> {
    let default_method = match (
        get::<Option<String>>(row, "default_method")?,
        get::<Option<String>>(row, "default_mode")?,
    ) {
        (None, None) => None,
        (Some(method), Some(mode)) => Some(
            DefaultMethod::from_parts(&method, &mode)
                .map_err(|e| bad_column("users.default_method", e))?,
        ),
        _ => {
            return Err(bad_column(
                "users.default_method",
                "method and mode must both be set or both be empty",
            ))
        }
    };
    Ok(User {
        id: get(row, "id")?,
        username: get(row, "username")?,
        display_name: get(row, "display_name")?,
        email: get(row, "email")?,
        groups: Vec::new(),
        language: get(row, "language")?,
        phone: get(row, "phone")?,
        phone_extension: get(row, "phone_extension")?,
        backup_phone: get(row, "backup_phone")?,
        mobile_phone: get(row, "mobile_phone")?,
        enabled: flag(row, "enabled")?,
        locked_until: get::<Option<i64>>(row, "locked_until")?
            .map(|s| from_seconds("users.locked_until", s))
            .transpose()?,
        fraud_blocked: flag(row, "fraud_blocked")?,
        default_method,
        created_at: from_seconds("users.created_at", get(row, "created_at")?)?,
        updated_at: from_seconds("users.updated_at", get(row, "updated_at")?)?,
        version: get(row, "version")?,
    })
}

fn audit_from_row(row: &AnyRow) -> Result<AuditEvent> {
    let result: String = get(row, "result")?;
    let result = ResultCode::parse(&result).ok_or_else(|| {
        bad_column(
            "audit_events.result",
            format!("{result:?} is not a result code"),
        )
    })?;
    let source_ip = get::<Option<String>>(row, "source_ip")?
        .map(|s| {
            s.parse::<IpAddr>().map_err(|_| {
                bad_column(
                    "audit_events.source_ip",
                    format!("{s:?} is not an IP address"),
                )
            })
        })
        .transpose()?;
    Ok(AuditEvent {
        id: get(row, "id")?,
        at: from_millis("audit_events.at", get(row, "at")?)?,
        actor: get(row, "actor")?,
        via: get(row, "via")?,
        subject: get(row, "subject")?,
        event: get(row, "event")?,
        method: get(row, "method")?,
        result,
        source_ip,
        detail: get(row, "detail")?,
    })
}

pub(crate) fn parse_permissions(text: &str) -> Result<Vec<Permission>> {
    text.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<Permission>().map_err(|_| {
                bad_column(
                    "portal_admins.permissions",
                    format!("{p:?} is not a permission"),
                )
            })
        })
        .collect()
}

pub(crate) async fn insert_audit(conn: &mut AnyConnection, ev: &NewAuditEvent) -> Result<i64> {
    let row = sqlx::query(
        "INSERT INTO audit_events (at, actor, via, subject, subject_key, event, method, result, source_ip, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
    )
    .bind(unix_millis(ev.at)?)
    .bind(&ev.actor)
    .bind(ev.via.as_deref())
    .bind(ev.subject.as_deref())
    .bind(ev.subject.as_deref().map(username_key))
    .bind(&ev.event)
    .bind(ev.method.as_deref())
    .bind(ev.result.as_str())
    .bind(ev.source_ip.map(|ip| ip.to_string()))
    .bind(ev.detail.as_deref())
    .fetch_one(&mut *conn)
    .await
    .map_err(db_err)?;
    get(&row, "id")
}

/// Replaces the user's groups; names that differ only in case count once.
async fn write_groups(conn: &mut AnyConnection, id: UserId, groups: &[String]) -> Result<()> {
    sqlx::query("DELETE FROM user_groups WHERE user_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    let mut seen: Vec<String> = Vec::with_capacity(groups.len());
    for name in groups {
        let key = group_key(name);
        if seen.contains(&key) {
            continue;
        }
        sqlx::query("INSERT INTO user_groups (user_id, group_name, group_key) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(name.trim())
            .bind(&key)
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
        seen.push(key);
    }
    Ok(())
}

pub(crate) async fn load_user(conn: &mut AnyConnection, id: UserId) -> Result<Option<User>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
    let Some(row) = sqlx::query(&sql)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?
    else {
        return Ok(None);
    };
    let mut users = vec![user_from_row(&row)?];
    attach_groups(conn, &mut users).await?;
    Ok(users.pop())
}

/// Fills in `groups` for a page of users with one query.
async fn attach_groups(conn: &mut AnyConnection, users: &mut [User]) -> Result<()> {
    if users.is_empty() {
        return Ok(());
    }
    let placeholders = (1..=users.len())
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT user_id, group_name FROM user_groups WHERE user_id IN ({placeholders}) \
         ORDER BY user_id, group_key"
    );
    let mut query = sqlx::query(&sql);
    for u in users.iter() {
        query = query.bind(u.id);
    }
    let rows = query.fetch_all(&mut *conn).await.map_err(db_err)?;
    let mut by_user: HashMap<UserId, Vec<String>> = HashMap::new();
    for row in &rows {
        by_user
            .entry(get(row, "user_id")?)
            .or_default()
            .push(get(row, "group_name")?);
    }
    for u in users.iter_mut() {
        u.groups = by_user.remove(&u.id).unwrap_or_default();
    }
    Ok(())
}

pub(crate) async fn user_exists(conn: &mut AnyConnection, id: UserId) -> Result<bool> {
    Ok(sqlx::query("SELECT 1 FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?
        .is_some())
}

pub(crate) fn count(row: &AnyRow) -> Result<u64> {
    let n: i64 = row.try_get(0).map_err(|e| bad_column("count", e))?;
    u64::try_from(n).map_err(|e| bad_column("count", e))
}

impl SqlStore {
    /// Starts a write transaction. SQLite takes the write lock up front
    /// (`BEGIN IMMEDIATE`): a deferred transaction that reads and then writes
    /// fails at once with SQLITE_BUSY when another writer got in between,
    /// instead of waiting out the busy timeout.
    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Any>> {
        match self.backend {
            Backend::Sqlite { .. } => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
        .map_err(db_err)
    }

    pub(crate) async fn acquire(&self) -> Result<sqlx::pool::PoolConnection<Any>> {
        self.pool.acquire().await.map_err(db_err)
    }
}

pub(crate) async fn commit(tx: Transaction<'static, Any>) -> Result<()> {
    tx.commit().await.map_err(db_err)
}

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> &'static str {
        SqlStore::backend(self)
    }

    async fn ping(&self) -> Result<()> {
        SqlStore::ping(self).await
    }

    async fn create_user(&self, user: &NewUser, audit: &NewAuditEvent) -> Result<User> {
        let now = unix_seconds(audit.at);
        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO users (username, username_key, display_name, email, language, enabled, \
             fraud_blocked, password_hash, created_at, updated_at, version) \
             VALUES ($1, $2, $3, $4, $5, 1, 0, $6, $7, $7, 1) RETURNING id",
        )
        .bind(&user.username)
        .bind(username_key(&user.username))
        .bind(user.display_name.as_deref())
        .bind(user.email.as_deref())
        .bind(user.language.as_deref())
        .bind(user.password_hash.as_deref())
        .bind(now)
        .fetch_one(&mut *tx)
        .await;
        let row = match inserted {
            Ok(row) => row,
            // Dropping `tx` rolls back: a refused create leaves no trace here;
            // the engine records the refusal itself.
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                return Err(Error::conflict(
                    ConflictReason::Exists,
                    format!("user {} already exists", user.username),
                ))
            }
            Err(e) => return Err(db_err(e)),
        };
        let id: UserId = get(&row, "id")?;
        write_groups(&mut tx, id, &user.groups).await?;
        insert_audit(&mut tx, audit).await?;
        let created = load_user(&mut tx, id)
            .await?
            .ok_or_else(|| Error::Internal("created user vanished".into()))?;
        commit(tx).await?;
        Ok(created)
    }

    async fn find_user(&self, username: &str) -> Result<Option<User>> {
        let mut conn = self.acquire().await?;
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username_key = $1");
        let Some(row) = sqlx::query(&sql)
            .bind(username_key(username))
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_err)?
        else {
            return Ok(None);
        };
        let mut users = vec![user_from_row(&row)?];
        attach_groups(&mut conn, &mut users).await?;
        Ok(users.pop())
    }

    async fn list_users(&self, query: &UserQuery) -> Result<Vec<User>> {
        let mut clauses: Vec<String> = Vec::new();
        let mut binds: Vec<String> = Vec::new();
        if let Some(prefix) = query.prefix.as_deref().map(username_key) {
            if !prefix.is_empty() {
                // The range lets both databases seek in the username_key
                // index; LIKE (with the wildcards escaped) does the matching.
                binds.push(prefix.clone());
                clauses.push(format!("u.username_key >= ${}", binds.len()));
                binds.push(like_prefix(&prefix));
                clauses.push(format!(r"u.username_key LIKE ${} ESCAPE '\'", binds.len()));
            }
        }
        if let Some(group) = query.group.as_deref() {
            binds.push(group_key(group));
            clauses.push(format!(
                "EXISTS (SELECT 1 FROM user_groups g WHERE g.user_id = u.id AND g.group_key = ${})",
                binds.len()
            ));
        }
        if let Some(after) = query.after.as_deref() {
            binds.push(username_key(after));
            clauses.push(format!("u.username_key > ${}", binds.len()));
        }
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let columns = USER_COLUMNS
            .split(", ")
            .map(|c| format!("u.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {columns} FROM users u {filter} ORDER BY u.username_key LIMIT ${}",
            binds.len() + 1
        );
        let mut q = sqlx::query(&sql);
        for b in &binds {
            q = q.bind(b.as_str());
        }
        q = q.bind(limit(query.limit));

        let mut conn = self.acquire().await?;
        let rows = q.fetch_all(&mut *conn).await.map_err(db_err)?;
        let mut users = rows.iter().map(user_from_row).collect::<Result<Vec<_>>>()?;
        attach_groups(&mut conn, &mut users).await?;
        Ok(users)
    }

    async fn count_users(&self) -> Result<u64> {
        let row = sqlx::query("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        count(&row)
    }

    async fn update_user(&self, user: &User, audit: &NewAuditEvent) -> Result<User> {
        let mut tx = self.begin_write().await?;
        let (method, mode) = match user.default_method {
            Some(d) => (Some(d.method.as_str()), Some(d.mode.as_str())),
            None => (None, None),
        };
        let updated = sqlx::query(
            "UPDATE users SET display_name = $1, email = $2, language = $3, enabled = $4, \
             locked_until = $5, fraud_blocked = $6, default_method = $7, default_mode = $8, \
             updated_at = $9, version = version + 1, phone = $12, phone_extension = $13, \
             backup_phone = $14, mobile_phone = $15 \
             WHERE id = $10 AND version = $11",
        )
        .bind(user.display_name.as_deref())
        .bind(user.email.as_deref())
        .bind(user.language.as_deref())
        .bind(i64::from(user.enabled))
        .bind(user.locked_until.map(unix_seconds))
        .bind(i64::from(user.fraud_blocked))
        .bind(method)
        .bind(mode)
        .bind(unix_seconds(audit.at))
        .bind(user.id)
        .bind(user.version)
        .bind(user.phone.as_deref())
        .bind(user.phone_extension.as_deref())
        .bind(user.backup_phone.as_deref())
        .bind(user.mobile_phone.as_deref())
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if updated.rows_affected() == 0 {
            return Err(if user_exists(&mut tx, user.id).await? {
                Error::conflict(
                    ConflictReason::Concurrent,
                    "user was changed concurrently; reload and retry",
                )
            } else {
                Error::NotFound("user")
            });
        }
        write_groups(&mut tx, user.id, &user.groups).await?;
        insert_audit(&mut tx, audit).await?;
        let stored = load_user(&mut tx, user.id)
            .await?
            .ok_or(Error::NotFound("user"))?;
        commit(tx).await?;
        Ok(stored)
    }

    async fn delete_user(&self, id: UserId, audit: &NewAuditEvent) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let deleted = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if deleted.rows_affected() == 0 {
            // Nothing changed, so nothing to record alongside it.
            return Ok(false);
        }
        insert_audit(&mut tx, audit).await?;
        commit(tx).await?;
        Ok(true)
    }

    async fn password_hash(&self, id: UserId) -> Result<Option<String>> {
        let row = sqlx::query("SELECT password_hash FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .ok_or(Error::NotFound("user"))?;
        get(&row, "password_hash")
    }

    async fn set_password_hash(&self, id: UserId, hash: &str, audit: &NewAuditEvent) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let updated = sqlx::query(
            "UPDATE users SET password_hash = $1, updated_at = $2, version = version + 1 \
             WHERE id = $3",
        )
        .bind(hash)
        .bind(unix_seconds(audit.at))
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if updated.rows_affected() == 0 {
            return Err(Error::NotFound("user"));
        }
        insert_audit(&mut tx, audit).await?;
        commit(tx).await
    }

    async fn settings_rows(&self) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT key, value FROM settings ORDER BY key")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|r| Ok((get(r, "key")?, get(r, "value")?)))
            .collect()
    }

    async fn write_settings(
        &self,
        rows: &[(String, Option<String>)],
        audit: &NewAuditEvent,
    ) -> Result<()> {
        let now = unix_seconds(audit.at);
        let mut tx = self.begin_write().await?;
        for (key, value) in rows {
            match value {
                Some(value) => sqlx::query(
                    "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value, \
                     updated_at = excluded.updated_at",
                )
                .bind(key)
                .bind(value)
                .bind(now),
                None => sqlx::query("DELETE FROM settings WHERE key = $1").bind(key),
            }
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        insert_audit(&mut tx, audit).await?;
        commit(tx).await
    }

    async fn append_audit(&self, event: &NewAuditEvent) -> Result<i64> {
        let mut conn = self.acquire().await?;
        insert_audit(&mut conn, event).await
    }

    async fn audit_events(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>> {
        let mut clauses: Vec<String> = Vec::new();
        let mut n = 0;
        let mut next = || {
            n += 1;
            n
        };
        if query.before_id.is_some() {
            clauses.push(format!("id < ${}", next()));
        }
        if query.after_id.is_some() {
            clauses.push(format!("id > ${}", next()));
        }
        if query.subject.is_some() {
            clauses.push(format!("subject_key = ${}", next()));
        }
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_events {filter} ORDER BY id DESC LIMIT ${}",
            next()
        );
        let mut q = sqlx::query(&sql);
        if let Some(id) = query.before_id {
            q = q.bind(id);
        }
        if let Some(id) = query.after_id {
            q = q.bind(id);
        }
        if let Some(subject) = query.subject.as_deref() {
            q = q.bind(username_key(subject));
        }
        let rows = q
            .bind(limit(query.limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(audit_from_row).collect()
    }

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
        let mut tx = self.begin_write().await?;
        if !user_exists(&mut tx, user_id).await? {
            return Err(Error::NotFound("user"));
        }
        sqlx::query(
            "INSERT INTO portal_admins (user_id, permissions, scope_group, created_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id) DO UPDATE SET permissions = excluded.permissions, \
             scope_group = excluded.scope_group",
        )
        .bind(user_id)
        .bind(perms)
        .bind(scope_group.map(str::trim))
        .bind(unix_seconds(audit.at))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        insert_audit(&mut tx, audit).await?;
        commit(tx).await
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
        let mut tx = self.begin_write().await?;
        let deleted = sqlx::query("DELETE FROM portal_admins WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if deleted.rows_affected() == 0 {
            return Ok(false);
        }
        insert_audit(&mut tx, audit).await?;
        commit(tx).await?;
        Ok(true)
    }

    async fn count_admins(&self) -> Result<u64> {
        let row = sqlx::query("SELECT COUNT(*) FROM portal_admins")
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        count(&row)
    }

    async fn add_oath_token(
        &self,
        user_id: UserId,
        token: &NewOathToken,
        audit: &NewAuditEvent,
    ) -> Result<OathToken> {
        factors::add_oath_token(self, user_id, token, audit).await
    }

    async fn give_oath_token(
        &self,
        user_id: UserId,
        token: &NewOathToken,
        method: twofold_core::user::DefaultMethod,
        audit: &NewAuditEvent,
    ) -> Result<(OathToken, bool)> {
        factors::give_oath_token(self, user_id, token, method, audit).await
    }

    async fn oath_tokens(&self, user_id: UserId) -> Result<Vec<OathToken>> {
        factors::oath_tokens(self, user_id).await
    }

    async fn delete_oath_token(
        &self,
        user_id: UserId,
        token_id: i64,
        audit: &NewAuditEvent,
    ) -> Result<bool> {
        factors::delete_oath_token(self, user_id, token_id, audit).await
    }

    async fn advance_oath_counter(&self, token_id: i64, from: i64, to: i64) -> Result<bool> {
        factors::advance_oath_counter(self, token_id, from, to).await
    }

    async fn accept_code(
        &self,
        user_id: UserId,
        token_id: i64,
        from: i64,
        to: i64,
        audit: &NewAuditEvent,
    ) -> Result<bool> {
        factors::accept_code(self, user_id, token_id, from, to, audit).await
    }

    async fn create_challenge(
        &self,
        challenge: &twofold_core::challenge::NewChallenge,
        audit: &NewAuditEvent,
    ) -> Result<()> {
        crate::challenges::create(self, challenge, audit).await
    }

    async fn challenge(&self, id: &str) -> Result<Option<twofold_core::challenge::Challenge>> {
        crate::challenges::find(self, id).await
    }

    async fn finish_challenge(
        &self,
        id: &str,
        from: twofold_core::challenge::ChallengeState,
        to: twofold_core::challenge::ChallengeState,
        reason: Option<&str>,
        now: OffsetDateTime,
        audit: &NewAuditEvent,
    ) -> Result<bool> {
        crate::challenges::finish(self, id, from, to, reason, now, audit).await
    }

    async fn count_attempt(&self, id: &str) -> Result<u32> {
        crate::challenges::count_attempt(self, id).await
    }

    async fn purge_challenges(&self, before: OffsetDateTime) -> Result<u64> {
        crate::challenges::purge(self, before).await
    }

    async fn pin(&self, user_id: UserId) -> Result<Option<PinRecord>> {
        factors::pin(self, user_id).await
    }

    async fn pin_history(&self, user_id: UserId) -> Result<Vec<String>> {
        factors::pin_history(self, user_id).await
    }

    async fn set_pin(
        &self,
        user_id: UserId,
        hash: &str,
        set_at: OffsetDateTime,
        keep_history: u32,
        audit: &NewAuditEvent,
    ) -> Result<()> {
        factors::set_pin(self, user_id, hash, set_at, keep_history, audit).await
    }

    async fn add_question(
        &self,
        language: &str,
        text: &str,
        audit: &NewAuditEvent,
    ) -> Result<SecurityQuestion> {
        factors::add_question(self, language, text, audit).await
    }

    async fn questions(&self, language: Option<&str>) -> Result<Vec<SecurityQuestion>> {
        factors::questions(self, language).await
    }

    async fn delete_question(&self, id: i64, audit: &NewAuditEvent) -> Result<bool> {
        factors::delete_question(self, id, audit).await
    }

    async fn answers(&self, user_id: UserId) -> Result<Vec<StoredAnswer>> {
        factors::answers(self, user_id).await
    }

    async fn set_answers(
        &self,
        user_id: UserId,
        answers: &[(i64, String)],
        audit: &NewAuditEvent,
    ) -> Result<()> {
        factors::set_answers(self, user_id, answers, audit).await
    }

    async fn set_bypass(
        &self,
        user_id: UserId,
        until: Option<OffsetDateTime>,
        audit: &NewAuditEvent,
    ) -> Result<()> {
        factors::set_bypass(self, user_id, until, audit).await
    }

    async fn consume_bypass(
        &self,
        user_id: UserId,
        now: OffsetDateTime,
        audit: &NewAuditEvent,
    ) -> Result<bool> {
        factors::consume_bypass(self, user_id, now, audit).await
    }

    async fn bypass_until(&self, user_id: UserId) -> Result<Option<OffsetDateTime>> {
        factors::bypass_until(self, user_id).await
    }

    async fn record_denial(
        &self,
        user_id: UserId,
        now: OffsetDateTime,
        policy: &DenialPolicy,
    ) -> Result<DenialOutcome> {
        factors::record_denial(self, user_id, now, policy).await
    }

    async fn clear_denials(&self, user_id: UserId) -> Result<()> {
        factors::clear_denials(self, user_id).await
    }

    async fn complete_enrollment(
        &self,
        user_id: UserId,
        enrollment: &Enrollment,
        audit: &NewAuditEvent,
    ) -> Result<User> {
        factors::complete_enrollment(self, user_id, enrollment, audit).await
    }

    async fn session_put(&self, session: &SessionRecord) -> Result<()> {
        factors::session_put(self, session).await
    }

    async fn session_get(
        &self,
        id_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<SessionRecord>> {
        factors::session_get(self, id_hash, now).await
    }

    async fn session_delete(&self, id_hash: &str) -> Result<()> {
        factors::session_delete(self, id_hash).await
    }

    async fn session_purge(&self, now: OffsetDateTime) -> Result<u64> {
        factors::session_purge(self, now).await
    }

    async fn create_service_account(
        &self,
        name: &str,
        secret_hash: &str,
        spec: &twofold_core::service::ServiceAccountSpec,
        audit: &NewAuditEvent,
    ) -> Result<ServiceAccount> {
        accounts::create(self, name, secret_hash, spec, audit).await
    }

    async fn service_account(&self, name: &str) -> Result<Option<(ServiceAccount, String)>> {
        accounts::find(self, name).await
    }

    async fn service_accounts(&self) -> Result<Vec<ServiceAccount>> {
        accounts::list(self).await
    }

    async fn rotate_service_account(
        &self,
        name: &str,
        secret_hash: &str,
        audit: &NewAuditEvent,
    ) -> Result<bool> {
        accounts::rotate(self, name, secret_hash, audit).await
    }

    async fn delete_service_account(&self, name: &str, audit: &NewAuditEvent) -> Result<bool> {
        accounts::delete(self, name, audit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_are_literal() {
        assert_eq!(like_prefix("a_b%c\\"), r"a\_b\%c\\%");
        assert_eq!(like_prefix(""), "%");
    }

    #[test]
    fn limits() {
        assert_eq!(limit(0), 100);
        assert_eq!(limit(5), 5);
        assert_eq!(limit(5000), 1000);
    }

    #[test]
    fn permissions_text() {
        assert_eq!(
            parse_permissions("add_users, view_audit_log").unwrap(),
            vec![Permission::AddUsers, Permission::ViewAuditLog]
        );
        assert!(parse_permissions("").unwrap().is_empty());
        let err = parse_permissions("add_users,fly").unwrap_err().to_string();
        assert!(err.contains("portal_admins.permissions"), "{err}");
    }
}
