//! Bench-only bulk loading: users with an enrolled OATH token, and audit
//! rows, many per statement and thousands per transaction, for measuring
//! Twofold at a million users and ten million audit events
//! (`twofold-bench seed`, `scripts/bench-scale.sh`, `scripts/bench-audit.sh`).
//!
//! Not on the `Store` trait: nothing but the benchmarks calls it, and it
//! writes no audit row of its own. The rows it writes are the rows the
//! normal paths write — `create_user` then `give_oath_token` — column for
//! column: the user enabled, not blocked, version 2 (created, then touched
//! by the token), `username_key` from `validate::username_key`, default
//! method `oath_token:oath`; the token sealed with the real sealing key
//! under `oath_seed_label(user id)`, counter 0 (HOTP) or `i64::MIN` (TOTP,
//! no step used yet) as `add_oath_token` sets it. The engine then validates
//! these users like any other.

use std::collections::HashMap;
use std::fmt::Write as _;

use time::OffsetDateTime;
use twofold_core::audit::ResultCode;
use twofold_core::factors::{oath_seed_label, OathKind, OathParams};
use twofold_core::sealing::SealingKey;
use twofold_core::validate::{self, username_key};
use twofold_core::{Error, Result};

use crate::errors::db_err;
use crate::rows::{get, unix_millis, unix_seconds};
use crate::store::commit;
use crate::tokens::{algorithm_str, kind_str};
use crate::SqlStore;

/// Rows per `INSERT … VALUES` statement: two bound values per row stays
/// far below SQLite's 32,766 and PostgreSQL's 65,535 parameters.
const ROWS_PER_STATEMENT: usize = 1000;
/// The most users one `seed_users` call (one transaction) takes.
const MAX_SEED_BATCH: usize = 50_000;
/// The label of every seeded token.
const TOKEN_LABEL: &str = "bench seed";

impl SqlStore {
    /// Inserts `users` — (username, raw OATH seed) — in one write
    /// transaction, at most 50,000 per call, each with one OATH token of
    /// `params` sealed with `sealing`, and default method `oath_token:oath`.
    /// Fails (and inserts nothing) when a name is invalid or taken. Returns
    /// how many users were inserted.
    pub async fn seed_users(
        &self,
        sealing: &SealingKey,
        params: OathParams,
        users: &[(String, Vec<u8>)],
        at: OffsetDateTime,
    ) -> Result<u64> {
        if users.len() > MAX_SEED_BATCH {
            return Err(Error::invalid(
                "users",
                format!("at most {MAX_SEED_BATCH} per call"),
            ));
        }
        let mut named = Vec::with_capacity(users.len());
        for (username, secret) in users {
            let name = validate::username(username)?;
            let key = username_key(&name);
            named.push((name, key, secret));
        }
        let now = unix_seconds(at);
        let method = twofold_core::methods::oath::DEFAULT;
        let counter = if params.kind == OathKind::Totp {
            i64::MIN
        } else {
            0
        };
        let mut tx = self.begin_write().await?;
        for chunk in named.chunks(ROWS_PER_STATEMENT) {
            // $1 created/updated, $2 method, $3 mode; then name and key per row.
            let mut sql = String::from(
                "INSERT INTO users (username, username_key, enabled, fraud_blocked, \
                 created_at, updated_at, version, default_method, default_mode) VALUES ",
            );
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push(',');
                }
                let n = 4 + 2 * i;
                // Writing to a String cannot fail.
                let _ = write!(sql, "(${n}, ${}, 1, 0, $1, $1, 2, $2, $3)", n + 1);
            }
            sql.push_str(" RETURNING id, username_key");
            let mut q = sqlx::query(&sql)
                .bind(now)
                .bind(method.method.as_str())
                .bind(method.mode.as_str());
            for (name, key, _) in chunk {
                q = q.bind(name.as_str()).bind(key.as_str());
            }
            let rows = match q.fetch_all(&mut *tx).await {
                Ok(rows) => rows,
                Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                    return Err(Error::invalid(
                        "users",
                        format!("a seeded username is taken already: {}", db.message()),
                    ))
                }
                Err(e) => return Err(db_err(e)),
            };
            let mut ids: HashMap<String, i64> = HashMap::with_capacity(rows.len());
            for row in &rows {
                ids.insert(get(row, "username_key")?, get(row, "id")?);
            }

            // $1 label, $2 kind, $3 algorithm, $4 digits, $5 period,
            // $6 counter, $7 created_at; then user id and sealed seed per row.
            let mut sql = String::from(
                "INSERT INTO oath_tokens (user_id, label, kind, algorithm, digits, period, \
                 sealed_secret, counter, created_at) VALUES ",
            );
            let mut sealed = Vec::with_capacity(chunk.len());
            for (i, (_, key, secret)) in chunk.iter().enumerate() {
                let id = *ids
                    .get(key)
                    .ok_or_else(|| Error::Internal(format!("seeded user {key} has no id")))?;
                sealed.push((id, sealing.seal(secret, &oath_seed_label(id))?));
                if i > 0 {
                    sql.push(',');
                }
                let n = 8 + 2 * i;
                let _ = write!(sql, "(${n}, $1, $2, $3, $4, $5, ${}, $6, $7)", n + 1);
            }
            let mut q = sqlx::query(&sql)
                .bind(TOKEN_LABEL)
                .bind(kind_str(params.kind))
                .bind(algorithm_str(params.algorithm))
                .bind(i64::from(params.digits))
                .bind(i64::from(params.period))
                .bind(counter)
                .bind(now);
            for (id, secret) in sealed {
                q = q.bind(id).bind(secret);
            }
            q.execute(&mut *tx).await.map_err(db_err)?;
        }
        commit(tx).await?;
        Ok(named.len() as u64)
    }

    /// Appends `count` audit rows numbered `first..first + count` in one
    /// statement (one transaction), generated by the database itself: row
    /// `i` is an `sdk.validate` by `sdk:bench` at `start + 10 ms × i`
    /// about `PREFIX-(i mod subjects)` (one in twenty `FAILED_USER_NOT_FOUND`,
    /// the rest `SUCCESS_PASSCODE`), from 127.0.0.1, as the validate path
    /// writes them. Returns the rows inserted.
    pub async fn seed_audit_events(
        &self,
        first: i64,
        count: i64,
        subjects: i64,
        subject_prefix: &str,
        start: OffsetDateTime,
    ) -> Result<u64> {
        if count <= 0 || subjects <= 0 || first < 0 {
            return Err(Error::invalid(
                "count",
                "count and subjects must be positive, first not negative",
            ));
        }
        let last = first
            .checked_add(count - 1)
            .ok_or_else(|| Error::invalid("count", "too large"))?;
        let select = "SELECT $3 + i * 10, 'sdk:bench', NULL, \
             $4 || (i % $5), $6 || (i % $5), 'sdk.validate', 'oath_token:oath', \
             CASE WHEN i % 20 = 0 THEN $7 ELSE $8 END, '127.0.0.1', NULL";
        let columns =
            "audit_events (at, actor, via, subject, subject_key, event, method, result, source_ip, detail)";
        let sql = if self.backend() == "postgres" {
            format!(
                "INSERT INTO {columns} {select} FROM generate_series($1::bigint, $2::bigint) AS g(i)"
            )
        } else {
            format!(
                "WITH RECURSIVE g(i) AS (SELECT $1 UNION ALL SELECT i + 1 FROM g WHERE i < $2) \
                 INSERT INTO {columns} {select} FROM g"
            )
        };
        let prefix = format!("{subject_prefix}-");
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(&sql)
            .bind(first)
            .bind(last)
            .bind(unix_millis(start)?)
            .bind(prefix.as_str())
            .bind(subjects)
            .bind(username_key(&prefix))
            .bind(ResultCode::FailedUserNotFound.as_str())
            .bind(ResultCode::SuccessPasscode.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        commit(tx).await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use twofold_core::audit::AuditQuery;
    use twofold_core::factors::OathAlgorithm;

    fn hotp() -> OathParams {
        OathParams {
            kind: OathKind::Hotp,
            algorithm: OathAlgorithm::Sha1,
            digits: 6,
            period: 30,
        }
    }

    #[tokio::test]
    async fn seeded_users_are_what_the_normal_paths_leave() {
        let store = SqlStore::connect("sqlite::memory:", 1).await.unwrap();
        let key = SealingKey::from_bytes(&[7; 32]);
        let users: Vec<(String, Vec<u8>)> = (0..2500)
            .map(|i| {
                (
                    format!("Seed-{i:07}"),
                    vec![u8::try_from(i % 251).unwrap(); 20],
                )
            })
            .collect();
        let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert_eq!(
            store.seed_users(&key, hotp(), &users, at).await.unwrap(),
            2500
        );
        for (name, secret) in [&users[0], &users[1999], &users[2499]] {
            // Found by any case, as `find_user` finds users.
            let user = store
                .find_user(&name.to_lowercase())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(&user.username, name);
            assert!(user.enabled);
            assert_eq!(
                user.default_method.map(|m| m.to_string()).as_deref(),
                Some("oath_token:oath")
            );
            let tokens = store.oath_tokens(user.id).await.unwrap();
            assert_eq!(tokens.len(), 1);
            assert_eq!(tokens[0].counter, 0);
            assert_eq!(tokens[0].params, hotp());
            let opened = key
                .open(&tokens[0].sealed_secret, &oath_seed_label(user.id))
                .unwrap();
            assert_eq!(opened.as_slice(), secret.as_slice());
        }
        // A taken name refuses the whole batch.
        let again = vec![
            ("fresh-1".to_string(), vec![1; 20]),
            ("seed-0000001".to_string(), vec![1; 20]),
        ];
        assert!(store.seed_users(&key, hotp(), &again, at).await.is_err());
        assert!(store.find_user("fresh-1").await.unwrap().is_none());
        assert_eq!(store.count_users().await.unwrap(), 2500);
    }

    #[tokio::test]
    async fn seeded_audit_rows_read_back() {
        let store = SqlStore::connect("sqlite::memory:", 1).await.unwrap();
        let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert_eq!(
            store
                .seed_audit_events(0, 1000, 10, "Who", at)
                .await
                .unwrap(),
            1000
        );
        assert_eq!(
            store
                .seed_audit_events(1000, 500, 10, "Who", at)
                .await
                .unwrap(),
            500
        );
        let newest = store
            .audit_events(&AuditQuery {
                limit: 5,
                subject: Some("who-3".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(newest.len(), 5);
        assert_eq!(newest[0].subject.as_deref(), Some("Who-3"));
        assert_eq!(newest[0].event, "sdk.validate");
        // Row 1493 (the last about who-3), 10 ms apart from the start.
        assert_eq!(newest[0].at, at + time::Duration::milliseconds(14_930));
        assert!(store.seed_audit_events(0, 0, 10, "who", at).await.is_err());
    }
}
