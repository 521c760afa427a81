//! `SqlStore` itself: connecting (URL → backend), the pool, migrations,
//! `ping`, write transactions, and `Store` — whose repositories are
//! implemented for it one per file.

use std::ops::Deref;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, ConnectOptions, Connection, Transaction};
use twofold_core::ports::Store;
use twofold_core::{Error, Result};

use crate::direct::Direct;
use crate::errors::db_err;
use crate::group_commit::{GroupedWrite, Lanes};
use crate::held::Held;
use crate::view_reads::ViewReads;

/// How long connecting, and waiting for a pooled connection, may take before
/// the database counts as unavailable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// `ping` answers `/readyz`, which must itself answer quickly.
const PING_TIMEOUT: Duration = Duration::from_secs(2);
pub(crate) const SQLITE_BUSY_TIMEOUT_MS: u32 = 5000;
/// Grouped-write lanes on PostgreSQL at most (see `group_commit.rs`), each
/// on a connection of its own (`held.rs`): one per two cores, at most half
/// the pool's size, at most this. A lane's batch is three statements
/// whatever its size (`fast_accept.rs`), so more lanes than the cores can
/// run only make smaller batches: on two cores one lane carried 9,900
/// sign-ins a second where two carried 8,800–9,000.
const POSTGRES_LANES: u32 = 4;
/// Connections PostgreSQL's sign-in reads hold (`held.rs`): half the pool's
/// size, at most this.
const POSTGRES_HELD_READERS: u32 = 8;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, Clone)]
enum Backend {
    /// `path` is `None` for an in-memory database.
    Sqlite {
        path: Option<PathBuf>,
    },
    Postgres,
}

/// The SQL store. Cheap to clone: clones share one pool.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pub(crate) pool: AnyPool,
    backend: Backend,
    /// What `Wakeups::subscribe` hands out (see `wakeups.rs`).
    pub(crate) wakeups: tokio::sync::broadcast::Sender<String>,
    /// Where the hot writes are group-committed (see `group_commit.rs`).
    pub(crate) lanes: Lanes,
    /// SQLite's hot reads, on connections of our own (see `direct.rs`);
    /// `None` on PostgreSQL and for an in-memory database.
    pub(crate) direct: Option<Arc<Direct>>,
    /// PostgreSQL's hot reads, on connections held out of the pool (see
    /// `held.rs`); `None` on SQLite.
    pub(crate) held: Option<Arc<Held>>,
    /// PostgreSQL's passcode views, read together (`view_reads.rs`).
    pub(crate) view_reads: Option<ViewReads>,
}

struct Target {
    url: String,
    backend: Backend,
    /// The SQLite file to create when missing (`mode=rwc`, the default).
    creates: Option<PathBuf>,
}

fn invalid_url(message: impl Into<String>) -> Error {
    Error::invalid("database.url", message)
}

/// Decides the backend from the URL scheme and, for SQLite, makes sure the
/// file is created when missing and remembers where it is.
fn parse_target(url: &str) -> Result<Target> {
    let url = url.trim();
    let scheme = url.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("postgres" | "postgresql") => Ok(Target {
            url: url.to_string(),
            backend: Backend::Postgres,
            creates: None,
        }),
        Some("sqlite") => {
            let rest = url
                .strip_prefix("sqlite://")
                .or_else(|| url.strip_prefix("sqlite:"))
                .unwrap_or_default();
            let (database, params) = match rest.split_once('?') {
                Some((d, p)) => (d, Some(p)),
                None => (rest, None),
            };
            let mode = params.and_then(|p| {
                p.split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .find(|(k, _)| *k == "mode")
                    .map(|(_, v)| v.to_string())
            });
            let in_memory = database == ":memory:" || mode.as_deref() == Some("memory");
            if database.is_empty() && !in_memory {
                return Err(invalid_url(
                    "a SQLite URL needs a file path, e.g. sqlite:///var/lib/twofold/twofold.db",
                ));
            }
            let full = match (mode.is_some(), params) {
                (true, _) => url.to_string(),
                (false, Some(p)) if !p.is_empty() => format!("{url}&mode=rwc"),
                (false, Some(_)) => format!("{url}mode=rwc"),
                (false, None) => format!("{url}?mode=rwc"),
            };
            let path = if in_memory {
                None
            } else {
                // Use sqlx's own parsing so the file we watch in `ping` is the
                // file sqlx opens (percent-decoding included).
                let opts = sqlx::sqlite::SqliteConnectOptions::from_str(&full)
                    .map_err(|e| invalid_url(format!("not a valid SQLite URL: {e}")))?;
                Some(opts.get_filename().to_path_buf())
            };
            Ok(Target {
                url: full,
                creates: path
                    .clone()
                    .filter(|_| matches!(mode.as_deref(), None | Some("rwc"))),
                backend: Backend::Sqlite { path },
            })
        }
        _ => {
            let shown = scheme.map_or_else(|| "no scheme".into(), |s| format!("{s:?}"));
            Err(invalid_url(format!(
                "unsupported database URL ({shown}); use sqlite:///path/to/twofold.db or postgres://user@host/dbname"
            )))
        }
    }
}

impl SqlStore {
    /// Connects, prepares every connection (SQLite: WAL, foreign keys, busy
    /// timeout) and brings the schema up to date.
    pub async fn connect(url: &str, max_connections: u32) -> Result<SqlStore> {
        sqlx::any::install_default_drivers();
        let target = parse_target(url)?;
        if let Some(path) = &target.creates {
            create_private(path);
        }
        let options = AnyConnectOptions::from_str(&target.url)
            .map_err(|e| invalid_url(format!("not a valid database URL: {e}")))?
            .disable_statement_logging();

        // The pool retries a refused connection until its timeout and then
        // reports only "timed out"; one direct attempt first keeps the cause
        // (refused, unknown host, bad password, missing directory …).
        match tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
            }
            Ok(Err(e)) => {
                return Err(Error::Unavailable(format!(
                    "cannot connect to the {} database: {e}",
                    backend_name(&target.backend)
                )))
            }
            Err(_) => {
                return Err(Error::Unavailable(format!(
                    "cannot connect to the {} database: no answer within {}s",
                    backend_name(&target.backend),
                    CONNECT_TIMEOUT.as_secs()
                )))
            }
        }

        let mut pool_options = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(CONNECT_TIMEOUT);
        match &target.backend {
            Backend::Sqlite { path } => {
                if path.is_none() {
                    // Every connection to `:memory:` would be its own empty
                    // database; one long-lived connection keeps the data.
                    pool_options = pool_options
                        .max_connections(1)
                        .min_connections(1)
                        .idle_timeout(None)
                        .max_lifetime(None);
                }
                // A connection to a local file does not go stale between
                // uses; pinging it before every query would cost each query
                // a second round trip to SQLite's worker thread.
                pool_options = pool_options.test_before_acquire(false);
                pool_options = pool_options.after_connect(|conn, _meta| {
                    Box::pin(async move {
                        let busy = format!("PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}");
                        sqlx::query(&busy).execute(&mut *conn).await?;
                        sqlx::query("PRAGMA journal_mode = WAL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA foreign_keys = ON")
                            .execute(&mut *conn)
                            .await?;
                        // Every commit synced before it returns: an
                        // accepted code must survive a power cut, or it
                        // could be accepted again (NORMAL would not sync
                        // the log on commit).
                        sqlx::query("PRAGMA synchronous = FULL")
                            .execute(&mut *conn)
                            .await?;
                        // No commit checkpoints the log itself (a request
                        // would wait for it); `checkpoint.rs` does, in the
                        // background. A fresh log truncates to this size.
                        sqlx::query("PRAGMA wal_autocheckpoint = 0")
                            .execute(&mut *conn)
                            .await?;
                        let limit = format!(
                            "PRAGMA journal_size_limit = {}",
                            crate::checkpoint::WAL_SIZE_LIMIT
                        );
                        sqlx::query(&limit).execute(&mut *conn).await?;
                        Ok(())
                    })
                });
            }
            Backend::Postgres => {}
        }
        let pool = pool_options
            .connect_with(options.clone())
            .await
            .map_err(db_err)?;

        let migrator = match target.backend {
            Backend::Sqlite { .. } => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        if let Err(e) = migrator.run(&pool).await {
            pool.close().await;
            return Err(match e {
                sqlx::migrate::MigrateError::Execute(e) => match db_err(e) {
                    Error::Internal(m) => Error::Internal(format!("migrating the schema: {m}")),
                    other => other,
                },
                other => Error::Internal(format!("migrating the schema: {other}")),
            });
        }

        if let Backend::Sqlite { path: Some(path) } = &target.backend {
            // Files made before this rule (or by another tool) are tightened
            // too; SQLite gives the -wal and -shm files it creates later the
            // database file's mode.
            for file in sqlite_files(path) {
                make_private(&file);
            }
        }
        let wakeups = crate::wakeups::channel();
        if let Backend::Postgres = target.backend {
            let listening = crate::wakeups::listen_postgres(
                &target.url,
                CONNECT_TIMEOUT,
                &wakeups,
                pool.close_event(),
            )
            .await;
            if let Err(e) = listening {
                pool.close().await;
                return Err(e);
            }
        }
        // SQLite's direct connections (see `direct.rs`): readers, then the
        // writer of its one lane.
        let direct = match &target.backend {
            Backend::Sqlite { path: Some(path) } => {
                let readers = std::thread::available_parallelism().map_or(2, usize::from) + 2;
                match Direct::open(path, readers) {
                    Ok(opened) => Some(Arc::new(opened)),
                    Err(e) => {
                        pool.close().await;
                        return Err(e);
                    }
                }
            }
            _ => None,
        };
        // PostgreSQL's held connections (see `held.rs`), opened when first
        // used: the sign-in's reads, and the lanes'.
        let readers = (max_connections / 2).clamp(1, POSTGRES_HELD_READERS) as usize;
        let held = match &target.backend {
            Backend::Postgres => Some(Arc::new(Held::new(options, readers, CONNECT_TIMEOUT))),
            Backend::Sqlite { .. } => None,
        };
        let view_reads = held.as_ref().map(|held| ViewReads::start(held, readers));
        let lanes = match (&target.backend, &direct) {
            (Backend::Sqlite { path: Some(path) }, Some(direct)) => {
                let started = crate::direct::open_writer(path)
                    .and_then(|conn| Lanes::start_direct(conn, direct.closed_flag()));
                match started {
                    Ok(lanes) => lanes,
                    Err(e) => {
                        pool.close().await;
                        return Err(e);
                    }
                }
            }
            (Backend::Sqlite { .. }, _) => Lanes::start(&pool, 1, "BEGIN IMMEDIATE"),
            (Backend::Postgres, _) => {
                let held = held.as_ref().expect("PostgreSQL holds connections");
                let cores = std::thread::available_parallelism().map_or(2, usize::from);
                let count = (cores / 2)
                    .min((max_connections / 2) as usize)
                    .clamp(1, POSTGRES_LANES as usize);
                Lanes::start_held(held, count)
            }
        };
        if let Backend::Sqlite { path: Some(path) } = &target.backend {
            crate::checkpoint::start(&pool, &lanes, path);
        }
        Ok(SqlStore {
            pool,
            backend: target.backend,
            wakeups,
            lanes,
            direct,
            held,
            view_reads,
        })
    }

    /// "sqlite" or "postgres".
    pub fn backend(&self) -> &'static str {
        backend_name(&self.backend)
    }

    /// The SQLite database file, if this store has one.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match &self.backend {
            Backend::Sqlite { path } => path.as_deref(),
            Backend::Postgres => None,
        }
    }

    /// Closes the pool: waits for connections in use to come back, then
    /// closes them all. Later calls fail with `Unavailable`.
    pub async fn close(&self) {
        if let Some(direct) = &self.direct {
            direct.close();
        }
        if let Some(held) = &self.held {
            held.close().await;
        }
        self.pool.close().await;
    }

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

    /// Runs a hot write in the next group commit of `key`'s lane (a user
    /// id; see `group_commit.rs`) and answers once it is committed.
    pub(crate) async fn grouped<W: GroupedWrite>(&self, key: i64, write: W) -> Result<W::Output> {
        self.lanes.run(key, write).await
    }

    /// Transactions the group commit has committed since connecting:
    /// grouped writes ÷ this is the mean batch size.
    pub fn group_commits(&self) -> u64 {
        self.lanes.commits()
    }

    /// Statements that ran a batch's accepted codes together since
    /// connecting (PostgreSQL; see `fast_accept.rs`).
    pub fn accepted_together(&self) -> u64 {
        self.lanes.together()
    }

    /// Statements that read more than one sign-in's passcode view since
    /// connecting (PostgreSQL; see `view_reads.rs`).
    pub fn views_read_together(&self) -> u64 {
        self.view_reads.as_ref().map_or(0, ViewReads::together)
    }

    pub(crate) async fn acquire(&self) -> Result<sqlx::pool::PoolConnection<Any>> {
        self.pool.acquire().await.map_err(db_err)
    }

    /// Proves the database answers: `SELECT 1` within a short timeout, and
    /// for SQLite also that the file is still where it was opened, because
    /// open connections keep working on a deleted or moved file.
    pub async fn ping(&self) -> Result<()> {
        if let Some(path) = self.sqlite_path() {
            match tokio::fs::try_exists(path).await {
                Ok(true) => {}
                Ok(false) => {
                    return Err(Error::Unavailable(format!(
                        "the SQLite database file {} is missing (deleted or moved?)",
                        path.display()
                    )))
                }
                Err(e) => {
                    return Err(Error::Unavailable(format!(
                        "cannot check the SQLite database file {}: {e}",
                        path.display()
                    )))
                }
            }
        }
        match tokio::time::timeout(PING_TIMEOUT, sqlx::query("SELECT 1").execute(&self.pool)).await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(match db_err(e) {
                Error::Unavailable(m) => Error::Unavailable(m),
                other => Error::Unavailable(other.to_string()),
            }),
            Err(_) => Err(Error::Unavailable(format!(
                "database did not answer within {}s",
                PING_TIMEOUT.as_secs()
            ))),
        }
    }
}

pub(crate) async fn commit(tx: Transaction<'static, Any>) -> Result<()> {
    tx.commit().await.map_err(db_err)
}

/// The whole database; the repositories are implemented one per file
/// (`users.rs`, `admins.rs`, `settings.rs`, `audit.rs`, the factor files,
/// `challenges.rs`, `sessions.rs`, `accounts.rs`).
#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> &'static str {
        SqlStore::backend(self)
    }

    async fn ping(&self) -> Result<()> {
        SqlStore::ping(self).await
    }

    async fn passcode_view(
        &self,
        username: &str,
    ) -> Result<Option<twofold_core::ports::PasscodeView>> {
        self.read_passcode_view(username).await
    }
}

/// A `SqlStore` is used as the `dyn Store` it is, so every repository
/// method can be called on it with no trait imported (methods of the
/// supertraits are only in scope on the concrete type when each trait is
/// imported; on `dyn Store` they always are).
impl Deref for SqlStore {
    type Target = dyn Store;

    fn deref(&self) -> &(dyn Store + 'static) {
        self
    }
}

/// The database file, its write-ahead log and its shared-memory index: all
/// hold the data (password hashes, sealed seeds, the audit log).
fn sqlite_files(path: &Path) -> [PathBuf; 3] {
    let with = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    [path.to_path_buf(), with("-wal"), with("-shm")]
}

/// Creates a missing SQLite database file owner-only (0600) before SQLite
/// does, whatever the umask: SQLite would create it 0644, readable by every
/// local account. An empty file is a valid new database. Anything that
/// prevents it (a missing directory) is left for SQLite to report.
fn create_private(path: &Path) {
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
}

/// Takes group and other permissions off an existing file.
fn make_private(path: &Path) {
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    let mode = meta.permissions().mode() & 0o777;
    let owner_only = mode & 0o700;
    if mode == owner_only {
        return;
    }
    if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(owner_only)) {
        tracing::warn!(
            file = %path.display(),
            error = %e,
            "cannot make the SQLite file readable by its owner only"
        );
    }
}

fn backend_name(backend: &Backend) -> &'static str {
    match backend {
        Backend::Sqlite { .. } => "sqlite",
        Backend::Postgres => "postgres",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_choose_the_backend() {
        let t = parse_target("sqlite:///tmp/x.db").unwrap();
        assert_eq!(t.url, "sqlite:///tmp/x.db?mode=rwc");
        assert!(
            matches!(t.backend, Backend::Sqlite { path: Some(ref p) } if p == Path::new("/tmp/x.db"))
        );
        let t = parse_target("sqlite:data/x%20y.db?mode=ro").unwrap();
        assert_eq!(t.url, "sqlite:data/x%20y.db?mode=ro");
        assert!(
            matches!(t.backend, Backend::Sqlite { path: Some(ref p) } if p == Path::new("data/x y.db"))
        );
        let t = parse_target("sqlite://x.db?cache=private").unwrap();
        assert_eq!(t.url, "sqlite://x.db?cache=private&mode=rwc");
        let t = parse_target("sqlite::memory:").unwrap();
        assert!(matches!(t.backend, Backend::Sqlite { path: None }));
        assert!(matches!(
            parse_target("postgresql://u@h/db").unwrap().backend,
            Backend::Postgres
        ));
        assert!(matches!(
            parse_target("POSTGRES://u@h/db").unwrap().backend,
            Backend::Postgres
        ));
        for bad in ["mysql://h/db", "x.db", "", "sqlite://"] {
            let err = parse_target(bad).err().unwrap();
            assert!(
                matches!(&err, Error::InvalidInput { field, .. } if field == "database.url"),
                "{bad}: {err}"
            );
        }
    }
}
