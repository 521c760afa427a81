//! Store conformance of a service account's last use (migration 0017),
//! once on SQLite and once on PostgreSQL: none until recorded, written at
//! most once within a minute however many callers race, advanced after
//! it, never moved back, and never an audit event.

use anyhow::ensure;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use twofold_core::audit::{AuditQuery, NewAuditEvent, ResultCode};
use twofold_core::service::ServiceAccountSpec;
use twofold_core::{Permissions, Role, Scope};
use twofold_store::SqlStore;
use twofold_testkit::{Backend, TestDb};

twofold_testkit::both_backends!(
    #[tokio::test] -> anyhow::Result<()>;
    last_use_is_written_once_a_minute_and_advances,
    a_missing_account_records_nothing,
);

const T0: OffsetDateTime = datetime!(2026-03-01 10:00:00 UTC);
const MINUTE: Duration = Duration::minutes(1);

fn ev(event: &str) -> NewAuditEvent {
    NewAuditEvent {
        at: T0,
        actor: "tester".into(),
        via: None,
        subject: None,
        event: event.into(),
        method: None,
        result: ResultCode::Success,
        source_ip: None,
        detail: None,
    }
}

async fn setup(backend: Backend) -> anyhow::Result<(TestDb, SqlStore)> {
    let db = TestDb::new(backend).await?;
    let store = db.store().await?;
    ensure!(store.backend() == backend.name());
    Ok((db, store))
}

async fn last_used(store: &SqlStore, name: &str) -> anyhow::Result<Option<OffsetDateTime>> {
    let (account, _) = store.service_account(name).await?.expect("account");
    Ok(account.last_used_at)
}

/// What the engine does: write `at` unless the last use is within a minute.
async fn record(store: &SqlStore, id: i64, at: OffsetDateTime) -> anyhow::Result<bool> {
    Ok(store
        .record_service_account_use(id, at, at - MINUTE)
        .await?)
}

async fn last_use_is_written_once_a_minute_and_advances(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    let spec = ServiceAccountSpec {
        role: Role::Validate,
        permissions: Permissions::NONE,
        scope: Scope::All,
    };
    let vpn = store
        .create_service_account("vpn", "h1", &spec, &ev("sdk.account_create"))
        .await?;
    store
        .create_service_account("other", "h2", &spec, &ev("sdk.account_create"))
        .await?;
    assert_eq!(vpn.last_used_at, None, "never used yet");
    let audited = audit_count(&store).await?;

    assert!(record(&store, vpn.id, T0).await?);
    assert_eq!(last_used(&store, "vpn").await?, Some(T0));
    // Only that account.
    assert_eq!(last_used(&store, "other").await?, None);

    // A second node that loaded the account before the first wrote, and
    // later calls within the minute: nothing written, the time stays.
    for later in [T0, T0 + Duration::seconds(1), T0 + Duration::seconds(59)] {
        assert!(!record(&store, vpn.id, later).await?, "{later}");
    }
    assert_eq!(last_used(&store, "vpn").await?, Some(T0));

    // After the minute it advances.
    let next = T0 + Duration::seconds(61);
    assert!(record(&store, vpn.id, next).await?);
    assert_eq!(last_used(&store, "vpn").await?, Some(next));
    // A late writer with an older time does not move it back.
    assert!(!record(&store, vpn.id, T0 + Duration::seconds(30)).await?);
    assert_eq!(last_used(&store, "vpn").await?, Some(next));

    // Bookkeeping, not a change: no audit event, and the secret and
    // rotation time are untouched.
    assert_eq!(audit_count(&store).await?, audited);
    let (after, hash) = store.service_account("vpn").await?.expect("vpn");
    assert_eq!(hash, "h1");
    assert_eq!(after.rotated_at, None);
    store.close().await;
    Ok(())
}

async fn audit_count(store: &SqlStore) -> anyhow::Result<usize> {
    Ok(store
        .audit_events(&AuditQuery {
            limit: 1000,
            ..AuditQuery::default()
        })
        .await?
        .len())
}

async fn a_missing_account_records_nothing(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    assert!(!record(&store, 4242, T0).await?);
    assert!(store.service_accounts().await?.is_empty());
    store.close().await;
    Ok(())
}
