//! Store conformance of the token inventory (migration 0016), once on
//! SQLite and once on PostgreSQL: a batch import is one transaction that
//! keeps serials already present (any case), assigning moves a token to a
//! user's tokens once — only the row whose seed was opened — and every
//! change lands with its audit event.

use anyhow::{ensure, Context};
use time::macros::datetime;
use time::OffsetDateTime;
use twofold_core::audit::{AuditQuery, NewAuditEvent, ResultCode};
use twofold_core::factors::{NewOathToken, OathAlgorithm, OathKind, OathParams};
use twofold_core::token_import::NewInventoryToken;
use twofold_core::user::{DefaultMethod, NewUser};
use twofold_core::Error;
use twofold_store::SqlStore;
use twofold_testkit::{Backend, TestDb};

twofold_testkit::both_backends!(
    #[tokio::test] -> anyhow::Result<()>;
    imports_keep_serials_already_present_in_any_case,
    inventory_lists_by_serial_prefix_literally,
    assigning_moves_the_token_once,
    assigning_a_replaced_seed_or_to_a_gone_user_changes_nothing,
    deleting_from_the_inventory_is_audited,
);

const T0: OffsetDateTime = datetime!(2026-03-01 10:00:00 UTC);

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

fn stock(serial: &str, kind: OathKind) -> NewInventoryToken {
    NewInventoryToken {
        serial: serial.into(),
        manufacturer: "Acme".into(),
        model: "Fob".into(),
        params: OathParams {
            kind,
            algorithm: OathAlgorithm::Sha1,
            digits: 8,
            period: 30,
        },
        sealed_secret: format!("sealed:{serial}"),
        counter: 5,
    }
}

fn owned(label: &str) -> NewOathToken {
    NewOathToken {
        label: label.into(),
        params: stock("x", OathKind::Hotp).params,
        sealed_secret: format!("sealed-for-user:{label}"),
        counter: 5,
    }
}

fn oath_method() -> DefaultMethod {
    DefaultMethod::from_parts("oath_token", "oath").expect("valid method")
}

async fn setup(backend: Backend) -> anyhow::Result<(TestDb, SqlStore)> {
    let db = TestDb::new(backend).await?;
    let store = db.store().await?;
    ensure!(store.backend() == backend.name());
    Ok((db, store))
}

async fn events(store: &SqlStore) -> anyhow::Result<Vec<String>> {
    let mut events: Vec<String> = store
        .audit_events(&AuditQuery {
            limit: 1000,
            ..AuditQuery::default()
        })
        .await?
        .into_iter()
        .map(|e| e.event)
        .collect();
    events.sort();
    Ok(events)
}

async fn serials(store: &SqlStore, prefix: Option<&str>) -> anyhow::Result<Vec<String>> {
    Ok(store
        .inventory(prefix, 0)
        .await?
        .into_iter()
        .map(|t| t.serial)
        .collect())
}

async fn imports_keep_serials_already_present_in_any_case(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    let dup = store
        .import_inventory(
            &[stock("A-1", OathKind::Hotp), stock("A-2", OathKind::Totp)],
            &ev("tokens.import"),
        )
        .await?;
    ensure!(dup.is_empty(), "{dup:?}");
    let mut again = stock("a-1", OathKind::Totp);
    again.sealed_secret = "sealed:other".into();
    let dup = store
        .import_inventory(&[again, stock("A-3", OathKind::Hotp)], &ev("tokens.import"))
        .await?;
    ensure!(dup == ["a-1"], "{dup:?}");
    ensure!(serials(&store, None).await? == ["A-1", "A-2", "A-3"]);
    // The first import's token is kept as it was, seed and all.
    let kept = store.inventory_token("a-1").await?.context("A-1")?;
    ensure!(kept.serial == "A-1" && kept.sealed_secret == "sealed:A-1");
    ensure!(kept.params.kind == OathKind::Hotp && kept.params.digits == 8);
    ensure!((kept.counter, kept.imported_at) == (5, T0));
    ensure!((kept.manufacturer.as_str(), kept.model.as_str()) == ("Acme", "Fob"));
    ensure!(events(&store).await? == ["tokens.import", "tokens.import"]);
    Ok(())
}

async fn inventory_lists_by_serial_prefix_literally(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    store
        .import_inventory(
            &[
                stock("AB_1", OathKind::Hotp),
                stock("ABX1", OathKind::Hotp),
                stock("ab%2", OathKind::Hotp),
                stock("B-1", OathKind::Hotp),
            ],
            &ev("tokens.import"),
        )
        .await?;
    ensure!(serials(&store, Some("ab_")).await? == ["AB_1"]);
    ensure!(serials(&store, Some("AB%")).await? == ["ab%2"]);
    ensure!(serials(&store, Some("ab")).await?.len() == 3);
    ensure!(serials(&store, None).await?.len() == 4);
    ensure!(store.inventory(None, 2).await?.len() == 2);
    Ok(())
}

async fn assigning_moves_the_token_once(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    let jan = store
        .create_user(
            &NewUser {
                username: "jan".into(),
                ..NewUser::default()
            },
            &ev("user_created"),
        )
        .await?;
    store
        .import_inventory(&[stock("S-1", OathKind::Hotp)], &ev("tokens.import"))
        .await?;
    let (token, method_set) = store
        .assign_inventory_token(
            "s-1",
            "sealed:S-1",
            jan.id,
            &owned("fob"),
            oath_method(),
            &ev("tokens.assign"),
        )
        .await?;
    ensure!(method_set);
    ensure!(token.user_id == jan.id && token.counter == 5);
    ensure!(store.inventory_token("S-1").await?.is_none());
    let tokens = store.oath_tokens(jan.id).await?;
    ensure!(tokens.len() == 1 && tokens[0].sealed_secret == "sealed-for-user:fob");
    let jan = store.find_user("jan").await?.context("jan")?;
    ensure!(jan.default_method == Some(oath_method()));
    // Twice: the token is no longer in the inventory.
    let again = store
        .assign_inventory_token(
            "S-1",
            "sealed:S-1",
            jan.id,
            &owned("fob 2"),
            oath_method(),
            &ev("tokens.assign"),
        )
        .await;
    ensure!(matches!(again, Err(Error::NotFound("token"))), "{again:?}");
    ensure!(store.oath_tokens(jan.id).await?.len() == 1);
    ensure!(events(&store).await? == ["tokens.assign", "tokens.import", "user_created"]);
    Ok(())
}

async fn assigning_a_replaced_seed_or_to_a_gone_user_changes_nothing(
    backend: Backend,
) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    let jan = store
        .create_user(
            &NewUser {
                username: "jan".into(),
                ..NewUser::default()
            },
            &ev("user_created"),
        )
        .await?;
    store
        .import_inventory(&[stock("S-1", OathKind::Hotp)], &ev("tokens.import"))
        .await?;
    // The seed the caller opened is not the stored one (deleted and
    // imported again meanwhile): nothing moves.
    let stale = store
        .assign_inventory_token(
            "S-1",
            "sealed:older",
            jan.id,
            &owned("fob"),
            oath_method(),
            &ev("tokens.assign"),
        )
        .await;
    ensure!(matches!(stale, Err(Error::NotFound("token"))), "{stale:?}");
    // A user who is gone: the whole transaction rolls back.
    let gone = store
        .assign_inventory_token(
            "S-1",
            "sealed:S-1",
            jan.id + 1000,
            &owned("fob"),
            oath_method(),
            &ev("tokens.assign"),
        )
        .await;
    ensure!(matches!(gone, Err(Error::NotFound("user"))), "{gone:?}");
    ensure!(store.inventory_token("S-1").await?.is_some());
    ensure!(store.oath_tokens(jan.id).await?.is_empty());
    ensure!(events(&store).await? == ["tokens.import", "user_created"]);
    Ok(())
}

async fn deleting_from_the_inventory_is_audited(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    store
        .import_inventory(&[stock("S-1", OathKind::Totp)], &ev("tokens.import"))
        .await?;
    ensure!(
        store
            .delete_inventory_token("s-1", &ev("tokens.inventory_delete"))
            .await?
    );
    ensure!(
        !store
            .delete_inventory_token("S-1", &ev("tokens.inventory_delete"))
            .await?
    );
    ensure!(serials(&store, None).await?.is_empty());
    ensure!(events(&store).await? == ["tokens.import", "tokens.inventory_delete"]);
    Ok(())
}
