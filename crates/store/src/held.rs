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
//! lost-connection error is dropped, and the next user of its slot opens a
//! new one; a read that failed that way on a connection that had been idle
//! is run once more on a fresh one (reads change nothing), so a restarted
//! database costs no sign-in an error.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::AnyConnectOptions;
use sqlx::{AnyConnection, ConnectOptions};
use tokio::sync::{Mutex, MutexGuard};
use twofold_core::{Error, Result};

use crate::errors::db_err;

/// Connections held for the sign-in's reads, opened when first needed.
pub(crate) struct Held {
    options: AnyConnectOptions,
    slots: Box<[Mutex<Option<AnyConnection>>]>,
    next: AtomicUsize,
    /// Set by `SqlStore::close`: later reads and lane writes fail, as the
    /// pool's do.
    closed: Arc<AtomicBool>,
    connect_timeout: Duration,
}

impl fmt::Debug for Held {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Held")
            .field("slots", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl Held {
    pub(crate) fn new(options: AnyConnectOptions, slots: usize, connect_timeout: Duration) -> Held {
        Held {
            options,
            slots: (0..slots.max(1)).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
            closed: Arc::new(AtomicBool::new(false)),
            connect_timeout,
        }
    }

    /// A connection to use alone until the returned value is dropped: a
    /// free one if there is one, else the next in turn once it is free.
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
        let count = self.slots.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % count;
        let free = (0..count).find_map(|i| self.slots[(start + i) % count].try_lock().ok());
        let mut slot = match free {
            Some(slot) => slot,
            None => self.slots[start].lock().await,
        };
        let fresh = new || slot.is_none();
        if fresh {
            *slot = Some(connect(&self.options, self.connect_timeout).await?);
        }
        Ok(Taken { slot, fresh })
    }

    /// What the lanes check before each batch (see `LaneConnection`).
    pub(crate) fn closed_flag(&self) -> Arc<AtomicBool> {
        self.closed.clone()
    }

    /// Drops every held connection; later `take`s fail `Unavailable`.
    pub(crate) async fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        for slot in &*self.slots {
            if let Some(conn) = slot.lock().await.take() {
                let _ = sqlx::Connection::close(conn).await;
            }
        }
    }
}

/// One held connection, in use.
pub(crate) struct Taken<'a> {
    slot: MutexGuard<'a, Option<AnyConnection>>,
    /// Opened for this use (a lost connection here is no stale one).
    fresh: bool,
}

impl Taken<'_> {
    pub(crate) fn conn(&mut self) -> &mut AnyConnection {
        self.slot
            .as_mut()
            .expect("a taken slot always holds a connection")
    }

    /// The domain result of a statement run on this connection; a lost
    /// connection is dropped, so the slot's next user opens a new one.
    pub(crate) fn check<T>(&mut self, result: std::result::Result<T, sqlx::Error>) -> Result<T> {
        result.map_err(|e| {
            if lost(&e) {
                self.slot.take();
            }
            db_err(e)
        })
    }

    /// Whether a read that failed with `e` is worth running again on a
    /// new connection: it failed because this one, idle before, was gone.
    pub(crate) fn stale(&self, e: &sqlx::Error) -> bool {
        !self.fresh && lost(e)
    }
}

/// Runs a read on a held connection; once more on a new one when the held
/// one turned out to be gone (see the module's comment). `$read` is an
/// expression using `$conn: &mut AnyConnection` that yields a sqlx result.
macro_rules! held_read {
    ($held:expr, |$conn:ident| $read:expr) => {{
        let held: &$crate::held::Held = $held;
        let mut taken = held.take().await?;
        let first = {
            let $conn = taken.conn();
            $read
        };
        match first {
            Err(e) if taken.stale(&e) => {
                let _ = taken.check::<()>(Err(e));
                drop(taken);
                let mut taken = held.take_new().await?;
                let again = {
                    let $conn = taken.conn();
                    $read
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
    conn: Option<AnyConnection>,
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

    /// The lane's connection; a new one if it was lost (or never opened).
    pub(crate) async fn conn(&mut self) -> Result<&mut AnyConnection> {
        if self.closed.load(Ordering::Relaxed) {
            self.conn = None;
            return Err(closed());
        }
        if self.conn.is_none() {
            self.conn = Some(connect(&self.options, self.connect_timeout).await?);
        }
        Ok(self.conn.as_mut().expect("just opened"))
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
        self.conn.as_mut()
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

pub(crate) fn closed() -> Error {
    Error::Unavailable("database: the store is closed".into())
}

#[cfg(test)]
mod tests {
    use sqlx::{Connection, PgConnection};
    use time::OffsetDateTime;
    use twofold_core::audit::{NewAuditEvent, ResultCode};
    use twofold_core::factors::{CodeUse, NewOathToken, OathAlgorithm, OathKind, OathParams};
    use twofold_core::user::NewUser;
    use twofold_testkit::db::{Backend, TestDb};

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
        let new = NewUser {
            username: "ann".into(),
            ..NewUser::default()
        };
        let user = store.create_user(&new, &event()).await.unwrap();
        let token = NewOathToken {
            label: "t".into(),
            params: OathParams {
                kind: OathKind::Hotp,
                algorithm: OathAlgorithm::Sha1,
                digits: 6,
                period: 30,
            },
            sealed_secret: "sealed".into(),
            counter: 0,
        };
        let token = store
            .add_oath_token(user.id, &token, &event())
            .await
            .unwrap();
        let accept = |from: i64| {
            let store = store.clone();
            async move {
                store
                    .accept_code(user.id, token.id, from, from + 1, None, &event())
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
                .failures(user.id, twofold_core::factors::Factor::Code)
                .await
                .unwrap(),
            view.code_failures
        );
        assert_eq!(accept(1).await.unwrap(), CodeUse::Accepted);
        assert_eq!(accept(1).await.unwrap(), CodeUse::Taken);
        store.close().await;
    }
}
