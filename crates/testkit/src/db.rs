//! Fresh databases for tests, on both backends.
//!
//! PostgreSQL is not optional: when it cannot be reached `TestDb::new`
//! fails with a message that says so, and the test fails with it. A test that
//! quietly skipped would hide exactly the backend differences it exists for.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, Context};
use sqlx::Connection;
use tempfile::TempDir;
use twofold_store::SqlStore;

/// Where the tests find a PostgreSQL role allowed to create databases.
pub const PG_URL_ENV: &str = "TWOFOLD_TEST_PG_URL";
pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

const ADMIN_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Enough for the tests' own concurrency, small enough that many tests in
/// parallel stay far below PostgreSQL's connection limit.
const TEST_POOL_SIZE: u32 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

pub fn both() -> [Backend; 2] {
    [Backend::Sqlite, Backend::Postgres]
}

#[derive(Debug)]
enum Place {
    Sqlite {
        // Held so the directory (and the database in it) lives as long as
        // the TestDb.
        _dir: TempDir,
        path: PathBuf,
    },
    Postgres {
        admin_url: String,
        name: String,
    },
}

/// One empty database, removed again when dropped.
#[derive(Debug)]
pub struct TestDb {
    pub url: String,
    pub backend: Backend,
    place: Place,
}

/// The admin URL tests use: `TWOFOLD_TEST_PG_URL` or the local default.
pub fn pg_admin_url() -> String {
    std::env::var(PG_URL_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_PG_URL.to_string())
}

/// The same server and credentials, another database.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority_start..].find('/') {
        Some(i) => &base[..authority_start + i],
        None => base,
    };
    match query {
        Some(q) => format!("{server}/{database}?{q}"),
        None => format!("{server}/{database}"),
    }
}

/// The URL without a password, for messages.
fn redacted(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let Some(at) = url[start..].find('@').map(|i| start + i) else {
        return url.to_string();
    };
    match url[start..at].split_once(':') {
        Some((user, _)) => format!("{}{user}:***{}", &url[..start], &url[at..]),
        None => url.to_string(),
    }
}

async fn admin_connection(admin_url: &str) -> anyhow::Result<sqlx::PgConnection> {
    let attempt = tokio::time::timeout(
        ADMIN_CONNECT_TIMEOUT,
        sqlx::PgConnection::connect(admin_url),
    )
    .await;
    let cause = match attempt {
        Ok(Ok(conn)) => return Ok(conn),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer within {}s", ADMIN_CONNECT_TIMEOUT.as_secs()),
    };
    Err(anyhow!(
        "PostgreSQL is not reachable at {} ({cause}). The PostgreSQL tests never skip: \
         start PostgreSQL or point {PG_URL_ENV} at a role that may create databases.",
        redacted(admin_url)
    ))
}

async fn drop_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let mut conn = admin_connection(admin_url).await?;
    // WITH (FORCE) ends sessions a test left open (pools not closed, a
    // store still alive in another task).
    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .with_context(|| format!("dropping test database {name}"))?;
    let _ = conn.close().await;
    Ok(())
}

impl TestDb {
    pub async fn new(backend: Backend) -> anyhow::Result<TestDb> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::Builder::new()
                    .prefix("twofold-test-")
                    .tempdir()
                    .context("creating a temporary directory for the SQLite database")?;
                let path = dir.path().join("twofold.db");
                let url = format!("sqlite://{}", path.display());
                Ok(TestDb {
                    url,
                    backend,
                    place: Place::Sqlite { _dir: dir, path },
                })
            }
            Backend::Postgres => {
                let admin_url = pg_admin_url();
                let name = format!("twofold_test_{:016x}", rand::random::<u64>());
                let mut conn = admin_connection(&admin_url).await?;
                sqlx::raw_sql(&format!("CREATE DATABASE \"{name}\""))
                    .execute(&mut conn)
                    .await
                    .with_context(|| {
                        format!("creating test database {name} on {}", redacted(&admin_url))
                    })?;
                let _ = conn.close().await;
                Ok(TestDb {
                    url: with_database(&admin_url, &name),
                    backend,
                    place: Place::Postgres { admin_url, name },
                })
            }
        }
    }

    /// A store on this database, schema migrated.
    pub async fn store(&self) -> anyhow::Result<SqlStore> {
        SqlStore::connect(&self.url, TEST_POOL_SIZE)
            .await
            .with_context(|| format!("connecting to the {} test database", self.backend.name()))
    }

    /// The SQLite file, for tests that look at or tamper with it.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match &self.place {
            Place::Sqlite { path, .. } => Some(path),
            Place::Postgres { .. } => None,
        }
    }

    /// Makes the database go away under a running store, as an operator
    /// deleting the file or dropping the database would.
    pub async fn destroy(&self) -> anyhow::Result<()> {
        match &self.place {
            Place::Sqlite { path, .. } => {
                for suffix in ["", "-wal", "-shm", "-journal"] {
                    let mut file = path.clone().into_os_string();
                    file.push(suffix);
                    match std::fs::remove_file(&file) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => {
                            return Err(e).with_context(|| {
                                format!("removing {}", Path::new(&file).display())
                            });
                        }
                    }
                }
                Ok(())
            }
            Place::Postgres { admin_url, name } => drop_database(admin_url, name).await,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Place::Postgres { admin_url, name } = &self.place else {
            // The TempDir removes the SQLite files.
            return;
        };
        let (admin_url, name) = (admin_url.clone(), name.clone());
        // Drop cannot await, and blocking on the test's own runtime from
        // inside it would panic; a thread with its own runtime works from
        // async and sync code alike. Joining keeps the cleanup ordered
        // before the test process exits.
        let worker = std::thread::spawn(move || -> anyhow::Result<()> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("building a runtime to drop the test database")?;
            rt.block_on(drop_database(&admin_url, &name))
        });
        match worker.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: test database not removed: {e:#}"),
            Err(_) => eprintln!("warning: test database cleanup panicked"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "t1"),
            "postgres://u:p@h/t1?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "t1"),
            "postgres://h:5432/t1"
        );
        assert_eq!(
            redacted("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(redacted("postgres://u@h/db"), "postgres://u@h/db");
    }
}
