//! Per-source throttling of failed secret checks. Per-user limits live in
//! the database (shared by every node); this guards against one address
//! spraying many users, and is kept in memory per node on purpose: it must
//! cost nothing on the hot path and needs no coordination to be effective.
//!
//! `Phantoms` keeps the password record of usernames that do not exist, so
//! that guessing at an unknown name is slowed exactly like guessing at a
//! real one: a back-off that only real users got would tell who exists.

use std::collections::HashMap;

use crate::factors::{FailureState, GuessPolicy};
use std::net::IpAddr;
use std::sync::Mutex;
use time::{Duration, OffsetDateTime};

pub struct Throttle {
    max_failures: u32,
    window: Duration,
    entries: Mutex<HashMap<IpAddr, (OffsetDateTime, u32)>>,
}

impl Throttle {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Throttle {
            max_failures,
            window,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Seconds to wait when `ip` is over its limit at `now`.
    pub fn check(&self, ip: Option<IpAddr>, now: OffsetDateTime) -> Option<u64> {
        let ip = ip?;
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (start, count) = *entries.get(&ip)?;
        let ends = start + self.window;
        if now < ends && count >= self.max_failures {
            // `max(1)` makes it positive, so the cast cannot lose a sign.
            Some((ends - now).whole_seconds().max(1).cast_unsigned())
        } else {
            None
        }
    }

    pub fn fail(&self, ip: Option<IpAddr>, now: OffsetDateTime) {
        let Some(ip) = ip else { return };
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() > 100_000 {
            let window = self.window;
            entries.retain(|_, (start, _)| *start + window > now);
        }
        let e = entries.entry(ip).or_insert((now, 0));
        if e.0 + self.window <= now {
            *e = (now, 0);
        }
        e.1 += 1;
    }
}

/// Password records of unknown usernames (per node, bounded).
#[derive(Default)]
pub struct Phantoms {
    entries: Mutex<HashMap<String, FailureState>>,
}

impl Phantoms {
    const MAX_ENTRIES: usize = 100_000;

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, FailureState>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// When the unknown `name` opens again, if it is closed.
    pub fn closed_until(
        &self,
        name: &str,
        now: OffsetDateTime,
        policy: &GuessPolicy,
    ) -> Option<OffsetDateTime> {
        self.lock().get(name)?.closed_until(now, policy)
    }

    pub fn fail(&self, name: &str, now: OffsetDateTime, policy: &GuessPolicy) {
        let mut entries = self.lock();
        if entries.len() >= Self::MAX_ENTRIES {
            // Forget what no longer slows anyone down.
            entries.retain(|_, s| {
                s.blocked_until.is_some_and(|t| t > now)
                    || s.last_failure_at
                        .is_some_and(|t| t + Duration::hours(1) > now)
            });
            if entries.len() >= Self::MAX_ENTRIES {
                entries.clear();
            }
        }
        let current = entries.get(name).copied().unwrap_or_default();
        entries.insert(name.to_string(), current.after_failure(now, policy).0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_then_forgets() {
        let t = Throttle::new(3, Duration::minutes(5));
        let ip = Some("192.0.2.1".parse().unwrap());
        let now = time::macros::datetime!(2026-01-01 0:00 UTC);
        for _ in 0..3 {
            assert_eq!(t.check(ip, now), None);
            t.fail(ip, now);
        }
        assert_eq!(t.check(ip, now), Some(300));
        assert_eq!(t.check(Some("192.0.2.2".parse().unwrap()), now), None);
        assert_eq!(t.check(None, now), None);
        assert_eq!(t.check(ip, now + Duration::minutes(5)), None);
    }
}
