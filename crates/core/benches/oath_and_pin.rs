//! Micro-benchmarks of the checks on the SDK's hot path:
//!
//! * TOTP verification with a window of 1 (three candidate steps), SHA-1, 6 digits;
//! * HOTP verification with a look-ahead of 10 (ten candidate counters);
//! * a PIN check: argon2id verification at `HashCost::Production` (what the
//!   server stores PINs with) and at `HashCost::Fast` (the test suites' cost)
//!   for comparison.
//!
//! Verification is constant-time over its candidates, so the matching code
//! costs what a wrong one does. Settings are modest so that
//! `cargo bench -p twofold-core` finishes in about a minute.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use twofold_core::factors::{OathAlgorithm, OathKind, OathParams};
use twofold_core::oath;
use twofold_core::password::{HashCost, Pepper, SecretHasher};

/// RFC 4226/6238's SHA-1 test secret.
const SECRET: &[u8] = b"12345678901234567890";
/// A fixed instant (RFC 6238's 2005-03-18 vector), so runs are comparable.
const NOW: i64 = 1_111_111_109;

fn params(kind: OathKind) -> OathParams {
    OathParams {
        kind,
        algorithm: OathAlgorithm::Sha1,
        digits: 6,
        period: 30,
    }
}

fn oath_checks(c: &mut Criterion) {
    let mut group = c.benchmark_group("oath");

    let totp = params(OathKind::Totp);
    let step = oath::totp_step(NOW, totp.period);
    let code = oath::hotp(
        SECRET,
        u64::try_from(step).unwrap_or(0),
        OathAlgorithm::Sha1,
        6,
    );
    assert!(oath::verify_totp(SECRET, &totp, &code, NOW, 1, 0).is_some());
    group.bench_function("totp_verify_sha1_6_window_1", |b| {
        b.iter(|| {
            oath::verify_totp(
                black_box(SECRET),
                black_box(&totp),
                black_box(&code),
                black_box(NOW),
                1,
                0,
            )
        });
    });

    let hotp = params(OathKind::Hotp);
    // The code of the last counter in the window: the search covers all ten
    // either way, this just makes the intent plain.
    let code = oath::hotp(SECRET, 9, OathAlgorithm::Sha1, 6);
    assert_eq!(oath::verify_hotp(SECRET, &hotp, &code, 0, 10), Some(9));
    group.bench_function("hotp_verify_sha1_6_look_ahead_10", |b| {
        b.iter(|| {
            oath::verify_hotp(
                black_box(SECRET),
                black_box(&hotp),
                black_box(&code),
                black_box(0),
                10,
            )
        });
    });
    group.finish();
}

fn pin_checks(c: &mut Criterion) {
    let mut group = c.benchmark_group("pin");
    // Tens of milliseconds per iteration: flat sampling keeps the run short.
    group.sampling_mode(SamplingMode::Flat);
    for (name, cost) in [
        ("argon2id_verify_production", HashCost::Production),
        ("argon2id_verify_fast", HashCost::Fast),
    ] {
        let hasher = SecretHasher::new(cost, Pepper::random());
        let phc = hasher.hash_blocking("4826").expect("hashing a PIN");
        assert!(hasher.verify_blocking("4826", &phc));
        group.bench_function(name, |b| {
            b.iter(|| hasher.verify_blocking(black_box("4826"), black_box(&phc)));
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = oath_checks, pin_checks
}
criterion_main!(benches);
