//! Exact latency statistics from every sample (no histogram buckets): the
//! runs are bounded, so keeping one `u64` per request is cheap.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// What one validate request came back with.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// 200 with `"result":"accept"`.
    Accepted,
    /// 200 with `"result":"reject"` and this reason.
    Rejected(String),
    /// Any other HTTP status.
    Status(u16),
    /// 200 whose body is not the documented JSON.
    BadBody,
    /// No response: connection, TLS or timeout.
    Transport,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Accepted => write!(f, "accepted"),
            Outcome::Rejected(reason) => write!(f, "rejected ({reason})"),
            Outcome::Status(code) => write!(f, "HTTP {code}"),
            Outcome::BadBody => write!(f, "unreadable response body"),
            Outcome::Transport => write!(f, "transport error or timeout"),
        }
    }
}

/// Reads a validate response body: `{"result":"accept"|"reject","reason":..}`.
pub fn classify_validate_body(body: &[u8]) -> Outcome {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Outcome::BadBody;
    };
    let reason = v
        .get("reason")
        .and_then(|r| r.as_str())
        .unwrap_or("none")
        .to_string();
    match v.get("result").and_then(|r| r.as_str()) {
        Some("accept") => Outcome::Accepted,
        Some("reject") => Outcome::Rejected(reason),
        _ => Outcome::BadBody,
    }
}

/// One client's record of the timed phase.
#[derive(Debug, Default)]
pub struct Recorder {
    /// Latency of every request, in microseconds, whatever its outcome.
    pub latencies_us: Vec<u64>,
    pub outcomes: BTreeMap<Outcome, u64>,
    /// The first few failures in full, for the report.
    pub failure_samples: Vec<String>,
}

const FAILURE_SAMPLES: usize = 5;

impl Recorder {
    pub fn record(&mut self, latency: Duration, outcome: Outcome, detail: impl FnOnce() -> String) {
        self.latencies_us
            .push(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
        if outcome != Outcome::Accepted && self.failure_samples.len() < FAILURE_SAMPLES {
            self.failure_samples.push(detail());
        }
        *self.outcomes.entry(outcome).or_insert(0) += 1;
    }

    pub fn merge(&mut self, other: Recorder) {
        self.latencies_us.extend(other.latencies_us);
        for (k, n) in other.outcomes {
            *self.outcomes.entry(k).or_insert(0) += n;
        }
        for s in other.failure_samples {
            if self.failure_samples.len() < FAILURE_SAMPLES {
                self.failure_samples.push(s);
            }
        }
    }

    pub fn requests(&self) -> u64 {
        self.outcomes.values().sum()
    }

    pub fn accepted(&self) -> u64 {
        self.outcomes.get(&Outcome::Accepted).copied().unwrap_or(0)
    }
}

/// Nearest-rank percentile of an ascending slice: the smallest value such
/// that at least `p` percent of the samples are at or below it. `None` for
/// no samples; `p` is clamped to 0..=100 (0 gives the minimum).
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let p = if p.is_nan() {
        100.0
    } else {
        p.clamp(0.0, 100.0)
    };
    let n = sorted.len();
    // rank = ceil(p/100 * n), 1-based, at least 1.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    sorted.get(rank.clamp(1, n) - 1).copied()
}

/// The figures printed for one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub requests: u64,
    pub accepted: u64,
    pub elapsed: Duration,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

impl Summary {
    pub fn from_samples(mut latencies_us: Vec<u64>, accepted: u64, elapsed: Duration) -> Self {
        latencies_us.sort_unstable();
        let at = |p| percentile(&latencies_us, p).unwrap_or(0);
        Summary {
            requests: latencies_us.len() as u64,
            accepted,
            elapsed,
            p50_us: at(50.0),
            p90_us: at(90.0),
            p99_us: at(99.0),
            max_us: latencies_us.last().copied().unwrap_or(0),
        }
    }

    pub fn requests_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.requests as f64 / secs
        } else {
            0.0
        }
    }
}

/// Microseconds as milliseconds with two decimals.
pub fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_of_nothing_is_none() {
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn percentile_of_one_sample_is_that_sample() {
        for p in [0.0, 1.0, 50.0, 99.9, 100.0] {
            assert_eq!(percentile(&[7], p), Some(7));
        }
    }

    #[test]
    fn nearest_rank_on_one_to_hundred() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.0), Some(1));
        assert_eq!(percentile(&v, 1.0), Some(1));
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 90.0), Some(90));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 99.5), Some(100));
        assert_eq!(percentile(&v, 100.0), Some(100));
    }

    #[test]
    fn nearest_rank_on_small_sets() {
        // The classic example: 15, 20, 35, 40, 50.
        let v = [15, 20, 35, 40, 50];
        assert_eq!(percentile(&v, 5.0), Some(15));
        assert_eq!(percentile(&v, 30.0), Some(20));
        assert_eq!(percentile(&v, 40.0), Some(20));
        assert_eq!(percentile(&v, 50.0), Some(35));
        assert_eq!(percentile(&v, 100.0), Some(50));
        // p99 of ten samples is the largest; p90 the ninth.
        let ten: Vec<u64> = (10..=100).step_by(10).collect();
        assert_eq!(percentile(&ten, 90.0), Some(90));
        assert_eq!(percentile(&ten, 99.0), Some(100));
    }

    #[test]
    fn out_of_range_p_is_clamped() {
        let v = [1, 2, 3];
        assert_eq!(percentile(&v, -5.0), Some(1));
        assert_eq!(percentile(&v, 250.0), Some(3));
        assert_eq!(percentile(&v, f64::NAN), Some(3));
    }

    #[test]
    fn summary_sorts_and_counts() {
        let samples: Vec<u64> = (1..=1000).rev().collect();
        let s = Summary::from_samples(samples, 990, Duration::from_secs(2));
        assert_eq!(s.requests, 1000);
        assert_eq!(s.accepted, 990);
        assert_eq!(
            (s.p50_us, s.p90_us, s.p99_us, s.max_us),
            (500, 900, 990, 1000)
        );
        assert!((s.requests_per_sec() - 500.0).abs() < 1e-9);
        let empty = Summary::from_samples(Vec::new(), 0, Duration::ZERO);
        assert!(empty.requests_per_sec().abs() < f64::EPSILON);
        assert_eq!(empty.max_us, 0);
    }

    #[test]
    fn validate_bodies_are_classified() {
        assert_eq!(
            classify_validate_body(br#"{"result":"accept","reason":"accepted"}"#),
            Outcome::Accepted
        );
        assert_eq!(
            classify_validate_body(br#"{"result":"reject","reason":"replayed_passcode"}"#),
            Outcome::Rejected("replayed_passcode".into())
        );
        assert_eq!(
            classify_validate_body(br#"{"result":"reject"}"#),
            Outcome::Rejected("none".into())
        );
        assert_eq!(
            classify_validate_body(br#"{"result":"maybe"}"#),
            Outcome::BadBody
        );
        assert_eq!(classify_validate_body(b"<html>"), Outcome::BadBody);
    }

    #[test]
    fn recorder_merges_counts_and_samples() {
        let mut a = Recorder::default();
        a.record(Duration::from_micros(10), Outcome::Accepted, String::new);
        a.record(
            Duration::from_micros(30),
            Outcome::Rejected("wrong_passcode".into()),
            || "u1: wrong".into(),
        );
        let mut b = Recorder::default();
        b.record(Duration::from_micros(20), Outcome::Accepted, String::new);
        b.record(Duration::from_micros(40), Outcome::Status(500), || {
            "u2: 500".into()
        });
        a.merge(b);
        assert_eq!(a.requests(), 4);
        assert_eq!(a.accepted(), 2);
        assert_eq!(a.outcomes.get(&Outcome::Status(500)), Some(&1));
        assert_eq!(a.failure_samples, vec!["u1: wrong", "u2: 500"]);
        let mut lat = a.latencies_us.clone();
        lat.sort_unstable();
        assert_eq!(lat, vec![10, 20, 30, 40]);
    }

    #[test]
    fn failure_samples_are_bounded() {
        let mut r = Recorder::default();
        for i in 0..20 {
            r.record(Duration::from_micros(1), Outcome::Transport, || {
                format!("f{i}")
            });
        }
        assert_eq!(r.failure_samples.len(), FAILURE_SAMPLES);
        assert_eq!(r.requests(), 20);
        assert_eq!(r.accepted(), 0);
    }

    #[test]
    fn milliseconds_format() {
        assert_eq!(ms(12_346), "12.35");
        assert_eq!(ms(1_500), "1.50");
        assert_eq!(ms(0), "0.00");
    }
}
