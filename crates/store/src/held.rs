//! PostgreSQL's hot path on connections the store holds, not the pool's.
//!
//! sqlx's pool tests every connection with a round trip (a `Sync`, answered
//! by `ReadyForQuery`) when it hands it out, and again, always, when it
//! takes it back. A sign-in reads three small rows, each through the pool:
//! nine round trips where three carry data, and the profile of a loaded
//! server showed those pings in both processes' system time. The sign-in's
//! reads and the group-commit lanes use connections held here instead: one
//! round trip per statement.
//!
//! What the pings were for stays covered. A connection that fails with a
//! lost-connection error is dropped, and the next user opens a new one; a
//! read that failed that way on a connection that had been idle is run once
//! more on a fresh one (reads change nothing), so a restarted database
//! costs no sign-in an error. A connection idle for a minute is not trusted
//! again but replaced, and a statement that gets no answer within
//! [`STATEMENT_TIMEOUT`] (a connection a firewall forgot answers nothing,
//! not even an error) drops its connection and fails `Unavailable`.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::any::AnyConnectOptions;
use sqlx::{AnyConnection, ConnectOptions};
use tokio::sync::{Semaphore, SemaphorePermit};
use twofold_core::{Error, Result};

use crate::errors::db_err;

/// The longest a held connection's statement (a read, a lane's write or
/// whole batch statement) may take. A connection that stopped answering
/// without an error (a firewall that forgot it, a fail-over that did not
/// reset it) would otherwise hold its users until TCP gives up, minutes
/// later; past this it is dropped and the statement fails `Unavailable`.
pub(crate) const STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection idle longer than this is not trusted again: a new one is
/// opened instead (what sqlx's pool checked with its pings).
const IDLE_LIMIT: Duration = Duration::from_mins(1);

/// Connections held for the sign-in's reads, opened when first needed.
pub(crate) struct Held {
    options: AnyConnectOptions,
    /// One per connection that may be in use at once.
    permits: Semaphore,
    /// Open connections not in use, with when each was last used.
    idle: Mutex<Vec<(AnyConnection, Instant)>>,
    slots: usize,
    /// Set by `SqlStore::close`: later reads and lane writes fail, as the
    /// pool's do.
    closed: Arc<AtomicBool>,
    connect_timeout: Duration,
}

impl fmt::Debug for Held {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Held")
            .field("slots", &self.slots)
            .finish_non_exhaustive()
    }
}

impl Held {
    pub(crate) fn new(options: AnyConnectOptions, slots: usize, connect_timeout: Duration) -> Held {
        let slots = slots.max(1);
        Held {
            options,
            permits: Semaphore::new(slots),
            idle: Mutex::new(Vec::with_capacity(slots)),
            slots,
            closed: Arc::new(AtomicBool::new(false)),
            connect_timeout,
        }
    }

    /// A connection to use alone until the returned value is dropped: the
    /// first to be free, waiting at most as long as for a pooled one.
    pub(crate) async fn take(&self) -> Result<Taken<'_>> {
        self.take_one(false).await
    }

    /// `take`, on a connection opened for this use (the others may be as
    /// gone as the one that just failed).
    pub(crate) async fn take_new(&self) -> Result<Taken<'_>> {
        self.take_one(true).await
    }

    async fn take_one(&self, new: bool) -> Result<Taken<'_>> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(closed());
        }
        let permit = match tokio::time::timeout(self.connect_timeout, self.permits.acquire()).await
        {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => return Err(closed()),
            Err(_) => {
                return Err(Error::Unavailable(format!(
                    "database: no held connection came free within {}s",
                    self.connect_timeout.as_secs()
                )))
            }
        };
        let reused = if new { None } else { self.idle_connection() };
        let (conn, fresh) = match reused {
            Some(conn) => (conn, false),
            None => (connect(&self.options, self.connect_timeout).await?, true),
        };
        Ok(Taken {
            held: self,
            conn: Some(conn),
            fresh,
            _permit: permit,
        })
    }

    /// The most recently used idle connection, if it was used recently
    /// enough to trust; older ones are dropped.
    fn idle_connection(&self) -> Option<AnyConnection> {
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while let Some((conn, since)) = idle.pop() {
            if since.elapsed() < IDLE_LIMIT {
                return Some(conn);
            }
        }
        None
    }

    /// What the lanes check before each batch (see `LaneConnection`).
    pub(crate) fn closed_flag(&self) -> Arc<AtomicBool> {
        self.closed.clone()
    }

    /// Closes the idle connections; later `take`s fail `Unavailable`, and
    /// connections in use are dropped when given back.
    pub(crate) async fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        let idle: Vec<_> = std::mem::take(
            &mut *self
                .idle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for (conn, _) in idle {
            let _ = sqlx::Connection::close(conn).await;
        }
    }
}

/// One held connection, in use; given back when dropped (unless it was
/// lost, or the store closed meanwhile).
pub(crate) struct Taken<'a> {
    held: &'a Held,
    conn: Option<AnyConnection>,
    /// Opened for this use (a lost connection here is no stale one).
    fresh: bool,
    _permit: SemaphorePermit<'a>,
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            if !self.held.closed.load(Ordering::Relaxed) {
                self.held
                    .idle
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push((conn, Instant::now()));
            }
        }
    }
}

impl Taken<'_> {
    pub(crate) fn conn(&mut self) -> &mut AnyConnection {
        self.conn
            .as_mut()
            .expect("a taken connection is there until it is lost")
    }

    /// The domain result of a statement run on this connection (`None`:
    /// it did not answer in time); a lost or silent connection is dropped.
    pub(crate) fn check<T>(
        &mut self,
        result: Option<std::result::Result<T, sqlx::Error>>,
    ) -> Result<T> {
        match result {
            Some(Ok(value)) => Ok(value),
            Some(Err(e)) => {
                if lost(&e) {
                    self.conn = None;
                }
                Err(db_err(e))
            }
            None => {
                self.conn = None;
                Err(timed_out())
            }
        }
    }

    /// Whether a read that failed with `e` is worth running again on a
    /// new connection: it failed because this one, idle before, was gone.
    pub(crate) fn stale(&self, e: &sqlx::Error) -> bool {
        !self.fresh && lost(e)
    }
}

/// Runs a read on a held connection, within [`STATEMENT_TIMEOUT`]; once
/// more on a new one when the held one turned out to be gone (see the
/// module's comment). `$read` is an expression using `$conn: &mut
/// AnyConnection` that yields a sqlx result.
macro_rules! held_read {
    ($held:expr, |$conn:ident| $read:expr) => {{
        let held: &$crate::held::Held = $held;
        let mut taken = held.take().await?;
        let first = {
            let $conn = taken.conn();
            tokio::time::timeout($crate::held::STATEMENT_TIMEOUT, async { $read })
                .await
                .ok()
        };
        match first {
            Some(Err(e)) if taken.stale(&e) => {
                let _ = taken.check::<()>(Some(Err(e)));
                drop(taken);
                let mut taken = held.take_new().await?;
                let again = {
                    let $conn = taken.conn();
                    tokio::time::timeout($crate::held::STATEMENT_TIMEOUT, async { $read })
                        .await
                        .ok()
                };
                taken.check(again)
            }
            other => taken.check(other),
        }
    }};
}
pub(crate) use held_read;

/// The connection of one PostgreSQL group-commit lane, opened when first
/// needed and again after it was lost.
pub(crate) struct LaneConnection {
    options: AnyConnectOptions,
    /// The connection, and when its last transaction began.
    conn: Option<(AnyConnection, Instant)>,
    connect_timeout: Duration,
    closed: Arc<AtomicBool>,
}

impl LaneConnection {
    pub(crate) fn new(held: &Held) -> LaneConnection {
        LaneConnection {
            options: held.options.clone(),
            conn: None,
            connect_timeout: held.connect_timeout,
            closed: held.closed_flag(),
        }
    }

    /// The connection to begin a transaction on: a new one if it was lost
    /// (or never opened) or sat idle too long to trust.
    pub(crate) async fn for_begin(&mut self) -> Result<&mut AnyConnection> {
        if self.closed.load(Ordering::Relaxed) {
            self.conn = None;
            return Err(closed());
        }
        if self
            .conn
            .as_ref()
            .is_some_and(|(_, since)| since.elapsed() >= IDLE_LIMIT)
        {
            self.conn = None;
        }
        let conn = match self.conn.take() {
            Some((conn, _)) => conn,
            None => connect(&self.options, self.connect_timeout).await?,
        };
        let (conn, _) = self.conn.insert((conn, Instant::now()));
        Ok(conn)
    }

    /// The connection of the open transaction. Never a new one: a
    /// statement on a new connection would run outside the transaction.
    pub(crate) fn conn(&mut self) -> Result<&mut AnyConnection> {
        self.conn
            .as_mut()
            .map(|(conn, _)| conn)
            .ok_or_else(|| Error::Unavailable("database: the lane's connection was lost".into()))
    }

    /// Forgets the connection after `e` when `e` means it is gone.
    pub(crate) fn after_error(&mut self, e: &Error) {
        if matches!(e, Error::Unavailable(m) if !m.contains("deadlock") && !m.contains("could not serialize"))
        {
            self.conn = None;
        }
    }

    /// Whether a connection is open (none before the first batch, and none
    /// after one was lost).
    pub(crate) fn is_open(&self) -> bool {
        self.conn.is_some()
    }

    /// The connection as it is, not reopened (for a rollback: a lost
    /// connection has nothing left to roll back).
    pub(crate) fn current(&mut self) -> Option<&mut AnyConnection> {
        self.conn.as_mut().map(|(conn, _)| conn)
    }

    /// Forgets the connection (a rollback failed: its state is unknown).
    pub(crate) fn drop_connection(&mut self) {
        self.conn = None;
    }
}

async fn connect(options: &AnyConnectOptions, timeout: Duration) -> Result<AnyConnection> {
    match tokio::time::timeout(timeout, options.connect()).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(Error::Unavailable(format!(
            "cannot connect to the database: {e}"
        ))),
        Err(_) => Err(Error::Unavailable(format!(
            "cannot connect to the database: no answer within {}s",
            timeout.as_secs()
        ))),
    }
}

/// The connection itself is gone (not: the statement was refused).
fn lost(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
        _ => false,
    }
}

fn timed_out() -> Error {
    Error::Unavailable(format!(
        "database: no answer within {}s; the connection is dropped",
        STATEMENT_TIMEOUT.as_secs()
    ))
}

/// `work` within [`STATEMENT_TIMEOUT`]; `Unavailable` past it.
pub(crate) async fn in_time<T>(work: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(STATEMENT_TIMEOUT, work)
        .await
        .unwrap_or_else(|_| Err(timed_out()))
}

pub(crate) fn closed() -> Error {
    Error::Unavailable("database: the store is closed".into())
}

#[cfg(test)]
mod tests {
    use sqlx::{Connection, PgConnection};
    use time::OffsetDateTime;
    use twofold_core::audit::{NewAuditEvent, ResultCode};
    use twofold_core::factors::CodeUse;
    use twofold_testkit::db::{Backend, TestDb};

    use crate::test_support::user_with_token;
    use crate::SqlStore;

    fn event() -> NewAuditEvent {
        NewAuditEvent {
            at: OffsetDateTime::now_utc(),
            actor: "test".into(),
            via: None,
            subject: Some("ann".into()),
            event: "test.held".into(),
            method: None,
            result: ResultCode::Success,
            source_ip: None,
            detail: None,
        }
    }

    /// Ends every other connection to the test's database, as a restart
    /// of PostgreSQL would, and waits until they are gone (the store may
    /// open new ones meanwhile: its listener reconnects).
    async fn terminate_others(url: &str) {
        let mut admin = PgConnection::connect(url).await.unwrap();
        let pids: Vec<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .fetch_all(&mut admin)
        .await
        .unwrap();
        assert!(!pids.is_empty());
        for pid in &pids {
            sqlx::query("SELECT pg_terminate_backend($1)")
                .bind(pid)
                .execute(&mut admin)
                .await
                .unwrap();
        }
        for _ in 0..500 {
            let left: i64 =
                sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)")
                    .bind(&pids)
                    .fetch_one(&mut admin)
                    .await
                    .unwrap();
            if left == 0 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the store's connections were not terminated");
    }

    /// The held connections go (the database restarted, an administrator
    /// ended them): the next sign-in's reads and its accepted code succeed
    /// on new ones, with no error for anyone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lost_connections_cost_no_sign_in_an_error() {
        let db = TestDb::new(Backend::Postgres).await.unwrap();
        let store = SqlStore::connect(&db.url, 4).await.unwrap();
        let (user, token) = user_with_token(&store, "ann").await;
        let accept = |from: i64| {
            let store = store.clone();
            async move {
                store
                    .accept_code(user, token, from, from + 1, None, &event())
                    .await
            }
        };
        // Every held reader and the lane in use, then all of them gone.
        let reads = tokio::join!(
            store.passcode_view("ann"),
            store.passcode_view("ann"),
            store.passcode_view("ann"),
        );
        for read in [reads.0, reads.1, reads.2] {
            assert!(read.unwrap().is_some());
        }
        assert_eq!(accept(0).await.unwrap(), CodeUse::Accepted);
        terminate_others(&db.url).await;

        let view = store.passcode_view("ann").await.unwrap().unwrap();
        assert_eq!(view.tokens[0].counter, 1);
        assert!(store.find_user("ann").await.unwrap().is_some());
        assert_eq!(
            store
                .failures(user, twofold_core::factors::Factor::Code)
                .await
                .unwrap(),
            view.code_failures
        );
        assert_eq!(accept(1).await.unwrap(), CodeUse::Accepted);
        assert_eq!(accept(1).await.unwrap(), CodeUse::Taken);
        store.close().await;
    }
}
