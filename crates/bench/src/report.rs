//! What a run prints: a readable block, then one `RESULT key=value ...` line
//! that `scripts/bench.sh` (and `scripts/bench-push.sh`) reads.

use std::fmt::Write as _;
use std::time::Duration;

use crate::args::{LoadConfig, Mode, PushConfig};
use crate::push::PushRecord;
use crate::stats::{ms, Outcome, Recorder, Summary};

/// `cpu`: the load generator's and the server's processor use over the
/// timed phase, in percent of one core, when known.
pub fn text(cfg: &LoadConfig, s: &Summary, rec: &Recorder, cpu: [Option<f64>; 2]) -> String {
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
    if let Some(c) = cpu[0] {
        let _ = writeln!(
            out,
            "CPU           load generator {c:.0} % of one core over the timed phase"
        );
    }
    if let Some(c) = cpu[1] {
        let _ = writeln!(out, "CPU           server {c:.0} % of one core");
    }
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

pub fn result_line(
    mode: Mode,
    s: &Summary,
    failed: u64,
    clients: u32,
    cpu: [Option<f64>; 2],
) -> String {
    let [load, srv] = cpu.map(|c| c.map_or_else(|| "?".to_string(), |c| format!("{c:.0}")));
    format!(
        "RESULT mode={} requests={} accepted={} failed={failed} rps={:.1} p50_ms={} p90_ms={} p99_ms={} max_ms={} \
         clients={clients} client_cpu_pct={load} server_cpu_pct={srv}",
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

fn percentiles(s: &Summary) -> String {
    format!(
        "p50 {}  p90 {}  p99 {}  max {}",
        ms(s.p50_us),
        ms(s.p90_us),
        ms(s.p99_us),
        ms(s.max_us)
    )
}

/// Round trips per second: `n` over `elapsed`.
pub fn per_sec(n: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        n as f64 / secs
    } else {
        0.0
    }
}

pub fn push_text(
    cfg: &PushConfig,
    rec: &PushRecord,
    received: &Summary,
    released: &Summary,
    elapsed: Duration,
) -> String {
    let mut out = String::new();
    let done = rec.round_trips();
    let failed = done - rec.accepted();
    let _ = writeln!(out, "round trips   {done} of {}", cfg.round_trips);
    let _ = writeln!(out, "accepted      {}", rec.accepted());
    let _ = writeln!(out, "not accepted  {failed}");
    for (outcome, n) in rec
        .outcomes
        .iter()
        .filter(|(o, _)| **o != Outcome::Accepted)
    {
        let _ = writeln!(out, "  {outcome}: {n}");
    }
    if done < cfg.round_trips {
        let _ = writeln!(
            out,
            "not started   {} (--max-duration-secs {} passed)",
            cfg.round_trips - done,
            cfg.max_duration.as_secs()
        );
    }
    let _ = writeln!(out, "elapsed       {:.2} s", elapsed.as_secs_f64());
    let _ = writeln!(out, "round trips/s {:.1}", per_sec(done, elapsed));
    let _ = writeln!(
        out,
        "created → device received (ms)  {}",
        percentiles(received)
    );
    let _ = writeln!(
        out,
        "created → caller released (ms)  {}",
        percentiles(released)
    );
    let _ = writeln!(
        out,
        "device polls that came back without the request: {}",
        rec.extra_polls
    );
    if !rec.failure_samples.is_empty() {
        let _ = writeln!(out, "first failures:");
        for f in &rec.failure_samples {
            let _ = writeln!(out, "  {f}");
        }
    }
    if failed > 0 {
        let _ = writeln!(
            out,
            "WARNING: {failed} of {done} round trips were not accepted"
        );
    }
    out
}

pub fn push_result_line(
    done: u64,
    accepted: u64,
    failed: u64,
    received: &Summary,
    released: &Summary,
    elapsed: Duration,
) -> String {
    format!(
        "RESULT mode=push round_trips={done} accepted={accepted} failed={failed} rps={:.1} \
         recv_p50_ms={} recv_p90_ms={} recv_p99_ms={} recv_max_ms={} \
         rel_p50_ms={} rel_p90_ms={} rel_p99_ms={} rel_max_ms={}",
        per_sec(done, elapsed),
        ms(received.p50_us),
        ms(received.p90_us),
        ms(received.p99_us),
        ms(received.max_us),
        ms(released.p50_us),
        ms(released.p90_us),
        ms(released.p99_us),
        ms(released.max_us),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_result_line_is_key_value() {
        let e = Duration::from_secs(4);
        let r = Summary::from_samples(vec![1000, 2000, 3000, 4000], 4, e);
        let l = Summary::from_samples(vec![5000, 6000, 7000, 8000], 4, e);
        assert_eq!(
            push_result_line(4, 4, 0, &r, &l, e),
            "RESULT mode=push round_trips=4 accepted=4 failed=0 rps=1.0 \
             recv_p50_ms=2.00 recv_p90_ms=4.00 recv_p99_ms=4.00 recv_max_ms=4.00 \
             rel_p50_ms=6.00 rel_p90_ms=8.00 rel_p99_ms=8.00 rel_max_ms=8.00"
        );
        assert!(per_sec(1, Duration::ZERO).abs() < f64::EPSILON);
    }

    #[test]
    fn result_line_is_key_value() {
        let s = Summary::from_samples(vec![1000, 2000, 3000, 4000], 4, Duration::from_secs(2));
        assert_eq!(
            result_line(Mode::PinOtp, &s, 0, 16, [Some(42.4), None]),
            "RESULT mode=pin-otp requests=4 accepted=4 failed=0 rps=2.0 \
             p50_ms=2.00 p90_ms=4.00 p99_ms=4.00 max_ms=4.00 clients=16 client_cpu_pct=42 \
             server_cpu_pct=?"
        );
    }
}
