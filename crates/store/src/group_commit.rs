//! Group commit for the hot writes — a code accepted, a wrong guess counted,
//! an audit row — so that a burst of sign-ins costs one transaction and one
//! fsync per batch instead of one per request.
//!
//! Each hot write is a [`GroupedWrite`]: a small value that knows how to make
//! its change on a connection. `SqlStore::grouped` queues it on a *lane*: a
//! task that owns the writing for its share of the users. The lane takes
//! whatever is queued (up to [`MAX_BATCH`]), opens one transaction, runs the
//! writes one after another, commits once, and only then answers each
//! request — so no decision is acknowledged before it is durable, and the
//! replay guard (an OATH counter moved by compare-and-set) holds exactly as
//! with one transaction per request: the writes of one batch run in order on
//! one connection, and each sees the ones before it.
//!
//! A write that fails makes the lane roll the transaction back, answer that
//! write with its own error, and run the others again in a fresh one — so
//! the batch commits everything but the failed write. (A savepoint per write
//! would do the same, but costs two more statements per write, every time,
//! for a case that is rare.) A write must therefore be repeatable, and one
//! that decides to change nothing (a code already taken, a factor closed)
//! decides before it writes. When the commit itself fails, every write of
//! that batch gets the error — none of them was acknowledged — and later
//! batches are not affected. On PostgreSQL a write that lost a deadlock or
//! serialization check against another node is tried again in the next
//! batch, at most [`MAX_ATTEMPTS`] times.
//!
//! Lanes: SQLite has one writer, so one lane. PostgreSQL gets several, so
//! its connections work in parallel; a user's writes always go to the same
//! lane (the lane key is the user id), which keeps them in order and keeps
//! two batches of one node from waiting on each other's rows.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::{AnyConnection, AnyPool, Connection};
use tokio::sync::{mpsc, oneshot};
use twofold_core::{Error, Result};

use crate::errors::db_err;

/// Writes taken into one transaction at most. Enough to carry any burst a
/// node sees between two commits; small enough that one batch never holds
/// the writer for long.
pub(crate) const MAX_BATCH: usize = 256;
/// How often a write that lost a deadlock is run again before its request
/// gets the error.
const MAX_ATTEMPTS: u32 = 3;
/// Writes waiting per lane; a request beyond this waits to queue (back
/// pressure, not unbounded memory).
const QUEUE: usize = 4096;

/// One hot write. `run` may be called more than once (again after another
/// write of its batch failed, or after a deadlock), so it must not consume
/// what it writes; and when it decides to change nothing it decides before
/// it writes anything.
#[async_trait]
pub(crate) trait GroupedWrite: Send + 'static {
    type Output: Send + 'static;

    async fn run(&mut self, conn: &mut AnyConnection) -> Result<Self::Output>;
}

/// A write in a lane's queue, its type erased.
#[async_trait]
trait Queued: Send {
    /// Runs the write; its answer is kept for `answer`.
    async fn run(&mut self, conn: &mut AnyConnection) -> Result<()>;
    /// Answers after the batch's commit (`Ok`) or its failure.
    fn answer(self: Box<Self>, committed: Result<()>);
    /// Answers with the write's own error.
    fn fail(self: Box<Self>, error: Error);
    /// Counts one more try; false when it has had its tries.
    fn try_again(&mut self) -> bool;
}

struct Pending<W: GroupedWrite> {
    write: W,
    output: Option<W::Output>,
    reply: oneshot::Sender<Result<W::Output>>,
    attempts: u32,
}

#[async_trait]
impl<W: GroupedWrite> Queued for Pending<W> {
    async fn run(&mut self, conn: &mut AnyConnection) -> Result<()> {
        self.output = Some(self.write.run(conn).await?);
        Ok(())
    }

    fn answer(self: Box<Self>, committed: Result<()>) {
        let reply = match (committed, self.output) {
            (Ok(()), Some(output)) => Ok(output),
            (Ok(()), None) => Err(Error::Internal(
                "a grouped write ran without an answer".into(),
            )),
            (Err(e), _) => Err(e),
        };
        // The request may have gone (its client hung up): nothing to tell.
        let _ = self.reply.send(reply);
    }

    fn fail(self: Box<Self>, error: Error) {
        let _ = self.reply.send(Err(error));
    }

    fn try_again(&mut self) -> bool {
        self.attempts += 1;
        self.attempts < MAX_ATTEMPTS
    }
}

type Job = Box<dyn Queued>;

/// The lanes of one store. Cheap to clone (the senders are shared).
#[derive(Debug, Clone)]
pub(crate) struct Lanes {
    senders: Vec<mpsc::Sender<Job>>,
    /// Transactions committed by all lanes (writes ÷ this = batch size).
    commits: Arc<AtomicU64>,
}

impl Lanes {
    /// Starts `count` lanes writing through `pool`, each beginning its
    /// transactions with `begin` (SQLite: `BEGIN IMMEDIATE`).
    pub(crate) fn start(pool: &AnyPool, count: usize, begin: &'static str) -> Lanes {
        let commits = Arc::new(AtomicU64::new(0));
        let senders = (0..count.max(1))
            .map(|_| {
                let (tx, rx) = mpsc::channel(QUEUE);
                tokio::spawn(lane(pool.clone(), rx, begin, commits.clone()));
                tx
            })
            .collect();
        Lanes { senders, commits }
    }

    /// Transactions the lanes have committed so far.
    pub(crate) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Tells a background task whether the store is still in use: it is
    /// while any handle (holding these senders) is.
    pub(crate) fn watch(&self) -> Alive {
        Alive(self.senders[0].downgrade())
    }

    /// Queues `write` on the lane of `key` and waits until the batch that
    /// holds it has committed (or failed).
    pub(crate) async fn run<W: GroupedWrite>(&self, key: i64, write: W) -> Result<W::Output> {
        let lane = usize::try_from(key.unsigned_abs() % self.senders.len() as u64).unwrap_or(0);
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(Pending {
            write,
            output: None,
            reply,
            attempts: 0,
        });
        if self.senders[lane].send(job).await.is_err() {
            return Err(Error::Unavailable("database: the store is closed".into()));
        }
        answer.await.unwrap_or_else(|_| {
            Err(Error::Internal(
                "a grouped write was dropped without an answer".into(),
            ))
        })
    }
}

/// See `Lanes::watch`.
pub(crate) struct Alive(mpsc::WeakSender<Job>);

impl Alive {
    pub(crate) fn is_alive(&self) -> bool {
        self.0.strong_count() > 0
    }
}

/// One lane: waits for a write, takes every other one queued meanwhile,
/// commits them together, repeats. Ends when the store is dropped.
async fn lane(
    pool: AnyPool,
    mut queue: mpsc::Receiver<Job>,
    begin: &'static str,
    commits: Arc<AtomicU64>,
) {
    let mut retry: Vec<Job> = Vec::new();
    loop {
        let mut batch = std::mem::take(&mut retry);
        if batch.is_empty() {
            match queue.recv().await {
                Some(job) => batch.push(job),
                None => return,
            }
        }
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        retry = commit_batch(&pool, batch, begin, &commits).await;
    }
}

/// Runs one batch in one transaction — again without a write that failed,
/// until none fails. Returns the writes to run in the next batch.
async fn commit_batch(
    pool: &AnyPool,
    mut batch: Vec<Job>,
    begin: &'static str,
    commits: &AtomicU64,
) -> Vec<Job> {
    let mut retry: Vec<Job> = Vec::new();
    while !batch.is_empty() {
        let mut conn = match pool.acquire().await {
            Ok(conn) => conn,
            Err(e) => {
                fail_all(batch, &db_err(e));
                return retry;
            }
        };
        let mut tx = match AnyConnection::begin_with(&mut conn, begin).await {
            Ok(tx) => tx,
            Err(e) => {
                fail_all(batch, &db_err(e));
                return retry;
            }
        };
        let mut failed = None;
        for (at, job) in batch.iter_mut().enumerate() {
            if let Err(e) = job.run(&mut tx).await {
                failed = Some((at, e));
                break;
            }
        }
        let Some((at, e)) = failed else {
            match tx.commit().await.map_err(db_err) {
                Ok(()) => {
                    commits.fetch_add(1, Ordering::Relaxed);
                    for job in batch {
                        job.answer(Ok(()));
                    }
                }
                Err(e) => fail_all(batch, &e),
            }
            return retry;
        };
        // Nothing of this attempt stays. A rollback that fails means a lost
        // connection, which the pool replaces.
        let _ = tx.rollback().await;
        let mut job = batch.remove(at);
        if retryable(&e) && job.try_again() {
            retry.push(job);
        } else {
            job.fail(e);
        }
    }
    retry
}

/// A write that lost to another node's transaction (PostgreSQL deadlock
/// or serialization failure; `db_err` reports them as `Unavailable`).
fn retryable(e: &Error) -> bool {
    matches!(e, Error::Unavailable(m) if m.contains("deadlock") || m.contains("could not serialize"))
}

fn fail_all(jobs: Vec<Job>, e: &Error) {
    for job in jobs {
        job.fail(same_error(e));
    }
}

/// The batch's error for each of its writes (errors are not `Clone`).
fn same_error(e: &Error) -> Error {
    match e {
        Error::Unavailable(m) => Error::Unavailable(m.clone()),
        other => Error::Internal(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sqlx::Row;
    use time::OffsetDateTime;
    use twofold_core::audit::{NewAuditEvent, ResultCode};
    use twofold_testkit::db::{Backend, TestDb};

    use super::*;
    use crate::audit::insert_audit;
    use crate::SqlStore;

    fn event(detail: &str) -> NewAuditEvent {
        NewAuditEvent {
            at: OffsetDateTime::now_utc(),
            actor: "test".into(),
            via: None,
            subject: None,
            event: "test.group_commit".into(),
            method: None,
            result: ResultCode::Success,
            source_ip: None,
            detail: Some(detail.into()),
        }
    }

    /// Holds its lane until told to go on.
    struct Blocker {
        running: Option<oneshot::Sender<()>>,
        go: Option<oneshot::Receiver<()>>,
    }

    #[async_trait]
    impl GroupedWrite for Blocker {
        type Output = ();
        async fn run(&mut self, _conn: &mut AnyConnection) -> Result<()> {
            if let Some(running) = self.running.take() {
                let _ = running.send(());
            }
            if let Some(go) = self.go.take() {
                let _ = go.await;
            }
            Ok(())
        }
    }

    /// Writes an audit row, then (if `fail`) a statement that fails; or
    /// (if `nothing`) decides to write nothing. Counts its runs.
    struct AuditRow {
        detail: &'static str,
        fail: bool,
        nothing: bool,
        runs: Arc<AtomicU64>,
    }

    #[async_trait]
    impl GroupedWrite for AuditRow {
        type Output = i64;
        async fn run(&mut self, conn: &mut AnyConnection) -> Result<i64> {
            self.runs.fetch_add(1, Ordering::Relaxed);
            if self.nothing {
                return Ok(0);
            }
            let id = insert_audit(conn, &event(self.detail)).await?;
            if self.fail {
                sqlx::query("INSERT INTO no_such_table (x) VALUES (1)")
                    .execute(&mut *conn)
                    .await
                    .map_err(db_err)?;
            }
            Ok(id)
        }
    }

    async fn details(store: &SqlStore) -> Vec<String> {
        sqlx::query("SELECT detail FROM audit_events WHERE event = 'test.group_commit' ORDER BY id")
            .fetch_all(&store.pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<String, _>(0))
            .collect()
    }

    /// Writes queued behind a busy lane go into one transaction: the one
    /// that fails gets its own error and leaves nothing behind (not even its
    /// first statement), the one that changes nothing is answered, the
    /// others commit — in one commit, after one rolled-back attempt.
    async fn one_failing_write_fails_alone(backend: Backend) {
        let db = TestDb::new(backend).await.unwrap();
        let store = SqlStore::connect(&db.url, 4).await.unwrap();
        let before = store.lanes.commits();

        let (running, started) = oneshot::channel();
        let (go, wait) = oneshot::channel();
        let blocker = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .grouped(
                        0,
                        Blocker {
                            running: Some(running),
                            go: Some(wait),
                        },
                    )
                    .await
            })
        };
        started.await.unwrap();
        let runs = Arc::new(AtomicU64::new(0));
        let spawn = |detail: &'static str, fail: bool, nothing: bool| {
            let (store, runs) = (store.clone(), runs.clone());
            tokio::spawn(async move {
                let write = AuditRow {
                    detail,
                    fail,
                    nothing,
                    runs,
                };
                store.grouped(0, write).await
            })
        };
        // Queued one after another, in this order, while the lane is busy.
        let sender = store.lanes.senders[0].clone();
        let queued = |n: usize| {
            let sender = sender.clone();
            async move {
                let deadline = std::time::Instant::now() + Duration::from_secs(10);
                while sender.max_capacity() - sender.capacity() < n {
                    assert!(std::time::Instant::now() < deadline, "writes never queued");
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        };
        let first = spawn("first", false, false);
        queued(1).await;
        let failing = spawn("failing", true, false);
        queued(2).await;
        let nothing = spawn("nothing", false, true);
        queued(3).await;
        let last = spawn("last", false, false);
        queued(4).await;
        go.send(()).unwrap();

        blocker.await.unwrap().unwrap();
        assert!(first.await.unwrap().is_ok());
        let error = failing.await.unwrap().unwrap_err();
        assert!(error.to_string().contains("no_such_table"), "{error}");
        assert_eq!(nothing.await.unwrap().unwrap(), 0);
        assert!(last.await.unwrap().is_ok());
        assert_eq!(details(&store).await, ["first", "last"]);
        assert_eq!(
            store.lanes.commits() - before,
            2,
            "the blocker's batch, then one commit for the four queued writes"
        );
        // first and failing ran, the transaction was rolled back, and the
        // three others ran again.
        assert_eq!(runs.load(Ordering::Relaxed), 5);

        // The lane goes on as before.
        store
            .grouped(
                0,
                AuditRow {
                    detail: "after",
                    fail: false,
                    nothing: false,
                    runs: runs.clone(),
                },
            )
            .await
            .unwrap();
        assert_eq!(details(&store).await, ["first", "last", "after"]);
    }

    twofold_testkit::both_backends!(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]; one_failing_write_fails_alone);
}
