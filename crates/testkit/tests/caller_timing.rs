//! Finding 7 of the hardening issue: a wrong secret for an existing service
//! account took ≈ 2 ms, an unknown name ≈ 27 ms (the dummy password hash a
//! possible directory administrator costs), so timing told which accounts
//! exist. Both now cost one hash at the production cost.
//!
//! This compares the two paths with each other, interleaved so that both
//! see the same machine load, never against a fixed time: the wrong secret
//! must take at least half as long as the unknown name (before the fix it
//! took a tenth).

use std::sync::Arc;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use twofold_core::clock::ManualClock;
use twofold_core::password::{HashCost, Pepper, SecretHasher};
use twofold_core::principal::{Permissions, Role, Scope};
use twofold_core::sealing::SealingKey;
use twofold_core::service::ServiceAccountSpec;
use twofold_core::{AdminService, CallerAuthenticator, Ctx, Engine};
use twofold_testkit::{Backend, TestDb};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test]
async fn a_wrong_secret_costs_what_an_unknown_name_costs() -> anyhow::Result<()> {
    let db = TestDb::new(Backend::Sqlite).await?;
    let engine = Engine::new(
        Arc::new(db.store().await?),
        Arc::new(ManualClock::new(OffsetDateTime::from_unix_timestamp(
            1_772_359_205,
        )?)),
        SecretHasher::new(HashCost::Production, Pepper::from_bytes(&[9; 32])),
        Arc::new(SealingKey::from_bytes(&[7; 32])),
    );
    let spec = ServiceAccountSpec {
        role: Role::Validate,
        permissions: Permissions::default(),
        scope: Scope::All,
    };
    engine
        .create_service_account(&Ctx::cli(), "vpn", spec)
        .await?;

    let (mut wrong, mut unknown) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        let t = Instant::now();
        let r = engine
            .authenticate_caller("vpn", "tfs_not-the-secret", None)
            .await;
        wrong.push(t.elapsed());
        anyhow::ensure!(r.is_err(), "a wrong secret is refused");
        let t = Instant::now();
        let r = engine
            .authenticate_caller("no-such-account", "tfs_not-the-secret", None)
            .await;
        unknown.push(t.elapsed());
        anyhow::ensure!(r.is_err(), "an unknown name is refused");
    }
    let (wrong, unknown) = (median(wrong), median(unknown));
    anyhow::ensure!(
        wrong * 2 >= unknown,
        "a wrong secret ({wrong:?}) answers much faster than an unknown name ({unknown:?})"
    );
    Ok(())
}
