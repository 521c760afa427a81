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

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};
use twofold_core::audit::NewAuditEvent;
use twofold_core::{Error, Result};

use crate::conn::Conn;
use crate::direct::sqlite_err;
use crate::errors::{copy_of, db_err};
use crate::fast_accept::{accept_together, FastAccept};
use crate::held::{in_time, Held, LaneConnection};

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

    async fn run(&mut self, conn: &mut Conn<'_>) -> Result<Self::Output>;

    /// The write's fast path when it is an accepted code's, which a batch
    /// may run together with the others' (`fast_accept.rs`); `None`: it is
    /// always run alone.
    fn fast_accept(&self) -> Option<(FastAccept, &NewAuditEvent)> {
        None
    }

    /// The output when the fast path did the whole write.
    fn fast_accepted(&self) -> Option<Self::Output> {
        None
    }
}

/// A write in a lane's queue, its type erased.
#[async_trait]
trait Queued: Send {
    /// Runs the write; its answer is kept for `answer`.
    async fn run(&mut self, conn: &mut Conn<'_>) -> Result<()>;
    /// Answers after the batch's commit (`Ok`) or its failure.
    fn answer(self: Box<Self>, committed: Result<()>);
    /// Answers with the write's own error.
    fn fail(self: Box<Self>, error: Error);
    /// Counts one more try; false when it has had its tries.
    fn try_again(&mut self) -> bool;
    /// The lane key it was queued with (a user id for the writes about
    /// one user's codes and guesses).
    fn key(&self) -> i64;
    /// See `GroupedWrite::fast_accept`.
    fn fast_accept(&self) -> Option<(FastAccept, &NewAuditEvent)>;
    /// The fast path did the write (in this transaction): keeps the answer.
    fn fast_done(&mut self);
}

struct Pending<W: GroupedWrite> {
    key: i64,
    write: W,
    output: Option<W::Output>,
    reply: oneshot::Sender<Result<W::Output>>,
    attempts: u32,
}

#[async_trait]
impl<W: GroupedWrite> Queued for Pending<W> {
    async fn run(&mut self, conn: &mut Conn<'_>) -> Result<()> {
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

    fn key(&self) -> i64 {
        self.key
    }

    fn fast_accept(&self) -> Option<(FastAccept, &NewAuditEvent)> {
        self.write.fast_accept()
    }

    fn fast_done(&mut self) {
        self.output = self.write.fast_accepted();
    }
}

type Job = Box<dyn Queued>;

/// The lanes of one store. Cheap to clone (the senders are shared).
#[derive(Debug, Clone)]
pub(crate) struct Lanes {
    senders: Vec<mpsc::Sender<Job>>,
    /// Set by `checkpoint.rs` when SQLite's log should start over; the
    /// direct writer does it between two batches (see `DirectWriter`).
    restart_log: Option<Arc<AtomicBool>>,
    /// Transactions committed by all lanes (writes ÷ this = batch size).
    commits: Arc<AtomicU64>,
    /// Statements that ran a batch's accepted codes together (PostgreSQL,
    /// `fast_accept.rs`), committed or not.
    together: Arc<AtomicU64>,
}

impl Lanes {
    /// Starts `count` lanes writing through `pool`, each beginning its
    /// transactions with `begin`.
    pub(crate) fn start(pool: &AnyPool, count: usize, begin: &'static str) -> Lanes {
        let commits = Arc::new(AtomicU64::new(0));
        let together = Arc::new(AtomicU64::new(0));
        let senders = (0..count.max(1))
            .map(|_| {
                let (tx, rx) = mpsc::channel(QUEUE);
                let writer = PoolWriter {
                    pool: pool.clone(),
                    begin,
                    tx: None,
                };
                tokio::spawn(lane(writer, rx, commits.clone()));
                tx
            })
            .collect();
        Lanes {
            senders,
            restart_log: None,
            commits,
            together,
        }
    }

    /// Starts `count` PostgreSQL lanes, each on a connection of its own
    /// (`held.rs`: no pool round trips per batch).
    pub(crate) fn start_held(held: &Held, count: usize) -> Lanes {
        let commits = Arc::new(AtomicU64::new(0));
        let together = Arc::new(AtomicU64::new(0));
        let senders = (0..count.max(1))
            .map(|_| {
                let (tx, rx) = mpsc::channel(QUEUE);
                let writer = HeldWriter {
                    lane: LaneConnection::new(held),
                    together: together.clone(),
                };
                tokio::spawn(lane(writer, rx, commits.clone()));
                tx
            })
            .collect();
        Lanes {
            senders,
            restart_log: None,
            commits,
            together,
        }
    }

    /// Starts SQLite's one lane on a thread of its own that writes through
    /// `conn`, a direct connection (`direct.rs`): the whole batch runs
    /// there without a hand-off per statement. The thread ends when the
    /// store is dropped.
    pub(crate) fn start_direct(
        conn: rusqlite::Connection,
        closed: Arc<AtomicBool>,
    ) -> Result<Lanes> {
        let commits = Arc::new(AtomicU64::new(0));
        let (tx, rx) = mpsc::channel(QUEUE);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| Error::Internal(format!("the SQLite writer's runtime: {e}")))?;
        let restart_log = Arc::new(AtomicBool::new(false));
        let writer = DirectWriter {
            conn,
            restart_log: restart_log.clone(),
            closed,
        };
        let counted = commits.clone();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || runtime.block_on(lane(writer, rx, counted)))
            .map_err(|e| Error::Internal(format!("starting the SQLite writer: {e}")))?;
        Ok(Lanes {
            senders: vec![tx],
            restart_log: Some(restart_log),
            commits,
            together: Arc::new(AtomicU64::new(0)),
        })
    }

    /// What asks the direct writer to start SQLite's log over after its
    /// next batch (`None`: no direct writer). Holding it does not keep the
    /// lanes alive.
    pub(crate) fn restart_log(&self) -> Option<Arc<AtomicBool>> {
        self.restart_log.clone()
    }

    /// Transactions the lanes have committed so far.
    pub(crate) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Statements that ran a batch's accepted codes together so far.
    pub(crate) fn together(&self) -> u64 {
        self.together.load(Ordering::Relaxed)
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
            key,
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

/// How a lane opens, commits and rolls back its transactions.
#[async_trait]
trait Writer: Send {
    async fn begin(&mut self) -> Result<()>;
    /// Runs `job` in the open transaction.
    async fn run(&mut self, job: &mut Job) -> Result<()>;
    /// Runs what of `batch` can be run together, before the rest runs one
    /// by one; which jobs that finished (by place).
    async fn run_together(&mut self, batch: &mut [Job]) -> Result<Vec<bool>> {
        Ok(vec![false; batch.len()])
    }
    async fn commit(&mut self) -> Result<()>;
    /// Nothing of the transaction stays. A rollback that fails means a
    /// lost connection, which the pool (or SQLite, at the next `BEGIN`)
    /// deals with.
    async fn rollback(&mut self);
    /// Between two batches, with nothing queued waiting on it.
    async fn between_batches(&mut self) {}
    /// The last error lost the connection, and with it the transaction:
    /// nothing of the batch stays, and a write that failed so may run
    /// again in the next one.
    fn connection_lost(&self) -> bool {
        false
    }
}

/// A lane writing through a sqlx pool (PostgreSQL; an in-memory SQLite).
struct PoolWriter {
    pool: AnyPool,
    begin: &'static str,
    tx: Option<sqlx::Transaction<'static, sqlx::Any>>,
}

#[async_trait]
impl Writer for PoolWriter {
    async fn begin(&mut self) -> Result<()> {
        self.tx = Some(self.pool.begin_with(self.begin).await.map_err(db_err)?);
        Ok(())
    }

    async fn run(&mut self, job: &mut Job) -> Result<()> {
        let tx = self.tx.as_mut().ok_or_else(no_transaction)?;
        job.run(&mut Conn::Any(tx)).await
    }

    async fn commit(&mut self) -> Result<()> {
        let tx = self.tx.take().ok_or_else(no_transaction)?;
        tx.commit().await.map_err(db_err)
    }

    async fn rollback(&mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.rollback().await;
        }
    }
}

/// A PostgreSQL lane on its own connection (see `Lanes::start_held`).
struct HeldWriter {
    lane: LaneConnection,
    together: Arc<AtomicU64>,
}

impl HeldWriter {
    /// `COMMIT` (or `BEGIN`, on `conn`), in time.
    async fn simple(conn: &mut sqlx::AnyConnection, sql: &'static str) -> Result<()> {
        in_time(Conn::Any(conn).execute(sql, &[])).await.map(|_| ())
    }

    /// Forgets the connection after `e` when it means it is gone (a
    /// timeout included).
    fn after(&mut self, done: Result<()>) -> Result<()> {
        if let Err(e) = &done {
            self.lane.after_error(e);
        }
        done
    }
}

#[async_trait]
impl Writer for HeldWriter {
    /// A connection idle since the last batch may be gone (the database
    /// restarted): then BEGIN fails having started nothing, and is tried
    /// once more on a new connection before the batch gets the error.
    async fn begin(&mut self) -> Result<()> {
        let was_open = self.lane.is_open();
        let done = Self::simple(self.lane.for_begin().await?, "BEGIN").await;
        match self.after(done) {
            Err(_) if was_open && !self.lane.is_open() => {
                let done = Self::simple(self.lane.for_begin().await?, "BEGIN").await;
                self.after(done)
            }
            done => done,
        }
    }

    async fn run(&mut self, job: &mut Job) -> Result<()> {
        let conn = self.lane.conn()?;
        let done = in_time(job.run(&mut Conn::Any(conn))).await;
        self.after(done)
    }

    async fn commit(&mut self) -> Result<()> {
        let done = Self::simple(self.lane.conn()?, "COMMIT").await;
        self.after(done)
    }

    fn connection_lost(&self) -> bool {
        !self.lane.is_open()
    }

    /// The batch's accepted codes in one statement (`fast_accept.rs`).
    async fn run_together(&mut self, batch: &mut [Job]) -> Result<Vec<bool>> {
        let mut done = vec![false; batch.len()];
        let (places, accepts) = together(batch);
        // One alone costs the same either way.
        if accepts.len() < 2 {
            return Ok(done);
        }
        let conn = self.lane.conn()?;
        self.together.fetch_add(1, Ordering::Relaxed);
        let accepted = in_time(accept_together(conn, &accepts)).await;
        drop(accepts);
        let accepted = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                self.lane.after_error(&e);
                return Err(e);
            }
        };
        for at in accepted {
            done[places[at]] = true;
            batch[places[at]].fast_done();
        }
        Ok(done)
    }

    async fn rollback(&mut self) {
        let Some(conn) = self.lane.current() else {
            return;
        };
        if in_time(Conn::Any(conn).execute("ROLLBACK", &[]))
            .await
            .is_err()
        {
            self.lane.drop_connection();
        }
    }
}

/// Which accepted codes of `batch` may run together, before everything
/// else in it, and still decide as one by one in the order they came: only
/// those of users with no other write queued before them in the batch (a
/// wrong guess counted first may close the factor the code would pass), and
/// only a token's first code (a second one runs after, on its own, and
/// finds the code taken). Their places, and what each accepts.
fn together(batch: &[Job]) -> (Vec<usize>, Vec<(FastAccept, &NewAuditEvent)>) {
    let mut alone_users = std::collections::HashSet::new();
    let mut tokens = std::collections::HashSet::new();
    let mut places = Vec::new();
    let mut accepts = Vec::new();
    for (place, job) in batch.iter().enumerate() {
        match job.fast_accept() {
            Some((accept, audit))
                if !alone_users.contains(&job.key()) && tokens.insert(accept.token_id) =>
            {
                places.push(place);
                accepts.push((accept, audit));
            }
            // This user's later writes run after this one, in order.
            _ => {
                alone_users.insert(job.key());
            }
        }
    }
    (places, accepts)
}

/// SQLite's lane on its direct writer connection (see `start_direct`).
struct DirectWriter {
    conn: rusqlite::Connection,
    restart_log: Arc<AtomicBool>,
    /// `SqlStore::close` was called (see `Direct::close`).
    closed: Arc<AtomicBool>,
}

#[async_trait]
impl Writer for DirectWriter {
    async fn begin(&mut self) -> Result<()> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(crate::direct::closed());
        }
        // IMMEDIATE: the write lock up front (see `SqlStore::begin_write`).
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(sqlite_err)
    }

    async fn run(&mut self, job: &mut Job) -> Result<()> {
        job.run(&mut Conn::Direct(&mut self.conn)).await
    }

    async fn commit(&mut self) -> Result<()> {
        self.conn.execute_batch("COMMIT").map_err(sqlite_err)
    }

    async fn rollback(&mut self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    /// Starts the log over when `checkpoint.rs` asks. SQLite restarts it
    /// only when a write begins with everything in it copied back and no
    /// reader inside it — under steady load that moment never comes and
    /// the log grows without end. A `RESTART` checkpoint copies the little
    /// the background one has not, waits the microseconds the readers need,
    /// and resets the log; done here, by the one writer, between batches,
    /// it holds no other write back.
    async fn between_batches(&mut self) {
        if !self.restart_log.swap(false, Ordering::Relaxed) {
            return;
        }
        let restarted = self
            .conn
            .query_row("PRAGMA wal_checkpoint(RESTART)", [], |row| {
                row.get::<_, i64>(0)
            });
        match restarted {
            Ok(0) => {}
            Ok(_) => tracing::debug!("the write-ahead log could not start over yet (readers)"),
            Err(e) => tracing::debug!(error = %e, "restarting the write-ahead log failed"),
        }
    }
}

fn no_transaction() -> Error {
    Error::Internal("a grouped write ran outside its transaction".into())
}

/// One lane: waits for a write, takes every other one queued meanwhile,
/// commits them together, repeats. Ends when the store is dropped.
async fn lane(mut writer: impl Writer, mut queue: mpsc::Receiver<Job>, commits: Arc<AtomicU64>) {
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
        retry = commit_batch(&mut writer, batch, &commits).await;
        if retry.is_empty() {
            writer.between_batches().await;
        }
    }
}

/// Runs one batch in one transaction — again without a write that failed,
/// until none fails. Returns the writes to run in the next batch.
async fn commit_batch(
    writer: &mut impl Writer,
    mut batch: Vec<Job>,
    commits: &AtomicU64,
) -> Vec<Job> {
    let mut retry: Vec<Job> = Vec::new();
    // Accepted codes together first (`Writer::run_together`), unless that
    // failed in this batch: then each write on its own, which tells whose
    // write it was.
    let mut together = true;
    while !batch.is_empty() {
        let started = std::time::Instant::now();
        if let Err(e) = writer.begin().await {
            fail_all(batch, &e);
            return retry;
        }
        let begun = started.elapsed();
        let done = if together {
            match writer.run_together(&mut batch).await {
                Ok(done) => done,
                Err(e) => {
                    tracing::debug!(error = %e, "the batch's accepted codes together failed; one by one");
                    writer.rollback().await;
                    together = false;
                    continue;
                }
            }
        } else {
            vec![false; batch.len()]
        };
        let mut failed = None;
        for (at, job) in batch.iter_mut().enumerate() {
            if done[at] {
                continue;
            }
            if let Err(e) = writer.run(job).await {
                failed = Some((at, e));
                break;
            }
        }
        let Some((at, e)) = failed else {
            let ran = started.elapsed();
            let committed = writer.commit().await;
            slow_batch(batch.len(), begun, ran, started.elapsed());
            match committed {
                Ok(()) => {
                    commits.fetch_add(1, Ordering::Relaxed);
                    for job in batch {
                        job.answer(Ok(()));
                    }
                }
                Err(e) => {
                    writer.rollback().await;
                    fail_all(batch, &e);
                }
            }
            return retry;
        };
        let lost = writer.connection_lost();
        writer.rollback().await;
        let mut job = batch.remove(at);
        if (retryable(&e) || lost) && job.try_again() {
            retry.push(job);
        } else {
            job.fail(e);
        }
    }
    retry
}

/// A batch that held its requests this long is worth an operator's look
/// (a disk that syncs slowly, another process holding SQLite's write lock).
const SLOW_BATCH: std::time::Duration = std::time::Duration::from_millis(50);

fn slow_batch(
    writes: usize,
    begun: std::time::Duration,
    ran: std::time::Duration,
    total: std::time::Duration,
) {
    if total >= SLOW_BATCH {
        tracing::warn!(
            writes,
            begin_ms = begun.as_millis(),
            run_ms = ran.as_millis(),
            total_ms = total.as_millis(),
            "slow group commit: the batch's requests waited for it"
        );
    }
}

/// A write that lost to another node's transaction (PostgreSQL deadlock
/// or serialization failure; `db_err` reports them as `Unavailable`).
fn retryable(e: &Error) -> bool {
    matches!(e, Error::Unavailable(m) if m.contains("deadlock") || m.contains("could not serialize"))
}

fn fail_all(jobs: Vec<Job>, e: &Error) {
    for job in jobs {
        job.fail(copy_of(e));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sqlx::Row;
    use time::OffsetDateTime;
    use twofold_core::audit::{NewAuditEvent, ResultCode};
    use twofold_core::factors::{CodeUse, GuessPolicy};
    use twofold_testkit::db::{Backend, TestDb};

    use super::*;
    use crate::audit::audit_row;
    use crate::test_support::user_with_token;
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
        async fn run(&mut self, _conn: &mut Conn<'_>) -> Result<()> {
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
        async fn run(&mut self, conn: &mut Conn<'_>) -> Result<i64> {
            self.runs.fetch_add(1, Ordering::Relaxed);
            if self.nothing {
                return Ok(0);
            }
            let id = audit_row(conn, &event(self.detail)).await?;
            if self.fail {
                conn.execute("INSERT INTO no_such_table (x) VALUES (1)", &[])
                    .await?;
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

    twofold_testkit::both_backends!(#[tokio::test(flavor = "multi_thread", worker_threads = 2)];
        one_failing_write_fails_alone,
        accepted_codes_in_one_batch,
        a_guess_queued_before_a_code_is_counted_before_it,
        a_failing_code_of_a_batch_fails_alone);

    fn write(detail: &'static str) -> AuditRow {
        AuditRow {
            detail,
            fail: false,
            nothing: false,
            runs: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Frames in SQLite's log after a passive checkpoint, and how many of
    /// them are copied back.
    async fn log_frames(store: &SqlStore) -> (i64, i64) {
        let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        (row.get::<i64, _>(1), row.get::<i64, _>(2))
    }

    /// The direct writer starts the log over when asked, after its next
    /// batch — with a reader of its own connection pool busy meanwhile —
    /// so the log does not grow without end under steady load.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn direct_writer_restarts_the_log() {
        let db = TestDb::new(Backend::Sqlite).await.unwrap();
        let store = SqlStore::connect(&db.url, 4).await.unwrap();
        for _ in 0..50 {
            store.grouped(0, write("filler")).await.unwrap();
        }
        let (frames, copied) = log_frames(&store).await;
        assert!(
            frames >= 50 && copied == frames,
            "{frames} frames, {copied} copied"
        );
        let restart = store
            .lanes
            .restart_log()
            .expect("a file database has a direct writer");
        restart.store(true, Ordering::Relaxed);
        store.grouped(0, write("asks")).await.unwrap();
        // The restart ran between batches; the next write starts the log
        // at its beginning.
        store.grouped(0, write("after")).await.unwrap();
        let (after, _) = log_frames(&store).await;
        assert!(after < 10, "the log kept {after} frames after a restart");
        assert!(!restart.load(Ordering::Relaxed));
        let n = details(&store).await.len();
        assert_eq!(n, 52);
    }

    /// A write lock held by another connection (here sqlx's, as the CLI
    /// would) makes the direct writer wait, not fail.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn direct_writer_waits_for_another_writer() {
        let db = TestDb::new(Backend::Sqlite).await.unwrap();
        let store = SqlStore::connect(&db.url, 4).await.unwrap();
        // BEGIN IMMEDIATE: the write lock, held until the commit.
        let held = store.begin_write().await.unwrap();
        let waiting = {
            let store = store.clone();
            tokio::spawn(async move { store.grouped(0, write("waited")).await })
        };
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(!waiting.is_finished(), "the write went around the lock");
        held.commit().await.unwrap();
        waiting.await.unwrap().unwrap();
        assert_eq!(details(&store).await, ["waited"]);
    }

    /// Waits until `n` writes are queued on the lane of `sender`.
    async fn wait_queued(sender: &mpsc::Sender<Job>, n: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while sender.max_capacity() - sender.capacity() < n {
            assert!(std::time::Instant::now() < deadline, "writes never queued");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Holds the store's lane 0 with a `Blocker`; the returned sender lets
    /// the lane go on.
    async fn hold_lane(
        store: &SqlStore,
    ) -> (oneshot::Sender<()>, tokio::task::JoinHandle<Result<()>>) {
        let (running, started) = oneshot::channel();
        let (go, wait) = oneshot::channel();
        let blocker = {
            let store = store.clone();
            tokio::spawn(async move {
                let write = Blocker {
                    running: Some(running),
                    go: Some(wait),
                };
                store.grouped(0, write).await
            })
        };
        started.await.unwrap();
        (go, blocker)
    }

    /// Queues an accepted code of `token` (0 → 1) as a task of its own.
    fn accept(
        store: &SqlStore,
        (user, token): (i64, i64),
        policy: GuessPolicy,
        detail: &'static str,
    ) -> tokio::task::JoinHandle<Result<CodeUse>> {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .accept_code(user, token, 0, 1, Some(&policy), &success(detail))
                .await
        })
    }

    fn success(detail: &str) -> NewAuditEvent {
        NewAuditEvent {
            event: "test.accepted".into(),
            ..event(detail)
        }
    }

    async fn accepted_details(store: &SqlStore) -> Vec<String> {
        let mut found: Vec<String> = sqlx::query(
            "SELECT detail FROM audit_events WHERE event = 'test.accepted' ORDER BY id",
        )
        .fetch_all(&store.pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect();
        found.sort();
        found
    }

    async fn counter(store: &SqlStore, token: i64) -> i64 {
        sqlx::query("SELECT counter FROM oath_tokens WHERE id = $1")
            .bind(token)
            .fetch_one(&store.pool)
            .await
            .unwrap()
            .get::<i64, _>(0)
    }

    /// Accepted codes queued behind a busy lane commit in one transaction
    /// (on PostgreSQL in one statement, `fast_accept.rs`) and decide exactly
    /// as one by one: the same code twice is accepted once; a user whose
    /// code factor has a failure on record goes the slow way (gate, streak
    /// ended) in the same batch; each accepted code has its audit row.
    async fn accepted_codes_in_one_batch(backend: Backend) {
        use twofold_core::factors::Factor;
        let db = TestDb::new(backend).await.unwrap();
        // Two connections: one lane, so every write below shares it.
        let store = SqlStore::connect(&db.url, 2).await.unwrap();
        let (ann, ann_token) = user_with_token(&store, "ann").await;
        let (bob, bob_token) = user_with_token(&store, "bob").await;
        let (cy, cy_token) = user_with_token(&store, "cy").await;
        let policy = GuessPolicy::NONE;
        store
            .record_failure(cy, Factor::Code, OffsetDateTime::now_utc(), &policy)
            .await
            .unwrap();
        let before = store.lanes.commits();
        let together = store.lanes.together();

        let (go, blocker) = hold_lane(&store).await;
        let sender = store.lanes.senders[0].clone();
        let ann_first = accept(&store, (ann, ann_token), policy, "ann first");
        wait_queued(&sender, 1).await;
        let bob_code = accept(&store, (bob, bob_token), policy, "bob");
        wait_queued(&sender, 2).await;
        let ann_again = accept(&store, (ann, ann_token), policy, "ann again");
        wait_queued(&sender, 3).await;
        let cy_code = accept(&store, (cy, cy_token), policy, "cy");
        wait_queued(&sender, 4).await;
        go.send(()).unwrap();
        blocker.await.unwrap().unwrap();

        assert_eq!(ann_first.await.unwrap().unwrap(), CodeUse::Accepted);
        assert_eq!(bob_code.await.unwrap().unwrap(), CodeUse::Accepted);
        assert_eq!(ann_again.await.unwrap().unwrap(), CodeUse::Taken);
        assert_eq!(cy_code.await.unwrap().unwrap(), CodeUse::Accepted);
        assert_eq!(
            store.lanes.commits() - before,
            2,
            "the blocker's batch, then one commit for the four codes"
        );
        assert_eq!(accepted_details(&store).await, ["ann first", "bob", "cy"]);
        for token in [ann_token, bob_token, cy_token] {
            assert_eq!(counter(&store, token).await, 1);
        }
        assert!(
            store.failures(cy, Factor::Code).await.unwrap().is_clear(),
            "the accepted code ended cy's streak"
        );
        let expected = match backend {
            Backend::Postgres => 1,
            Backend::Sqlite => 0,
        };
        assert_eq!(
            store.lanes.together() - together,
            expected,
            "PostgreSQL ran the codes together"
        );
    }

    /// When the batch's accepted codes together fail (here: PostgreSQL
    /// cannot hold a NUL in text, which one code's audit detail carries),
    /// the batch is run again one by one: that code fails alone and the
    /// others commit. SQLite stores the NUL.
    async fn a_failing_code_of_a_batch_fails_alone(backend: Backend) {
        let db = TestDb::new(backend).await.unwrap();
        let store = SqlStore::connect(&db.url, 2).await.unwrap();
        let (ann, ann_token) = user_with_token(&store, "ann").await;
        let (bob, bob_token) = user_with_token(&store, "bob").await;
        let (cy, cy_token) = user_with_token(&store, "cy").await;
        let policy = GuessPolicy::NONE;
        let together = store.lanes.together();

        let (go, blocker) = hold_lane(&store).await;
        let sender = store.lanes.senders[0].clone();
        let ann_code = accept(&store, (ann, ann_token), policy, "ann");
        wait_queued(&sender, 1).await;
        let bad = accept(&store, (bob, bob_token), policy, "b\0b");
        wait_queued(&sender, 2).await;
        let cy_code = accept(&store, (cy, cy_token), policy, "cy");
        wait_queued(&sender, 3).await;
        go.send(()).unwrap();
        blocker.await.unwrap().unwrap();

        assert_eq!(ann_code.await.unwrap().unwrap(), CodeUse::Accepted);
        assert_eq!(cy_code.await.unwrap().unwrap(), CodeUse::Accepted);
        let bad = bad.await.unwrap();
        match backend {
            Backend::Postgres => {
                assert_eq!(store.lanes.together() - together, 1, "tried together first");
                assert!(bad.is_err(), "{bad:?}");
                assert_eq!(accepted_details(&store).await, ["ann", "cy"]);
                assert_eq!(counter(&store, bob_token).await, 0, "nothing of it stays");
            }
            Backend::Sqlite => {
                assert_eq!(bad.unwrap(), CodeUse::Accepted);
                assert_eq!(accepted_details(&store).await, ["ann", "b\0b", "cy"]);
            }
        }
    }

    /// A wrong guess queued before a right code of the same user in one
    /// batch is counted before it, as one by one: it closes the code
    /// factor, so the code is refused (`Closed`) — while the other users'
    /// codes of the batch still run together (PostgreSQL).
    async fn a_guess_queued_before_a_code_is_counted_before_it(backend: Backend) {
        use twofold_core::factors::{Backoff, Factor, FailureOutcome};
        let db = TestDb::new(backend).await.unwrap();
        let store = SqlStore::connect(&db.url, 2).await.unwrap();
        let (ann, ann_token) = user_with_token(&store, "ann").await;
        let (bob, bob_token) = user_with_token(&store, "bob").await;
        let (cy, cy_token) = user_with_token(&store, "cy").await;
        // One wrong guess closes the factor for a minute.
        let policy = GuessPolicy {
            backoff: Some(Backoff {
                after: 1,
                base_seconds: 60,
                cap_seconds: Some(600),
                quiet_seconds: 300,
            }),
            hard_lock_after: None,
            hourly_limit: None,
        };
        let together = store.lanes.together();

        let (go, blocker) = hold_lane(&store).await;
        let sender = store.lanes.senders[0].clone();
        let guess = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .record_failure(ann, Factor::Code, OffsetDateTime::now_utc(), &policy)
                    .await
            })
        };
        wait_queued(&sender, 1).await;
        let ann_code = accept(&store, (ann, ann_token), policy, "ann");
        wait_queued(&sender, 2).await;
        let bob_code = accept(&store, (bob, bob_token), policy, "bob");
        wait_queued(&sender, 3).await;
        let cy_code = accept(&store, (cy, cy_token), policy, "cy");
        wait_queued(&sender, 4).await;
        go.send(()).unwrap();
        blocker.await.unwrap().unwrap();

        assert!(matches!(
            guess.await.unwrap().unwrap(),
            FailureOutcome::Counted { .. }
        ));
        assert!(
            matches!(ann_code.await.unwrap().unwrap(), CodeUse::Closed { .. }),
            "the guess before it closed the factor"
        );
        assert_eq!(bob_code.await.unwrap().unwrap(), CodeUse::Accepted);
        assert_eq!(cy_code.await.unwrap().unwrap(), CodeUse::Accepted);
        assert_eq!(counter(&store, ann_token).await, 0);
        assert_eq!(accepted_details(&store).await, ["bob", "cy"]);
        let expected = match backend {
            Backend::Postgres => 1,
            Backend::Sqlite => 0,
        };
        assert_eq!(store.lanes.together() - together, expected);
    }
}
