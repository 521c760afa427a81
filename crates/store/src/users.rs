//! `UserRepo` for `SqlStore`: users, their groups and password hash.

use std::collections::HashMap;

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use twofold_core::audit::NewAuditEvent;
use twofold_core::ports::{StatusFilter, UserQuery, UserRepo};
use twofold_core::user::{DefaultMethod, NewUser, User, UserId};
use twofold_core::validate::{self, username_key};
use twofold_core::{ConflictReason, Error, Result};

use crate::direct::sqlite_err;
use crate::errors::{bad_column, db_err};
use crate::held::held_read;
use crate::rows::{cell, count, flag, from_seconds, get, limit, unix_seconds, Cells};
use crate::SqlStore;

pub(crate) const USER_COLUMNS: &str =
    "id, username, display_name, email, language, enabled, locked_until, \
     fraud_blocked, default_method, default_mode, created_at, updated_at, version, \
     phone, phone_extension, backup_phone, mobile_phone";

pub(crate) fn group_key(name: &str) -> String {
    name.trim().to_lowercase()
}

/// `LIKE` pattern matching everything that starts with `prefix` literally.
/// `%text%` for LIKE, with LIKE's own wildcards escaped.
fn like_contains(text: &str) -> String {
    let mut out = String::from("%");
    out.push_str(&like_prefix(text));
    out
}

pub(crate) fn like_prefix(prefix: &str) -> String {
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

fn exists(username: &str) -> Error {
    Error::conflict(
        ConflictReason::Exists,
        format!("user {username} already exists"),
    )
}

/// The method and mode a row keeps in its `default_method` and
/// `default_mode` columns (users, sync items); `table` names it in errors.
pub(crate) fn default_method_of(row: &impl Cells, table: &str) -> Result<Option<DefaultMethod>> {
    let column = format!("{table}.default_method");
    match (
        cell::<Option<String>>(row, "default_method")?,
        cell::<Option<String>>(row, "default_mode")?,
    ) {
        (None, None) => Ok(None),
        (Some(method), Some(mode)) => Ok(Some(
            DefaultMethod::from_parts(&method, &mode).map_err(|e| bad_column(&column, e))?,
        )),
        _ => Err(bad_column(
            &column,
            "method and mode must both be set or both be empty",
        )),
    }
}

/// A user row without its groups.
pub(crate) fn user_from_row(row: &impl Cells) -> Result<User> {
    let default_method = default_method_of(row, "users")?;
    Ok(User {
        id: cell(row, "id")?,
        username: cell(row, "username")?,
        display_name: cell(row, "display_name")?,
        email: cell(row, "email")?,
        groups: Vec::new(),
        language: cell(row, "language")?,
        phone: cell(row, "phone")?,
        phone_extension: cell(row, "phone_extension")?,
        backup_phone: cell(row, "backup_phone")?,
        mobile_phone: cell(row, "mobile_phone")?,
        enabled: flag(row, "enabled")?,
        locked_until: cell::<Option<i64>>(row, "locked_until")?
            .map(|s| from_seconds("users.locked_until", s))
            .transpose()?,
        fraud_blocked: flag(row, "fraud_blocked")?,
        default_method,
        created_at: from_seconds("users.created_at", cell(row, "created_at")?)?,
        updated_at: from_seconds("users.updated_at", cell(row, "updated_at")?)?,
        version: cell(row, "version")?,
    })
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

/// The users sync item `item_id` added (`users.synced_by`, migration 0014),
/// with their groups, in username order.
pub(crate) async fn users_synced_by(conn: &mut AnyConnection, item_id: i64) -> Result<Vec<User>> {
    let sql =
        format!("SELECT {USER_COLUMNS} FROM users WHERE synced_by = $1 ORDER BY username_key");
    let rows = sqlx::query(&sql)
        .bind(item_id)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
    let mut users = rows.iter().map(user_from_row).collect::<Result<Vec<_>>>()?;
    attach_groups(conn, &mut users).await?;
    Ok(users)
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

/// The key users created before usernames were normalised (RFC 8265) got:
/// plain lower case. It differs from `username_key` only for names with
/// full-width or decomposed letters, or a final capital sigma; such rows
/// keep their key, so lookups and new names are checked against both.
pub(crate) fn legacy_username_key(name: &str) -> String {
    name.trim().to_lowercase()
}

async fn user_by_key(conn: &mut AnyConnection, key: &str) -> Result<Option<AnyRow>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username_key = $1");
    sqlx::query(&sql)
        .bind(key)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)
}

/// The user whose `username_key` is `key`, with their groups, in one
/// statement: every sign-in looks a user up, and each statement is a round
/// trip (to SQLite's worker thread, or to PostgreSQL).
async fn user_with_groups(conn: &mut AnyConnection, key: &str) -> Result<Option<User>> {
    let rows = sqlx::query(&user_with_groups_sql())
        .bind(key)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
    user_and_groups(&rows)
}

/// `user_with_groups` on SQLite's direct connections.
fn direct_user_with_groups(conn: &rusqlite::Connection, key: &str) -> Result<Option<User>> {
    let mut statement = conn
        .prepare_cached(&user_with_groups_sql())
        .map_err(sqlite_err)?;
    let mut rows = statement.query([key]).map_err(sqlite_err)?;
    let mut user: Option<User> = None;
    while let Some(row) = rows.next().map_err(sqlite_err)? {
        let found = match &mut user {
            Some(found) => found,
            None => user.insert(user_from_row(row)?),
        };
        found
            .groups
            .extend(cell::<Option<String>>(row, "group_name")?);
    }
    Ok(user)
}

fn user_with_groups_sql() -> String {
    format!(
        "SELECT u.*, g.group_name FROM (SELECT {USER_COLUMNS} FROM users WHERE username_key = $1) u \
         LEFT JOIN user_groups g ON g.user_id = u.id ORDER BY g.group_key"
    )
}

/// The user of `user_with_groups`'s rows (one per group, or one without).
fn user_and_groups(rows: &[AnyRow]) -> Result<Option<User>> {
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let mut user = user_from_row(first)?;
    user.groups = rows
        .iter()
        .map(|row| get::<Option<String>>(row, "group_name"))
        .filter_map(Result::transpose)
        .collect::<Result<_>>()?;
    Ok(Some(user))
}

pub(crate) async fn user_exists(conn: &mut AnyConnection, id: UserId) -> Result<bool> {
    Ok(sqlx::query("SELECT 1 FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?
        .is_some())
}

#[async_trait]
impl UserRepo for SqlStore {
    async fn create_user(&self, user: &NewUser, audit: &NewAuditEvent) -> Result<User> {
        let now = unix_seconds(audit.at);
        let mut tx = self.write(audit).await?;
        let key = username_key(&user.username);
        let legacy = legacy_username_key(&user.username);
        if legacy != key && user_by_key(&mut tx, &legacy).await?.is_some() {
            return Err(exists(&user.username));
        }
        let (method, mode) = match user.default_method {
            Some(d) => (Some(d.method.as_str()), Some(d.mode.as_str())),
            None => (None, None),
        };
        let inserted = sqlx::query(
            "INSERT INTO users (username, username_key, display_name, email, language, enabled, \
             fraud_blocked, password_hash, created_at, updated_at, version, phone, \
             phone_extension, backup_phone, mobile_phone, default_method, default_mode, \
             synced_by) \
             VALUES ($1, $2, $3, $4, $5, 1, 0, $6, $7, $7, 1, $8, $9, $10, $11, $12, $13, $14) \
             RETURNING id",
        )
        .bind(&user.username)
        .bind(&key)
        .bind(user.display_name.as_deref())
        .bind(user.email.as_deref())
        .bind(user.language.as_deref())
        .bind(user.password_hash.as_deref())
        .bind(now)
        .bind(user.phone.as_deref())
        .bind(user.phone_extension.as_deref())
        .bind(user.backup_phone.as_deref())
        .bind(user.mobile_phone.as_deref())
        .bind(method)
        .bind(mode)
        .bind(user.synced_by)
        .fetch_one(&mut *tx)
        .await;
        let row = match inserted {
            Ok(row) => row,
            // Dropping `tx` rolls back: a refused create leaves no trace here;
            // the engine records the refusal itself.
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                return Err(exists(&user.username))
            }
            Err(e) => return Err(db_err(e)),
        };
        let id: UserId = get(&row, "id")?;
        write_groups(&mut tx, id, &user.groups).await?;
        let created = load_user(&mut tx, id)
            .await?
            .ok_or_else(|| Error::Internal("created user vanished".into()))?;
        tx.commit().await?;
        Ok(created)
    }

    async fn find_user(&self, username: &str) -> Result<Option<User>> {
        // The engine refuses these first; this keeps PostgreSQL (which
        // cannot even store NUL) from answering differently than SQLite.
        validate::identifier("username", username)?;
        let key = username_key(username);
        let legacy = legacy_username_key(username);
        if let Some(direct) = &self.direct {
            return direct.read(|conn| {
                let user = direct_user_with_groups(conn, &key)?;
                if user.is_none() && legacy != key {
                    return direct_user_with_groups(conn, &legacy);
                }
                Ok(user)
            });
        }
        if let Some(held) = self.held.as_deref() {
            let sql = user_with_groups_sql();
            let rows = held_read!(held, |conn| sqlx::query(&sql)
                .bind(&key)
                .fetch_all(&mut *conn)
                .await)?;
            let user = user_and_groups(&rows)?;
            if user.is_some() || legacy == key {
                return Ok(user);
            }
            let rows = held_read!(held, |conn| sqlx::query(&sql)
                .bind(&legacy)
                .fetch_all(&mut *conn)
                .await)?;
            return user_and_groups(&rows);
        }
        let mut conn = self.acquire().await?;
        let mut user = user_with_groups(&mut conn, &key).await?;
        if user.is_none() && legacy != key {
            user = user_with_groups(&mut conn, &legacy).await?;
        }
        Ok(user)
    }

    async fn list_users(&self, query: &UserQuery) -> Result<Vec<User>> {
        validate::user_query(query)?;
        let mut clauses: Vec<String> = Vec::new();
        let mut binds: Vec<String> = Vec::new();
        // Times are bound as numbers (PostgreSQL will not compare a
        // BIGINT with text); they come after the text binds.
        let mut times: Vec<i64> = Vec::new();
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
        if let Some(text) = query
            .text
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            binds.push(like_contains(&text.to_lowercase()));
            let n = binds.len();
            let mut any = vec![
                format!(r"LOWER(COALESCE(u.display_name, '')) LIKE ${n} ESCAPE '\'"),
                format!(r"LOWER(COALESCE(u.email, '')) LIKE ${n} ESCAPE '\'"),
            ];
            // Phones are stored as +31207948261: match the digits typed,
            // however they were spaced.
            let digits: String = text.chars().filter(char::is_ascii_digit).collect();
            if !digits.is_empty() {
                binds.push(like_contains(&digits));
                let d = binds.len();
                for column in ["phone", "backup_phone", "mobile_phone"] {
                    any.push(format!(r"COALESCE(u.{column}, '') LIKE ${d} ESCAPE '\'"));
                }
            }
            clauses.push(format!("({})", any.join(" OR ")));
        }
        let texts = binds.len();
        let time_bind = |times: &mut Vec<i64>, at: time::OffsetDateTime| {
            times.push(unix_seconds(at));
            texts + times.len()
        };
        match query.status {
            None => {}
            Some(StatusFilter::Disabled) => clauses.push("u.enabled = 0".into()),
            Some(StatusFilter::Blocked) => clauses.push("u.fraud_blocked = 1".into()),
            Some(StatusFilter::Locked(now)) => {
                let n = time_bind(&mut times, now);
                clauses.push(format!("u.locked_until > ${n}"));
            }
            Some(StatusFilter::Enabled(now)) => {
                let n = time_bind(&mut times, now);
                clauses.push(format!(
                    "u.enabled = 1 AND u.fraud_blocked = 0 AND (u.locked_until IS NULL OR u.locked_until <= ${n})"
                ));
            }
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
            binds.len() + times.len() + 1
        );
        let mut q = sqlx::query(&sql);
        for b in &binds {
            q = q.bind(b.as_str());
        }
        for t in &times {
            q = q.bind(*t);
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
        let mut tx = self.write(audit).await?;
        let (method, mode) = match user.default_method {
            Some(d) => (Some(d.method.as_str()), Some(d.mode.as_str())),
            None => (None, None),
        };
        if user.locked_until.is_none() {
            // Clearing a lock (an administrator's unblock) clears the
            // guessing records that led to it, or the next failure would
            // lock the user again at once.
            let clear = sqlx::query(
                "DELETE FROM secret_failures WHERE user_id = $1 AND EXISTS \
                 (SELECT 1 FROM users WHERE id = $1 AND version = $2 AND locked_until IS NOT NULL)",
            )
            .bind(user.id)
            .bind(user.version);
            tx.execute(clear).await?;
        }
        let update = sqlx::query(
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
        .bind(user.mobile_phone.as_deref());
        if tx.execute(update).await? == 0 {
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
        let stored = load_user(&mut tx, user.id)
            .await?
            .ok_or(Error::NotFound("user"))?;
        tx.commit().await?;
        Ok(stored)
    }

    async fn delete_user(&self, id: UserId, audit: &NewAuditEvent) -> Result<bool> {
        // Nothing deleted: nothing changed, so nothing to record alongside it.
        self.write_if_changed(
            sqlx::query("DELETE FROM users WHERE id = $1").bind(id),
            audit,
        )
        .await
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
        self.write_existing(
            sqlx::query(
                "UPDATE users SET password_hash = $1, updated_at = $2, version = version + 1 \
                 WHERE id = $3",
            )
            .bind(hash)
            .bind(unix_seconds(audit.at))
            .bind(id),
            "user",
            audit,
        )
        .await
    }

    async fn rehash_password(&self, id: UserId, old: &str, new: &str) -> Result<bool> {
        // One statement, and neither `version` nor `updated_at`: the password
        // is the same, and an administrator's edit in flight must not fail
        // over a hash it never sees.
        let updated =
            sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2 AND password_hash = $3")
                .bind(new)
                .bind(id)
                .bind(old)
                .execute(&self.pool)
                .await
                .map_err(db_err)?;
        Ok(updated.rows_affected() == 1)
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
}
