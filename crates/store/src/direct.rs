//! SQLite's hot reads on connections of our own (rusqlite), not sqlx's.
//!
//! sqlx runs each SQLite connection on a worker thread of its own and hands
//! every statement to it, and every row back, over a channel: two thread
//! wake-ups per statement. A sign-in reads three small rows (the user, the
//! code factor's guessing record, the tokens) and the profile of a loaded
//! server showed ~40 % of its CPU in those hand-offs, against ~2 % in
//! SQLite itself. A point read by index in a file the page cache holds takes
//! a few microseconds, less than one hand-off, so these reads run right
//! where they are asked, on a connection of this module's, and never wait
//! on the writer (WAL: readers see the last commit and do not block it).
//!
//! The connections are opened after sqlx has migrated the file and set it
//! to WAL; they are `query_only`, so nothing written can go around the
//! writer and its group commit. An in-memory database has no file to share
//! and keeps to sqlx (`SqlStore::direct` is `None`).

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use twofold_core::{ConflictReason, Error, Result};

use crate::store::SQLITE_BUSY_TIMEOUT_MS;

/// Prepared statements kept per connection: the hot reads and a few more.
const STATEMENT_CACHE: usize = 32;

/// Reader connections to one SQLite file.
pub(crate) struct Direct {
    readers: Box<[Mutex<Connection>]>,
    next: AtomicUsize,
    /// Set by `SqlStore::close`: later reads and writes fail, as sqlx's do.
    closed: Arc<AtomicBool>,
}

impl fmt::Debug for Direct {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Direct")
            .field("readers", &self.readers.len())
            .finish_non_exhaustive()
    }
}

impl Direct {
    /// Opens `readers` connections to the (existing, migrated) file.
    pub(crate) fn open(path: &Path, readers: usize) -> Result<Direct> {
        let readers = (0..readers.max(1))
            .map(|_| open_reader(path).map(Mutex::new))
            .collect::<Result<Vec<_>>>()?;
        Ok(Direct {
            readers: readers.into_boxed_slice(),
            next: AtomicUsize::new(0),
            closed: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Every row of `sql` with `params`, each mapped by `map`, on a reader.
    pub(crate) fn all<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        map: impl Fn(&rusqlite::Row<'_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        self.read(|conn| {
            let mut statement = conn.prepare_cached(sql).map_err(sqlite_err)?;
            let mut rows = statement.query(params).map_err(sqlite_err)?;
            let mut all = Vec::new();
            while let Some(row) = rows.next().map_err(sqlite_err)? {
                all.push(map(row)?);
            }
            Ok(all)
        })
    }

    /// After this, reads (and the direct writer's batches, which share
    /// `closed_flag`) fail with `Unavailable`.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }

    pub(crate) fn closed_flag(&self) -> Arc<AtomicBool> {
        self.closed.clone()
    }

    /// Runs `read` on a free reader connection (waiting for one only when
    /// every one is busy: there are more than the threads that read).
    pub(crate) fn read<T>(&self, read: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(closed());
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let count = self.readers.len();
        for i in 0..count {
            if let Ok(conn) = self.readers[(start + i) % count].try_lock() {
                return read(&conn);
            }
        }
        // A panic while a reader was held leaves the connection as it was
        // (every read is one autocommit statement): go on with it.
        let conn = self.readers[start % count]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        read(&conn)
    }
}

/// The connection of SQLite's group-commit lane (`Lanes::start_direct`),
/// set up as `store.rs` sets up sqlx's: foreign keys on, every commit
/// synced (an accepted code must survive a power cut), the log checkpointed
/// by `checkpoint.rs` and not by a commit.
pub(crate) fn open_writer(path: &Path) -> Result<Connection> {
    let conn = open(path)?;
    // SQLite's own busy wait sleeps 1, 2, 5, 10 … ms between tries: a
    // lock held for a millisecond by another process (the CLI) or by a
    // checkpoint would cost the whole batch ten. Try again every 200 µs.
    conn.busy_handler(Some(wait_briefly)).map_err(sqlite_err)?;
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(sqlite_err)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(sqlite_err)?;
    conn.pragma_update(None, "wal_autocheckpoint", 0)
        .map_err(sqlite_err)?;
    conn.pragma_update(
        None,
        "journal_size_limit",
        crate::checkpoint::WAL_SIZE_LIMIT,
    )
    .map_err(sqlite_err)?;
    Ok(conn)
}

/// The direct writer's busy handler: up to `SQLITE_BUSY_TIMEOUT_MS` in
/// steps of 200 µs.
fn wait_briefly(tries: i32) -> bool {
    const STEP: Duration = Duration::from_micros(200);
    std::thread::sleep(STEP);
    u128::try_from(tries).unwrap_or(0) * STEP.as_micros()
        < u128::from(SQLITE_BUSY_TIMEOUT_MS) * 1000
}

pub(crate) fn closed() -> Error {
    Error::Unavailable("database: the store is closed".into())
}

fn open_reader(path: &Path) -> Result<Connection> {
    let conn = open(path)?;
    conn.pragma_update(None, "query_only", true)
        .map_err(sqlite_err)?;
    Ok(conn)
}

fn open(path: &Path) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(sqlite_err)?;
    conn.busy_timeout(Duration::from_millis(u64::from(SQLITE_BUSY_TIMEOUT_MS)))
        .map_err(sqlite_err)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// `errors::db_err` for the direct connections: a database that is busy,
/// locked, read-only, failing or gone is `Unavailable`; the rest `Internal`.
pub(crate) fn sqlite_err(e: rusqlite::Error) -> Error {
    /// SQLITE_CONSTRAINT_PRIMARYKEY and SQLITE_CONSTRAINT_UNIQUE.
    const UNIQUE: [i32; 2] = [1555, 2067];
    let text = format!("database: {e}");
    match e {
        rusqlite::Error::SqliteFailure(code, message) if UNIQUE.contains(&code.extended_code) => {
            Error::conflict(ConflictReason::Exists, message.unwrap_or(text))
        }
        rusqlite::Error::SqliteFailure(code, _)
            if matches!(
                code.code,
                rusqlite::ErrorCode::DatabaseBusy
                    | rusqlite::ErrorCode::DatabaseLocked
                    | rusqlite::ErrorCode::ReadOnly
                    | rusqlite::ErrorCode::SystemIoFailure
                    | rusqlite::ErrorCode::DiskFull
                    | rusqlite::ErrorCode::CannotOpen
            ) =>
        {
            Error::Unavailable(text)
        }
        _ => Error::Internal(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The direct connections report a duplicate as sqlx's do (a conflict),
    /// and a locked database as unavailable.
    #[test]
    fn errors_map_like_sqlx() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (k TEXT PRIMARY KEY); INSERT INTO t VALUES ('a');")
            .unwrap();
        let duplicate = conn.execute("INSERT INTO t VALUES ('a')", []).unwrap_err();
        assert!(matches!(
            sqlite_err(duplicate),
            Error::Conflict {
                reason: ConflictReason::Exists,
                ..
            }
        ));
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        assert!(matches!(sqlite_err(busy), Error::Unavailable(_)));
        let wrong = conn
            .execute("INSERT INTO nowhere VALUES (1)", [])
            .unwrap_err();
        assert!(matches!(sqlite_err(wrong), Error::Internal(m) if m.contains("nowhere")));
    }
}
