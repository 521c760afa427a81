//! SQLite's write-ahead log, checkpointed in the background.
//!
//! By default SQLite checkpoints inside the commit that crosses 1,000 pages
//! of log: that request (and every writer queued behind it) waits while the
//! log is copied into the database file and synced — the stalls of up to
//! 1.6 s the benchmark saw. Here no connection checkpoints on commit
//! (`wal_autocheckpoint = 0`, set in `store.rs`); a task copies the log
//! back every [`INTERVAL`] in `PASSIVE` mode, which never blocks a reader
//! or the writer. The log restarts from its beginning once everything in it
//! is copied, and a restarted log file is cut to [`WAL_SIZE_LIMIT`]
//! (`journal_size_limit`). Only if readers kept it from restarting until it
//! grew past [`WAL_HARD_LIMIT`] does the task ask for a `TRUNCATE`
//! checkpoint, which may hold writers back for at most [`TRUNCATE_WAIT_MS`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::{AnyPool, Row};

use crate::group_commit::Lanes;

/// How often the log is copied back.
const INTERVAL: Duration = Duration::from_millis(250);
/// The size a restarted log file is cut to (bytes).
pub(crate) const WAL_SIZE_LIMIT: u64 = 64 * 1024 * 1024;
/// A log file past this size, all of it copied back, is started over.
const WAL_RESTART_AT: u64 = 16 * 1024 * 1024;
/// A log larger than this is truncated even if writers must wait a moment.
const WAL_HARD_LIMIT: u64 = 256 * 1024 * 1024;
/// The longest a truncating checkpoint waits for readers (and so holds
/// writers back).
const TRUNCATE_WAIT_MS: u32 = 50;

/// Starts the checkpoint task of a file database. It ends when the store's
/// last handle is dropped or its pool is closed.
pub(crate) fn start(pool: &AnyPool, lanes: &Lanes, database: &Path) {
    let alive = lanes.watch();
    let restart_log = lanes.restart_log();
    let pool = pool.clone();
    let mut wal = database.as_os_str().to_owned();
    wal.push("-wal");
    let wal = PathBuf::from(wal);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if !alive.is_alive() || pool.is_closed() {
                return;
            }
            if let Err(e) = checkpoint(&pool, restart_log.as_deref(), &wal).await {
                tracing::debug!(error = %e, "background WAL checkpoint did not run");
            }
        }
    });
}

async fn checkpoint(
    pool: &AnyPool,
    restart_log: Option<&AtomicBool>,
    wal: &Path,
) -> sqlx::Result<()> {
    let mut conn = pool.acquire().await?;
    let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(&mut *conn)
        .await?;
    let (log, copied): (i64, i64) = (row.try_get(1)?, row.try_get(2)?);
    let size = tokio::fs::metadata(wal).await.map_or(0, |m| m.len());
    if let Some(restart) = restart_log.filter(|_| size > WAL_RESTART_AT && log == copied) {
        // Everything copied back: the direct writer starts the log over
        // between two batches (see `DirectWriter::between_batches`).
        restart.store(true, Ordering::Relaxed);
        return Ok(());
    }
    if size > WAL_HARD_LIMIT {
        tracing::info!(
            wal_bytes = size,
            log_pages = log,
            copied_pages = copied,
            "the write-ahead log outgrew its bound; truncating it"
        );
        let wait = format!("PRAGMA busy_timeout = {TRUNCATE_WAIT_MS}");
        sqlx::query(&wait).execute(&mut *conn).await?;
        let truncated = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(&mut *conn)
            .await;
        let restore = format!(
            "PRAGMA busy_timeout = {}",
            crate::store::SQLITE_BUSY_TIMEOUT_MS
        );
        sqlx::query(&restore).execute(&mut *conn).await?;
        truncated?;
    }
    Ok(())
}
