//! Each engine caches the settings and the service accounts callers
//! authenticate as; a change made through one engine ("node") must reach
//! another on the same database. On PostgreSQL the change's notification
//! does it: the second node's manual clock never moves here, so its
//! once-a-second generation check cannot be what made the change show.
//! On SQLite (no notifications; the CLI is another process) that check is
//! the way: the change shows as soon as the second node's clock has moved
//! one check interval on — no real time is waited for.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use twofold_core::clock::ManualClock;
use twofold_core::password::{HashCost, Pepper, SecretHasher};
use twofold_core::principal::{Permissions, Role, Scope};
use twofold_core::sealing::SealingKey;
use twofold_core::service::ServiceAccountSpec;
use twofold_core::{AdminService, CallerAuthenticator, Ctx, Engine};
use twofold_store::SqlStore;
use twofold_testkit::{Backend, TestDb};

twofold_testkit::both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)] -> anyhow::Result<()>;
    a_settings_change_reaches_the_other_node,
    rotated_and_deleted_accounts_stop_working_on_the_other_node,
    unknown_names_do_not_grow_the_account_cache,
    every_change_bumps_its_generation,
);

/// How long a notification may take to arrive before the test fails: a
/// generous bound for a loaded CI machine, not a speed being measured.
const NOTIFICATION_DEADLINE: Duration = Duration::from_secs(10);
/// The engine's generation check interval (`GENERATION_CHECK`).
const CHECK_INTERVAL: time::Duration = time::Duration::seconds(1);

struct Node {
    engine: Engine,
    clock: Arc<ManualClock>,
    store: SqlStore,
}

/// An engine with its own store (its own pool, and on PostgreSQL its own
/// listener), as a second server on the same database has.
async fn node(db: &TestDb) -> anyhow::Result<Node> {
    let store = db.store().await?;
    let clock = Arc::new(ManualClock::new(OffsetDateTime::from_unix_timestamp(
        1_772_359_200,
    )?));
    let engine = Engine::new(
        Arc::new(store.clone()),
        clock.clone(),
        SecretHasher::new(HashCost::Fast, Pepper::from_bytes(&[9; 32])),
        Arc::new(SealingKey::from_bytes(&[7; 32])),
    );
    Ok(Node {
        engine,
        clock,
        store,
    })
}

fn validate_role() -> ServiceAccountSpec {
    ServiceAccountSpec {
        role: Role::Validate,
        permissions: Permissions::default(),
        scope: Scope::All,
    }
}

/// Polls `check` until it holds, failing after `NOTIFICATION_DEADLINE`.
async fn eventually<F, Fut>(what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let deadline = tokio::time::Instant::now() + NOTIFICATION_DEADLINE;
    loop {
        if check().await? {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{what}: not seen within {NOTIFICATION_DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until `b` sees what `holds` checks: on PostgreSQL by the
/// notification alone (its clock stays put); on SQLite once its clock
/// has moved one check interval, at once.
async fn seen_on<F, Fut>(backend: Backend, b: &Node, what: &str, mut holds: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    match backend {
        Backend::Postgres => eventually(what, holds).await,
        Backend::Sqlite => {
            b.clock.advance(CHECK_INTERVAL);
            anyhow::ensure!(holds().await?, "{what}: not seen after the check interval");
            Ok(())
        }
    }
}

async fn admin_group(engine: &Engine) -> anyhow::Result<String> {
    Ok(engine.settings_shared().await?.sdk.admin_group.clone())
}

async fn a_settings_change_reaches_the_other_node(backend: Backend) -> anyhow::Result<()> {
    let db = TestDb::new(backend).await?;
    let (a, b) = (node(&db).await?, node(&db).await?);
    let before = admin_group(&b.engine).await?;
    assert_eq!(before, admin_group(&a.engine).await?);

    a.engine
        .set_setting(&Ctx::cli(), "sdk.admin_group", "mfa-admins".into())
        .await?;
    // The node that made the change sees it at once.
    assert_eq!(admin_group(&a.engine).await?, "mfa-admins");
    if backend == Backend::Sqlite {
        // Cached, not re-read per request: within the check interval the
        // other process's change is not looked for yet.
        assert_eq!(admin_group(&b.engine).await?, before);
    }
    seen_on(backend, &b, "the changed setting", || async {
        Ok(admin_group(&b.engine).await? == "mfa-admins")
    })
    .await?;

    // And back, the other way round: a reset is a change like any other.
    b.engine
        .reset_setting(&Ctx::cli(), "sdk.admin_group")
        .await?;
    assert_eq!(admin_group(&b.engine).await?, before);
    seen_on(backend, &a, "the reset setting", || async {
        Ok(admin_group(&a.engine).await? == before)
    })
    .await?;
    Ok(())
}

/// Whether `secret` authenticates `name` on `node`, and with what.
async fn authenticates(node: &Node, name: &str, secret: &str) -> Option<Ctx> {
    node.engine
        .authenticate_caller(name, secret, None)
        .await
        .ok()
}

/// Authenticates as `name` until `node` has the account cached. The
/// notification of the account's creation may reach the node while it reads
/// the account, and then it rightly keeps nothing it read before the change:
/// it caches the account at a later call.
async fn cached_after_use(node: &Node, name: &str, secret: &str) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        anyhow::ensure!(authenticates(node, name, secret).await.is_some());
        if node.engine.cached_service_accounts() == 1 {
            return Ok(());
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the account was never cached"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn rotated_and_deleted_accounts_stop_working_on_the_other_node(
    backend: Backend,
) -> anyhow::Result<()> {
    let db = TestDb::new(backend).await?;
    let (a, b) = (node(&db).await?, node(&db).await?);
    let cli = Ctx::cli();
    let (_, old) = a
        .engine
        .create_service_account(&cli, "vpn", validate_role())
        .await?;
    cached_after_use(&b, "VPN", &old).await?;

    // Rotated on A: at once there, promptly on B.
    let new = a.engine.rotate_service_account(&cli, "vpn").await?;
    anyhow::ensure!(authenticates(&a, "vpn", &old).await.is_none());
    anyhow::ensure!(authenticates(&a, "vpn", &new).await.is_some());
    seen_on(backend, &b, "the rotation", || async {
        Ok(authenticates(&b, "vpn", &old).await.is_none())
    })
    .await?;
    anyhow::ensure!(authenticates(&b, "vpn", &new).await.is_some());

    // Deleted on A, then made again with another role: B drops the old
    // account and grants what the new one may do, not what the old could.
    a.engine.delete_service_account(&cli, "vpn").await?;
    anyhow::ensure!(authenticates(&a, "vpn", &new).await.is_none());
    seen_on(backend, &b, "the deletion", || async {
        Ok(authenticates(&b, "vpn", &new).await.is_none())
    })
    .await?;
    let admin = ServiceAccountSpec {
        role: Role::Admin,
        permissions: Permissions::all(),
        scope: Scope::All,
    };
    let (_, again) = a.engine.create_service_account(&cli, "vpn", admin).await?;
    let ctx = authenticates(&b, "vpn", &again)
        .await
        .ok_or_else(|| anyhow::anyhow!("the re-created account does not authenticate on b"))?;
    anyhow::ensure!(ctx.access.permissions().is_all(), "b uses the new role");
    Ok(())
}

async fn unknown_names_do_not_grow_the_account_cache(backend: Backend) -> anyhow::Result<()> {
    let db = TestDb::new(backend).await?;
    let n = node(&db).await?;
    let (_, secret) = n
        .engine
        .create_service_account(&Ctx::cli(), "vpn", validate_role())
        .await?;
    cached_after_use(&n, "vpn", &secret).await?;
    // A spray of names from many addresses (so the per-address throttle
    // lets every one through to the lookup), and a wrong secret for the
    // real one: none of it is remembered.
    for i in 0..300u32 {
        let [_, _, hi, lo] = i.to_be_bytes();
        let from = Some(IpAddr::V4(Ipv4Addr::new(10, 9, hi, lo)));
        let refused = n
            .engine
            .authenticate_caller(&format!("ghost-{i}"), "tfs_guess", from)
            .await;
        anyhow::ensure!(refused.is_err(), "ghost-{i} authenticated");
    }
    anyhow::ensure!(authenticates(&n, "vpn", "tfs_guess").await.is_none());
    assert_eq!(n.engine.cached_service_accounts(), 1);
    Ok(())
}

async fn every_change_bumps_its_generation(backend: Backend) -> anyhow::Result<()> {
    let db = TestDb::new(backend).await?;
    let n = node(&db).await?;
    let cli = Ctx::cli();
    let start = n.store.cache_generations().await?;

    n.engine
        .set_setting(&cli, "sdk.admin_group", "mfa-admins".into())
        .await?;
    n.engine.reset_setting(&cli, "sdk.admin_group").await?;
    let now = n.store.cache_generations().await?;
    assert_eq!(now.settings, start.settings + 2, "set and reset");
    assert_eq!(now.service_accounts, start.service_accounts);

    n.engine
        .create_service_account(&cli, "vpn", validate_role())
        .await?;
    n.engine.rotate_service_account(&cli, "vpn").await?;
    // Nothing changes, nothing is announced.
    anyhow::ensure!(n
        .engine
        .rotate_service_account(&cli, "nobody")
        .await
        .is_err());
    n.engine.delete_service_account(&cli, "vpn").await?;
    let end = n.store.cache_generations().await?;
    assert_eq!(
        end.service_accounts,
        start.service_accounts + 3,
        "create, rotate, delete"
    );
    assert_eq!(end.settings, now.settings);
    Ok(())
}
