//! Time as a port, so that expiry, lockout and OATH windows are testable.

use std::sync::atomic::{AtomicI64, Ordering};
use time::OffsetDateTime;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> OffsetDateTime;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that only moves when told to (tests, simulations).
#[derive(Debug)]
pub struct ManualClock {
    unix_nanos: AtomicI64,
}

impl ManualClock {
    pub fn new(start: OffsetDateTime) -> Self {
        Self {
            unix_nanos: AtomicI64::new(to_nanos(start.unix_timestamp_nanos())),
        }
    }

    pub fn advance(&self, by: time::Duration) {
        self.unix_nanos
            .fetch_add(to_nanos(by.whole_nanoseconds()), Ordering::SeqCst);
    }

    pub fn set(&self, to: OffsetDateTime) {
        self.unix_nanos
            .store(to_nanos(to.unix_timestamp_nanos()), Ordering::SeqCst);
    }
}

/// Nanoseconds as stored by [`ManualClock`]; an `i64` spans the years
/// 1677 to 2262, and a test that leaves that range is a bug, not a wrap.
fn to_nanos(nanos: i128) -> i64 {
    i64::try_from(nanos).expect("ManualClock time outside the years 1677..2262")
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(
            self.unix_nanos.load(Ordering::SeqCst),
        ))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let start = time::macros::datetime!(2026-01-01 00:00 UTC);
        let clock = ManualClock::new(start);
        assert_eq!(clock.now(), start);
        clock.advance(time::Duration::minutes(5));
        assert_eq!(clock.now(), start + time::Duration::minutes(5));
    }
}
