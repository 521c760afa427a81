//! The raw cost of ONE PIN check: argon2id verification at production cost
//! (`HashCost::Production`, the parameters the server stores PINs with),
//! timed in-process — first on one thread, then on every core at once.
//! Every PIN+OTP validation performs one, so the checks per second of all
//! cores together bound how many such validations the machine can serve,
//! whatever else is fast. (Measured rather than `cores / mean`: two
//! argon2 runs side by side share caches and memory bandwidth — and on a
//! VM two vCPUs may be one physical core — so each is slower than alone.)

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use twofold_core::password::{HashCost, Pepper, SecretHasher};

use crate::stats::ms;

#[derive(Debug, Clone, PartialEq)]
pub struct PinCost {
    /// `m=..,t=..,p=..` as stored in the PHC string.
    pub params: String,
    pub iterations: u32,
    pub mean: Duration,
    pub min: Duration,
    pub max: Duration,
    pub cores: usize,
    /// Checks per second with one check running on each core at once.
    pub all_cores_per_sec: f64,
}

/// Checks per second one core can do at `mean` each.
pub fn per_core_per_sec(mean: Duration) -> f64 {
    let secs = mean.as_secs_f64();
    if secs > 0.0 {
        1.0 / secs
    } else {
        f64::INFINITY
    }
}

impl PinCost {
    /// The bound: what all cores did together.
    pub fn bound_per_sec(&self) -> f64 {
        self.all_cores_per_sec
    }

    pub fn text(&self) -> String {
        format!(
            "PIN hash check (argon2id {}, HashCost::Production): mean {} ms over {} checks \
             (min {}, max {}) on one thread, {:.1} per second; on all {} core(s) at once \
             → at most {:.1} PIN checks/s",
            self.params,
            ms_of(self.mean),
            self.iterations,
            ms_of(self.min),
            ms_of(self.max),
            per_core_per_sec(self.mean),
            self.cores,
            self.bound_per_sec(),
        )
    }

    pub fn result_line(&self) -> String {
        format!(
            "RESULT pin_hash iterations={} mean_ms={} min_ms={} max_ms={} cores={} per_core_per_s={:.1} bound_per_s={:.1}",
            self.iterations,
            ms_of(self.mean),
            ms_of(self.min),
            ms_of(self.max),
            self.cores,
            per_core_per_sec(self.mean),
            self.bound_per_sec()
        )
    }
}

fn ms_of(d: Duration) -> String {
    ms(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// The `m=..,t=..,p=..` part of an argon2 PHC string.
pub fn phc_params(phc: &str) -> Option<&str> {
    phc.split('$').find(|part| part.starts_with("m="))
}

pub fn measure(iterations: u32) -> Result<PinCost> {
    let pin = "4826";
    let hasher = SecretHasher::new(HashCost::Production, Pepper::random());
    let phc = hasher.hash_blocking(pin)?;
    // One untimed check warms caches and the allocator, and proves the hash
    // verifies at all.
    if !hasher.verify_blocking(pin, &phc) {
        bail!("the production-cost PIN hash did not verify");
    }
    let mut times = Vec::with_capacity(iterations as usize);
    for _ in 0..iterations {
        let t0 = Instant::now();
        let ok = hasher.verify_blocking(std::hint::black_box(pin), &phc);
        times.push(t0.elapsed());
        if !ok {
            bail!("the production-cost PIN hash did not verify");
        }
    }
    let total: Duration = times.iter().sum();
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    // Every core checking at once, as the server's argon2 turns do.
    let t0 = Instant::now();
    let all_ok = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..cores)
            .map(|_| {
                scope.spawn(|| {
                    (0..iterations).all(|_| hasher.verify_blocking(std::hint::black_box(pin), &phc))
                })
            })
            .collect();
        runs.into_iter().all(|r| r.join().unwrap_or(false))
    });
    let elapsed = t0.elapsed().as_secs_f64();
    if !all_ok {
        bail!("the production-cost PIN hash did not verify");
    }
    let checks = f64::from(iterations) * cores as f64;
    Ok(PinCost {
        params: phc_params(&phc).unwrap_or("?").to_string(),
        iterations,
        mean: total / iterations.max(1),
        min: times.iter().min().copied().unwrap_or_default(),
        max: times.iter().max().copied().unwrap_or_default(),
        cores,
        all_cores_per_sec: if elapsed > 0.0 {
            checks / elapsed
        } else {
            f64::INFINITY
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_is_what_all_cores_did() {
        let c = PinCost {
            params: "m=19456,t=2,p=1".into(),
            iterations: 20,
            mean: Duration::from_millis(40),
            min: Duration::from_millis(38),
            max: Duration::from_millis(45),
            cores: 2,
            all_cores_per_sec: 45.0,
        };
        assert!((per_core_per_sec(c.mean) - 25.0).abs() < 1e-9);
        assert!((c.bound_per_sec() - 45.0).abs() < 1e-9);
        assert_eq!(
            c.result_line(),
            "RESULT pin_hash iterations=20 mean_ms=40.00 min_ms=38.00 max_ms=45.00 cores=2 \
             per_core_per_s=25.0 bound_per_s=45.0"
        );
        assert!(c.text().contains("at most 45.0 PIN checks/s"));
        assert!(per_core_per_sec(Duration::ZERO).is_infinite());
    }

    #[test]
    fn params_are_read_from_the_phc_string() {
        assert_eq!(
            phc_params("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"),
            Some("m=19456,t=2,p=1")
        );
        assert_eq!(phc_params("not a hash"), None);
    }
}
