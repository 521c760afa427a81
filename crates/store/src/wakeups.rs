//! `Wakeups` for `SqlStore`: topics published on one node reach the
//! subscribers of every node sharing the database. Changes of cached data
//! (settings, service accounts) are `announce`d the same way, plus a
//! generation counter per cache for whoever missed the topic.
//!
//! Subscribers always read one in-process broadcast channel. SQLite serves
//! one node, so publishing is sending on that channel. PostgreSQL may serve
//! several: publishing is a `NOTIFY`, and a task per store `LISTEN`s and
//! feeds what arrives (this node's own notifications included) into the
//! channel — so a PostgreSQL publish never also sends locally, or local
//! subscribers would see every topic twice.

use std::str::FromStr;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use sqlx::pool::CloseEvent;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::{AnyConnection, ConnectOptions};
use tokio::sync::broadcast;
use twofold_core::ports::{CacheGenerations, Wakeups};
use twofold_core::{Error, Result};

use crate::errors::db_err;
use crate::rows::get;
use crate::SqlStore;

/// The PostgreSQL notification channel every node listens on.
const CHANNEL: &str = "twofold_wakeups";
/// Topics a slow subscriber may fall behind before it lags (and, in the
/// engine, wakes every waiter instead).
const CAPACITY: usize = 1024;
/// Waits between attempts to listen again: doubling from the first to the
/// last, so a database that is down is not hammered, and one that comes
/// back is listened to again within seconds.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);
/// A listener up this long counts as recovered.
const STABLE: Duration = Duration::from_secs(30);

/// The channel a store's subscribers read.
pub(crate) fn channel() -> broadcast::Sender<String> {
    broadcast::channel(CAPACITY).0
}

#[async_trait]
impl Wakeups for SqlStore {
    async fn publish(&self, topic: &str) -> Result<()> {
        if self.backend() == "postgres" {
            // Outside a transaction, so it is sent at once; the function
            // form takes the payload as a parameter, NOTIFY does not.
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(topic)
                .execute(&self.pool)
                .await
                .map_err(db_err)?;
        } else {
            // No subscriber yet is not an error: nobody is waiting.
            let _ = self.wakeups.send(topic.to_string());
        }
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<String> {
        self.wakeups.subscribe()
    }

    async fn cache_generations(&self) -> Result<CacheGenerations> {
        let rows = sqlx::query("SELECT name, generation FROM cache_generations")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        let mut generations = CacheGenerations::default();
        for row in &rows {
            let generation: i64 = get(row, "generation")?;
            match get::<String>(row, "name")?.as_str() {
                SETTINGS_CACHE => generations.settings = generation,
                SERVICE_ACCOUNTS_CACHE => generations.service_accounts = generation,
                // A cache of a newer version: not this node's concern.
                _ => {}
            }
        }
        Ok(generations)
    }
}

/// The `cache_generations` row of the settings (migration 0019).
pub(crate) const SETTINGS_CACHE: &str = "settings";
/// The `cache_generations` row of the service accounts.
pub(crate) const SERVICE_ACCOUNTS_CACHE: &str = "service_accounts";

/// Marks, inside the transaction `tx` that changes what the cache `cache`
/// holds, that every node's copy is stale: bumps the cache's generation
/// and, on PostgreSQL, queues `topic`, which PostgreSQL delivers to every
/// listener when — and only if — the transaction commits. (A notification
/// sent before the commit could make another node re-read the old data
/// and keep it; one sent after could be lost with a crash in between.)
/// Once committed, call `announced`.
pub(crate) async fn announce(
    store: &SqlStore,
    tx: &mut AnyConnection,
    cache: &str,
    topic: &str,
) -> Result<()> {
    sqlx::query("UPDATE cache_generations SET generation = generation + 1 WHERE name = $1")
        .bind(cache)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    if store.backend() == "postgres" {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(topic)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
    }
    Ok(())
}

/// After a change `announce`d `topic` committed: SQLite has no
/// notifications, so this process's subscribers (engines sharing this
/// store) hear it here; other processes on the same file see the bumped
/// generation. PostgreSQL delivers `topic` itself, to this node too.
pub(crate) fn announced(store: &SqlStore, topic: &str) {
    if store.backend() != "postgres" {
        // No subscriber yet is not an error: nothing is cached.
        let _ = store.wakeups.send(topic.to_string());
    }
}

/// Starts listening on PostgreSQL at `url` and forwards every topic into
/// `wakeups`, until `closed` fires (the store's pool closed or dropped) or
/// the store's channel is gone. The first `LISTEN` happens before this
/// returns, so whatever is published after connecting is received; a lost
/// connection is listened to again in the background.
pub(crate) async fn listen_postgres(
    url: &str,
    timeout: Duration,
    wakeups: &broadcast::Sender<String>,
    closed: CloseEvent,
) -> Result<()> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| Error::invalid("database.url", format!("not a valid database URL: {e}")))?
        .disable_statement_logging();
    // A pool of one is how PgListener gets a fresh connection after losing
    // one; no idle timeout or lifetime, since the connection must stay.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(timeout)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_lazy_with(options);
    let listener = match tokio::time::timeout(timeout, open(&pool)).await {
        Ok(Ok(listener)) => listener,
        Ok(Err(e)) => {
            return Err(Error::Unavailable(format!(
                "cannot listen for wake-ups on the postgres database: {e}"
            )))
        }
        Err(_) => {
            return Err(Error::Unavailable(format!(
                "cannot listen for wake-ups on the postgres database: no answer within {}s",
                timeout.as_secs()
            )))
        }
    };
    // Weak: the task must not keep the channel (and so the subscribers'
    // `Closed`) alive after the last store is gone.
    let wakeups = wakeups.downgrade();
    tokio::spawn(async move {
        tokio::select! {
            () = closed => {}
            () = forward(pool, listener, wakeups) => {}
        }
    });
    Ok(())
}

async fn open(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Receives notifications for good. `PgListener::recv` reconnects by
/// itself only after some kinds of lost connection; on any error the
/// listener is dropped and a new one opened, with growing waits.
async fn forward(pool: PgPool, listener: PgListener, wakeups: broadcast::WeakSender<String>) {
    let mut listener = Some(listener);
    let mut retry = RETRY_FIRST;
    let mut failing = false;
    let mut since = Instant::now();
    loop {
        let current = match listener.as_mut() {
            Some(l) => l,
            None => match open(&pool).await {
                Ok(l) => {
                    tracing::info!("listening for wake-ups from other nodes again");
                    failing = false;
                    since = Instant::now();
                    listener.insert(l)
                }
                Err(e) => {
                    // Once per outage at warn level: the log is not flooded
                    // every few seconds while the database is away.
                    if failing {
                        tracing::debug!(error = %e, "still cannot listen for wake-ups");
                    } else {
                        tracing::warn!(error = %e, "cannot listen for wake-ups from other nodes");
                    }
                    failing = true;
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(RETRY_MAX);
                    continue;
                }
            },
        };
        match current.recv().await {
            Ok(notification) => {
                let Some(sender) = wakeups.upgrade() else {
                    return;
                };
                // No subscriber yet is not an error: nobody is waiting.
                let _ = sender.send(notification.payload().to_string());
            }
            Err(e) => {
                // Waiters re-read the store now and then, so wake-ups lost
                // meanwhile cost latency only.
                tracing::warn!(error = %e, "lost the wake-up listener; listening again");
                listener = None;
                // A connection that held for a while starts over with a
                // short wait; one lost right after opening keeps backing off.
                if since.elapsed() >= STABLE {
                    retry = RETRY_FIRST;
                }
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(RETRY_MAX);
            }
        }
    }
}
