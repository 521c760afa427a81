//! Waiting for a challenge's decision (`GET /sdk/v1/authenticate/{id}?wait=`):
//! a caller parks on the challenge's id and is woken the moment this node
//! decides it. A decision on another node (or by the clock) is seen by
//! re-reading the store at least once a second; issue-free for one node,
//! and a second at most for several (LISTEN/NOTIFY can replace the re-read
//! when the mobile app needs more).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;

use crate::challenge::Challenge;
use crate::error::Result;
use crate::service::Ctx;

use super::Engine;

/// The longest wait a caller may ask for.
pub const MAX_WAIT: Duration = Duration::from_mins(1);
/// How often a waiting caller re-reads the store for other nodes' decisions.
const RECHECK: Duration = Duration::from_secs(1);

/// Parked callers by challenge id.
#[derive(Default)]
pub(super) struct Waiting(Mutex<HashMap<String, Arc<Notify>>>);

impl Waiting {
    fn park(&self, id: &str) -> Arc<Notify> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(id.to_string())
            .or_default()
            .clone()
    }

    /// Forgets the id once no caller waits on it.
    fn leave(&self, id: &str, parked: Arc<Notify>) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        drop(parked);
        if map.get(id).is_some_and(|n| Arc::strong_count(n) == 1) {
            map.remove(id);
        }
    }

    /// Wakes every caller waiting on `id`.
    pub(super) fn wake(&self, id: &str) {
        if let Some(n) = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
        {
            n.notify_waiters();
        }
    }
}

impl Engine {
    /// `c` once it is decided, or as it stands when `wait` (at most
    /// `MAX_WAIT`) has passed.
    pub(super) async fn wait_for_decision(
        &self,
        ctx: &Ctx,
        c: Challenge,
        wait: Duration,
    ) -> Result<Challenge> {
        let deadline = tokio::time::Instant::now() + wait.min(MAX_WAIT);
        let id = c.id.clone();
        let parked = self.waiting.park(&id);
        let mut c = c;
        let outcome = loop {
            let notified = parked.notified();
            tokio::pin!(notified);
            // Registered before the re-read: a decision between the two
            // still wakes this caller.
            notified.as_mut().enable();
            let fresh = match self.store.challenge(&id).await {
                Ok(Some(fresh)) => fresh,
                Ok(None) => break Ok(c),
                Err(e) => break Err(e),
            };
            c = match self.settle(ctx, fresh).await {
                Ok(c) => c,
                Err(e) => break Err(e),
            };
            let now = tokio::time::Instant::now();
            if c.state.is_final() || now >= deadline {
                break Ok(c);
            }
            let nap = RECHECK.min(deadline - now);
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep(nap) => {}
            }
        };
        self.waiting.leave(&id, parked);
        outcome
    }
}
