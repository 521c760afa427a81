//! The second half of `Store` for `SqlStore`: OATH tokens, the PIN and its
//! history, security questions and answers, one-time bypass, denial counters,
//! enrollment and portal sessions. The trait impl in `store.rs` delegates here.
//!
//! Version rule: writes that change what a user signs in with (tokens, PIN,
//! answers, enrollment) bump `users.version` and `updated_at` like a password
//! change does. Bypass, denial counting, counters and sessions do not: they
//! happen during sign-ins and must not make an administrator's open edit
//! stale. The one exception is a denial that *locks*: it changes
//! `locked_until`, a `User` field that `update_user` writes, so it bumps the
//! version too — otherwise an edit based on the user as loaded before the
//! lock would silently lift it again.

use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use time::macros::datetime;
use time::OffsetDateTime;
use twofold_core::audit::NewAuditEvent;
use twofold_core::factors::{
    DenialOutcome, DenialPolicy, Enrollment, NewOathToken, OathAlgorithm, OathKind, OathParams,
    OathToken, PinRecord, SecurityQuestion, SessionRecord, StoredAnswer,
};
use twofold_core::user::{DefaultMethod, User, UserId};
use twofold_core::{ConflictReason, Error, Result};

use crate::errors::{bad_column, db_err};
use crate::store::{commit, from_seconds, get, insert_audit, load_user, unix_seconds, user_exists};
use crate::SqlStore;

/// `locked_until` written when a denial locks a user and the policy has no
/// `lock_seconds`: a date so far away that it means "until an administrator
/// unblocks". Unblocking is clearing `locked_until` (`update_user`).
pub const LOCKED_UNTIL_UNBLOCKED: OffsetDateTime = datetime!(9999-12-31 00:00 UTC);

const TOKEN_COLUMNS: &str =
    "id, user_id, label, kind, algorithm, digits, period, sealed_secret, counter, created_at";

fn kind_str(kind: OathKind) -> &'static str {
    match kind {
        OathKind::Totp => "totp",
        OathKind::Hotp => "hotp",
    }
}

fn algorithm_str(algorithm: OathAlgorithm) -> &'static str {
    match algorithm {
        OathAlgorithm::Sha1 => "sha1",
        OathAlgorithm::Sha256 => "sha256",
        OathAlgorithm::Sha512 => "sha512",
    }
}

fn small(row: &AnyRow, column: &str) -> Result<u32> {
    let n: i64 = get(row, column)?;
    u32::try_from(n).map_err(|e| bad_column(column, e))
}

fn token_from_row(row: &AnyRow) -> Result<OathToken> {
    let kind = match get::<String>(row, "kind")?.as_str() {
        "totp" => OathKind::Totp,
        "hotp" => OathKind::Hotp,
        other => {
            return Err(bad_column(
                "oath_tokens.kind",
                format!("{other:?} is not a token kind"),
            ))
        }
    };
    let algorithm = match get::<String>(row, "algorithm")?.as_str() {
        "sha1" => OathAlgorithm::Sha1,
        "sha256" => OathAlgorithm::Sha256,
        "sha512" => OathAlgorithm::Sha512,
        other => {
            return Err(bad_column(
                "oath_tokens.algorithm",
                format!("{other:?} is not an algorithm"),
            ))
        }
    };
    Ok(OathToken {
        id: get(row, "id")?,
        user_id: get(row, "user_id")?,
        label: get(row, "label")?,
        params: OathParams {
            kind,
            algorithm,
            digits: small(row, "digits")?,
            period: small(row, "period")?,
        },
        sealed_secret: get(row, "sealed_secret")?,
        counter: get(row, "counter")?,
        created_at: from_seconds("oath_tokens.created_at", get(row, "created_at")?)?,
    })
}

/// Marks a credential change on the user row (version and `updated_at`);
/// `NotFound` when there is no such user. Doing it first also takes the
/// row's lock on PostgreSQL, so writes for one user queue up behind it.
async fn touch_user(conn: &mut AnyConnection, user_id: UserId, at: OffsetDateTime) -> Result<()> {
    let updated =
        sqlx::query("UPDATE users SET updated_at = $1, version = version + 1 WHERE id = $2")
            .bind(unix_seconds(at))
            .bind(user_id)
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
    if updated.rows_affected() == 0 {
        return Err(Error::NotFound("user"));
    }
    Ok(())
}

async fn insert_token(
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

/// Makes `hash` the current PIN; the previous one (if any) moves to the
/// history, which is then trimmed to the newest `keep_history` entries
/// (`None`: not trimmed).
async fn write_pin(
    conn: &mut AnyConnection,
    user_id: UserId,
    hash: &str,
    set_at: OffsetDateTime,
    keep_history: Option<u32>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO pin_history (user_id, hash, set_at) \
         SELECT user_id, hash, set_at FROM user_pins WHERE user_id = $1",
    )
    .bind(user_id)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    sqlx::query(
        "INSERT INTO user_pins (user_id, hash, set_at) VALUES ($1, $2, $3) \
         ON CONFLICT (user_id) DO UPDATE SET hash = excluded.hash, set_at = excluded.set_at",
    )
    .bind(user_id)
    .bind(hash)
    .bind(unix_seconds(set_at))
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    if let Some(keep) = keep_history {
        sqlx::query(
            "DELETE FROM pin_history WHERE user_id = $1 AND id NOT IN \
             (SELECT id FROM pin_history WHERE user_id = $1 ORDER BY id DESC LIMIT $2)",
        )
        .bind(user_id)
        .bind(i64::from(keep))
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    }
    Ok(())
}

/// Replaces all of the user's answers. A question answered twice is
/// `InvalidInput`, an unknown question `NotFound("question")`.
async fn write_answers(
    conn: &mut AnyConnection,
    user_id: UserId,
    answers: &[(i64, String)],
) -> Result<()> {
    for (i, (question_id, _)) in answers.iter().enumerate() {
        if answers[..i].iter().any(|(q, _)| q == question_id) {
            return Err(Error::invalid(
                "answers",
                format!("question {question_id} is answered more than once"),
            ));
        }
    }
    sqlx::query("DELETE FROM user_answers WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    for (question_id, hash) in answers {
        let known = sqlx::query("SELECT 1 FROM security_questions WHERE id = $1")
            .bind(*question_id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_err)?
            .is_some();
        if !known {
            return Err(Error::NotFound("question"));
        }
        sqlx::query("INSERT INTO user_answers (user_id, question_id, hash) VALUES ($1, $2, $3)")
            .bind(user_id)
            .bind(*question_id)
            .bind(hash)
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
    }
    Ok(())
}

/// Uniqueness key of a question's text: the same question in another case
/// (or with stray spaces) is the same question.
fn question_key(text: &str) -> String {
    text.trim().to_lowercase()
}

// --- OATH tokens --------------------------------------------------------------

pub(crate) async fn add_oath_token(
    store: &SqlStore,
    user_id: UserId,
    token: &NewOathToken,
    audit: &NewAuditEvent,
) -> Result<OathToken> {
    let mut tx = store.begin_write().await?;
    touch_user(&mut tx, user_id, audit.at).await?;
    let stored = insert_token(&mut tx, user_id, token, audit.at).await?;
    insert_audit(&mut tx, audit).await?;
    commit(tx).await?;
    Ok(stored)
}

pub(crate) async fn give_oath_token(
    store: &SqlStore,
    user_id: UserId,
    token: &NewOathToken,
    method: DefaultMethod,
    audit: &NewAuditEvent,
) -> Result<(OathToken, bool)> {
    let mut tx = store.begin_write().await?;
    touch_user(&mut tx, user_id, audit.at).await?;
    let stored = insert_token(&mut tx, user_id, token, audit.at).await?;
    let set = sqlx::query(
        "UPDATE users SET default_method = $1, default_mode = $2 \
         WHERE id = $3 AND default_method IS NULL",
    )
    .bind(method.method.as_str())
    .bind(method.mode.as_str())
    .bind(user_id)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?
    .rows_affected()
        == 1;
    insert_audit(&mut tx, audit).await?;
    commit(tx).await?;
    Ok((stored, set))
}

pub(crate) async fn oath_tokens(store: &SqlStore, user_id: UserId) -> Result<Vec<OathToken>> {
    let sql = format!("SELECT {TOKEN_COLUMNS} FROM oath_tokens WHERE user_id = $1 ORDER BY id");
    let rows = sqlx::query(&sql)
        .bind(user_id)
        .fetch_all(&store.pool)
        .await
        .map_err(db_err)?;
    rows.iter().map(token_from_row).collect()
}

pub(crate) async fn delete_oath_token(
    store: &SqlStore,
    user_id: UserId,
    token_id: i64,
    audit: &NewAuditEvent,
) -> Result<bool> {
    let mut tx = store.begin_write().await?;
    let deleted = sqlx::query("DELETE FROM oath_tokens WHERE id = $1 AND user_id = $2")
        .bind(token_id)
        .bind(user_id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    if deleted.rows_affected() == 0 {
        return Ok(false);
    }
    touch_user(&mut tx, user_id, audit.at).await?;
    insert_audit(&mut tx, audit).await?;
    commit(tx).await?;
    Ok(true)
}

pub(crate) async fn advance_oath_counter(
    store: &SqlStore,
    token_id: i64,
    from: i64,
    to: i64,
) -> Result<bool> {
    // One statement: the database decides which of two racing callers still
    // sees `from`; the loser updates nothing.
    let updated = sqlx::query("UPDATE oath_tokens SET counter = $1 WHERE id = $2 AND counter = $3")
        .bind(to)
        .bind(token_id)
        .bind(from)
        .execute(&store.pool)
        .await
        .map_err(db_err)?;
    Ok(updated.rows_affected() == 1)
}

pub(crate) async fn accept_code(
    store: &SqlStore,
    user_id: UserId,
    token_id: i64,
    from: i64,
    to: i64,
    audit: &NewAuditEvent,
) -> Result<bool> {
    // The hot path of every sign-in: counter, denial reset and audit row in
    // one write transaction (one fsync) instead of three.
    let mut tx = store.begin_write().await?;
    let updated = sqlx::query(
        "UPDATE oath_tokens SET counter = $1 WHERE id = $2 AND counter = $3 AND user_id = $4",
    )
    .bind(to)
    .bind(token_id)
    .bind(from)
    .bind(user_id)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    if updated.rows_affected() != 1 {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE users SET failed_count = 0, failed_window_start = NULL \
         WHERE id = $1 AND (failed_count <> 0 OR failed_window_start IS NOT NULL)",
    )
    .bind(user_id)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    insert_audit(&mut tx, audit).await?;
    commit(tx).await?;
    Ok(true)
}

// --- PIN ------------------------------------------------------------------------

pub(crate) async fn pin(store: &SqlStore, user_id: UserId) -> Result<Option<PinRecord>> {
    let row = sqlx::query("SELECT hash, set_at FROM user_pins WHERE user_id = $1")
        .bind(user_id)
        .fetch_optional(&store.pool)
        .await
        .map_err(db_err)?;
    row.map(|r| {
        Ok(PinRecord {
            hash: get(&r, "hash")?,
            set_at: from_seconds("user_pins.set_at", get(&r, "set_at")?)?,
        })
    })
    .transpose()
}

pub(crate) async fn pin_history(store: &SqlStore, user_id: UserId) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT hash FROM pin_history WHERE user_id = $1 ORDER BY id DESC")
        .bind(user_id)
        .fetch_all(&store.pool)
        .await
        .map_err(db_err)?;
    rows.iter().map(|r| get(r, "hash")).collect()
}

pub(crate) async fn set_pin(
    store: &SqlStore,
    user_id: UserId,
    hash: &str,
    set_at: OffsetDateTime,
    keep_history: u32,
    audit: &NewAuditEvent,
) -> Result<()> {
    let mut tx = store.begin_write().await?;
    touch_user(&mut tx, user_id, audit.at).await?;
    write_pin(&mut tx, user_id, hash, set_at, Some(keep_history)).await?;
    insert_audit(&mut tx, audit).await?;
    commit(tx).await
}

// --- Security questions -----------------------------------------------------------

pub(crate) async fn add_question(
    store: &SqlStore,
    language: &str,
    text: &str,
    audit: &NewAuditEvent,
) -> Result<SecurityQuestion> {
    let mut tx = store.begin_write().await?;
    let inserted = sqlx::query(
        "INSERT INTO security_questions (language, text, text_key, created_at) \
         VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(language)
    .bind(text)
    .bind(question_key(text))
    .bind(unix_seconds(audit.at))
    .fetch_one(&mut *tx)
    .await;
    let row = match inserted {
        Ok(row) => row,
        Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
            return Err(Error::conflict(
                ConflictReason::Exists,
                "question already exists",
            ))
        }
        Err(e) => return Err(db_err(e)),
    };
    let question = SecurityQuestion {
        id: get(&row, "id")?,
        language: language.to_string(),
        text: text.to_string(),
    };
    insert_audit(&mut tx, audit).await?;
    commit(tx).await?;
    Ok(question)
}

pub(crate) async fn questions(
    store: &SqlStore,
    language: Option<&str>,
) -> Result<Vec<SecurityQuestion>> {
    let rows = match language {
        Some(language) => sqlx::query(
            "SELECT id, language, text FROM security_questions WHERE language = $1 ORDER BY id",
        )
        .bind(language),
        None => sqlx::query("SELECT id, language, text FROM security_questions ORDER BY id"),
    }
    .fetch_all(&store.pool)
    .await
    .map_err(db_err)?;
    rows.iter()
        .map(|r| {
            Ok(SecurityQuestion {
                id: get(r, "id")?,
                language: get(r, "language")?,
                text: get(r, "text")?,
            })
        })
        .collect()
}

pub(crate) async fn delete_question(
    store: &SqlStore,
    id: i64,
    audit: &NewAuditEvent,
) -> Result<bool> {
    let mut tx = store.begin_write().await?;
    let deleted = sqlx::query("DELETE FROM security_questions WHERE id = $1")
        .bind(id)
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

pub(crate) async fn answers(store: &SqlStore, user_id: UserId) -> Result<Vec<StoredAnswer>> {
    let rows = sqlx::query(
        "SELECT question_id, hash FROM user_answers WHERE user_id = $1 ORDER BY question_id",
    )
    .bind(user_id)
    .fetch_all(&store.pool)
    .await
    .map_err(db_err)?;
    rows.iter()
        .map(|r| {
            Ok(StoredAnswer {
                question_id: get(r, "question_id")?,
                hash: get(r, "hash")?,
            })
        })
        .collect()
}

pub(crate) async fn set_answers(
    store: &SqlStore,
    user_id: UserId,
    answers: &[(i64, String)],
    audit: &NewAuditEvent,
) -> Result<()> {
    let mut tx = store.begin_write().await?;
    touch_user(&mut tx, user_id, audit.at).await?;
    write_answers(&mut tx, user_id, answers).await?;
    insert_audit(&mut tx, audit).await?;
    commit(tx).await
}

// --- One-time bypass ------------------------------------------------------------------

pub(crate) async fn set_bypass(
    store: &SqlStore,
    user_id: UserId,
    until: Option<OffsetDateTime>,
    audit: &NewAuditEvent,
) -> Result<()> {
    let mut tx = store.begin_write().await?;
    let updated = sqlx::query("UPDATE users SET bypass_until = $1 WHERE id = $2")
        .bind(until.map(unix_seconds))
        .bind(user_id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    if updated.rows_affected() == 0 {
        return Err(Error::NotFound("user"));
    }
    insert_audit(&mut tx, audit).await?;
    commit(tx).await
}

pub(crate) async fn consume_bypass(
    store: &SqlStore,
    user_id: UserId,
    now: OffsetDateTime,
    audit: &NewAuditEvent,
) -> Result<bool> {
    let mut tx = store.begin_write().await?;
    // The condition and the clearing are one statement: of two racing
    // callers, the second finds `bypass_until` already NULL.
    let used =
        sqlx::query("UPDATE users SET bypass_until = NULL WHERE id = $1 AND bypass_until > $2")
            .bind(user_id)
            .bind(unix_seconds(now))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
    if used.rows_affected() == 0 {
        // Nothing consumed, nothing to record; dropping `tx` rolls back.
        return Ok(false);
    }
    insert_audit(&mut tx, audit).await?;
    commit(tx).await?;
    Ok(true)
}

pub(crate) async fn bypass_until(
    store: &SqlStore,
    user_id: UserId,
) -> Result<Option<OffsetDateTime>> {
    let row = sqlx::query("SELECT bypass_until FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(&store.pool)
        .await
        .map_err(db_err)?
        .ok_or(Error::NotFound("user"))?;
    get::<Option<i64>>(&row, "bypass_until")?
        .map(|s| from_seconds("users.bypass_until", s))
        .transpose()
}

// --- Lockout ------------------------------------------------------------------------------

pub(crate) async fn record_denial(
    store: &SqlStore,
    user_id: UserId,
    now: OffsetDateTime,
    policy: &DenialPolicy,
) -> Result<DenialOutcome> {
    let now_s = unix_seconds(now);
    // A window that started before this instant is over.
    let window_floor = now_s.saturating_sub(policy.window_seconds.max(0));
    let mut tx = store.begin_write().await?;
    // Every right-hand side sees the row as it was, on both databases.
    let row = sqlx::query(
        "UPDATE users SET \
         failed_count = CASE WHEN failed_window_start IS NULL OR failed_window_start < $2 \
           THEN 1 ELSE failed_count + 1 END, \
         failed_window_start = CASE WHEN failed_window_start IS NULL OR failed_window_start < $2 \
           THEN $3 ELSE failed_window_start END \
         WHERE id = $1 RETURNING failed_count",
    )
    .bind(user_id)
    .bind(window_floor)
    .bind(now_s)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db_err)?
    .ok_or(Error::NotFound("user"))?;
    let count = u32::try_from(get::<i64>(&row, "failed_count")?)
        .map_err(|e| bad_column("users.failed_count", e))?;

    let locked = policy.threshold.is_some_and(|t| count >= t);
    if locked {
        let forever = LOCKED_UNTIL_UNBLOCKED.unix_timestamp();
        let until = match policy.lock_seconds {
            Some(secs) => now_s.saturating_add(secs.max(0)).min(forever),
            None => forever,
        };
        // A lock never shortens one already in place (e.g. set by an
        // administrator); see the module notes for the version bump.
        sqlx::query(
            "UPDATE users SET \
             locked_until = CASE WHEN locked_until IS NOT NULL AND locked_until > $1 \
               THEN locked_until ELSE $1 END, \
             failed_count = 0, failed_window_start = NULL, \
             version = version + 1, updated_at = $2 \
             WHERE id = $3",
        )
        .bind(until)
        .bind(now_s)
        .bind(user_id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    }
    commit(tx).await?;
    Ok(DenialOutcome { count, locked })
}

pub(crate) async fn clear_denials(store: &SqlStore, user_id: UserId) -> Result<()> {
    let updated =
        sqlx::query("UPDATE users SET failed_count = 0, failed_window_start = NULL WHERE id = $1")
            .bind(user_id)
            .execute(&store.pool)
            .await
            .map_err(db_err)?;
    if updated.rows_affected() == 0 {
        return Err(Error::NotFound("user"));
    }
    Ok(())
}

// --- Enrollment -------------------------------------------------------------------------------

pub(crate) async fn complete_enrollment(
    store: &SqlStore,
    user_id: UserId,
    enrollment: &Enrollment,
    audit: &NewAuditEvent,
) -> Result<User> {
    let mut tx = store.begin_write().await?;
    // Conditional on "not enrolled yet" in the statement itself, so of two
    // wizards finishing together exactly one gets through.
    let updated = sqlx::query(
        "UPDATE users SET default_method = $1, default_mode = $2, updated_at = $3, \
         version = version + 1 WHERE id = $4 \
         AND (($5 IS NULL AND default_method IS NULL) OR version = $5)",
    )
    .bind(enrollment.method.method.as_str())
    .bind(enrollment.method.mode.as_str())
    .bind(unix_seconds(audit.at))
    .bind(user_id)
    .bind(enrollment.expected_version)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    if updated.rows_affected() == 0 {
        return Err(if user_exists(&mut tx, user_id).await? {
            Error::conflict(ConflictReason::AlreadyEnrolled, "user is already enrolled")
        } else {
            Error::NotFound("user")
        });
    }
    if let Some(token) = &enrollment.token {
        insert_token(&mut tx, user_id, token, audit.at).await?;
    }
    if let Some(hash) = &enrollment.pin_hash {
        // A first PIN: nothing to trim; `set_pin` trims on the next change.
        write_pin(&mut tx, user_id, hash, audit.at, None).await?;
    }
    write_answers(&mut tx, user_id, &enrollment.answers).await?;
    insert_audit(&mut tx, audit).await?;
    let user = load_user(&mut tx, user_id)
        .await?
        .ok_or(Error::NotFound("user"))?;
    commit(tx).await?;
    Ok(user)
}

// --- Portal sessions ---------------------------------------------------------------------------

pub(crate) async fn session_put(store: &SqlStore, session: &SessionRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO portal_sessions (id_hash, data, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (id_hash) DO UPDATE SET data = excluded.data, \
         expires_at = excluded.expires_at",
    )
    .bind(&session.id_hash)
    .bind(&session.data)
    .bind(unix_seconds(session.expires_at))
    .execute(&store.pool)
    .await
    .map_err(db_err)?;
    Ok(())
}

pub(crate) async fn session_get(
    store: &SqlStore,
    id_hash: &str,
    now: OffsetDateTime,
) -> Result<Option<SessionRecord>> {
    let row = sqlx::query(
        "SELECT id_hash, data, expires_at FROM portal_sessions \
         WHERE id_hash = $1 AND expires_at > $2",
    )
    .bind(id_hash)
    .bind(unix_seconds(now))
    .fetch_optional(&store.pool)
    .await
    .map_err(db_err)?;
    row.map(|r| {
        Ok(SessionRecord {
            id_hash: get(&r, "id_hash")?,
            data: get(&r, "data")?,
            expires_at: from_seconds("portal_sessions.expires_at", get(&r, "expires_at")?)?,
        })
    })
    .transpose()
}

pub(crate) async fn session_delete(store: &SqlStore, id_hash: &str) -> Result<()> {
    sqlx::query("DELETE FROM portal_sessions WHERE id_hash = $1")
        .bind(id_hash)
        .execute(&store.pool)
        .await
        .map_err(db_err)?;
    Ok(())
}

pub(crate) async fn session_purge(store: &SqlStore, now: OffsetDateTime) -> Result<u64> {
    let purged = sqlx::query("DELETE FROM portal_sessions WHERE expires_at <= $1")
        .bind(unix_seconds(now))
        .execute(&store.pool)
        .await
        .map_err(db_err)?;
    Ok(purged.rows_affected())
}
