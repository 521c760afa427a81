//! The engine records a service account's last use when its SDK caller
//! authenticates, on a manual clock: at the first call, not again within
//! the minute (no write per request), advanced after it, and never for a
//! wrong secret. The account is cached per node; a recorded use updates
//! the cached copy, so the time advances without a read per call.

use std::sync::Arc;

use time::{Duration, OffsetDateTime};
use twofold_core::clock::ManualClock;
use twofold_core::password::{HashCost, Pepper, SecretHasher};
use twofold_core::principal::{Permissions, Role, Scope};
use twofold_core::sealing::SealingKey;
use twofold_core::service::ServiceAccountSpec;
use twofold_core::{AdminService, CallerAuthenticator, Ctx, Engine};
use twofold_testkit::{Backend, TestDb};

twofold_testkit::both_backends!(
    #[tokio::test] -> anyhow::Result<()>;
    authenticating_records_the_last_use_once_a_minute,
);

async fn last_used(engine: &Engine) -> anyhow::Result<Option<OffsetDateTime>> {
    let accounts = engine.service_accounts(&Ctx::cli()).await?;
    Ok(accounts[0].last_used_at)
}

async fn authenticating_records_the_last_use_once_a_minute(backend: Backend) -> anyhow::Result<()> {
    let t0 = OffsetDateTime::from_unix_timestamp(1_772_359_200)?;
    let db = TestDb::new(backend).await?;
    let clock = Arc::new(ManualClock::new(t0));
    let engine = Engine::new(
        Arc::new(db.store().await?),
        clock.clone(),
        SecretHasher::new(HashCost::Fast, Pepper::from_bytes(&[9; 32])),
        Arc::new(SealingKey::from_bytes(&[7; 32])),
    );
    let spec = ServiceAccountSpec {
        role: Role::Validate,
        permissions: Permissions::default(),
        scope: Scope::All,
    };
    let (_, secret) = engine
        .create_service_account(&Ctx::cli(), "vpn", spec)
        .await?;
    anyhow::ensure!(last_used(&engine).await?.is_none());

    // A wrong secret is no use of the account.
    anyhow::ensure!(engine
        .authenticate_caller("vpn", "tfs_not-the-secret", None)
        .await
        .is_err());
    anyhow::ensure!(last_used(&engine).await?.is_none());

    engine.authenticate_caller("vpn", &secret, None).await?;
    assert_eq!(last_used(&engine).await?, Some(t0));

    clock.advance(Duration::seconds(59));
    engine.authenticate_caller("vpn", &secret, None).await?;
    assert_eq!(last_used(&engine).await?, Some(t0), "not within the minute");

    clock.advance(Duration::seconds(2));
    engine.authenticate_caller("vpn", &secret, None).await?;
    assert_eq!(
        last_used(&engine).await?,
        Some(t0 + Duration::seconds(61)),
        "advanced after the minute"
    );
    Ok(())
}
