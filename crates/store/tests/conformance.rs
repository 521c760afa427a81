//! Store conformance: every test in `both_backends!` runs once on SQLite and
//! once on PostgreSQL (`sqlite::name`, `postgres::name`), each on its own
//! fresh database. PostgreSQL being down fails the postgres tests; nothing
//! is skipped.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use sqlx::Connection;
use time::macros::datetime;
use time::OffsetDateTime;
use twofold_core::audit::{AuditQuery, NewAuditEvent, ResultCode};
use twofold_core::ports::{Store, UserQuery};
use twofold_core::user::{DefaultMethod, NewUser, Permission, User};
use twofold_core::Error;
use twofold_store::SqlStore;
use twofold_testkit::{Backend, TestDb};

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() -> anyhow::Result<()> {
                    super::$name(super::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() -> anyhow::Result<()> {
                    super::$name(super::Backend::Postgres).await
                }
            )*
        }
    };
}

both_backends!(
    create_and_find_in_any_case,
    duplicate_username_in_other_case_is_refused_and_writes_nothing,
    groups_round_trip_and_are_replaced,
    update_checks_the_version_and_bumps_it,
    update_writes_every_profile_field,
    deleted_user_is_not_found,
    delete_cascades_groups_and_admin_grant,
    list_by_prefix_treats_wildcards_literally,
    list_by_group_ignores_case,
    list_pages_with_after_and_limit,
    password_hash_set_and_get,
    settings_write_and_remove_in_one_transaction,
    audit_append_and_page,
    change_and_audit_land_together,
    admins_put_list_count,
    timestamps_round_trip,
    ping_ok,
    ping_fails_after_database_is_destroyed,
    reconnect_keeps_data,
    concurrent_updates_one_wins,
);

const T0: OffsetDateTime = datetime!(2026-03-01 10:00:00.987654321 UTC);

fn at(offset_secs: i64) -> OffsetDateTime {
    T0 + time::Duration::seconds(offset_secs)
}

fn ev(event: &str, subject: Option<&str>) -> NewAuditEvent {
    ev_at(event, subject, T0)
}

fn ev_at(event: &str, subject: Option<&str>, when: OffsetDateTime) -> NewAuditEvent {
    NewAuditEvent {
        at: when,
        actor: "tester".into(),
        subject: subject.map(str::to_string),
        event: event.into(),
        method: None,
        result: ResultCode::Success,
        source_ip: None,
        detail: None,
    }
}

fn new_user(name: &str, groups: &[&str]) -> NewUser {
    NewUser {
        username: name.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        ..NewUser::default()
    }
}

async fn setup(backend: Backend) -> anyhow::Result<(TestDb, SqlStore)> {
    let db = TestDb::new(backend).await?;
    let store = db.store().await?;
    ensure!(store.backend() == backend.name());
    Ok((db, store))
}

async fn create(store: &SqlStore, name: &str, groups: &[&str]) -> anyhow::Result<User> {
    Ok(store
        .create_user(&new_user(name, groups), &ev("user_created", Some(name)))
        .await?)
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

async fn newest_event(store: &SqlStore) -> anyhow::Result<String> {
    let events = store
        .audit_events(&AuditQuery {
            limit: 1,
            ..AuditQuery::default()
        })
        .await?;
    Ok(events.first().context("no audit event")?.event.clone())
}

/// Rows in a table, read around the store to see what it left behind.
async fn raw_count(db: &TestDb, table: &str) -> anyhow::Result<i64> {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&db.url).await?;
    let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(&mut conn)
        .await?;
    conn.close().await?;
    Ok(n)
}

async fn names(store: &SqlStore, query: UserQuery) -> anyhow::Result<Vec<String>> {
    Ok(store
        .list_users(&query)
        .await?
        .into_iter()
        .map(|u| u.username)
        .collect())
}

fn prefix(p: &str) -> UserQuery {
    UserQuery {
        prefix: Some(p.into()),
        ..UserQuery::default()
    }
}

async fn create_and_find_in_any_case(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    let created = store
        .create_user(
            &NewUser {
                username: "Alice.Smith".into(),
                display_name: Some("Alice Smith".into()),
                email: Some("alice@example.nl".into()),
                groups: vec!["Sales".into(), "admins".into()],
                language: Some("nl".into()),
                password_hash: Some("$argon2id$fake".into()),
            },
            &ev("user_created", Some("Alice.Smith")),
        )
        .await?;
    ensure!(created.id > 0);
    assert_eq!(created.username, "Alice.Smith");
    assert_eq!(created.display_name.as_deref(), Some("Alice Smith"));
    assert_eq!(created.email.as_deref(), Some("alice@example.nl"));
    assert_eq!(created.groups, vec!["admins", "Sales"]);
    assert_eq!(created.language.as_deref(), Some("nl"));
    assert!(created.enabled);
    assert!(!created.fraud_blocked);
    assert_eq!(created.locked_until, None);
    assert_eq!(created.default_method, None);
    assert_eq!(created.version, 1);
    assert_eq!(created.created_at, created.updated_at);

    for spelling in ["Alice.Smith", "alice.smith", "ALICE.SMITH", " alice.smith "] {
        let found = store.find_user(spelling).await?;
        assert_eq!(found.as_ref(), Some(&created), "{spelling}");
    }
    assert_eq!(store.find_user("alice").await?, None);
    assert_eq!(store.count_users().await?, 1);
    assert_eq!(
        store.password_hash(created.id).await?.as_deref(),
        Some("$argon2id$fake")
    );
    store.close().await;
    Ok(())
}

async fn duplicate_username_in_other_case_is_refused_and_writes_nothing(
    backend: Backend,
) -> anyhow::Result<()> {
    let (db, store) = setup(backend).await?;
    create(&store, "bob", &["g1"]).await?;
    assert_eq!(audit_count(&store).await?, 1);

    for name in ["BOB", "bob", "Bob"] {
        let err = store
            .create_user(&new_user(name, &["g2"]), &ev("user_created", Some(name)))
            .await
            .unwrap_err();
        match err {
            Error::Conflict(m) => assert_eq!(m, format!("user {name} already exists")),
            other => panic!("expected Conflict, got {other:?}"),
        }
    }
    assert_eq!(store.count_users().await?, 1);
    assert_eq!(audit_count(&store).await?, 1);
    assert_eq!(raw_count(&db, "user_groups").await?, 1);
    let bob = store.find_user("BOB").await?.context("bob")?;
    assert_eq!(bob.username, "bob");
    assert_eq!(bob.groups, vec!["g1"]);
    store.close().await;
    Ok(())
}

async fn groups_round_trip_and_are_replaced(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    let u = create(&store, "carol", &["b", "A"]).await?;
    assert_eq!(u.groups, vec!["A", "b"]);

    let mut next = u.clone();
    next.groups = vec!["C".into(), "b".into()];
    let u = store
        .update_user(&next, &ev("user_updated", Some("carol")))
        .await?;
    assert_eq!(u.groups, vec!["b", "C"]);
    assert_eq!(
        store.find_user("carol").await?.context("carol")?.groups,
        vec!["b", "C"]
    );

    let mut next = u.clone();
    next.groups = vec!["x".into(), "X".into()];
    let u = store
        .update_user(&next, &ev("user_updated", Some("carol")))
        .await?;
    assert_eq!(u.groups, vec!["x"], "names differing in case are one group");

    let mut next = u.clone();
    next.groups = vec![];
    let u = store
        .update_user(&next, &ev("user_updated", Some("carol")))
        .await?;
    assert!(u.groups.is_empty());
    assert!(store
        .find_user("carol")
        .await?
        .context("carol")?
        .groups
        .is_empty());
    store.close().await;
    Ok(())
}

async fn update_checks_the_version_and_bumps_it(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    let v1 = create(&store, "dave", &[]).await?;
    assert_eq!(v1.version, 1);

    let mut edit = v1.clone();
    edit.display_name = Some("Dave".into());
    let v2 = store
        .update_user(&edit, &ev_at("user_updated", Some("dave"), at(60)))
        .await?;
    assert_eq!(v2.version, 2);
    assert_eq!(v2.display_name.as_deref(), Some("Dave"));
    assert_eq!(v2.created_at, v1.created_at);
    assert_eq!(v2.updated_at, v1.updated_at + time::Duration::seconds(60));

    let mut stale = v1.clone();
    stale.display_name = Some("Overwritten".into());
    let err = store
        .update_user(&stale, &ev("user_updated", Some("dave")))
        .await
        .unwrap_err();
    match err {
        Error::Conflict(m) => assert_eq!(m, "user was changed concurrently; reload and retry"),
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(store.find_user("dave").await?, Some(v2.clone()));
    assert_eq!(
        audit_count(&store).await?,
        2,
        "a refused update records nothing"
    );

    let v3 = store
        .update_user(&v2, &ev("user_updated", Some("dave")))
        .await?;
    assert_eq!(v3.version, 3);
    store.close().await;
    Ok(())
}

async fn update_writes_every_profile_field(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    let u = create(&store, "erin", &["ops"]).await?;
    let mut edit = u.clone();
    edit.display_name = Some("Erin E.".into());
    edit.email = Some("erin@example.com".into());
    edit.language = Some("en".into());
    edit.enabled = false;
    edit.locked_until = Some(at(3600));
    edit.fraud_blocked = true;
    edit.default_method = Some(DefaultMethod::from_parts("phone_call", "pin")?);
    edit.groups = vec!["dev".into()];
    // Not profile fields: the store must ignore them.
    edit.username = "someone_else".into();
    edit.created_at = at(-1000);

    let stored = store
        .update_user(&edit, &ev("user_updated", Some("erin")))
        .await?;
    let found = store.find_user("erin").await?.context("erin")?;
    assert_eq!(stored, found);
    assert_eq!(found.username, "erin");
    assert_eq!(found.created_at, u.created_at);
    assert_eq!(found.display_name.as_deref(), Some("Erin E."));
    assert_eq!(found.email.as_deref(), Some("erin@example.com"));
    assert_eq!(found.language.as_deref(), Some("en"));
    assert!(!found.enabled);
    assert_eq!(found.locked_until, Some(at(3600).replace_nanosecond(0)?));
    assert!(found.fraud_blocked);
    assert_eq!(found.default_method, edit.default_method);
    assert_eq!(found.groups, vec!["dev"]);

    // Clearing goes back to NULL.
    let mut clear = found.clone();
    clear.display_name = None;
    clear.email = None;
    clear.language = None;
    clear.locked_until = None;
    clear.default_method = None;
    clear.enabled = true;
    clear.fraud_blocked = false;
    let cleared = store
        .update_user(&clear, &ev("user_updated", Some("erin")))
        .await?;
    assert_eq!(cleared.display_name, None);
    assert_eq!(cleared.email, None);
    assert_eq!(cleared.language, None);
    assert_eq!(cleared.locked_until, None);
    assert_eq!(cleared.default_method, None);
    assert!(cleared.enabled && !cleared.fraud_blocked);
    store.close().await;
    Ok(())
}

async fn deleted_user_is_not_found(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    let u = create(&store, "frank", &[]).await?;
    assert!(
        store
            .delete_user(u.id, &ev("user_deleted", Some("frank")))
            .await?
    );
    assert_eq!(newest_event(&store).await?, "user_deleted");

    let err = store
        .update_user(&u, &ev("user_updated", Some("frank")))
        .await;
    assert!(matches!(err, Err(Error::NotFound("user"))), "{err:?}");
    assert!(
        !store
            .delete_user(u.id, &ev("user_deleted", Some("frank")))
            .await?
    );
    let err = store
        .set_password_hash(u.id, "h", &ev("password_set", Some("frank")))
        .await;
    assert!(matches!(err, Err(Error::NotFound("user"))), "{err:?}");
    let err = store.password_hash(u.id).await;
    assert!(matches!(err, Err(Error::NotFound("user"))), "{err:?}");
    let err = store
        .put_admin(
            u.id,
            &[Permission::AddUsers],
            None,
            &ev("admin_granted", Some("frank")),
        )
        .await;
    assert!(matches!(err, Err(Error::NotFound("user"))), "{err:?}");

    assert_eq!(store.find_user("frank").await?, None);
    assert_eq!(store.count_users().await?, 0);
    assert_eq!(
        audit_count(&store).await?,
        2,
        "only the create and the delete"
    );
    store.close().await;
    Ok(())
}

async fn delete_cascades_groups_and_admin_grant(backend: Backend) -> anyhow::Result<()> {
    let (db, store) = setup(backend).await?;
    let keep = create(&store, "keep", &["g"]).await?;
    let gone = create(&store, "gone", &["g", "h"]).await?;
    store
        .put_admin(
            gone.id,
            &[Permission::AddUsers],
            None,
            &ev("admin_granted", Some("gone")),
        )
        .await?;
    store
        .put_admin(
            keep.id,
            &[Permission::AddUsers],
            None,
            &ev("admin_granted", Some("keep")),
        )
        .await?;
    assert_eq!(raw_count(&db, "user_groups").await?, 3);

    assert!(
        store
            .delete_user(gone.id, &ev("user_deleted", Some("gone")))
            .await?
    );
    assert_eq!(raw_count(&db, "user_groups").await?, 1);
    assert_eq!(raw_count(&db, "portal_admins").await?, 1);
    assert_eq!(store.count_admins().await?, 1);
    let admins = store.list_admins().await?;
    assert_eq!(admins.len(), 1);
    assert_eq!(admins[0].username, "keep");

    // The name is free again and the new user inherits nothing.
    let again = create(&store, "GONE", &[]).await?;
    assert_ne!(again.id, gone.id);
    assert!(again.groups.is_empty());
    assert_eq!(store.count_admins().await?, 1);
    store.close().await;
    Ok(())
}

async fn list_by_prefix_treats_wildcards_literally(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    for name in ["a_b", "axb", "a%c", "abc", "ABD", "b", "a\\x", "ab"] {
        create(&store, name, &[]).await?;
    }
    assert_eq!(names(&store, prefix("a_")).await?, vec!["a_b"]);
    assert_eq!(names(&store, prefix("a%")).await?, vec!["a%c"]);
    assert_eq!(names(&store, prefix("a\\")).await?, vec!["a\\x"]);
    assert_eq!(names(&store, prefix("AB")).await?, vec!["ab", "abc", "ABD"]);
    assert_eq!(names(&store, prefix("aBd")).await?, vec!["ABD"]);
    assert_eq!(names(&store, prefix("zzz")).await?, Vec::<String>::new());
    // Byte order of the lowercase keys, the same on both backends.
    assert_eq!(
        names(&store, prefix("")).await?,
        vec!["a%c", "a\\x", "a_b", "ab", "abc", "ABD", "axb", "b"]
    );
    assert_eq!(names(&store, UserQuery::default()).await?.len(), 8);
    store.close().await;
    Ok(())
}

async fn list_by_group_ignores_case(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    create(&store, "anna", &["Sales", "EU"]).await?;
    create(&store, "ben", &["sales"]).await?;
    create(&store, "cees", &["Support"]).await?;
    create(&store, "alex", &[]).await?;
    let group = |g: &str| UserQuery {
        group: Some(g.into()),
        ..UserQuery::default()
    };
    assert_eq!(names(&store, group("SALES")).await?, vec!["anna", "ben"]);
    assert_eq!(names(&store, group("support")).await?, vec!["cees"]);
    assert_eq!(names(&store, group("nobody")).await?, Vec::<String>::new());
    assert_eq!(names(&store, group("sal")).await?, Vec::<String>::new());
    let both = UserQuery {
        prefix: Some("A".into()),
        group: Some("sales".into()),
        ..UserQuery::default()
    };
    let listed = store.list_users(&both).await?;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].username, "anna");
    assert_eq!(
        listed[0].groups,
        vec!["EU", "Sales"],
        "all groups, not just the filter"
    );
    store.close().await;
    Ok(())
}

async fn list_pages_with_after_and_limit(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    let mut all = vec!["Gina", "hank", "Ivy", "jan", "KIM", "lou", "mo"];
    for name in &all {
        create(&store, name, &["team"]).await?;
    }
    all.sort_by_key(|n| n.to_lowercase());

    let mut seen: Vec<String> = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = names(
            &store,
            UserQuery {
                after: after.clone(),
                limit: 3,
                group: Some("TEAM".into()),
                ..UserQuery::default()
            },
        )
        .await?;
        ensure!(page.len() <= 3);
        if page.is_empty() {
            break;
        }
        after = page.last().cloned();
        seen.extend(page);
    }
    assert_eq!(seen, all);

    // `after` is compared without case, and need not be an existing user.
    let after_ivy = |after: &str| UserQuery {
        after: Some(after.into()),
        limit: 2,
        ..UserQuery::default()
    };
    assert_eq!(names(&store, after_ivy("IVY")).await?, vec!["jan", "KIM"]);
    assert_eq!(names(&store, after_ivy("j")).await?, vec!["jan", "KIM"]);
    assert_eq!(names(&store, after_ivy("mo")).await?, Vec::<String>::new());
    // Limit 0 means the default page, not nothing.
    assert_eq!(names(&store, UserQuery::default()).await?.len(), 7);
    store.close().await;
    Ok(())
}

async fn password_hash_set_and_get(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    let u = create(&store, "hans", &[]).await?;
    assert_eq!(store.password_hash(u.id).await?, None);
    store
        .set_password_hash(
            u.id,
            "$argon2id$one",
            &ev_at("password_set", Some("hans"), at(5)),
        )
        .await?;
    assert_eq!(
        store.password_hash(u.id).await?.as_deref(),
        Some("$argon2id$one")
    );
    assert_eq!(newest_event(&store).await?, "password_set");
    let after = store.find_user("hans").await?.context("hans")?;
    assert_eq!(after.version, 2, "a password change is a write");
    assert_eq!(after.updated_at, at(5).replace_nanosecond(0)?);
    store
        .set_password_hash(u.id, "$argon2id$two", &ev("password_set", Some("hans")))
        .await?;
    assert_eq!(
        store.password_hash(u.id).await?.as_deref(),
        Some("$argon2id$two")
    );
    store.close().await;
    Ok(())
}

async fn settings_write_and_remove_in_one_transaction(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    assert!(store.settings_rows().await?.is_empty());
    store
        .write_settings(
            &[
                ("pin.history".into(), Some("7".into())),
                (
                    "portal.url".into(),
                    Some("\"https://mfa.example.nl\"".into()),
                ),
            ],
            &ev("setting_changed", None),
        )
        .await?;
    assert_eq!(
        store.settings_rows().await?,
        vec![
            ("pin.history".to_string(), "7".to_string()),
            (
                "portal.url".to_string(),
                "\"https://mfa.example.nl\"".to_string()
            ),
        ]
    );
    store
        .write_settings(
            &[
                ("pin.history".into(), None),
                ("portal.url".into(), Some("\"\"".into())),
                ("portal.allow_login".into(), Some("false".into())),
                ("never.stored".into(), None),
            ],
            &ev("setting_changed", None),
        )
        .await?;
    assert_eq!(
        store.settings_rows().await?,
        vec![
            ("portal.allow_login".to_string(), "false".to_string()),
            ("portal.url".to_string(), "\"\"".to_string()),
        ]
    );
    assert_eq!(audit_count(&store).await?, 2);
    store.close().await;
    Ok(())
}

async fn audit_append_and_page(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    let full = NewAuditEvent {
        at: T0,
        actor: "admin".into(),
        subject: Some("Alice".into()),
        event: "sign_in".into(),
        method: Some("oath_token".into()),
        result: ResultCode::FailedPasswordWrong,
        source_ip: Some("2001:db8::7".parse()?),
        detail: Some("second attempt".into()),
    };
    let mut ids = Vec::new();
    for (i, subject) in [Some("Alice"), Some("bob"), None, Some("ALICE"), Some("bob")]
        .into_iter()
        .enumerate()
    {
        let mut e = full.clone();
        e.subject = subject.map(str::to_string);
        e.at = T0 + time::Duration::milliseconds(i as i64);
        e.source_ip = Some(format!("192.0.2.{i}").parse()?);
        ids.push(store.append_audit(&e).await?);
    }
    let first = store.append_audit(&full).await?;
    ids.push(first);
    ensure!(ids.windows(2).all(|w| w[0] < w[1]), "ids grow: {ids:?}");

    let all = store.audit_events(&AuditQuery::default()).await?;
    let got: Vec<i64> = all.iter().map(|e| e.id).collect();
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(got, newest_first);

    let newest = &all[0];
    assert_eq!(newest.actor, "admin");
    assert_eq!(newest.subject.as_deref(), Some("Alice"));
    assert_eq!(newest.event, "sign_in");
    assert_eq!(newest.method.as_deref(), Some("oath_token"));
    assert_eq!(newest.result, ResultCode::FailedPasswordWrong);
    assert_eq!(newest.source_ip, full.source_ip);
    assert_eq!(newest.detail.as_deref(), Some("second attempt"));
    assert_eq!(all[5].source_ip, Some("192.0.2.0".parse()?));
    assert_eq!(all[3].subject, None);

    let page = |limit, before_id, after_id, subject: Option<&str>| AuditQuery {
        limit,
        before_id,
        after_id,
        subject: subject.map(str::to_string),
    };
    let ids_of = |events: Vec<twofold_core::audit::AuditEvent>| {
        events.into_iter().map(|e| e.id).collect::<Vec<_>>()
    };
    assert_eq!(
        ids_of(store.audit_events(&page(2, None, None, None)).await?),
        vec![ids[5], ids[4]]
    );
    assert_eq!(
        ids_of(
            store
                .audit_events(&page(2, Some(ids[4]), None, None))
                .await?
        ),
        vec![ids[3], ids[2]]
    );
    assert_eq!(
        ids_of(
            store
                .audit_events(&page(0, None, Some(ids[3]), None))
                .await?
        ),
        vec![ids[5], ids[4]]
    );
    assert_eq!(
        ids_of(
            store
                .audit_events(&page(0, Some(ids[5]), Some(ids[1]), None))
                .await?
        ),
        vec![ids[4], ids[3], ids[2]]
    );
    assert_eq!(
        ids_of(
            store
                .audit_events(&page(0, None, None, Some("alice")))
                .await?
        ),
        vec![ids[5], ids[3], ids[0]]
    );
    assert_eq!(
        ids_of(
            store
                .audit_events(&page(1, Some(ids[5]), None, Some("ALICE")))
                .await?
        ),
        vec![ids[3]]
    );
    assert!(store
        .audit_events(&page(0, None, None, Some("nobody")))
        .await?
        .is_empty());
    store.close().await;
    Ok(())
}

/// Each mutating call writes its event in its own transaction: with an audit
/// event the database refuses (an empty `event` breaks a CHECK), the change
/// must not land either; with a good one, change and event both land.
async fn change_and_audit_land_together(backend: Backend) -> anyhow::Result<()> {
    let (db, store) = setup(backend).await?;
    let bad = ev("", Some("ida"));

    assert!(store
        .create_user(&new_user("ida", &["g"]), &bad)
        .await
        .is_err());
    assert_eq!(store.count_users().await?, 0);
    assert_eq!(raw_count(&db, "user_groups").await?, 0);
    assert_eq!(audit_count(&store).await?, 0);

    let u = create(&store, "ida", &["g"]).await?;
    assert_eq!(newest_event(&store).await?, "user_created");

    let mut edit = u.clone();
    edit.display_name = Some("Ida".into());
    edit.groups = vec![];
    assert!(store.update_user(&edit, &bad).await.is_err());
    assert_eq!(store.find_user("ida").await?, Some(u.clone()));
    let u2 = store
        .update_user(&edit, &ev("user_updated", Some("ida")))
        .await?;
    assert_eq!(newest_event(&store).await?, "user_updated");

    assert!(store.set_password_hash(u.id, "h", &bad).await.is_err());
    assert_eq!(store.password_hash(u.id).await?, None);
    assert_eq!(store.find_user("ida").await?, Some(u2.clone()));

    assert!(store
        .write_settings(&[("pin.history".into(), Some("7".into()))], &bad)
        .await
        .is_err());
    assert!(store.settings_rows().await?.is_empty());

    assert!(store
        .put_admin(u.id, &[Permission::ViewAuditLog], None, &bad)
        .await
        .is_err());
    assert_eq!(store.count_admins().await?, 0);
    store
        .put_admin(
            u.id,
            &[Permission::ViewAuditLog],
            None,
            &ev("admin_granted", Some("ida")),
        )
        .await?;
    assert_eq!(newest_event(&store).await?, "admin_granted");

    assert!(store.delete_user(u.id, &bad).await.is_err());
    assert_eq!(store.count_users().await?, 1);
    assert_eq!(store.count_admins().await?, 1);

    assert!(store.append_audit(&bad).await.is_err());
    assert_eq!(audit_count(&store).await?, 3);
    store.close().await;
    Ok(())
}

async fn admins_put_list_count(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    let zed = create(&store, "Zed", &[]).await?;
    let amy = create(&store, "amy", &["Sales"]).await?;
    assert_eq!(store.count_admins().await?, 0);
    assert!(store.list_admins().await?.is_empty());

    store
        .put_admin(
            zed.id,
            &[
                Permission::ViewAuditLog,
                Permission::AddUsers,
                Permission::AddUsers,
            ],
            None,
            &ev("admin_granted", Some("Zed")),
        )
        .await?;
    store
        .put_admin(
            amy.id,
            &[],
            Some("Sales"),
            &ev("admin_granted", Some("amy")),
        )
        .await?;
    assert_eq!(store.count_admins().await?, 2);
    let admins = store.list_admins().await?;
    assert_eq!(admins.len(), 2);
    assert_eq!(admins[0].username, "amy");
    assert_eq!(admins[0].user_id, amy.id);
    assert!(admins[0].permissions.is_empty());
    assert_eq!(admins[0].scope_group.as_deref(), Some("Sales"));
    assert_eq!(admins[1].username, "Zed");
    assert_eq!(
        admins[1].permissions,
        vec![Permission::AddUsers, Permission::ViewAuditLog]
    );
    assert_eq!(admins[1].scope_group, None);

    // Putting again replaces the grant.
    store
        .put_admin(
            zed.id,
            &Permission::ALL,
            Some("Ops"),
            &ev("admin_granted", Some("Zed")),
        )
        .await?;
    assert_eq!(store.count_admins().await?, 2);
    let admins = store.list_admins().await?;
    assert_eq!(admins[1].permissions, Permission::ALL.to_vec());
    assert_eq!(admins[1].scope_group.as_deref(), Some("Ops"));
    assert_eq!(audit_count(&store).await?, 5);
    store.close().await;
    Ok(())
}

async fn timestamps_round_trip(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    let u = create(&store, "tim", &[]).await?;
    // Users keep whole seconds, taken from the event's time.
    assert_eq!(u.created_at, datetime!(2026-03-01 10:00:00 UTC));
    assert_eq!(u.updated_at, datetime!(2026-03-01 10:00:00 UTC));

    let mut edit = u.clone();
    edit.locked_until = Some(datetime!(2030-12-31 23:59:59.999 UTC));
    store
        .update_user(&edit, &ev("user_locked", Some("tim")))
        .await?;
    let found = store.find_user("tim").await?.context("tim")?;
    assert_eq!(found.locked_until, Some(datetime!(2030-12-31 23:59:59 UTC)));

    // Audit events keep milliseconds.
    let id = store
        .append_audit(&ev_at("x", None, datetime!(2026-03-01 10:00:00.987654 UTC)))
        .await?;
    let events = store.audit_events(&AuditQuery::default()).await?;
    let e = events.iter().find(|e| e.id == id).context("event")?;
    assert_eq!(e.at, datetime!(2026-03-01 10:00:00.987 UTC));
    let old = store
        .append_audit(&ev_at("x", None, datetime!(1969-12-31 23:59:59.5 UTC)))
        .await?;
    let events = store.audit_events(&AuditQuery::default()).await?;
    let e = events.iter().find(|e| e.id == old).context("event")?;
    assert_eq!(e.at, datetime!(1969-12-31 23:59:59.5 UTC));
    store.close().await;
    Ok(())
}

async fn ping_ok(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    store.ping().await?;
    Store::ping(&store).await?;
    assert_eq!(Store::backend(&store), backend.name());
    store.close().await;
    Ok(())
}

async fn ping_fails_after_database_is_destroyed(backend: Backend) -> anyhow::Result<()> {
    let (db, store) = setup(backend).await?;
    create(&store, "pat", &[]).await?;
    store.ping().await?;
    db.destroy().await?;
    let started = Instant::now();
    let err = store.ping().await.unwrap_err();
    ensure!(
        started.elapsed() < Duration::from_secs(4),
        "ping took {:?}",
        started.elapsed()
    );
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    store.close().await;
    Ok(())
}

async fn reconnect_keeps_data(backend: Backend) -> anyhow::Result<()> {
    let (db, store) = setup(backend).await?;
    let u = create(&store, "quinn", &["g"]).await?;
    store.close().await;
    assert!(matches!(
        store.count_users().await,
        Err(Error::Unavailable(_))
    ));

    // Migrations run again on every connect and must find nothing to do.
    let store = db.store().await?;
    assert_eq!(store.find_user("QUINN").await?, Some(u));
    assert_eq!(audit_count(&store).await?, 1);
    store.close().await;
    Ok(())
}

async fn concurrent_updates_one_wins(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    let u = create(&store, "race", &[]).await?;
    let mut a = u.clone();
    a.display_name = Some("A".into());
    let mut b = u.clone();
    b.display_name = Some("B".into());
    let ea = ev("user_updated", Some("race"));
    let eb = ev("user_updated", Some("race"));
    let (ra, rb) = tokio::join!(store.update_user(&a, &ea), store.update_user(&b, &eb));
    let (won, lost) = match (ra, rb) {
        (Ok(w), Err(l)) | (Err(l), Ok(w)) => (w, l),
        other => panic!("expected exactly one winner, got {other:?}"),
    };
    assert!(matches!(lost, Error::Conflict(_)), "{lost:?}");
    assert_eq!(won.version, 2);
    assert_eq!(store.find_user("race").await?, Some(won));
    assert_eq!(audit_count(&store).await?, 2);
    store.close().await;
    Ok(())
}

// Backend-independent connection behaviour.

#[tokio::test]
async fn connect_rejects_unsupported_schemes() {
    for url in [
        "mysql://root@127.0.0.1/twofold",
        "twofold.db",
        "",
        "http://x",
    ] {
        let err = SqlStore::connect(url, 1).await.unwrap_err();
        match &err {
            Error::InvalidInput { field, message } => {
                assert_eq!(field, "database.url");
                assert!(message.contains("sqlite://"), "{message}");
            }
            other => panic!("{url}: expected InvalidInput, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn connect_to_unreachable_postgres_is_unavailable_quickly() {
    let started = Instant::now();
    let err = SqlStore::connect("postgres://postgres@127.0.0.1:1/postgres", 2)
        .await
        .unwrap_err();
    ensure_quick(started);
    match err {
        Error::Unavailable(m) => assert!(m.contains("refused"), "the cause is shown: {m}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn connect_to_missing_postgres_database_is_unavailable() -> anyhow::Result<()> {
    let db = TestDb::new(Backend::Postgres).await?;
    let url = format!("{}_missing", db.url);
    let started = Instant::now();
    let err = SqlStore::connect(&url, 2).await.unwrap_err();
    ensure_quick(started);
    assert!(
        matches!(err, Error::Unavailable(ref m) if m.contains("does not exist")),
        "{err:?}"
    );
    Ok(())
}

fn ensure_quick(started: Instant) {
    assert!(
        started.elapsed() < Duration::from_secs(7),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn sqlite_file_is_created_in_wal_mode() -> anyhow::Result<()> {
    let db = TestDb::new(Backend::Sqlite).await?;
    let path = db.sqlite_path().context("sqlite path")?.to_path_buf();
    ensure!(!path.exists());
    let store = db.store().await?;
    ensure!(path.exists(), "connect creates the file");
    assert_eq!(store.sqlite_path(), Some(path.as_path()));

    let mut conn = sqlx::AnyConnection::connect(&db.url).await?;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await?;
    assert_eq!(mode, "wal");
    conn.close().await?;
    // Cascades only work with foreign keys enforced on the store's own
    // connections; `delete_cascades_groups_and_admin_grant` covers them.
    store.close().await;
    Ok(())
}

#[tokio::test]
async fn sqlite_in_memory_keeps_data_across_calls() -> anyhow::Result<()> {
    let store = SqlStore::connect("sqlite::memory:", 8).await?;
    create(&store, "mem", &["g"]).await?;
    assert_eq!(store.count_users().await?, 1);
    assert_eq!(
        store.find_user("MEM").await?.context("mem")?.groups,
        vec!["g"]
    );
    store.ping().await?;
    store.close().await;
    Ok(())
}

#[tokio::test]
async fn test_database_is_dropped_with_its_testdb() -> anyhow::Result<()> {
    let db = TestDb::new(Backend::Postgres).await?;
    let name = db.url.rsplit('/').next().context("name")?.to_string();
    let store = db.store().await?;
    create(&store, "x", &[]).await?;
    // Still connected: Drop must force the database away regardless.
    drop(db);
    let mut admin = sqlx::PgConnection::connect(&twofold_testkit::db::pg_admin_url()).await?;
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_database WHERE datname = $1")
        .bind(&name)
        .fetch_one(&mut admin)
        .await?;
    assert_eq!(left, 0, "{name} still exists");
    admin.close().await?;
    Ok(())
}
