//! The one place where sqlx errors become domain errors.

use sqlx::error::DatabaseError;
use twofold_core::{ConflictReason, Error};

/// Maps a database error: lost connections and a database that cannot be
/// opened are `Unavailable` (the operator can fix them, `/readyz` shows them),
/// a unique violation is `Conflict`, everything else is `Internal`.
pub(crate) fn db_err(e: sqlx::Error) -> Error {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => Error::Unavailable(format!("database: {e}")),
        sqlx::Error::Database(db) => {
            if db.is_unique_violation() {
                Error::conflict(ConflictReason::Exists, db.message())
            } else if unreachable_code(db.as_ref()) {
                Error::Unavailable(format!("database: {db}"))
            } else {
                Error::Internal(format!("database: {db}"))
            }
        }
        other => Error::Internal(format!("database: {other}")),
    }
}

/// Database-reported errors that mean "the database is not there for us"
/// rather than "this statement is wrong".
fn unreachable_code(db: &dyn DatabaseError) -> bool {
    let Some(code) = db.code() else {
        return false;
    };
    if db
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .is_some()
    {
        // 08: connection exception; 53: insufficient resources;
        // 57P01-57P03: shutdown / cannot connect now; 3D000: the database
        // was dropped under us.
        // 40P01 / 40001: lost a deadlock or serialization check against
        // another transaction — nothing is wrong with the statement, it
        // may be tried again (the group commit does).
        code.starts_with("08")
            || code.starts_with("53")
            || code.starts_with("57P")
            || code == "3D000"
            || code == "40P01"
            || code == "40001"
    } else if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        // SQLite reports extended codes; the primary code is the low byte.
        // BUSY, LOCKED, READONLY (incl. the file being moved), IOERR, FULL,
        // CANTOPEN.
        code.parse::<i32>()
            .is_ok_and(|c| matches!(c & 0xff, 5 | 6 | 8 | 10 | 13 | 14))
    } else {
        false
    }
}

/// A stored value that does not fit the model: never a panic, always an
/// error that names where the bad value is.
pub(crate) fn bad_column(column: &str, why: impl std::fmt::Display) -> Error {
    Error::Internal(format!("stored value in {column} is invalid: {why}"))
}

/// `e` again, for each of the requests one failed statement or batch
/// answers (errors are not `Clone`): unavailability and refused input keep
/// their kind, anything else becomes `Internal` with its message.
pub(crate) fn copy_of(e: &Error) -> Error {
    match e {
        Error::Unavailable(m) => Error::Unavailable(m.clone()),
        Error::InvalidInput { field, message } => Error::invalid(field.clone(), message.clone()),
        other => Error::Internal(other.to_string()),
    }
}
