//! What the factor repositories share (`tokens.rs`, `pins.rs`,
//! `questions.rs`, `bypass.rs`, `lockout.rs`, `enrollment.rs`: together
//! `FactorRepo`).
//!
//! Version rule: writes that change what a user signs in with (tokens, PIN,
//! answers, enrollment) bump `users.version` and `updated_at` like a password
//! change does. Bypass, denial counting, counters and sessions do not: they
//! happen during sign-ins and must not make an administrator's open edit
//! stale. The one exception is a denial that *locks*: it changes
//! `locked_until`, a `User` field that `update_user` writes, so it bumps the
//! version too — otherwise an edit based on the user as loaded before the
//! lock would silently lift it again.

use sqlx::AnyConnection;
use time::OffsetDateTime;
use twofold_core::user::UserId;
use twofold_core::{Error, Result};

use crate::errors::db_err;
use crate::rows::unix_seconds;

/// Marks a credential change on the user row (version and `updated_at`);
/// `NotFound` when there is no such user. Doing it first also takes the
/// row's lock on PostgreSQL, so writes for one user queue up behind it.
pub(crate) async fn touch_user(
    conn: &mut AnyConnection,
    user_id: UserId,
    at: OffsetDateTime,
) -> Result<()> {
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
