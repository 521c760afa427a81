//! `twofold-bench seed`: users with an OATH token, straight into the
//! database through `SqlStore::seed_users` (thousands per transaction), for
//! runs at a million users. Each user's seed is derived from its name with
//! a key published here, so the load run computes the codes of the users it
//! picks without a file of a million secrets.

use std::os::unix::fs::DirBuilderExt;
use std::time::Instant;

use anyhow::{Context, Result};
use ring::hmac;
use time::OffsetDateTime;
use twofold_core::factors::{OathAlgorithm, OathKind, OathParams};
use twofold_core::sealing::SealingKey;
use twofold_store::SqlStore;

use crate::args::{SeedConfig, SeedKind};

/// Public on purpose: anyone can compute a seeded user's codes.
const SEED_KEY: &[u8] = b"twofold-bench seeded users v1 (public key: never for real users)";
/// Bytes of a seed: SHA-1's block-friendly 160 bits (RFC 4226).
const SEED_LEN: usize = 20;
/// A progress line every this many users.
const PROGRESS_EVERY: u64 = 100_000;

/// `PREFIX-0000042`.
pub fn seeded_username(prefix: &str, index: u64) -> String {
    format!("{prefix}-{index:07}")
}

/// HMAC-SHA256(SEED_KEY, username), first 20 bytes.
pub fn seeded_secret(username: &str) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, SEED_KEY);
    hmac::sign(&key, username.as_bytes()).as_ref()[..SEED_LEN].to_vec()
}

pub fn params(kind: SeedKind) -> OathParams {
    OathParams {
        kind: match kind {
            SeedKind::Hotp => OathKind::Hotp,
            SeedKind::Totp => OathKind::Totp,
        },
        algorithm: OathAlgorithm::Sha1,
        digits: 6,
        period: 30,
    }
}

pub async fn run(cfg: SeedConfig) -> Result<bool> {
    // As the server makes it: owner-only.
    if !cfg.data_dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&cfg.data_dir)
            .with_context(|| format!("creating {}", cfg.data_dir.display()))?;
    }
    let store = SqlStore::connect(&cfg.database_url, 2)
        .await
        .context("opening the database")?;
    let (key, created) = SealingKey::load_or_create(&cfg.sealing_key_file)
        .with_context(|| format!("sealing key {}", cfg.sealing_key_file.display()))?;
    println!(
        "twofold-bench seed: {} users {} … {} on {} ({} sealing key {})",
        cfg.users,
        seeded_username(&cfg.prefix, cfg.first),
        seeded_username(&cfg.prefix, cfg.first + cfg.users - 1),
        store.backend(),
        if created { "created the" } else { "with the" },
        cfg.sealing_key_file.display()
    );
    let params = params(cfg.kind);
    let start = Instant::now();
    let end = cfg.first + cfg.users;
    let mut next = cfg.first;
    let mut done = 0u64;
    let mut next_progress = PROGRESS_EVERY;
    while next < end {
        let upto = end.min(next + u64::from(cfg.batch));
        let batch: Vec<(String, Vec<u8>)> = (next..upto)
            .map(|i| {
                let name = seeded_username(&cfg.prefix, i);
                let secret = seeded_secret(&name);
                (name, secret)
            })
            .collect();
        done += store
            .seed_users(&key, params, &batch, OffsetDateTime::now_utc())
            .await
            .with_context(|| {
                format!(
                    "seeding {} … {}",
                    seeded_username(&cfg.prefix, next),
                    seeded_username(&cfg.prefix, upto - 1)
                )
            })?;
        next = upto;
        if done >= next_progress || next == end {
            let secs = start.elapsed().as_secs_f64();
            println!(
                "seeded {done} of {} users in {secs:.1} s ({:.0} users/s)",
                cfg.users,
                done as f64 / secs.max(1e-9)
            );
            while next_progress <= done {
                next_progress += PROGRESS_EVERY;
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    store.close().await;
    println!(
        "RESULT seed backend={} users={done} seconds={secs:.1} users_per_s={:.0}",
        store.backend(),
        done as f64 / secs.max(1e-9)
    );
    Ok(done == cfg.users)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_are_derived_from_the_name() {
        let a = seeded_secret("scale-0000001");
        assert_eq!(a.len(), SEED_LEN);
        assert_eq!(a, seeded_secret("scale-0000001"));
        assert_ne!(a, seeded_secret("scale-0000002"));
        assert_eq!(seeded_username("scale", 42), "scale-0000042");
        assert_eq!(seeded_username("scale", 1_000_000), "scale-1000000");
        assert!(twofold_core::validate::username(&seeded_username("scale", 7)).is_ok());
    }
}
