//! Per-source throttling of failed secret checks. Per-user lockout lives in
//! the database (shared by every node); this guards against one address
//! spraying many users, and is kept in memory per node on purpose: it must
//! cost nothing on the hot path and needs no coordination to be effective.

use std::collections::HashMap;
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
