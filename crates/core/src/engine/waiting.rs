//! Waiting for something to happen: a caller of
//! `GET /sdk/v1/authenticate/{id}?wait=` for the challenge's decision, a
//! device on `GET /mobile/v1/requests?wait=` for a request to its user.
//! Callers park on a topic (`challenge:<id>`, `user:<id>`) and are woken
//! the moment it is published — on this node directly, from other nodes
//! through the store's `Wakeups` (PostgreSQL LISTEN/NOTIFY), dispatched by
//! one task per engine. A parked caller also wakes at its deadline and at
//! the challenge's expiry; the store is re-read on a long interval only as
//! a safety net for a wake-up lost while a listener reconnected.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::Notify;

use crate::challenge::Challenge;
use crate::error::Result;
use crate::service::Ctx;
use crate::user::UserId;

use super::Engine;

/// The longest wait a caller may ask for.
pub const MAX_WAIT: Duration = Duration::from_mins(1);
/// Re-read of the store in case a wake-up was lost (not the way decisions
/// normally arrive: those wake the caller at once).
const SAFETY_RECHECK: Duration = Duration::from_secs(15);

pub(super) fn challenge_topic(id: &str) -> String {
    format!("challenge:{id}")
}

pub(super) fn user_topic(id: UserId) -> String {
    format!("user:{id}")
}

/// Parked callers by topic.
#[derive(Default)]
pub(super) struct Waiting {
    parked: Mutex<HashMap<String, Arc<Notify>>>,
    /// The dispatcher of other nodes' wake-ups has been started.
    dispatching: std::sync::OnceLock<()>,
}

impl Waiting {
    fn park(&self, topic: &str) -> Arc<Notify> {
        self.parked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(topic.to_string())
            .or_default()
            .clone()
    }

    /// Forgets the topic once no caller waits on it.
    fn leave(&self, topic: &str, parked: Arc<Notify>) {
        let mut map = self.parked.lock().unwrap_or_else(PoisonError::into_inner);
        drop(parked);
        if map.get(topic).is_some_and(|n| Arc::strong_count(n) == 1) {
            map.remove(topic);
        }
    }

    /// Wakes every caller waiting on `topic`.
    pub(super) fn wake(&self, topic: &str) {
        if let Some(n) = self
            .parked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(topic)
        {
            n.notify_waiters();
        }
    }

    /// Wakes everyone (wake-ups were missed: each re-reads the store).
    fn wake_all(&self) {
        for n in self
            .parked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
        {
            n.notify_waiters();
        }
    }
}

impl Engine {
    /// Starts (once) the task that wakes this node's parked callers on the
    /// topics every node publishes. It ends with the store's channel.
    fn dispatch_wakeups(&self) {
        if self.waiting.dispatching.get().is_some() {
            return;
        }
        if self.waiting.dispatching.set(()).is_err() {
            return;
        }
        let mut rx = self.store.subscribe();
        let waiting = Arc::downgrade(&self.waiting);
        tokio::spawn(async move {
            loop {
                let topic = rx.recv().await;
                let Some(waiting) = waiting.upgrade() else {
                    return;
                };
                match topic {
                    Ok(topic) => waiting.wake(&topic),
                    Err(RecvError::Lagged(_)) => waiting.wake_all(),
                    Err(RecvError::Closed) => return,
                }
            }
        });
    }

    /// Tells every node's callers waiting on `topic`. A failure to publish
    /// is logged: it costs the other nodes' callers latency (the safety
    /// re-read), never a decision.
    pub(super) async fn publish(&self, topic: &str) {
        self.waiting.wake(topic);
        if let Err(e) = self.store.publish(topic).await {
            tracing::warn!(error = %e, topic, "could not publish a wake-up to other nodes");
        }
    }

    /// Runs `check` until it returns `Some`, or `wait` (at most `MAX_WAIT`)
    /// has passed, or `until` (a wall-clock instant such as an expiry) is
    /// reached — re-running it whenever `topic` is published.
    pub(super) async fn wait_on<T, F, Fut>(
        &self,
        topic: &str,
        wait: Duration,
        until: Option<time::OffsetDateTime>,
        mut check: F,
    ) -> Result<T>
    where
        F: FnMut(bool) -> Fut,
        Fut: std::future::Future<Output = Result<(bool, T)>>,
    {
        self.dispatch_wakeups();
        let deadline = tokio::time::Instant::now() + wait.min(MAX_WAIT);
        let parked = self.waiting.park(topic);
        let outcome = loop {
            let notified = parked.notified();
            tokio::pin!(notified);
            // Registered before the check: a wake-up between the two still
            // wakes this caller.
            notified.as_mut().enable();
            let now = tokio::time::Instant::now();
            let last = now >= deadline;
            match check(last).await {
                Ok((true, v)) => break Ok(v),
                Ok((false, v)) if last => break Ok(v),
                Ok(_) => {}
                Err(e) => break Err(e),
            }
            let mut nap = SAFETY_RECHECK.min(deadline - now);
            if let Some(until) = until {
                let left = until - self.clock.now();
                if left.is_positive() {
                    // A second past the instant, so the re-check sees it passed.
                    let left = Duration::try_from(left).unwrap_or(nap) + Duration::from_millis(50);
                    nap = nap.min(left);
                } else {
                    nap = Duration::ZERO;
                }
            }
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep(nap) => {}
            }
        };
        self.waiting.leave(topic, parked);
        outcome
    }

    /// `c` once it is decided, or as it stands when `wait` (at most
    /// `MAX_WAIT`) has passed.
    pub(super) async fn wait_for_decision(
        &self,
        ctx: &Ctx,
        c: Challenge,
        wait: Duration,
    ) -> Result<Challenge> {
        let id = c.id.clone();
        let expires_at = c.expires_at;
        let current = Mutex::new(c);
        let (current_ref, id_ref) = (&current, &id);
        self.wait_on(
            &challenge_topic(&id),
            wait,
            Some(expires_at),
            move |_| async move {
                let (current, id) = (current_ref, id_ref);
                let stale = current
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                let Some(fresh) = self.store.challenge(id).await? else {
                    return Ok((true, stale));
                };
                let c = self.settle(ctx, fresh).await?;
                *current.lock().unwrap_or_else(PoisonError::into_inner) = c.clone();
                Ok((c.state.is_final(), c))
            },
        )
        .await
    }
}
