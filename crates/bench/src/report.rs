//! What a run prints: a readable block, then one `RESULT key=value ...` line
//! that `scripts/bench.sh` reads.

use std::fmt::Write as _;

use crate::args::{LoadConfig, Mode};
use crate::stats::{ms, Outcome, Recorder, Summary};

pub fn text(cfg: &LoadConfig, s: &Summary, rec: &Recorder) -> String {
    let mut out = String::new();
    let failed = s.requests - s.accepted;
    // Writing to a String cannot fail.
    let _ = writeln!(out, "requests      {}", s.requests);
    let _ = writeln!(out, "accepted      {}", s.accepted);
    let _ = writeln!(out, "not accepted  {failed}");
    for (outcome, n) in rec
        .outcomes
        .iter()
        .filter(|(o, _)| **o != Outcome::Accepted)
    {
        let _ = writeln!(out, "  {outcome}: {n}");
    }
    let _ = writeln!(
        out,
        "elapsed       {:.2} s (limit {} s)",
        s.elapsed.as_secs_f64(),
        cfg.duration.as_secs()
    );
    let _ = writeln!(out, "requests/s    {:.1}", s.requests_per_sec());
    let _ = writeln!(
        out,
        "latency (ms)  p50 {}  p90 {}  p99 {}  max {}",
        ms(s.p50_us),
        ms(s.p90_us),
        ms(s.p99_us),
        ms(s.max_us)
    );
    if !rec.failure_samples.is_empty() {
        let _ = writeln!(out, "first failures:");
        for f in &rec.failure_samples {
            let _ = writeln!(out, "  {f}");
        }
    }
    if s.requests > 0 && failed > 0 {
        let _ = writeln!(
            out,
            "WARNING: {failed} of {} requests were not accepted",
            s.requests
        );
    }
    out
}

pub fn result_line(mode: Mode, s: &Summary, failed: u64) -> String {
    format!(
        "RESULT mode={} requests={} accepted={} failed={failed} rps={:.1} p50_ms={} p90_ms={} p99_ms={} max_ms={}",
        mode.name(),
        s.requests,
        s.accepted,
        s.requests_per_sec(),
        ms(s.p50_us),
        ms(s.p90_us),
        ms(s.p99_us),
        ms(s.max_us)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn result_line_is_key_value() {
        let s = Summary::from_samples(vec![1000, 2000, 3000, 4000], 4, Duration::from_secs(2));
        assert_eq!(
            result_line(Mode::PinOtp, &s, 0),
            "RESULT mode=pin-otp requests=4 accepted=4 failed=0 rps=2.0 \
             p50_ms=2.00 p90_ms=4.00 p99_ms=4.00 max_ms=4.00"
        );
    }
}
