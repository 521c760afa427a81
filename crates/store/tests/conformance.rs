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
use twofold_core::factors::{
    Backoff, Enrollment, Factor, FailureOutcome, FailureState, GuessPolicy, NewOathToken,
    OathAlgorithm, OathKind, OathParams, SessionRecord, StoredAnswer,
};
use twofold_core::ports::{Store, UserQuery};
use twofold_core::user::{DefaultMethod, NewUser, Permission, User, UserStatus};
use twofold_core::Error;
use twofold_store::{SqlStore, LOCKED_UNTIL_UNBLOCKED};
use twofold_testkit::{Backend, TestDb};

twofold_testkit::both_backends!(
    #[tokio::test] -> anyhow::Result<()>;
    service_accounts_keep_role_permissions_and_scope,
    audit_prune_deletes_only_older_events_in_batches,
    a_given_token_sets_a_missing_method_only,
    admins_are_revoked,
    create_and_find_in_any_case,
    passcode_view_reads_what_the_three_reads_do,
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
    // Factors (migration 0002).
    upgrade_from_0001_keeps_data,
    oath_tokens_add_list_delete,
    oath_counter_is_compare_and_set,
    oath_counter_concurrent_advances_one_wins,
    pin_moves_to_history_which_is_trimmed,
    questions_add_list_and_refuse_duplicates,
    answers_are_replaced_and_question_delete_cascades,
    set_answers_with_bad_questions_writes_nothing,
    user_delete_cascades_factors,
    factor_calls_on_unknown_user,
    factor_version_rules,
    bypass_is_consumed_once,
    concurrent_bypass_consumers_one_wins,
    failures_back_off_per_user_and_factor,
    failures_hard_lock_until_unblocked,
    hourly_limit_is_atomic,
    enrollment_writes_everything_at_once,
    enrollment_twice_is_conflict_and_keeps_the_first,
    enrollment_with_a_preset_method_checks_the_version,
    enrollment_rolls_back_entirely_on_failure,
    concurrent_enrollments_one_wins,
    sessions_expire_and_purge,
    factor_changes_and_audit_land_together,
    // Challenges (migration 0004).
    challenges_create_read_and_finish,
    phone_challenges_by_destination,
    the_outbox_keeps_the_newest,
    challenge_finish_respects_expiry,
    challenge_attempts_count_while_pending,
    expired_challenges_are_purged,
    challenge_create_refusals_write_nothing,
    concurrent_challenge_moves_one_wins,
    user_delete_cascades_challenges,
    // The mobile app (migration 0012).
    activation_codes_are_used_once,
    expired_activation_codes_are_refused,
    the_device_limit_refuses_and_keeps_the_code,
    concurrent_activations_on_two_nodes_respect_the_limit,
    devices_are_listed_and_removed_with_their_token,
    replayed_nonces_are_refused,
    a_nonce_races_on_two_nodes_one_wins,
    pending_mobile_challenges_are_the_users_waiting_ones,
    wakeups_reach_every_node,
    // Directory synchronisation (migration 0014).
    sync_items_are_created_listed_and_deleted,
    synced_users_are_the_items_users,
    the_sync_lease_is_compare_and_set,
    sync_state_round_trips,
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
        via: None,
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
        groups: groups.iter().map(ToString::to_string).collect(),
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
                ..NewUser::default()
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

    // An imported user arrives with phones and a method in the same row.
    let imported = store
        .create_user(
            &NewUser {
                username: "bob".into(),
                phone: Some("+31205550101".into()),
                phone_extension: Some("204".into()),
                backup_phone: Some("+31205550199".into()),
                mobile_phone: Some("+31612345678".into()),
                default_method: Some("phone_call:pin".parse::<DefaultMethod>()?),
                ..NewUser::default()
            },
            &ev("user_created", Some("bob")),
        )
        .await?;
    assert_eq!(imported.phone.as_deref(), Some("+31205550101"));
    assert_eq!(imported.phone_extension.as_deref(), Some("204"));
    assert_eq!(imported.backup_phone.as_deref(), Some("+31205550199"));
    assert_eq!(imported.mobile_phone.as_deref(), Some("+31612345678"));
    assert_eq!(
        imported.default_method,
        Some("phone_call:pin".parse::<DefaultMethod>()?)
    );
    assert_eq!(store.find_user("bob").await?.as_ref(), Some(&imported));
    assert_eq!(store.count_users().await?, 2);
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
            Error::Conflict { message: m, .. } => {
                assert_eq!(m, format!("user {name} already exists"));
            }
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
        Error::Conflict { message: m, .. } => {
            assert_eq!(m, "user was changed concurrently; reload and retry");
        }
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
    edit.phone = Some("+31207948261".into());
    edit.phone_extension = Some("42".into());
    edit.backup_phone = Some("+12015550123".into());
    edit.mobile_phone = Some("+31612345678".into());
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
    assert_eq!(found.phone.as_deref(), Some("+31207948261"));
    assert_eq!(found.phone_extension.as_deref(), Some("42"));
    assert_eq!(found.backup_phone.as_deref(), Some("+12015550123"));
    assert_eq!(found.mobile_phone.as_deref(), Some("+31612345678"));

    // Clearing goes back to NULL.
    let mut clear = found.clone();
    clear.phone = None;
    clear.phone_extension = None;
    clear.backup_phone = None;
    clear.mobile_phone = None;
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
    assert_eq!(cleared.phones(), Vec::<&str>::new());
    assert_eq!(cleared.phone_extension, None);
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
        via: Some("sdk:portal".into()),
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
        e.at = T0 + time::Duration::milliseconds(i64::try_from(i)?);
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
    assert_eq!(newest.via.as_deref(), Some("sdk:portal"));
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
    // The sign-in's reads too (on SQLite they do not go through the pool).
    assert!(matches!(
        store.find_user("anyone").await,
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
    assert!(matches!(lost, Error::Conflict { .. }), "{lost:?}");
    assert_eq!(won.version, 2);
    assert_eq!(store.find_user("race").await?, Some(won));
    assert_eq!(audit_count(&store).await?, 2);
    store.close().await;
    Ok(())
}

// --- Factors (migration 0002) ------------------------------------------------

fn token(label: &str, kind: OathKind, counter: i64) -> NewOathToken {
    NewOathToken {
        label: label.into(),
        params: OathParams {
            kind,
            algorithm: OathAlgorithm::Sha256,
            digits: 8,
            period: 60,
        },
        sealed_secret: format!("sealed:{label}"),
        counter,
    }
}

fn secs(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).expect("valid nanosecond")
}

async fn user(store: &SqlStore, name: &str) -> anyhow::Result<User> {
    store.find_user(name).await?.context("user missing")
}

fn oath_method() -> DefaultMethod {
    DefaultMethod::from_parts("oath_token", "oath").expect("valid method")
}

fn answers_of(list: &[StoredAnswer]) -> Vec<(i64, &str)> {
    list.iter()
        .map(|a| (a.question_id, a.hash.as_str()))
        .collect()
}

/// Back-off from the `after`th failure in a row: 60 s doubling up to 600 s;
/// a streak ends after 300 quiet seconds.
fn backoff(after: u32) -> GuessPolicy {
    GuessPolicy {
        backoff: Some(Backoff {
            after,
            base_seconds: 60,
            cap_seconds: Some(600),
            quiet_seconds: 300,
        }),
        hard_lock_after: None,
        hourly_limit: None,
    }
}

fn hard_lock(after: u32) -> GuessPolicy {
    GuessPolicy {
        hard_lock_after: Some(after),
        ..GuessPolicy::NONE
    }
}

fn hourly(limit: u32) -> GuessPolicy {
    GuessPolicy {
        hourly_limit: Some(limit),
        ..GuessPolicy::NONE
    }
}

fn counted(outcome: FailureOutcome) -> (FailureState, bool) {
    match outcome {
        FailureOutcome::Counted { state, hard_locked } => (state, hard_locked),
        FailureOutcome::Closed { until } => panic!("closed until {until}"),
    }
}

/// A database made by a release that only had 0001 is brought up to date on
/// connect, its rows intact and the new columns at their defaults.
async fn upgrade_from_0001_keeps_data(backend: Backend) -> anyhow::Result<()> {
    let db = TestDb::new(backend).await?;
    sqlx::any::install_default_drivers();
    let url = match backend {
        Backend::Sqlite => format!("{}?mode=rwc", db.url),
        Backend::Postgres => db.url.clone(),
    };
    let pool = sqlx::AnyPool::connect(&url).await?;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend.name());
    let mut only_first = sqlx::migrate::Migrator::new(dir).await?;
    let first: Vec<_> = only_first
        .migrations
        .iter()
        .filter(|m| m.version == 1)
        .cloned()
        .collect();
    ensure!(first.len() == 1);
    only_first.migrations = first.into();
    only_first.run(&pool).await?;
    sqlx::query(
        "INSERT INTO users (username, username_key, created_at, updated_at, locked_until) \
         VALUES ('Old', 'old', 1, 1, 5)",
    )
    .execute(&pool)
    .await?;
    pool.close().await;

    let store = db.store().await?;
    let old = user(&store, "old").await?;
    assert_eq!(old.username, "Old");
    assert_eq!(old.version, 1);
    assert_eq!(store.bypass_until(old.id).await?, None);
    let (first, _) = counted(
        store
            .record_failure(old.id, Factor::Password, T0, &backoff(5))
            .await?,
    );
    assert_eq!(
        (first.streak, first.consecutive),
        (1, 1),
        "the counter starts at its default"
    );
    assert!(store.oath_tokens(old.id).await?.is_empty());
    assert_eq!(store.pin(old.id).await?, None);
    store.close().await;
    Ok(())
}

async fn oath_tokens_add_list_delete(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    let u = create(&store, "olga", &[]).await?;
    let other = create(&store, "otto", &[]).await?;

    let a = store
        .add_oath_token(
            u.id,
            &token("phone", OathKind::Totp, 0),
            &ev_at("token_added", Some("olga"), at(7)),
        )
        .await?;
    assert_eq!(newest_event(&store).await?, "token_added");
    let b = store
        .add_oath_token(
            u.id,
            &token("keyfob", OathKind::Hotp, 12),
            &ev("token_added", Some("olga")),
        )
        .await?;
    let o = store
        .add_oath_token(
            other.id,
            &token("otto's", OathKind::Totp, 0),
            &ev("token_added", Some("otto")),
        )
        .await?;
    ensure!(a.id < b.id, "ids grow");

    assert_eq!(a.user_id, u.id);
    assert_eq!(a.label, "phone");
    assert_eq!(a.params, token("phone", OathKind::Totp, 0).params);
    assert_eq!(a.sealed_secret, "sealed:phone");
    assert_eq!(a.counter, 0);
    assert_eq!(a.created_at, secs(at(7)));
    assert_eq!(b.params.kind, OathKind::Hotp);
    assert_eq!(b.counter, 12);

    // Listed by id, exactly as returned when added, and only the user's own.
    assert_eq!(store.oath_tokens(u.id).await?, vec![a.clone(), b.clone()]);
    assert_eq!(store.oath_tokens(other.id).await?, vec![o.clone()]);

    // Every kind and algorithm round-trips.
    for (kind, algorithm) in [
        (OathKind::Hotp, OathAlgorithm::Sha1),
        (OathKind::Totp, OathAlgorithm::Sha512),
    ] {
        let mut t = token("x", kind, 3);
        t.params = OathParams {
            kind,
            algorithm,
            digits: 6,
            period: 30,
        };
        let added = store
            .add_oath_token(other.id, &t, &ev("token_added", Some("otto")))
            .await?;
        let listed = store.oath_tokens(other.id).await?;
        assert_eq!(listed.last(), Some(&added));
        assert_eq!(added.params, t.params);
    }

    let before = audit_count(&store).await?;
    // Another user's token is "no such token" for this user.
    assert!(
        !store
            .delete_oath_token(u.id, o.id, &ev("token_deleted", Some("olga")))
            .await?
    );
    assert_eq!(
        audit_count(&store).await?,
        before,
        "nothing deleted, nothing recorded"
    );
    assert_eq!(store.oath_tokens(other.id).await?.len(), 3);

    assert!(
        store
            .delete_oath_token(u.id, a.id, &ev("token_deleted", Some("olga")))
            .await?
    );
    assert_eq!(newest_event(&store).await?, "token_deleted");
    assert_eq!(store.oath_tokens(u.id).await?, vec![b.clone()]);
    assert!(
        !store
            .delete_oath_token(u.id, a.id, &ev("token_deleted", Some("olga")))
            .await?
    );
    assert_eq!(audit_count(&store).await?, before + 1);
    store.close().await;
    Ok(())
}

async fn oath_counter_is_compare_and_set(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    let u = create(&store, "cas", &[]).await?;
    let t = store
        .add_oath_token(
            u.id,
            &token("t", OathKind::Totp, 100),
            &ev("token_added", Some("cas")),
        )
        .await?;
    let other = store
        .add_oath_token(
            u.id,
            &token("u", OathKind::Totp, 100),
            &ev("token_added", Some("cas")),
        )
        .await?;
    let events = audit_count(&store).await?;

    assert!(store.advance_oath_counter(t.id, 100, 105).await?);
    // The same code again: the counter moved on, the replay is refused.
    assert!(!store.advance_oath_counter(t.id, 100, 105).await?);
    assert!(!store.advance_oath_counter(t.id, 100, 106).await?);
    assert!(store.advance_oath_counter(t.id, 105, 106).await?);
    assert!(
        !store
            .advance_oath_counter(t.id + other.id + 1000, 0, 1)
            .await?
    );

    let tokens = store.oath_tokens(u.id).await?;
    assert_eq!(tokens[0].counter, 106);
    assert_eq!(tokens[1].counter, 100, "other tokens untouched");
    assert_eq!(
        audit_count(&store).await?,
        events,
        "counters are not audited"
    );
    assert_eq!(user(&store, "cas").await?.version, 3, "nor are they edits");
    store.close().await;
    Ok(())
}

/// `passcode_view` is `find_user` (groups and all), the code factor's
/// `failures` and `oath_tokens` — on PostgreSQL read in one statement whose
/// rows multiply groups by tokens — for any case of the name.
async fn passcode_view_reads_what_the_three_reads_do(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    let u = create(&store, "Viewer", &["Zeta", "alpha", "Mid"]).await?;
    for label in ["one", "two", "three"] {
        store
            .add_oath_token(
                u.id,
                &token(label, OathKind::Hotp, 7),
                &ev("token_added", Some("Viewer")),
            )
            .await?;
    }
    store
        .record_failure(u.id, Factor::Code, T0, &backoff(5))
        .await?;
    store
        .record_failure(u.id, Factor::Code, T0, &backoff(5))
        .await?;
    // Another factor's record is not the code factor's.
    store
        .record_failure(u.id, Factor::Answers, T0, &backoff(5))
        .await?;

    let view = store.passcode_view("vIEWER").await?.context("found")?;
    let found = store.find_user("viewer").await?.context("found")?;
    ensure!(view.user == found, "{:?} != {found:?}", view.user);
    ensure!(view.user.groups == ["alpha", "Mid", "Zeta"]);
    ensure!(view.code_failures == store.failures(u.id, Factor::Code).await?);
    ensure!(view.code_failures.streak == 2);
    ensure!(view.tokens == store.oath_tokens(u.id).await?);
    ensure!(view.tokens.len() == 3);

    // No groups, no tokens, no failures.
    let bare = create(&store, "bare", &[]).await?;
    let view = store.passcode_view("bare").await?.context("found")?;
    ensure!(view.user == bare);
    ensure!(view.tokens.is_empty() && view.code_failures.is_clear());

    ensure!(store.passcode_view("nobody").await?.is_none());
    for bad in ["a\0b", "esc\u{1b}[2J"] {
        let err = store.passcode_view(bad).await.err().context("refused")?;
        ensure!(matches!(err, Error::InvalidInput { .. }), "{bad:?}: {err}");
    }
    store.close().await;
    ensure!(matches!(
        store.passcode_view("viewer").await,
        Err(Error::Unavailable(_))
    ));
    Ok(())
}

async fn oath_counter_concurrent_advances_one_wins(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    let u = create(&store, "race", &[]).await?;
    let t = store
        .add_oath_token(
            u.id,
            &token("t", OathKind::Hotp, 0),
            &ev("token_added", Some("race")),
        )
        .await?;
    for from in 0..5 {
        let (a, b) = tokio::join!(
            store.advance_oath_counter(t.id, from, from + 1),
            store.advance_oath_counter(t.id, from, from + 1)
        );
        assert!(a? ^ b?, "round {from}: exactly one advance wins");
    }
    assert_eq!(store.oath_tokens(u.id).await?[0].counter, 5);
    store.close().await;
    Ok(())
}

async fn pin_moves_to_history_which_is_trimmed(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    let u = create(&store, "pia", &[]).await?;
    let other = create(&store, "pete", &[]).await?;
    assert_eq!(store.pin(u.id).await?, None);
    assert!(store.pin_history(u.id).await?.is_empty());

    store
        .set_pin(u.id, "h1", at(1), 3, &ev("pin_set", Some("pia")))
        .await?;
    assert_eq!(newest_event(&store).await?, "pin_set");
    let pin = store.pin(u.id).await?.context("pin")?;
    assert_eq!(pin.hash, "h1");
    assert_eq!(pin.set_at, secs(at(1)));
    assert!(
        store.pin_history(u.id).await?.is_empty(),
        "the current PIN is not history"
    );

    for (i, h) in ["h2", "h3", "h4", "h5"].into_iter().enumerate() {
        store
            .set_pin(
                u.id,
                h,
                at(2 + i64::try_from(i)?),
                3,
                &ev("pin_set", Some("pia")),
            )
            .await?;
    }
    assert_eq!(store.pin(u.id).await?.context("pin")?.hash, "h5");
    assert_eq!(store.pin(u.id).await?.context("pin")?.set_at, secs(at(5)));
    // Newest first, trimmed to the three most recent.
    assert_eq!(store.pin_history(u.id).await?, vec!["h4", "h3", "h2"]);

    // Another user's PIN and history are their own.
    store
        .set_pin(other.id, "x1", at(1), 3, &ev("pin_set", Some("pete")))
        .await?;
    store
        .set_pin(other.id, "x2", at(2), 3, &ev("pin_set", Some("pete")))
        .await?;
    assert_eq!(store.pin_history(other.id).await?, vec!["x1"]);

    // A smaller limit trims further; zero keeps no history at all.
    store
        .set_pin(u.id, "h6", at(6), 1, &ev("pin_set", Some("pia")))
        .await?;
    assert_eq!(store.pin_history(u.id).await?, vec!["h5"]);
    store
        .set_pin(u.id, "h7", at(7), 0, &ev("pin_set", Some("pia")))
        .await?;
    assert!(store.pin_history(u.id).await?.is_empty());
    assert_eq!(store.pin(u.id).await?.context("pin")?.hash, "h7");
    assert_eq!(store.pin_history(other.id).await?, vec!["x1"]);
    store.close().await;
    Ok(())
}

async fn questions_add_list_and_refuse_duplicates(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    assert!(store.questions(None).await?.is_empty());
    let pet = store
        .add_question(
            "en",
            "What was your first pet's name?",
            &ev("question_added", None),
        )
        .await?;
    assert_eq!(newest_event(&store).await?, "question_added");
    let straat = store
        .add_question(
            "nl",
            "In welke straat woonde je als kind?",
            &ev("question_added", None),
        )
        .await?;
    let city = store
        .add_question("en", "Where were you born?", &ev("question_added", None))
        .await?;
    assert_eq!(pet.language, "en");
    assert_eq!(pet.text, "What was your first pet's name?");
    ensure!(pet.id < straat.id && straat.id < city.id);

    let events = audit_count(&store).await?;
    for dup in [
        "What was your first pet's name?",
        "WHAT WAS YOUR FIRST PET'S NAME?",
        "what was your first pet's name?",
    ] {
        let err = store
            .add_question("en", dup, &ev("question_added", None))
            .await
            .unwrap_err();
        match err {
            Error::Conflict { message: m, .. } => assert_eq!(m, "question already exists"),
            other => panic!("expected Conflict, got {other:?}"),
        }
    }
    assert_eq!(
        audit_count(&store).await?,
        events,
        "a refused add records nothing"
    );
    // The same text in another language is another question.
    let pet_nl = store
        .add_question(
            "nl",
            "What was your first pet's name?",
            &ev("question_added", None),
        )
        .await?;

    assert_eq!(
        store.questions(None).await?,
        vec![pet.clone(), straat.clone(), city.clone(), pet_nl.clone()],
        "in the order they were added"
    );
    assert_eq!(
        store.questions(Some("en")).await?,
        vec![pet.clone(), city.clone()]
    );
    assert_eq!(
        store.questions(Some("nl")).await?,
        vec![straat.clone(), pet_nl]
    );
    assert!(store.questions(Some("de")).await?.is_empty());

    let events = audit_count(&store).await?;
    assert!(
        store
            .delete_question(pet.id, &ev("question_deleted", None))
            .await?
    );
    assert_eq!(newest_event(&store).await?, "question_deleted");
    assert!(
        !store
            .delete_question(pet.id, &ev("question_deleted", None))
            .await?
    );
    assert_eq!(audit_count(&store).await?, events + 1);
    assert_eq!(store.questions(Some("en")).await?, vec![city]);
    // Deleted, its text is free again.
    store
        .add_question(
            "en",
            "What was your first pet's name?",
            &ev("question_added", None),
        )
        .await?;
    store.close().await;
    Ok(())
}

async fn answers_are_replaced_and_question_delete_cascades(backend: Backend) -> anyhow::Result<()> {
    let (db, store) = setup(backend).await?;
    let ann = create(&store, "ann", &[]).await?;
    let bo = create(&store, "bo", &[]).await?;
    let q1 = store
        .add_question("en", "Q1", &ev("question_added", None))
        .await?;
    let q2 = store
        .add_question("en", "Q2", &ev("question_added", None))
        .await?;
    let q3 = store
        .add_question("en", "Q3", &ev("question_added", None))
        .await?;
    assert!(store.answers(ann.id).await?.is_empty());

    store
        .set_answers(
            ann.id,
            &[(q2.id, "a2".into()), (q1.id, "a1".into())],
            &ev("answers_set", Some("ann")),
        )
        .await?;
    assert_eq!(newest_event(&store).await?, "answers_set");
    // Listed by question id.
    assert_eq!(
        answers_of(&store.answers(ann.id).await?),
        vec![(q1.id, "a1"), (q2.id, "a2")]
    );
    store
        .set_answers(
            bo.id,
            &[(q1.id, "b1".into()), (q3.id, "b3".into())],
            &ev("answers_set", Some("bo")),
        )
        .await?;

    // Replacing drops what is not given again.
    store
        .set_answers(
            ann.id,
            &[(q3.id, "new3".into()), (q2.id, "new2".into())],
            &ev("answers_set", Some("ann")),
        )
        .await?;
    assert_eq!(
        answers_of(&store.answers(ann.id).await?),
        vec![(q2.id, "new2"), (q3.id, "new3")]
    );
    assert_eq!(
        answers_of(&store.answers(bo.id).await?),
        vec![(q1.id, "b1"), (q3.id, "b3")],
        "another user's answers are untouched"
    );

    // A deleted question takes its answers with it, for every user.
    assert!(
        store
            .delete_question(q3.id, &ev("question_deleted", None))
            .await?
    );
    assert_eq!(
        answers_of(&store.answers(ann.id).await?),
        vec![(q2.id, "new2")]
    );
    assert_eq!(
        answers_of(&store.answers(bo.id).await?),
        vec![(q1.id, "b1")]
    );
    assert_eq!(raw_count(&db, "user_answers").await?, 2);

    // An empty list clears.
    store
        .set_answers(ann.id, &[], &ev("answers_set", Some("ann")))
        .await?;
    assert!(store.answers(ann.id).await?.is_empty());
    assert_eq!(raw_count(&db, "user_answers").await?, 1);
    store.close().await;
    Ok(())
}

async fn set_answers_with_bad_questions_writes_nothing(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    let u = create(&store, "una", &[]).await?;
    let q1 = store
        .add_question("en", "Q1", &ev("question_added", None))
        .await?;
    store
        .set_answers(
            u.id,
            &[(q1.id, "old".into())],
            &ev("answers_set", Some("una")),
        )
        .await?;
    let version = user(&store, "una").await?.version;
    let events = audit_count(&store).await?;

    let err = store
        .set_answers(
            u.id,
            &[(q1.id, "new".into()), (q1.id + 1000, "x".into())],
            &ev("answers_set", Some("una")),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound("question")), "{err:?}");

    let err = store
        .set_answers(
            u.id,
            &[(q1.id, "new".into()), (q1.id, "again".into())],
            &ev("answers_set", Some("una")),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput { field, .. } if field == "answers"),
        "{err:?}"
    );

    assert_eq!(
        answers_of(&store.answers(u.id).await?),
        vec![(q1.id, "old")]
    );
    assert_eq!(user(&store, "una").await?.version, version);
    assert_eq!(audit_count(&store).await?, events);
    store.close().await;
    Ok(())
}

async fn user_delete_cascades_factors(backend: Backend) -> anyhow::Result<()> {
    let (db, store) = setup(backend).await?;
    let q1 = store
        .add_question("en", "Q1", &ev("question_added", None))
        .await?;
    let q2 = store
        .add_question("en", "Q2", &ev("question_added", None))
        .await?;
    let mut ids = Vec::new();
    for name in ["gone", "keep"] {
        let u = create(&store, name, &[]).await?;
        for label in ["a", "b"] {
            store
                .add_oath_token(
                    u.id,
                    &token(label, OathKind::Totp, 0),
                    &ev("token_added", Some(name)),
                )
                .await?;
        }
        for h in ["p1", "p2", "p3"] {
            store
                .set_pin(u.id, h, T0, 5, &ev("pin_set", Some(name)))
                .await?;
        }
        store
            .set_answers(
                u.id,
                &[(q1.id, "a".into()), (q2.id, "b".into())],
                &ev("answers_set", Some(name)),
            )
            .await?;
        ids.push(u.id);
    }
    assert_eq!(raw_count(&db, "oath_tokens").await?, 4);
    assert_eq!(raw_count(&db, "user_pins").await?, 2);
    assert_eq!(raw_count(&db, "pin_history").await?, 4);
    assert_eq!(raw_count(&db, "user_answers").await?, 4);

    assert!(
        store
            .delete_user(ids[0], &ev("user_deleted", Some("gone")))
            .await?
    );
    assert_eq!(raw_count(&db, "oath_tokens").await?, 2);
    assert_eq!(raw_count(&db, "user_pins").await?, 1);
    assert_eq!(raw_count(&db, "pin_history").await?, 2);
    assert_eq!(raw_count(&db, "user_answers").await?, 2);
    assert!(store.oath_tokens(ids[0]).await?.is_empty());
    assert_eq!(store.pin(ids[0]).await?, None);
    assert!(store.pin_history(ids[0]).await?.is_empty());
    assert!(store.answers(ids[0]).await?.is_empty());
    assert_eq!(store.oath_tokens(ids[1]).await?.len(), 2);
    assert_eq!(store.pin_history(ids[1]).await?, vec!["p2", "p1"]);
    assert_eq!(
        store.questions(None).await?.len(),
        2,
        "questions are not the user's"
    );

    // The name is free again and the new user inherits nothing.
    let again = create(&store, "gone", &[]).await?;
    assert!(store.oath_tokens(again.id).await?.is_empty());
    assert_eq!(store.pin(again.id).await?, None);
    assert!(store.answers(again.id).await?.is_empty());
    store.close().await;
    Ok(())
}

async fn factor_calls_on_unknown_user(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    let u = create(&store, "ghost", &[]).await?;
    let q = store
        .add_question("en", "Q", &ev("question_added", None))
        .await?;
    let t = store
        .add_oath_token(
            u.id,
            &token("t", OathKind::Totp, 0),
            &ev("token_added", Some("ghost")),
        )
        .await?;
    assert!(
        store
            .delete_user(u.id, &ev("user_deleted", Some("ghost")))
            .await?
    );
    let events = audit_count(&store).await?;
    let id = u.id;
    let e = || ev("x", Some("ghost"));
    let not_found = |r: Result<(), Error>, what: &str| {
        assert!(matches!(r, Err(Error::NotFound("user"))), "{what}: {r:?}");
    };

    not_found(
        store
            .add_oath_token(id, &token("t", OathKind::Totp, 0), &e())
            .await
            .map(drop),
        "add_oath_token",
    );
    not_found(store.set_pin(id, "h", T0, 5, &e()).await, "set_pin");
    not_found(
        store.set_answers(id, &[(q.id, "a".into())], &e()).await,
        "set_answers",
    );
    not_found(store.set_bypass(id, Some(at(60)), &e()).await, "set_bypass");
    not_found(
        store
            .complete_enrollment(
                id,
                &Enrollment {
                    method: oath_method(),
                    token: None,
                    pin_hash: None,
                    answers: vec![],
                    expected_version: None,
                    phones: None,
                },
                &e(),
            )
            .await
            .map(drop),
        "complete_enrollment",
    );
    not_found(
        store
            .record_failure(id, Factor::Code, T0, &backoff(3))
            .await
            .map(drop),
        "record_failure",
    );
    assert_eq!(
        store
            .record_success(id, Factor::Code, T0, &backoff(3))
            .await?,
        None,
        "nothing to clear"
    );
    not_found(store.bypass_until(id).await.map(drop), "bypass_until");

    // Reads of what belongs to a user are empty; removals and the one-time
    // bypass report "nothing there".
    assert!(store.oath_tokens(id).await?.is_empty());
    assert_eq!(store.pin(id).await?, None);
    assert!(store.pin_history(id).await?.is_empty());
    assert!(store.answers(id).await?.is_empty());
    assert!(!store.delete_oath_token(id, t.id, &e()).await?);
    assert!(!store.consume_bypass(id, T0, &e()).await?);
    assert_eq!(audit_count(&store).await?, events, "nothing recorded");
    store.close().await;
    Ok(())
}

/// Credential writes are writes (version and `updated_at` move, as for a
/// password); what happens during sign-ins is not, except a lock.
async fn factor_version_rules(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    let u = create(&store, "vera", &[]).await?;
    let q = store
        .add_question("en", "Q", &ev("question_added", None))
        .await?;
    let mut version = 1;
    let mut check = |v: &User, bumped: bool, what: &str| {
        if bumped {
            version += 1;
        }
        assert_eq!(v.version, version, "{what}");
    };

    let t = store
        .add_oath_token(
            u.id,
            &token("t", OathKind::Totp, 0),
            &ev_at("e", None, at(10)),
        )
        .await?;
    let v = user(&store, "vera").await?;
    check(&v, true, "add_oath_token");
    assert_eq!(v.updated_at, secs(at(10)));
    store
        .set_pin(u.id, "h", at(11), 5, &ev_at("e", None, at(11)))
        .await?;
    check(&user(&store, "vera").await?, true, "set_pin");
    store
        .set_answers(u.id, &[(q.id, "a".into())], &ev_at("e", None, at(12)))
        .await?;
    check(&user(&store, "vera").await?, true, "set_answers");
    store
        .delete_oath_token(u.id, t.id, &ev_at("e", None, at(13)))
        .await?;
    let v = user(&store, "vera").await?;
    check(&v, true, "delete_oath_token");
    assert_eq!(v.updated_at, secs(at(13)));

    store
        .set_bypass(u.id, Some(at(600)), &ev("e", None))
        .await?;
    check(&user(&store, "vera").await?, false, "set_bypass");
    assert!(store.consume_bypass(u.id, at(14), &ev("e", None)).await?);
    check(&user(&store, "vera").await?, false, "consume_bypass");
    store
        .record_failure(u.id, Factor::Password, at(15), &backoff(3))
        .await?;
    check(&user(&store, "vera").await?, false, "record_failure");
    store
        .record_success(u.id, Factor::Password, at(16), &backoff(3))
        .await?;
    check(&user(&store, "vera").await?, false, "record_success");
    store
        .session_put(&SessionRecord {
            id_hash: "s".into(),
            data: "{}".into(),
            expires_at: at(100),
        })
        .await?;
    check(&user(&store, "vera").await?, false, "session_put");
    let v = user(&store, "vera").await?;
    assert_eq!(v.updated_at, secs(at(13)));

    // A failure that locks changes `locked_until`: an edit based on the user
    // as loaded before must not silently unlock.
    for i in 0..3 {
        store
            .record_failure(u.id, Factor::Code, at(20 + i), &hard_lock(3))
            .await?;
    }
    let locked = user(&store, "vera").await?;
    check(&locked, true, "a locking denial");
    let err = store
        .update_user(&v, &ev("user_updated", Some("vera")))
        .await;
    assert!(matches!(err, Err(Error::Conflict { .. })), "{err:?}");
    assert_eq!(
        user(&store, "vera").await?.locked_until,
        locked.locked_until
    );
    store.close().await;
    Ok(())
}

async fn bypass_is_consumed_once(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    let u = create(&store, "bea", &[]).await?;
    let other = create(&store, "bram", &[]).await?;
    assert_eq!(store.bypass_until(u.id).await?, None);
    assert!(
        !store
            .consume_bypass(u.id, T0, &ev("bypass_used", Some("bea")))
            .await?
    );

    store
        .set_bypass(u.id, Some(at(300)), &ev("bypass_granted", Some("bea")))
        .await?;
    assert_eq!(newest_event(&store).await?, "bypass_granted");
    assert_eq!(store.bypass_until(u.id).await?, Some(secs(at(300))));
    assert_eq!(store.bypass_until(other.id).await?, None);
    assert!(
        !store
            .consume_bypass(other.id, T0, &ev("bypass_used", Some("bram")))
            .await?
    );

    let events = audit_count(&store).await?;
    assert!(
        store
            .consume_bypass(u.id, at(299), &ev("bypass_used", Some("bea")))
            .await?
    );
    assert_eq!(newest_event(&store).await?, "bypass_used");
    assert_eq!(store.bypass_until(u.id).await?, None);
    assert!(
        !store
            .consume_bypass(u.id, at(299), &ev("bypass_used", Some("bea")))
            .await?
    );
    assert_eq!(
        audit_count(&store).await?,
        events + 1,
        "only the use is recorded"
    );

    // Expired: not consumed, and still shown as it was.
    store
        .set_bypass(u.id, Some(at(300)), &ev("bypass_granted", Some("bea")))
        .await?;
    assert!(
        !store
            .consume_bypass(u.id, at(300), &ev("bypass_used", Some("bea")))
            .await?
    );
    assert!(
        !store
            .consume_bypass(u.id, at(301), &ev("bypass_used", Some("bea")))
            .await?
    );
    assert_eq!(store.bypass_until(u.id).await?, Some(secs(at(300))));

    // Cancelled.
    store
        .set_bypass(u.id, Some(at(900)), &ev("bypass_granted", Some("bea")))
        .await?;
    store
        .set_bypass(u.id, None, &ev("bypass_cancelled", Some("bea")))
        .await?;
    assert_eq!(newest_event(&store).await?, "bypass_cancelled");
    assert_eq!(store.bypass_until(u.id).await?, None);
    assert!(
        !store
            .consume_bypass(u.id, T0, &ev("bypass_used", Some("bea")))
            .await?
    );
    store.close().await;
    Ok(())
}

async fn concurrent_bypass_consumers_one_wins(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    let u = create(&store, "duo", &[]).await?;
    for round in 0..5 {
        store
            .set_bypass(u.id, Some(at(600)), &ev("bypass_granted", Some("duo")))
            .await?;
        let events = audit_count(&store).await?;
        let (a, b) = (store.clone(), store.clone());
        let (ea, eb) = (
            ev("bypass_used", Some("duo")),
            ev("bypass_used", Some("duo")),
        );
        let (ra, rb) = tokio::join!(
            tokio::spawn(async move { a.consume_bypass(u.id, T0, &ea).await }),
            tokio::spawn(async move { b.consume_bypass(u.id, T0, &eb).await })
        );
        let (ra, rb) = (ra??, rb??);
        assert!(
            ra ^ rb,
            "round {round}: exactly one consumer, got {ra} and {rb}"
        );
        assert_eq!(audit_count(&store).await?, events + 1, "round {round}");
        assert_eq!(store.bypass_until(u.id).await?, None);
    }
    store.close().await;
    Ok(())
}

async fn failures_back_off_per_user_and_factor(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    let u = create(&store, "dina", &[]).await?;
    let other = create(&store, "dirk", &[]).await?;
    let p = backoff(3);
    let fail = |id, factor, t| store.record_failure(id, factor, t, &p);
    for n in 1..=2_u32 {
        let (s, locked) = counted(fail(u.id, Factor::Password, at(i64::from(n))).await?);
        assert_eq!(
            (s.streak, s.consecutive, s.blocked_until, locked),
            (n, n, None, false)
        );
    }
    // The third in a row closes the factor for a minute...
    let (s, _) = counted(fail(u.id, Factor::Password, at(2)).await?);
    assert_eq!(s.blocked_until, Some(secs(at(62))));
    // ...during which nothing is counted, on any path.
    assert_eq!(
        fail(u.id, Factor::Password, at(30)).await?,
        FailureOutcome::Closed {
            until: secs(at(62))
        }
    );
    assert_eq!(
        store
            .record_success(u.id, Factor::Password, at(30), &p)
            .await?,
        Some(secs(at(62))),
        "a right secret is not taken while closed"
    );
    // Then the pause doubles: 2, 4, 8 minutes, capped at 10.
    let (s, _) = counted(fail(u.id, Factor::Password, at(62)).await?);
    assert_eq!(s.blocked_until, Some(secs(at(62 + 120))));
    let (s, _) = counted(fail(u.id, Factor::Password, at(182)).await?);
    assert_eq!(s.blocked_until, Some(secs(at(182 + 240))));
    let (s, _) = counted(fail(u.id, Factor::Password, at(422)).await?);
    assert_eq!(s.blocked_until, Some(secs(at(422 + 480))));
    let (s, _) = counted(fail(u.id, Factor::Password, at(902)).await?);
    assert_eq!(s.blocked_until, Some(secs(at(902 + 600))));
    assert_eq!((s.streak, s.consecutive), (7, 7));

    // Other factors and other users are untouched.
    assert_eq!(
        store.failures(u.id, Factor::Code).await?,
        FailureState::default()
    );
    assert_eq!(
        store.failures(other.id, Factor::Password).await?,
        FailureState::default()
    );
    let (s, _) = counted(fail(u.id, Factor::Code, at(903)).await?);
    assert_eq!((s.streak, s.blocked_until), (1, None));

    // Quiet long enough after the pause ends: a new streak, the count since
    // the last success goes on.
    let (s, _) = counted(fail(u.id, Factor::Password, at(1502 + 300)).await?);
    assert_eq!((s.streak, s.consecutive, s.blocked_until), (1, 8, None));

    // A right secret ends both counts.
    assert_eq!(
        store
            .record_success(u.id, Factor::Password, at(1900), &p)
            .await?,
        None
    );
    let s = store.failures(u.id, Factor::Password).await?;
    assert_eq!((s.streak, s.consecutive, s.blocked_until), (0, 0, None));
    let after = user(&store, "dina").await?;
    assert_eq!(after.locked_until, None, "a back-off is not a lock");
    assert_eq!(
        audit_count(&store).await?,
        2,
        "the store audits nothing here"
    );
    store.close().await;
    Ok(())
}

async fn failures_hard_lock_until_unblocked(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    let u = create(&store, "ulla", &[]).await?;
    let p = hard_lock(3);
    for i in 0..2 {
        let (_, locked) = counted(store.record_failure(u.id, Factor::Code, at(i), &p).await?);
        assert!(!locked);
    }
    let (s, locked) = counted(store.record_failure(u.id, Factor::Code, at(2), &p).await?);
    assert!(locked);
    assert_eq!(s.consecutive, 3);
    let locked = user(&store, "ulla").await?;
    assert_eq!(locked.locked_until, Some(LOCKED_UNTIL_UNBLOCKED));
    assert_eq!(LOCKED_UNTIL_UNBLOCKED, datetime!(9999-12-31 00:00 UTC));
    assert_eq!(
        locked.status(datetime!(2999-01-01 00:00 UTC)),
        UserStatus::LockedUntil(LOCKED_UNTIL_UNBLOCKED)
    );

    // An administrator unblocks by clearing the lock: the records that led
    // to it go too, or the next failure would lock again at once.
    let mut unblock = locked.clone();
    unblock.locked_until = None;
    let unblocked = store
        .update_user(&unblock, &ev("user_unlocked", Some("ulla")))
        .await?;
    assert_eq!(unblocked.status(at(3)), UserStatus::Enabled);
    assert_eq!(
        store.failures(u.id, Factor::Code).await?,
        FailureState::default()
    );
    let (_, locked) = counted(store.record_failure(u.id, Factor::Code, at(4), &p).await?);
    assert!(!locked);

    // An edit that does not unlock keeps the records.
    let mut edit = user(&store, "ulla").await?;
    edit.display_name = Some("Ulla".into());
    store
        .update_user(&edit, &ev("user_updated", Some("ulla")))
        .await?;
    assert_eq!(store.failures(u.id, Factor::Code).await?.consecutive, 1);

    // A lock never shortens a longer one already in place.
    let mut admin_lock = user(&store, "ulla").await?;
    admin_lock.locked_until = Some(at(100_000));
    store
        .update_user(&admin_lock, &ev("user_locked", Some("ulla")))
        .await?;
    let p1 = GuessPolicy {
        hard_lock_after: Some(1),
        ..GuessPolicy::NONE
    };
    counted(
        store
            .record_failure(u.id, Factor::Password, at(5), &p1)
            .await?,
    );
    assert_eq!(
        user(&store, "ulla").await?.locked_until,
        Some(LOCKED_UNTIL_UNBLOCKED.max(secs(at(100_000))))
    );
    store.close().await;
    Ok(())
}

/// The hourly bound holds under parallel requests: the gate and the count
/// are one step, so sixteen wrong codes at once count ten and refuse six.
async fn hourly_limit_is_atomic(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    let u = create(&store, "hugo", &[]).await?;
    let store = std::sync::Arc::new(store);
    let p = hourly(10);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.record_failure(u.id, Factor::Code, at(0), &p).await })
        })
        .collect();
    let mut counted_n = 0;
    let mut closed_n = 0;
    for t in tasks {
        match t.await?? {
            FailureOutcome::Counted { .. } => counted_n += 1,
            FailureOutcome::Closed { until } => {
                assert_eq!(until, secs(at(3600)));
                closed_n += 1;
            }
        }
    }
    assert_eq!((counted_n, closed_n), (10, 6));
    assert_eq!(store.failures(u.id, Factor::Code).await?.hour_failures, 10);
    // A right code is not taken in the closed hour either; the next hour
    // counts afresh.
    assert_eq!(
        store
            .record_success(u.id, Factor::Code, at(3599), &p)
            .await?,
        Some(secs(at(3600)))
    );
    let (s, _) = counted(
        store
            .record_failure(u.id, Factor::Code, at(3600), &p)
            .await?,
    );
    assert_eq!((s.hour_failures, s.hour_start), (1, Some(secs(at(3600)))));
    store.close().await;
    Ok(())
}

async fn enrollment_writes_everything_at_once(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    let u = create(&store, "ella", &["g"]).await?;
    let q1 = store
        .add_question("en", "Q1", &ev("question_added", None))
        .await?;
    let q2 = store
        .add_question("en", "Q2", &ev("question_added", None))
        .await?;
    let enrollment = Enrollment {
        method: oath_method(),
        token: Some(token("phone", OathKind::Totp, 0)),
        pin_hash: Some("pinhash".into()),
        answers: vec![(q2.id, "a2".into()), (q1.id, "a1".into())],
        expected_version: None,
        phones: None,
    };
    let events = audit_count(&store).await?;
    let enrolled = store
        .complete_enrollment(u.id, &enrollment, &ev_at("enrolled", Some("ella"), at(5)))
        .await?;
    assert_eq!(enrolled.default_method, Some(oath_method()));
    assert_eq!(enrolled.version, 2);
    assert_eq!(enrolled.updated_at, secs(at(5)));
    assert_eq!(enrolled.created_at, u.created_at);
    assert_eq!(enrolled.groups, vec!["g"]);
    assert_eq!(user(&store, "ella").await?, enrolled);

    let tokens = store.oath_tokens(u.id).await?;
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].label, "phone");
    assert_eq!(tokens[0].sealed_secret, "sealed:phone");
    assert_eq!(tokens[0].created_at, secs(at(5)));
    let pin = store.pin(u.id).await?.context("pin")?;
    assert_eq!(pin.hash, "pinhash");
    assert_eq!(pin.set_at, secs(at(5)));
    assert!(store.pin_history(u.id).await?.is_empty());
    assert_eq!(
        answers_of(&store.answers(u.id).await?),
        vec![(q1.id, "a1"), (q2.id, "a2")]
    );
    assert_eq!(
        audit_count(&store).await?,
        events + 1,
        "one event for all of it"
    );
    assert_eq!(newest_event(&store).await?, "enrolled");

    // Minimal: a method alone (phone call, no token, PIN or questions).
    let v = create(&store, "vic", &[]).await?;
    let call = DefaultMethod::from_parts("phone_call", "standard")?;
    let enrolled = store
        .complete_enrollment(
            v.id,
            &Enrollment {
                method: call,
                token: None,
                pin_hash: None,
                answers: vec![],
                expected_version: None,
                phones: None,
            },
            &ev("enrolled", Some("vic")),
        )
        .await?;
    assert_eq!(enrolled.default_method, Some(call));
    assert!(store.oath_tokens(v.id).await?.is_empty());
    assert_eq!(store.pin(v.id).await?, None);
    assert!(store.answers(v.id).await?.is_empty());
    store.close().await;
    Ok(())
}

async fn enrollment_twice_is_conflict_and_keeps_the_first(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    let u = create(&store, "emma", &[]).await?;
    let q1 = store
        .add_question("en", "Q1", &ev("question_added", None))
        .await?;
    let q2 = store
        .add_question("en", "Q2", &ev("question_added", None))
        .await?;
    let first = store
        .complete_enrollment(
            u.id,
            &Enrollment {
                method: oath_method(),
                token: Some(token("first", OathKind::Totp, 0)),
                pin_hash: Some("pin1".into()),
                answers: vec![(q1.id, "first".into())],
                expected_version: None,
                phones: None,
            },
            &ev("enrolled", Some("emma")),
        )
        .await?;
    let tokens = store.oath_tokens(u.id).await?;
    let events = audit_count(&store).await?;

    let err = store
        .complete_enrollment(
            u.id,
            &Enrollment {
                method: DefaultMethod::from_parts("phone_call", "pin")?,
                token: Some(token("second", OathKind::Hotp, 0)),
                pin_hash: Some("pin2".into()),
                answers: vec![(q2.id, "second".into())],
                expected_version: None,
                phones: None,
            },
            &ev("enrolled", Some("emma")),
        )
        .await
        .unwrap_err();
    match err {
        Error::Conflict { message: m, .. } => assert_eq!(m, "user is already enrolled"),
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(user(&store, "emma").await?, first);
    assert_eq!(store.oath_tokens(u.id).await?, tokens);
    assert_eq!(store.pin(u.id).await?.context("pin")?.hash, "pin1");
    assert!(store.pin_history(u.id).await?.is_empty());
    assert_eq!(
        answers_of(&store.answers(u.id).await?),
        vec![(q1.id, "first")]
    );
    assert_eq!(audit_count(&store).await?, events);

    // A user whose method was set by an administrator counts as enrolled too.
    let a = create(&store, "adm", &[]).await?;
    let mut set = a.clone();
    set.default_method = Some(DefaultMethod::from_parts(
        "text_message",
        "sms_one_way_otp",
    )?);
    store
        .update_user(&set, &ev("user_updated", Some("adm")))
        .await?;
    let err = store
        .complete_enrollment(
            a.id,
            &Enrollment {
                method: oath_method(),
                token: None,
                pin_hash: None,
                answers: vec![],
                expected_version: None,
                phones: None,
            },
            &ev("enrolled", Some("adm")),
        )
        .await;
    assert!(matches!(err, Err(Error::Conflict { .. })), "{err:?}");
    store.close().await;
    Ok(())
}

async fn enrollment_with_a_preset_method_checks_the_version(
    backend: Backend,
) -> anyhow::Result<()> {
    let (db, store) = setup(backend).await?;
    let a = create(&store, "pre", &[]).await?;
    let mut set = a.clone();
    set.default_method = Some(DefaultMethod::from_parts("oath_token", "oath_pin")?);
    let preset = store
        .update_user(&set, &ev("user_updated", Some("pre")))
        .await?;
    let enrollment = |version: i64| Enrollment {
        method: DefaultMethod::from_parts("oath_token", "oath_pin").unwrap(),
        token: Some(token("t", OathKind::Totp, 0)),
        pin_hash: Some("pin".into()),
        answers: vec![],
        expected_version: Some(version),
        phones: None,
    };
    // A stale version is refused and writes nothing.
    let err = store
        .complete_enrollment(a.id, &enrollment(a.version), &ev("enrolled", Some("pre")))
        .await;
    assert!(matches!(err, Err(Error::Conflict { .. })), "{err:?}");
    assert!(store.oath_tokens(a.id).await?.is_empty());
    assert!(store.pin(a.id).await?.is_none());
    // The current version goes through, keeping the preset method.
    let done = store
        .complete_enrollment(
            a.id,
            &enrollment(preset.version),
            &ev("enrolled", Some("pre")),
        )
        .await?;
    assert_eq!(done.version, preset.version + 1);
    assert_eq!(store.oath_tokens(a.id).await?.len(), 1);
    // The same version again (a second wizard) is refused.
    let err = store
        .complete_enrollment(
            a.id,
            &enrollment(preset.version),
            &ev("enrolled", Some("pre")),
        )
        .await;
    assert!(matches!(err, Err(Error::Conflict { .. })), "{err:?}");
    assert_eq!(store.oath_tokens(a.id).await?.len(), 1);
    store.close().await;
    drop(db);
    Ok(())
}

async fn enrollment_rolls_back_entirely_on_failure(backend: Backend) -> anyhow::Result<()> {
    let (db, store) = setup(backend).await?;
    let u = create(&store, "rita", &[]).await?;
    let q1 = store
        .add_question("en", "Q1", &ev("question_added", None))
        .await?;
    // Answers given before (say by an administrator) must survive a failed
    // enrollment, which would have replaced them.
    store
        .set_answers(
            u.id,
            &[(q1.id, "before".into())],
            &ev("answers_set", Some("rita")),
        )
        .await?;
    let before = user(&store, "rita").await?;
    let events = audit_count(&store).await?;
    let full = |answers: Vec<(i64, String)>| Enrollment {
        method: oath_method(),
        token: Some(token("t", OathKind::Totp, 0)),
        pin_hash: Some("pin".into()),
        answers,
        expected_version: None,
        phones: None,
    };

    // The unknown question comes last: method, token and PIN were already
    // written inside the transaction when it fails.
    let err = store
        .complete_enrollment(
            u.id,
            &full(vec![(q1.id, "a".into()), (q1.id + 1000, "b".into())]),
            &ev("enrolled", Some("rita")),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound("question")), "{err:?}");

    let err = store
        .complete_enrollment(
            u.id,
            &full(vec![(q1.id, "a".into()), (q1.id, "b".into())]),
            &ev("enrolled", Some("rita")),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");

    // A refused audit event (empty name breaks a CHECK) fails it at the end.
    assert!(store
        .complete_enrollment(
            u.id,
            &full(vec![(q1.id, "a".into())]),
            &ev("", Some("rita"))
        )
        .await
        .is_err());

    assert_eq!(
        user(&store, "rita").await?,
        before,
        "no method, no version bump"
    );
    assert!(store.oath_tokens(u.id).await?.is_empty());
    assert_eq!(raw_count(&db, "oath_tokens").await?, 0);
    assert_eq!(store.pin(u.id).await?, None);
    assert_eq!(raw_count(&db, "user_pins").await?, 0);
    assert_eq!(
        answers_of(&store.answers(u.id).await?),
        vec![(q1.id, "before")]
    );
    assert_eq!(audit_count(&store).await?, events);

    // And after all that, a good enrollment still goes through.
    let enrolled = store
        .complete_enrollment(
            u.id,
            &full(vec![(q1.id, "a".into())]),
            &ev("enrolled", Some("rita")),
        )
        .await?;
    assert_eq!(enrolled.default_method, Some(oath_method()));
    assert_eq!(answers_of(&store.answers(u.id).await?), vec![(q1.id, "a")]);
    store.close().await;
    Ok(())
}

async fn concurrent_enrollments_one_wins(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    let u = create(&store, "twin", &[]).await?;
    let enrollment = |label: &str| Enrollment {
        method: oath_method(),
        token: Some(token(label, OathKind::Totp, 0)),
        pin_hash: Some(format!("pin-{label}")),
        answers: vec![],
        expected_version: None,
        phones: None,
    };
    let (ea, eb) = (enrollment("a"), enrollment("b"));
    let (va, vb) = (ev("enrolled", Some("twin")), ev("enrolled", Some("twin")));
    let (ra, rb) = tokio::join!(
        store.complete_enrollment(u.id, &ea, &va),
        store.complete_enrollment(u.id, &eb, &vb)
    );
    let (won, lost, label) = match (ra, rb) {
        (Ok(w), Err(l)) => (w, l, "a"),
        (Err(l), Ok(w)) => (w, l, "b"),
        other => panic!("expected exactly one enrollment, got {other:?}"),
    };
    assert!(matches!(lost, Error::Conflict { .. }), "{lost:?}");
    assert_eq!(won.version, 2);
    let tokens = store.oath_tokens(u.id).await?;
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].label, label);
    assert_eq!(
        store.pin(u.id).await?.context("pin")?.hash,
        format!("pin-{label}")
    );
    store.close().await;
    Ok(())
}

async fn sessions_expire_and_purge(backend: Backend) -> anyhow::Result<()> {
    let (db, store) = setup(backend).await?;
    let session = |id: &str, data: &str, expires: i64| SessionRecord {
        id_hash: id.into(),
        data: data.into(),
        expires_at: at(expires),
    };
    assert_eq!(store.session_get("s1", T0).await?, None);
    store
        .session_put(&session("s1", r#"{"user":1}"#, 60))
        .await?;
    let got = store.session_get("s1", at(0)).await?.context("s1")?;
    assert_eq!(got.id_hash, "s1");
    assert_eq!(got.data, r#"{"user":1}"#);
    assert_eq!(got.expires_at, secs(at(60)));
    assert!(store.session_get("s1", at(59)).await?.is_some());
    assert_eq!(
        store.session_get("s1", at(60)).await?,
        None,
        "expires_at <= now is expired"
    );
    assert_eq!(store.session_get("S1", at(0)).await?, None, "ids are exact");

    // Putting again replaces data and expiry.
    store
        .session_put(&session("s1", r#"{"user":2}"#, 120))
        .await?;
    let got = store
        .session_get("s1", at(60))
        .await?
        .context("s1 renewed")?;
    assert_eq!(got.data, r#"{"user":2}"#);
    assert_eq!(got.expires_at, secs(at(120)));
    assert_eq!(raw_count(&db, "portal_sessions").await?, 1);

    store.session_put(&session("s2", "{}", 10)).await?;
    store.session_put(&session("s3", "{}", 30)).await?;
    store.session_put(&session("s4", "{}", 31)).await?;
    // Expired sessions are hidden before they are purged.
    assert_eq!(store.session_get("s2", at(30)).await?, None);
    assert_eq!(raw_count(&db, "portal_sessions").await?, 4);
    assert_eq!(store.session_purge(at(30)).await?, 2);
    assert_eq!(store.session_purge(at(30)).await?, 0);
    assert_eq!(raw_count(&db, "portal_sessions").await?, 2);
    assert!(store.session_get("s4", at(30)).await?.is_some());

    store.session_delete("s1").await?;
    assert_eq!(store.session_get("s1", at(0)).await?, None);
    store.session_delete("s1").await?;
    store.session_delete("never").await?;
    assert_eq!(store.session_purge(at(10_000)).await?, 1);
    assert_eq!(raw_count(&db, "portal_sessions").await?, 0);
    assert_eq!(
        audit_count(&store).await?,
        0,
        "sessions are not audited by the store"
    );
    store.close().await;
    Ok(())
}

/// As `change_and_audit_land_together`, for every audited factor write: with
/// an event the database refuses, the change does not land either.
async fn factor_changes_and_audit_land_together(backend: Backend) -> anyhow::Result<()> {
    let (db, store) = setup(backend).await?;
    let bad = ev("", Some("ivo"));
    let u = create(&store, "ivo", &[]).await?;
    let q = store
        .add_question("en", "Q", &ev("question_added", None))
        .await?;
    let t = store
        .add_oath_token(
            u.id,
            &token("t", OathKind::Totp, 0),
            &ev("token_added", Some("ivo")),
        )
        .await?;
    store
        .set_pin(u.id, "p1", T0, 5, &ev("pin_set", Some("ivo")))
        .await?;
    store
        .set_answers(u.id, &[(q.id, "a".into())], &ev("answers_set", Some("ivo")))
        .await?;
    store
        .set_bypass(u.id, Some(at(600)), &ev("bypass_granted", Some("ivo")))
        .await?;
    let before = user(&store, "ivo").await?;
    let events = audit_count(&store).await?;

    assert!(store
        .add_oath_token(u.id, &token("x", OathKind::Totp, 0), &bad)
        .await
        .is_err());
    assert!(store.delete_oath_token(u.id, t.id, &bad).await.is_err());
    assert_eq!(store.oath_tokens(u.id).await?, vec![t]);

    assert!(store.set_pin(u.id, "p2", T0, 5, &bad).await.is_err());
    assert_eq!(store.pin(u.id).await?.context("pin")?.hash, "p1");
    assert!(store.pin_history(u.id).await?.is_empty());

    assert!(store.add_question("en", "Other", &bad).await.is_err());
    assert!(store.delete_question(q.id, &bad).await.is_err());
    assert_eq!(store.questions(None).await?, vec![q.clone()]);

    assert!(store.set_answers(u.id, &[], &bad).await.is_err());
    assert_eq!(answers_of(&store.answers(u.id).await?), vec![(q.id, "a")]);

    assert!(store.set_bypass(u.id, None, &bad).await.is_err());
    assert!(store.consume_bypass(u.id, T0, &bad).await.is_err());
    assert_eq!(store.bypass_until(u.id).await?, Some(secs(at(600))));

    assert_eq!(user(&store, "ivo").await?, before);
    assert_eq!(raw_count(&db, "user_answers").await?, 1);
    assert_eq!(audit_count(&store).await?, events);

    // With good events they all land, each with its event.
    assert!(
        store
            .consume_bypass(u.id, T0, &ev("bypass_used", Some("ivo")))
            .await?
    );
    assert_eq!(newest_event(&store).await?, "bypass_used");
    assert_eq!(audit_count(&store).await?, events + 1);
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

// --- Challenges (migration 0004) ------------------------------------------------------

use twofold_core::challenge::{Challenge, ChallengeState, NewChallenge};

const CHALLENGE_ID: &str = "0123456789abcdef0123456789abcdef";

fn new_challenge(id: &str, user_id: i64, created_by: &str) -> NewChallenge {
    NewChallenge {
        id: id.into(),
        user_id,
        method: DefaultMethod::from_parts("oath_token", "oath_pin").expect("valid method"),
        created_at: at(0),
        expires_at: at(120),
        created_by: created_by.into(),
        destination: None,
        sealed_code: None,
        enrolling: false,
        extension: None,
        sealed_pin: None,
        number: None,
        source_address: None,
    }
}

async fn stored_challenge(store: &SqlStore, id: &str) -> anyhow::Result<Challenge> {
    store.challenge(id).await?.context("challenge missing")
}

async fn challenges_create_read_and_finish(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    let u = create(&store, "Chris", &[]).await?;
    assert_eq!(store.challenge(CHALLENGE_ID).await?, None);

    let events = audit_count(&store).await?;
    store
        .create_challenge(
            &new_challenge(CHALLENGE_ID, u.id, "sdk:vpn"),
            &ev("challenge_started", Some("Chris")),
        )
        .await?;
    assert_eq!(newest_event(&store).await?, "challenge_started");
    assert_eq!(audit_count(&store).await?, events + 1);
    let c = stored_challenge(&store, CHALLENGE_ID).await?;
    assert_eq!(
        c,
        Challenge {
            id: CHALLENGE_ID.into(),
            user_id: u.id,
            username: "Chris".into(),
            method: DefaultMethod::from_parts("oath_token", "oath_pin")?,
            state: ChallengeState::Pending,
            reason: None,
            attempts: 0,
            created_at: secs(at(0)),
            expires_at: secs(at(120)),
            completed_at: None,
            created_by: "sdk:vpn".into(),
            destination: None,
            sealed_code: None,
            enrolling: false,
            extension: None,
            sealed_pin: None,
            number: None,
            source_address: None,
        }
    );
    assert_eq!(
        store.challenge(&CHALLENGE_ID.to_uppercase()).await?,
        None,
        "ids are exact"
    );

    // Only pending → final is a move.
    for (from, to) in [
        (ChallengeState::Pending, ChallengeState::Pending),
        (ChallengeState::Accepted, ChallengeState::Rejected),
    ] {
        assert!(
            store
                .finish_challenge(CHALLENGE_ID, from, to, None, at(1), &ev("x", None))
                .await
                .is_err(),
            "{from} -> {to}"
        );
    }

    assert!(
        store
            .finish_challenge(
                CHALLENGE_ID,
                ChallengeState::Pending,
                ChallengeState::Accepted,
                Some("accepted"),
                at(30),
                &ev("challenge_accepted", Some("Chris")),
            )
            .await?
    );
    assert_eq!(newest_event(&store).await?, "challenge_accepted");
    let done = stored_challenge(&store, CHALLENGE_ID).await?;
    assert_eq!(done.state, ChallengeState::Accepted);
    assert_eq!(done.reason.as_deref(), Some("accepted"));
    assert_eq!(done.completed_at, Some(secs(at(30))));

    // Final is final: no second decision, no event for it.
    let events = audit_count(&store).await?;
    for to in [ChallengeState::Rejected, ChallengeState::Accepted] {
        assert!(
            !store
                .finish_challenge(
                    CHALLENGE_ID,
                    ChallengeState::Pending,
                    to,
                    Some("again"),
                    at(31),
                    &ev("challenge_again", Some("Chris")),
                )
                .await?
        );
    }
    assert!(
        !store
            .finish_challenge(
                "ffffffffffffffffffffffffffffffff",
                ChallengeState::Pending,
                ChallengeState::Rejected,
                None,
                at(31),
                &ev("challenge_ghost", None),
            )
            .await?,
        "unknown id"
    );
    assert_eq!(audit_count(&store).await?, events);
    assert_eq!(stored_challenge(&store, CHALLENGE_ID).await?, done);
    store.close().await;
    Ok(())
}

async fn challenge_finish_respects_expiry(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    let u = create(&store, "exp", &[]).await?;
    store
        .create_challenge(
            &new_challenge(CHALLENGE_ID, u.id, "sdk:vpn"),
            &ev("challenge_started", Some("exp")),
        )
        .await?;
    let finish = |to: ChallengeState, when: i64| {
        let store = &store;
        async move {
            store
                .finish_challenge(
                    CHALLENGE_ID,
                    ChallengeState::Pending,
                    to,
                    Some(to.as_str()),
                    at(when),
                    &ev_at("challenge_finished", Some("exp"), at(when)),
                )
                .await
        }
    };
    // Not expired early; not accepted or rejected late (expires_at is the first late second).
    assert!(!finish(ChallengeState::Expired, 119).await?);
    assert!(!finish(ChallengeState::Accepted, 120).await?);
    assert!(!finish(ChallengeState::Rejected, 500).await?);
    assert_eq!(
        stored_challenge(&store, CHALLENGE_ID).await?.state,
        ChallengeState::Pending
    );
    assert!(finish(ChallengeState::Expired, 120).await?);
    let c = stored_challenge(&store, CHALLENGE_ID).await?;
    assert_eq!(
        (c.state, c.reason.as_deref(), c.completed_at),
        (
            ChallengeState::Expired,
            Some("expired"),
            Some(secs(at(120)))
        )
    );
    assert!(!finish(ChallengeState::Expired, 121).await?, "once");
    store.close().await;
    Ok(())
}

async fn expired_challenges_are_purged(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    let u = create(&store, "old", &[]).await?;
    let other = format!("{}ff", &CHALLENGE_ID[..CHALLENGE_ID.len() - 2]);
    for id in [CHALLENGE_ID, other.as_str()] {
        store
            .create_challenge(
                &new_challenge(id, u.id, "sdk:vpn"),
                &ev("challenge_started", Some("old")),
            )
            .await?;
    }
    // Both expire at at(120): nothing goes before then, both after.
    assert_eq!(store.purge_challenges(at(120)).await?, 0);
    assert!(store.challenge(CHALLENGE_ID).await?.is_some());
    assert_eq!(store.purge_challenges(at(121)).await?, 2);
    assert!(store.challenge(CHALLENGE_ID).await?.is_none());
    assert!(store.challenge(&other).await?.is_none());
    store.close().await;
    Ok(())
}

async fn phone_challenges_by_destination(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    let u = create(&store, "caller", &[]).await?;
    let other = create(&store, "colleague", &[]).await?;
    let number = "+31612345678";
    let id = |n: u8| format!("{}{n:02x}", &CHALLENGE_ID[..CHALLENGE_ID.len() - 2]);
    let sms = |n: u8, user: i64, created: i64, to: Option<&str>| NewChallenge {
        method: DefaultMethod::from_parts("text_message", "sms_two_way_otp").expect("valid"),
        created_at: at(created),
        expires_at: at(created + 120),
        destination: to.map(str::to_string),
        sealed_code: Some(format!("sealed-{n}")),
        ..new_challenge(&id(n), user, "sdk:vpn")
    };
    for (n, user, created, to) in [
        (1, u.id, 0, Some(number)),
        (2, u.id, 10, Some(number)),
        (3, other.id, 20, Some(number)),
        (4, u.id, 30, Some("+31600000000")),
        (5, u.id, 40, None),
    ] {
        store
            .create_challenge(&sms(n, user, created, to), &ev("challenge_started", None))
            .await?;
    }
    let c = stored_challenge(&store, &id(1)).await?;
    assert_eq!(c.destination.as_deref(), Some(number));
    assert_eq!(c.sealed_code.as_deref(), Some("sealed-1"));
    assert!(!c.enrolling);
    // An enrollment's proof: purpose, extension and the sealed PIN kept.
    let proof = NewChallenge {
        method: DefaultMethod::from_parts("phone_call", "pin").expect("valid"),
        destination: Some("+31207948261".into()),
        enrolling: true,
        extension: Some("42".into()),
        sealed_pin: Some("sealed-pin".into()),
        ..new_challenge(
            &id(9),
            create(&store, "enroller", &[]).await?.id,
            "user:enroller",
        )
    };
    store
        .create_challenge(&proof, &ev("challenge_started", None))
        .await?;
    let c = stored_challenge(&store, &id(9)).await?;
    assert!(c.enrolling);
    assert_eq!(c.extension.as_deref(), Some("42"));
    assert_eq!(c.sealed_pin.as_deref(), Some("sealed-pin"));

    // Newest first; decided and expired ones are not waiting for a reply.
    let waiting = |now: i64| {
        let store = &store;
        async move {
            Ok::<_, anyhow::Error>(
                store
                    .pending_challenges_to(number, at(now))
                    .await?
                    .into_iter()
                    .map(|c| c.id)
                    .collect::<Vec<_>>(),
            )
        }
    };
    assert_eq!(waiting(50).await?, vec![id(3), id(2), id(1)]);
    assert!(
        store
            .finish_challenge(
                &id(2),
                ChallengeState::Pending,
                ChallengeState::Accepted,
                Some("accepted"),
                at(60),
                &ev("challenge_finished", None),
            )
            .await?
    );
    assert_eq!(waiting(60).await?, vec![id(3), id(1)]);
    assert_eq!(waiting(125).await?, vec![id(3)], "the first expired");
    assert!(store.pending_challenges_to("+1", at(0)).await?.is_empty());

    // Counted whatever became of them: per user (any number), per number
    // (any user); challenges without a destination are not deliveries.
    assert_eq!(store.deliveries_since(u.id, number, at(0)).await?, (3, 3));
    assert_eq!(store.deliveries_since(u.id, number, at(5)).await?, (2, 2));
    assert_eq!(
        store.deliveries_since(other.id, number, at(5)).await?,
        (1, 2)
    );
    assert_eq!(store.deliveries_since(u.id, "+1", at(0)).await?, (3, 0));
    store.close().await;
    Ok(())
}

async fn the_outbox_keeps_the_newest(backend: Backend) -> anyhow::Result<()> {
    use twofold_core::ports::{NewOutboxMessage, OutboxKind, OutboxRepo, OUTBOX_KEEP};
    let (_db, store) = setup(backend).await?;
    assert!(store.outbox(10).await?.is_empty());
    let put = |n: i64| NewOutboxMessage {
        at: at(n),
        kind: if n % 2 == 0 {
            OutboxKind::Call
        } else {
            OutboxKind::Sms
        },
        destination: format!("+3161234{n:04}"),
        body: format!("message {n}"),
        challenge_id: (n % 2 == 0).then(|| CHALLENGE_ID.to_string()),
    };
    let first = store.outbox_put(&put(0)).await?;
    let m = store.outbox_message(first).await?.context("kept")?;
    assert_eq!(
        (
            m.kind,
            m.destination.as_str(),
            m.body.as_str(),
            m.challenge_id.as_deref(),
            m.at
        ),
        (
            OutboxKind::Call,
            "+31612340000",
            "message 0",
            Some(CHALLENGE_ID),
            secs(at(0))
        )
    );
    for n in 1..=OUTBOX_KEEP {
        store.outbox_put(&put(n)).await?;
    }
    let newest = store.outbox(3).await?;
    assert_eq!(
        newest.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        vec![
            format!("message {OUTBOX_KEEP}"),
            format!("message {}", OUTBOX_KEEP - 1),
            format!("message {}", OUTBOX_KEEP - 2),
        ]
    );
    // Trimmed to the newest OUTBOX_KEEP: the first one is gone.
    assert!(store.outbox_message(first).await?.is_none());
    assert_eq!(i64::try_from(store.outbox(1000).await?.len())?, OUTBOX_KEEP);
    store.close().await;
    Ok(())
}

async fn challenge_attempts_count_while_pending(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    let u = create(&store, "att", &[]).await?;
    assert_eq!(store.count_attempt(CHALLENGE_ID).await?, 0, "unknown id");
    store
        .create_challenge(
            &new_challenge(CHALLENGE_ID, u.id, "sdk:vpn"),
            &ev("challenge_started", Some("att")),
        )
        .await?;
    for n in 1..=3 {
        assert_eq!(store.count_attempt(CHALLENGE_ID).await?, n);
    }
    assert_eq!(stored_challenge(&store, CHALLENGE_ID).await?.attempts, 3);
    assert!(
        store
            .finish_challenge(
                CHALLENGE_ID,
                ChallengeState::Pending,
                ChallengeState::Rejected,
                Some("too_many_attempts"),
                at(5),
                &ev("challenge_rejected", Some("att")),
            )
            .await?
    );
    assert_eq!(
        store.count_attempt(CHALLENGE_ID).await?,
        0,
        "a finished challenge takes no attempts"
    );
    assert_eq!(stored_challenge(&store, CHALLENGE_ID).await?.attempts, 3);
    store.close().await;
    Ok(())
}

async fn challenge_create_refusals_write_nothing(backend: Backend) -> anyhow::Result<()> {
    let (db, store) = setup(backend).await?;
    let u = create(&store, "ref", &[]).await?;
    let events = audit_count(&store).await?;
    let err = store
        .create_challenge(
            &new_challenge(CHALLENGE_ID, u.id + 1000, "sdk:vpn"),
            &ev("challenge_started", None),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound("user")), "{err:?}");
    store
        .create_challenge(
            &new_challenge(CHALLENGE_ID, u.id, "sdk:vpn"),
            &ev("challenge_started", Some("ref")),
        )
        .await?;
    let err = store
        .create_challenge(
            &new_challenge(CHALLENGE_ID, u.id, "sdk:other"),
            &ev("challenge_started", Some("ref")),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
    // A bad audit event takes the challenge down with it.
    assert!(store
        .create_challenge(
            &new_challenge("11111111111111111111111111111111", u.id, "sdk:vpn"),
            &ev("", Some("ref")),
        )
        .await
        .is_err());
    assert_eq!(
        store.challenge("11111111111111111111111111111111").await?,
        None
    );
    assert!(store
        .finish_challenge(
            CHALLENGE_ID,
            ChallengeState::Pending,
            ChallengeState::Accepted,
            Some("accepted"),
            at(1),
            &ev("", Some("ref")),
        )
        .await
        .is_err());
    assert_eq!(
        stored_challenge(&store, CHALLENGE_ID).await?.state,
        ChallengeState::Pending,
        "the move rolled back with its audit row"
    );
    assert_eq!(
        stored_challenge(&store, CHALLENGE_ID).await?.created_by,
        "sdk:vpn"
    );
    assert_eq!(raw_count(&db, "challenges").await?, 1);
    assert_eq!(audit_count(&store).await?, events + 1);
    store.close().await;
    Ok(())
}

async fn concurrent_challenge_moves_one_wins(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    let u = create(&store, "racer", &[]).await?;
    for round in 0..5u8 {
        let id = format!("{round:032x}");
        store
            .create_challenge(
                &new_challenge(&id, u.id, "sdk:vpn"),
                &ev("challenge_started", Some("racer")),
            )
            .await?;
        let accepted = ev("challenge_accepted", Some("racer"));
        let rejected = ev("challenge_rejected", Some("racer"));
        let (a, b, c, d) = tokio::join!(
            store.count_attempt(&id),
            store.count_attempt(&id),
            store.finish_challenge(
                &id,
                ChallengeState::Pending,
                ChallengeState::Accepted,
                Some("accepted"),
                at(10),
                &accepted,
            ),
            store.finish_challenge(
                &id,
                ChallengeState::Pending,
                ChallengeState::Rejected,
                Some("too_many_attempts"),
                at(10),
                &rejected,
            ),
        );
        let (a, b) = (a?, b?);
        assert!(a != b || a == 0, "round {round}: attempts {a} and {b}");
        assert!(c? ^ d?, "round {round}: exactly one decision");
        let stored = stored_challenge(&store, &id).await?;
        assert!(stored.state.is_final());
        assert!(stored.attempts <= 2);
    }
    store.close().await;
    Ok(())
}

async fn user_delete_cascades_challenges(backend: Backend) -> anyhow::Result<()> {
    let (db, store) = setup(backend).await?;
    let u = create(&store, "gone", &[]).await?;
    let keep = create(&store, "stays", &[]).await?;
    store
        .create_challenge(
            &new_challenge(CHALLENGE_ID, u.id, "sdk:vpn"),
            &ev("challenge_started", Some("gone")),
        )
        .await?;
    store
        .create_challenge(
            &new_challenge("22222222222222222222222222222222", keep.id, "sdk:vpn"),
            &ev("challenge_started", Some("stays")),
        )
        .await?;
    assert!(
        store
            .delete_user(u.id, &ev("user_deleted", Some("gone")))
            .await?
    );
    assert_eq!(store.challenge(CHALLENGE_ID).await?, None);
    assert_eq!(store.count_attempt(CHALLENGE_ID).await?, 0);
    assert_eq!(raw_count(&db, "challenges").await?, 1);
    assert_eq!(
        stored_challenge(&store, "22222222222222222222222222222222")
            .await?
            .username,
        "stays"
    );
    store.close().await;
    Ok(())
}

mod roles {
    use super::*;
    use twofold_core::service::ServiceAccountSpec;
    use twofold_core::{Permissions, Role, Scope};

    pub(super) async fn service_accounts_keep_role_permissions_and_scope(
        backend: Backend,
    ) -> anyhow::Result<()> {
        let (db, store) = setup(backend).await?;
        let spec = ServiceAccountSpec {
            role: Role::Admin,
            permissions: Permissions::parse_list("unblock,reset_pin")?,
            scope: Scope::Group("Sales".into()),
        };
        store
            .create_service_account("helpdesk", "h1", &spec, &ev("created", None))
            .await?;
        let validate = ServiceAccountSpec {
            role: Role::Validate,
            permissions: Permissions::NONE,
            scope: Scope::All,
        };
        store
            .create_service_account("vpn", "h2", &validate, &ev("created", None))
            .await?;
        let (a, hash) = store.service_account("HELPDESK").await?.expect("found");
        assert_eq!(hash, "h1");
        assert_eq!(a.role, Role::Admin);
        assert_eq!(a.permissions, [Permission::ResetPin, Permission::Unblock]);
        assert_eq!(a.scope_group.as_deref(), Some("Sales"));
        let listed = store.service_accounts().await?;
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[1].role, Role::Validate);
        assert!(listed[1].permissions.is_empty());
        assert_eq!(listed[1].scope_group, None);

        // A row from before roles existed (no role columns written) is a
        // full administrator.
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&db.url).await?;
        sqlx::query(
            "INSERT INTO service_accounts (name, name_key, secret_hash, created_at) \
             VALUES ('old', 'old', 'h3', 1)",
        )
        .execute(&mut conn)
        .await?;
        let (old, _) = store.service_account("old").await?.expect("found");
        assert_eq!(old.role, Role::Admin);
        assert_eq!(old.permissions, Permission::ALL.to_vec());
        assert_eq!(old.scope_group, None);

        // A role this version does not know is refused, not guessed.
        let bad = sqlx::query("UPDATE service_accounts SET role = 'root' WHERE name_key = 'old'")
            .execute(&mut conn)
            .await;
        assert!(bad.is_err(), "the CHECK constraint keeps roles known");
        store.close().await;
        Ok(())
    }

    pub(super) async fn a_given_token_sets_a_missing_method_only(
        backend: Backend,
    ) -> anyhow::Result<()> {
        let (_db, store) = setup(backend).await?;
        let jan = create(&store, "jan", &[]).await?;
        let oath: DefaultMethod = "oath_token".parse()?;
        let token = token("t", OathKind::Hotp, 0);
        let (t, set) = store
            .give_oath_token(jan.id, &token, oath, &ev("token.add", Some("jan")))
            .await?;
        assert!(set);
        assert_eq!(store.oath_tokens(jan.id).await?, vec![t]);
        let jan = store.find_user("jan").await?.expect("jan");
        assert_eq!(jan.default_method, Some(oath));

        let kim = create(&store, "kim", &[]).await?;
        let mut kim_set = kim.clone();
        kim_set.default_method = Some("phone_call".parse()?);
        store
            .update_user(&kim_set, &ev("user.update", Some("kim")))
            .await?;
        let (_, set) = store
            .give_oath_token(kim.id, &token, oath, &ev("token.add", Some("kim")))
            .await?;
        assert!(!set);
        let kim = store.find_user("kim").await?.expect("kim");
        assert_eq!(
            kim.default_method.unwrap().to_string(),
            "phone_call:standard"
        );
        let err = store
            .give_oath_token(9999, &token, oath, &ev("token.add", None))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NotFound(_)), "{err}");
        store.close().await;
        Ok(())
    }

    pub(super) async fn admins_are_revoked(backend: Backend) -> anyhow::Result<()> {
        let (_db, store) = setup(backend).await?;
        let amy = create(&store, "amy", &[]).await?;
        store
            .put_admin(amy.id, &[Permission::Unblock], None, &ev("granted", None))
            .await?;
        let before = audit_count(&store).await?;
        assert!(
            store
                .delete_admin(amy.id, &ev("revoked", Some("amy")))
                .await?
        );
        assert!(store.list_admins().await?.is_empty());
        assert_eq!(audit_count(&store).await?, before + 1);
        assert!(
            !store
                .delete_admin(amy.id, &ev("revoked", Some("amy")))
                .await?
        );
        assert_eq!(audit_count(&store).await?, before + 1);
        store.close().await;
        Ok(())
    }
}
use roles::{
    a_given_token_sets_a_missing_method_only, admins_are_revoked,
    service_accounts_keep_role_permissions_and_scope,
};

/// Retention: only events from before the cut-off go, oldest first, at
/// most a batch at a time; the count says when none are left.
async fn audit_prune_deletes_only_older_events_in_batches(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    let cut = datetime!(2026-06-01 00:00:00 UTC);
    for when in [
        datetime!(2025-01-01 10:00:00 UTC),
        datetime!(2026-05-31 23:59:59.999 UTC),
        datetime!(2025-07-01 10:00:00 UTC),
    ] {
        store.append_audit(&ev_at("old", None, when)).await?;
    }
    let kept_at_cut = store.append_audit(&ev_at("kept", None, cut)).await?;
    let kept_later = store
        .append_audit(&ev_at("kept", None, datetime!(2026-11-30 08:00:00 UTC)))
        .await?;
    let before = audit_count(&store).await?;
    assert_eq!(store.prune_audit(cut, 2).await?, 2);
    assert_eq!(store.prune_audit(cut, 2).await?, 1);
    assert_eq!(store.prune_audit(cut, 2).await?, 0);
    assert_eq!(audit_count(&store).await?, before - 3);
    let left = store.audit_events(&AuditQuery::default()).await?;
    assert!(left.iter().all(|e| e.event != "old"), "{left:?}");
    assert!(left.iter().any(|e| e.id == kept_at_cut));
    assert!(left.iter().any(|e| e.id == kept_later));
    store.close().await;
    Ok(())
}

// --- The mobile app (migration 0012) ---------------------------------------------------

use twofold_core::mobile::{MobileDevice, NewMobileDevice, PushKind, PushTarget};
use twofold_core::ConflictReason;

const CODE: &str = "c0de";
const MAX: u32 = 5;

fn device(n: u8, push: Option<PushTarget>) -> NewMobileDevice {
    NewMobileDevice {
        id: format!("{n:032x}"),
        name: format!("Phone {n}"),
        public_key: (0..32).map(|i| i ^ n).collect(),
        push,
    }
}

fn app_token(n: u8) -> NewOathToken {
    token(&format!("Mobile app: Phone {n}"), OathKind::Totp, i64::MIN)
}

async fn issue(store: &SqlStore, user: &User, hash: &str, expires: i64) -> anyhow::Result<()> {
    Ok(store
        .create_activation_code(
            user.id,
            hash,
            at(expires),
            &ev("activation_code_issued", Some(&user.username)),
        )
        .await?)
}

async fn activate(
    store: &SqlStore,
    hash: &str,
    now: i64,
    n: u8,
    max: u32,
) -> twofold_core::Result<MobileDevice> {
    store
        .activate_device(
            hash,
            at(now),
            &device(n, None),
            &app_token(n),
            max,
            &ev_at("device_activated", None, at(now)),
        )
        .await
}

async fn activation_codes_are_used_once(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    let u = create(&store, "Mira", &[]).await?;
    assert_eq!(store.activation_code(CODE).await?, None);

    let events = audit_count(&store).await?;
    issue(&store, &u, CODE, 600).await?;
    assert_eq!(audit_count(&store).await?, events + 1);
    assert_eq!(newest_event(&store).await?, "activation_code_issued");
    let record = store.activation_code(CODE).await?.context("code missing")?;
    assert_eq!(record.user_id, u.id);
    assert_eq!(record.username, "Mira");
    assert_eq!(record.expires_at, secs(at(600)));
    assert!(!record.used);

    let d = activate(&store, CODE, 10, 1, MAX).await?;
    assert_eq!(d.user_id, u.id);
    assert_eq!(d.username, "Mira");
    assert_eq!(d.activated_at, secs(at(10)));
    assert_eq!(newest_event(&store).await?, "device_activated");
    assert!(store.activation_code(CODE).await?.context("code")?.used);
    // The device's token is one of the user's OATH tokens.
    let tokens = store.oath_tokens(u.id).await?;
    assert_eq!(tokens.len(), 1);
    assert_eq!(Some(tokens[0].id), d.token_id);
    assert_eq!(tokens[0].label, "Mobile app: Phone 1");
    assert_eq!(tokens[0].counter, i64::MIN);

    // Used: a second activation with it finds no code, and writes nothing.
    let events = audit_count(&store).await?;
    let err = activate(&store, CODE, 11, 2, MAX).await.unwrap_err();
    assert!(matches!(err, Error::NotFound("activation code")), "{err:?}");
    assert!(matches!(
        activate(&store, "unknown", 11, 2, MAX).await,
        Err(Error::NotFound("activation code"))
    ));
    assert_eq!(audit_count(&store).await?, events);
    assert_eq!(store.mobile_devices(u.id).await?, vec![d]);

    // Codes for nobody are refused; a duplicate hash is a conflict.
    let err = store
        .create_activation_code(999_999, "other", at(600), &ev("x", None))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound("user")), "{err:?}");
    let err = store
        .create_activation_code(u.id, CODE, at(900), &ev("x", None))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
    assert_eq!(audit_count(&store).await?, events);
    store.close().await;
    Ok(())
}

async fn expired_activation_codes_are_refused(backend: Backend) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    let u = create(&store, "late", &[]).await?;
    issue(&store, &u, CODE, 600).await?;
    issue(&store, &u, "second", 600).await?;
    let err = activate(&store, CODE, 600, 1, MAX).await.unwrap_err();
    assert!(matches!(err, Error::NotFound("activation code")), "{err:?}");
    let record = store.activation_code(CODE).await?.context("kept")?;
    assert!(!record.used, "an expired code is not used by trying it");
    assert!(store.mobile_devices(u.id).await?.is_empty());
    activate(&store, "second", 599, 1, MAX).await?;

    // Codes long expired go when the user is issued a new one; recent ones
    // stay readable (used or not).
    issue(&store, &u, "third", 90_000).await?;
    store
        .create_activation_code(
            u.id,
            "fourth",
            at(200_000),
            &ev_at("activation_code_issued", Some("late"), at(100_000)),
        )
        .await?;
    assert_eq!(store.activation_code(CODE).await?, None);
    assert_eq!(store.activation_code("second").await?, None);
    assert!(store.activation_code("third").await?.is_some());
    store.close().await;
    Ok(())
}

async fn the_device_limit_refuses_and_keeps_the_code(backend: Backend) -> anyhow::Result<()> {
    let (db, store) = setup(backend).await?;
    let u = create(&store, "limited", &[]).await?;
    issue(&store, &u, "one", 600).await?;
    issue(&store, &u, "two", 600).await?;
    let first = activate(&store, "one", 10, 1, 1).await?;
    let version = user(&store, "limited").await?.version;

    let events = audit_count(&store).await?;
    let err = activate(&store, "two", 20, 2, 1).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Conflict {
                reason: ConflictReason::DeviceLimit,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(audit_count(&store).await?, events, "nothing recorded");
    assert!(!store.activation_code("two").await?.context("code")?.used);
    assert_eq!(store.mobile_devices(u.id).await?, vec![first.clone()]);
    assert_eq!(store.oath_tokens(u.id).await?.len(), 1);
    assert_eq!(raw_count(&db, "mobile_devices").await?, 1);
    assert_eq!(user(&store, "limited").await?.version, version);

    // Room again: the same code works.
    assert!(
        store
            .remove_mobile_device(u.id, &first.id, &ev("device_removed", Some("limited")))
            .await?
    );
    let second = activate(&store, "two", 30, 2, 1).await?;
    assert_eq!(store.mobile_devices(u.id).await?, vec![second]);
    store.close().await;
    Ok(())
}

async fn concurrent_activations_on_two_nodes_respect_the_limit(
    backend: Backend,
) -> anyhow::Result<()> {
    let (db, node_a) = setup(backend).await?;
    let node_b = db.store().await?;
    let u = create(&node_a, "racer", &[]).await?;
    for round in 0..4u8 {
        let (a, b) = (format!("a{round}"), format!("b{round}"));
        issue(&node_a, &u, &a, 600).await?;
        issue(&node_a, &u, &b, 600).await?;
        let (x, y) = tokio::join!(
            activate(&node_a, &a, 10, 2 * round + 1, u32::from(round) + 1),
            activate(&node_b, &b, 10, 2 * round + 2, u32::from(round) + 1),
        );
        let won = [&x, &y].iter().filter(|r| r.is_ok()).count();
        assert_eq!(won, 1, "round {round}: {x:?} {y:?}");
        for r in [x, y] {
            if let Err(e) = r {
                assert!(
                    matches!(
                        e,
                        Error::Conflict {
                            reason: ConflictReason::DeviceLimit,
                            ..
                        }
                    ),
                    "round {round}: {e:?}"
                );
            }
        }
        assert_eq!(
            node_b.mobile_devices(u.id).await?.len(),
            usize::from(round) + 1
        );
    }
    // The same code on both nodes: one activation.
    issue(&node_a, &u, "shared", 600).await?;
    let (x, y) = tokio::join!(
        activate(&node_a, "shared", 10, 100, MAX + 10),
        activate(&node_b, "shared", 10, 101, MAX + 10),
    );
    assert!(x.is_ok() ^ y.is_ok(), "{x:?} {y:?}");
    node_a.close().await;
    node_b.close().await;
    Ok(())
}

async fn devices_are_listed_and_removed_with_their_token(backend: Backend) -> anyhow::Result<()> {
    let (db, store) = setup(backend).await?;
    let u = create(&store, "dora", &[]).await?;
    let other = create(&store, "dan", &[]).await?;
    let kept = store
        .add_oath_token(
            u.id,
            &token("keyfob", OathKind::Hotp, 0),
            &ev("token_added", Some("dora")),
        )
        .await?;
    let ntfy = PushTarget {
        kind: PushKind::Ntfy,
        url: "https://ntfy.example/abc".into(),
    };
    let hook = PushTarget {
        kind: PushKind::Webhook,
        url: "https://hooks.example/x?y=1".into(),
    };
    let mut made = Vec::new();
    for (n, when, push, owner) in [
        (1, 30, Some(ntfy.clone()), &u),
        (2, 10, None, &u),
        (3, 20, Some(hook.clone()), &u),
        (4, 5, None, &other),
    ] {
        let hash = format!("code{n}");
        issue(&store, owner, &hash, 600).await?;
        let d = store
            .activate_device(
                &hash,
                at(when),
                &device(n, push.clone()),
                &app_token(n),
                MAX,
                &ev("device_activated", Some(&owner.username)),
            )
            .await?;
        assert_eq!(d.push, push);
        assert_eq!(d.public_key, device(n, None).public_key);
        assert_eq!(d.last_used_at, None);
        made.push(d);
    }
    // Oldest first, read back exactly as activation returned them.
    assert_eq!(
        store.mobile_devices(u.id).await?,
        vec![made[1].clone(), made[2].clone(), made[0].clone()]
    );
    assert_eq!(store.mobile_devices(other.id).await?, vec![made[3].clone()]);
    assert_eq!(
        store.mobile_device(&made[0].id).await?,
        Some(made[0].clone())
    );
    assert_eq!(store.mobile_device(&format!("{:032x}", 99)).await?, None);

    // Another user's device is "no such device"; nothing recorded.
    let events = audit_count(&store).await?;
    assert!(
        !store
            .remove_mobile_device(other.id, &made[0].id, &ev("device_removed", Some("dan")))
            .await?
    );
    assert_eq!(audit_count(&store).await?, events);

    let version = user(&store, "dora").await?.version;
    assert!(
        store
            .remove_mobile_device(u.id, &made[0].id, &ev("device_removed", Some("dora")))
            .await?
    );
    assert_eq!(newest_event(&store).await?, "device_removed");
    assert_eq!(store.mobile_device(&made[0].id).await?, None);
    assert!(user(&store, "dora").await?.version > version);
    let token_ids: Vec<_> = store
        .oath_tokens(u.id)
        .await?
        .into_iter()
        .map(|t| Some(t.id))
        .collect();
    assert_eq!(
        token_ids,
        vec![Some(kept.id), made[1].token_id, made[2].token_id],
        "the device's token went with it, the others stay"
    );
    assert!(
        !store
            .remove_mobile_device(u.id, &made[0].id, &ev("device_removed", Some("dora")))
            .await?
    );

    // A token deleted on its own leaves its device without one.
    let token_id = made[1].token_id.context("token")?;
    assert!(
        store
            .delete_oath_token(u.id, token_id, &ev("token_deleted", Some("dora")))
            .await?
    );
    let orphan = store.mobile_device(&made[1].id).await?.context("device")?;
    assert_eq!(orphan.token_id, None);
    assert!(
        store
            .remove_mobile_device(u.id, &orphan.id, &ev("device_removed", Some("dora")))
            .await?
    );

    // Deleting the user takes their devices, codes and nonces.
    assert!(
        store
            .device_request_seen(&made[2].id, "n", at(40), at(0))
            .await?
    );
    assert!(
        store
            .delete_user(u.id, &ev("user_deleted", Some("dora")))
            .await?
    );
    assert_eq!(raw_count(&db, "mobile_devices").await?, 1);
    assert_eq!(raw_count(&db, "device_nonces").await?, 0);
    assert_eq!(raw_count(&db, "activation_codes").await?, 1);
    store.close().await;
    Ok(())
}

async fn replayed_nonces_are_refused(backend: Backend) -> anyhow::Result<()> {
    let (db, store) = setup(backend).await?;
    let u = create(&store, "nonna", &[]).await?;
    issue(&store, &u, "one", 600).await?;
    issue(&store, &u, "two", 600).await?;
    let a = activate(&store, "one", 0, 1, MAX).await?;
    let b = activate(&store, "two", 0, 2, MAX).await?;
    let last_used = |id: String| {
        let store = &store;
        async move {
            Ok::<_, anyhow::Error>(
                store
                    .mobile_device(&id)
                    .await?
                    .context("device")?
                    .last_used_at,
            )
        }
    };

    let events = audit_count(&store).await?;
    assert!(
        store
            .device_request_seen(&a.id, "n1", at(10), at(-290))
            .await?
    );
    assert_eq!(last_used(a.id.clone()).await?, Some(secs(at(10))));
    // A replay: refused, and the device's last use stays the genuine one.
    assert!(
        !store
            .device_request_seen(&a.id, "n1", at(20), at(-280))
            .await?
    );
    assert_eq!(last_used(a.id.clone()).await?, Some(secs(at(10))));
    // Nonces are per device.
    assert!(
        store
            .device_request_seen(&b.id, "n1", at(20), at(-280))
            .await?
    );
    assert!(
        store
            .device_request_seen(&a.id, "n2", at(30), at(-270))
            .await?
    );
    assert_eq!(raw_count(&db, "device_nonces").await?, 3);

    // Nonces from before `forget_before` are forgotten (their requests are
    // refused as stale anyway), the device's own only.
    assert!(
        store
            .device_request_seen(&a.id, "n3", at(400), at(25))
            .await?
    );
    assert_eq!(
        raw_count(&db, "device_nonces").await?,
        3,
        "n1 of a forgotten"
    );
    assert!(
        !store
            .device_request_seen(&a.id, "n2", at(401), at(25))
            .await?
    );
    assert!(
        !store
            .device_request_seen(&b.id, "n1", at(401), at(25))
            .await?
    );
    assert!(
        store
            .device_request_seen(&a.id, "n1", at(402), at(25))
            .await?
    );

    let err = store
        .device_request_seen(&format!("{:032x}", 99), "n", at(0), at(0))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    assert_eq!(audit_count(&store).await?, events, "not audited here");
    store.close().await;
    Ok(())
}

async fn a_nonce_races_on_two_nodes_one_wins(backend: Backend) -> anyhow::Result<()> {
    let (db, node_a) = setup(backend).await?;
    let node_b = db.store().await?;
    let u = create(&node_a, "twin", &[]).await?;
    issue(&node_a, &u, CODE, 600).await?;
    let d = activate(&node_a, CODE, 0, 1, MAX).await?;
    for round in 0..10 {
        let nonce = format!("nonce-{round}");
        let (x, y, z) = tokio::join!(
            node_a.device_request_seen(&d.id, &nonce, at(round), at(-300)),
            node_b.device_request_seen(&d.id, &nonce, at(round), at(-300)),
            node_b.device_request_seen(&d.id, &nonce, at(round), at(-300)),
        );
        let won = [x?, y?, z?].into_iter().filter(|w| *w).count();
        assert_eq!(won, 1, "round {round}");
    }
    node_a.close().await;
    node_b.close().await;
    Ok(())
}

async fn pending_mobile_challenges_are_the_users_waiting_ones(
    backend: Backend,
) -> anyhow::Result<()> {
    let (_db, store) = setup(backend).await?;
    let u = create(&store, "appy", &[]).await?;
    let other = create(&store, "other", &[]).await?;
    let id = |n: u8| format!("{}{n:02x}", &CHALLENGE_ID[..CHALLENGE_ID.len() - 2]);
    let app = |n: u8, user: i64, created: i64| NewChallenge {
        method: DefaultMethod::from_parts("mobile_app", "phone_app_standard").expect("valid"),
        created_at: at(created),
        expires_at: at(created + 60),
        number: Some(10 + n),
        source_address: Some(format!("192.0.2.{n}")),
        ..new_challenge(&id(n), user, "sdk:vpn")
    };
    for (c, user) in [
        (app(1, u.id, 20), u.id),
        (app(2, u.id, 0), u.id),
        (
            NewChallenge {
                enrolling: true,
                source_address: None,
                ..app(3, u.id, 10)
            },
            u.id,
        ),
        (app(4, other.id, 5), other.id),
        // Another method, same user.
        (
            NewChallenge {
                number: None,
                source_address: None,
                ..new_challenge(&id(5), u.id, "sdk:vpn")
            },
            u.id,
        ),
        (app(6, u.id, 15), u.id),
    ] {
        ensure!(c.user_id == user);
        store
            .create_challenge(&c, &ev("challenge_started", None))
            .await?;
    }
    // Round trip of the mobile app's fields.
    let c = stored_challenge(&store, &id(1)).await?;
    assert_eq!(c.number, Some(11));
    assert_eq!(c.source_address.as_deref(), Some("192.0.2.1"));
    let mut expected = app(1, u.id, 20).stored("appy".into());
    expected.created_at = secs(expected.created_at);
    expected.expires_at = secs(expected.expires_at);
    assert_eq!(c, expected);
    let c = stored_challenge(&store, &id(3)).await?;
    assert!(c.enrolling);
    assert_eq!((c.number, c.source_address), (Some(13), None));
    let c = stored_challenge(&store, &id(5)).await?;
    assert_eq!((c.number, c.source_address), (None, None));

    let waiting = |user: i64, now: i64| {
        let store = &store;
        async move {
            Ok::<_, anyhow::Error>(
                store
                    .pending_mobile_challenges(user, at(now))
                    .await?
                    .into_iter()
                    .map(|c| (c.id, c.username))
                    .collect::<Vec<_>>(),
            )
        }
    };
    let named = |ns: &[u8], name: &str| {
        ns.iter()
            .map(|n| (id(*n), name.to_string()))
            .collect::<Vec<_>>()
    };
    // Oldest first; sign-ins and enrollments; not another user's or method's.
    assert_eq!(waiting(u.id, 30).await?, named(&[2, 3, 6, 1], "appy"));
    assert_eq!(waiting(other.id, 30).await?, named(&[4], "other"));
    // Decided ones are not waiting.
    assert!(
        store
            .finish_challenge(
                &id(3),
                ChallengeState::Pending,
                ChallengeState::Rejected,
                Some("denied"),
                at(31),
                &ev("challenge_finished", None),
            )
            .await?
    );
    assert_eq!(waiting(u.id, 31).await?, named(&[2, 6, 1], "appy"));
    // Expired ones neither (expires_at is exclusive).
    assert_eq!(waiting(u.id, 60).await?, named(&[6, 1], "appy"));
    assert_eq!(waiting(u.id, 80).await?, Vec::<(String, String)>::new());

    // At most ten.
    for n in 20..35 {
        store
            .create_challenge(&app(n, u.id, 100 + i64::from(n)), &ev("x", None))
            .await?;
    }
    let ten = waiting(u.id, 130).await?;
    assert_eq!(ten.len(), 10);
    assert_eq!(ten[0].0, id(20));
    store.close().await;
    Ok(())
}

async fn wakeups_reach_every_node(backend: Backend) -> anyhow::Result<()> {
    use tokio::sync::broadcast::error::TryRecvError;
    use tokio::time::timeout;
    const WAIT: Duration = Duration::from_secs(5);
    let (db, node_a) = setup(backend).await?;
    let mut on_a = node_a.subscribe();
    node_a.publish("challenge:1").await?;
    assert_eq!(timeout(WAIT, on_a.recv()).await??, "challenge:1");

    if backend == Backend::Postgres {
        // Another node on the same database hears it, and so does the
        // publishing node itself — once.
        let node_b = db.store().await?;
        let mut on_b = node_b.subscribe();
        let mut on_b2 = node_b.subscribe();
        node_a.publish("user:42").await?;
        assert_eq!(timeout(WAIT, on_b.recv()).await??, "user:42");
        assert_eq!(timeout(WAIT, on_b2.recv()).await??, "user:42");
        assert_eq!(timeout(WAIT, on_a.recv()).await??, "user:42");
        node_b.publish("challenge:2").await?;
        assert_eq!(timeout(WAIT, on_a.recv()).await??, "challenge:2");
        assert_eq!(timeout(WAIT, on_b.recv()).await??, "challenge:2");
        // In order, nothing twice: a marker published last arrives next.
        node_a.publish("marker").await?;
        assert_eq!(timeout(WAIT, on_a.recv()).await??, "marker");
        assert_eq!(timeout(WAIT, on_b.recv()).await??, "marker");
        assert!(matches!(on_a.try_recv(), Err(TryRecvError::Empty)));

        // The listeners' connections are cut: they listen again by
        // themselves. Wake-ups in the gap may be lost, so publish until one
        // arrives.
        let mut admin = sqlx::AnyConnection::connect(&db.url).await?;
        let cut: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid() \
             AND query LIKE 'LISTEN%'",
        )
        .fetch_all(&mut admin)
        .await?;
        admin.close().await?;
        assert_eq!(cut, vec![true, true], "both nodes' listeners");
        let heard = timeout(Duration::from_secs(15), async {
            loop {
                node_a.publish("again").await?;
                if let Ok(topic) = timeout(Duration::from_millis(200), on_b.recv()).await {
                    return anyhow::Ok(topic?);
                }
            }
        })
        .await??;
        assert_eq!(heard, "again");
        node_b.close().await;
    } else {
        assert!(matches!(on_a.try_recv(), Err(TryRecvError::Empty)));
    }
    // Publishing with nobody listening is fine.
    drop(on_a);
    node_a.publish("nobody").await?;
    node_a.close().await;
    Ok(())
}

mod directory_sync {
    use super::*;
    use twofold_core::sync::{GoneAction, NewSyncItem, SyncState};
    use twofold_core::ConflictReason;

    fn item(name: &str) -> NewSyncItem {
        NewSyncItem {
            name: name.into(),
            ..NewSyncItem::default()
        }
    }

    async fn usernames(store: &SqlStore, item_id: i64) -> anyhow::Result<Vec<String>> {
        Ok(store
            .synced_users(item_id)
            .await?
            .into_iter()
            .map(|u| u.username)
            .collect())
    }

    pub(super) async fn sync_items_are_created_listed_and_deleted(
        backend: Backend,
    ) -> anyhow::Result<()> {
        let (db, store) = setup(backend).await?;
        let staff = store
            .create_sync_item(
                &NewSyncItem {
                    name: "Staff".into(),
                    filter: Some("(department=IT)".into()),
                    group: Some("cn=staff,ou=groups,dc=example,dc=nl".into()),
                    default_method: Some("phone_call:pin".parse::<DefaultMethod>()?),
                    default_language: Some("nl".into()),
                    gone: Some(GoneAction::Delete),
                },
                &ev("sync_item.create", Some("Staff")),
            )
            .await?;
        ensure!(staff.id > 0);
        assert_eq!(staff.name, "Staff");
        assert_eq!(staff.filter.as_deref(), Some("(department=IT)"));
        assert_eq!(
            staff.group.as_deref(),
            Some("cn=staff,ou=groups,dc=example,dc=nl")
        );
        assert_eq!(
            staff.default_method,
            Some("phone_call:pin".parse::<DefaultMethod>()?)
        );
        assert_eq!(staff.default_language.as_deref(), Some("nl"));
        assert_eq!(staff.gone, GoneAction::Delete);
        assert_eq!(newest_event(&store).await?, "sync_item.create");

        // Everything unset: `gone` defaults to disabling.
        let all = store
            .create_sync_item(&item("all"), &ev("sync_item.create", Some("all")))
            .await?;
        assert_eq!(all.gone, GoneAction::Disable);
        assert_eq!(
            (
                &all.filter,
                &all.group,
                &all.default_method,
                &all.default_language
            ),
            (&None, &None, &None, &None)
        );
        assert_eq!(store.sync_items().await?, vec![staff.clone(), all.clone()]);

        // The same name in another case is refused and writes nothing.
        let events = audit_count(&store).await?;
        let err = store
            .create_sync_item(&item("STAFF"), &ev("sync_item.create", Some("STAFF")))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Conflict {
                    reason: ConflictReason::Exists,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(audit_count(&store).await?, events);
        assert_eq!(raw_count(&db, "sync_items").await?, 2);

        // Deleting (any case) keeps the item's users, no longer marked.
        let ann = store
            .create_user(
                &NewUser {
                    synced_by: Some(staff.id),
                    ..new_user("ann", &[])
                },
                &ev("user_created", Some("ann")),
            )
            .await?;
        assert_eq!(usernames(&store, staff.id).await?, ["ann"]);
        assert!(
            store
                .delete_sync_item("sTaFf", &ev("sync_item.delete", Some("Staff")))
                .await?
        );
        assert_eq!(newest_event(&store).await?, "sync_item.delete");
        assert_eq!(store.sync_items().await?, vec![all.clone()]);
        assert!(store.synced_users(staff.id).await?.is_empty());
        let kept = store.find_user("ann").await?.context("ann stays")?;
        assert_eq!(kept.id, ann.id);
        let mut conn = sqlx::AnyConnection::connect(&db.url).await?;
        let marked: Option<i64> = sqlx::query_scalar("SELECT synced_by FROM users WHERE id = $1")
            .bind(ann.id)
            .fetch_one(&mut conn)
            .await?;
        conn.close().await?;
        assert_eq!(marked, None);

        // No such item: false, nothing recorded.
        let events = audit_count(&store).await?;
        assert!(
            !store
                .delete_sync_item("staff", &ev("sync_item.delete", Some("staff")))
                .await?
        );
        assert_eq!(audit_count(&store).await?, events);

        // The name is free again; ids are not reused.
        let again = store
            .create_sync_item(&item("staff"), &ev("sync_item.create", Some("staff")))
            .await?;
        ensure!(again.id > all.id);
        assert_eq!(store.sync_items().await?, vec![all, again]);
        store.close().await;
        Ok(())
    }

    pub(super) async fn synced_users_are_the_items_users(backend: Backend) -> anyhow::Result<()> {
        let (_db, store) = setup(backend).await?;
        let a = store
            .create_sync_item(&item("a"), &ev("sync_item.create", Some("a")))
            .await?;
        let b = store
            .create_sync_item(&item("b"), &ev("sync_item.create", Some("b")))
            .await?;
        for (name, by) in [
            ("Zoe", Some(a.id)),
            ("bob", Some(a.id)),
            ("kim", Some(b.id)),
        ] {
            store
                .create_user(
                    &NewUser {
                        synced_by: by,
                        ..new_user(name, &["Sales"])
                    },
                    &ev("user_created", Some(name)),
                )
                .await?;
        }
        let local = create(&store, "local", &[]).await?;
        // In username order, whole users (with their groups).
        let users = store.synced_users(a.id).await?;
        assert_eq!(
            users
                .iter()
                .map(|u| u.username.as_str())
                .collect::<Vec<_>>(),
            ["bob", "Zoe"]
        );
        assert_eq!(users[0], user(&store, "bob").await?);
        assert_eq!(users[0].groups, ["Sales"]);
        assert_eq!(usernames(&store, b.id).await?, ["kim"]);

        // Adopting a local user, moving one, and unmarking one: bookkeeping,
        // no audit row and no new version.
        let events = audit_count(&store).await?;
        store.set_synced_by(local.id, Some(b.id)).await?;
        let zoe = user(&store, "zoe").await?;
        store.set_synced_by(zoe.id, Some(b.id)).await?;
        let bob = user(&store, "bob").await?;
        store.set_synced_by(bob.id, None).await?;
        assert!(store.synced_users(a.id).await?.is_empty());
        assert_eq!(usernames(&store, b.id).await?, ["kim", "local", "Zoe"]);
        assert_eq!(audit_count(&store).await?, events);
        assert_eq!(user(&store, "local").await?.version, local.version);
        assert_eq!(user(&store, "bob").await?, bob);

        // Unknown users and items.
        let err = store.set_synced_by(9999, Some(a.id)).await.unwrap_err();
        assert!(matches!(err, Error::NotFound(_)), "{err:?}");
        let err = store.set_synced_by(bob.id, Some(9999)).await.unwrap_err();
        assert!(matches!(err, Error::NotFound(_)), "{err:?}");
        assert!(store.synced_users(9999).await?.is_empty());

        // A deleted user is no item's.
        assert!(
            store
                .delete_user(zoe.id, &ev("user_deleted", Some("Zoe")))
                .await?
        );
        assert_eq!(usernames(&store, b.id).await?, ["kim", "local"]);
        store.close().await;
        Ok(())
    }

    pub(super) async fn the_sync_lease_is_compare_and_set(backend: Backend) -> anyhow::Result<()> {
        let (db, store) = setup(backend).await?;
        // Free: A takes it.
        assert!(store.acquire_sync_lease("node-a", at(0), at(60)).await?);
        // B is refused while it is valid.
        assert!(!store.acquire_sync_lease("node-b", at(30), at(90)).await?);
        assert!(!store.acquire_sync_lease("node-b", at(59), at(119)).await?);
        // A renews its own.
        assert!(store.acquire_sync_lease("node-a", at(50), at(110)).await?);
        assert!(!store.acquire_sync_lease("node-b", at(100), at(160)).await?);
        // Expired (at its end): B takes it, and A is refused.
        assert!(store.acquire_sync_lease("node-b", at(110), at(170)).await?);
        assert!(!store.acquire_sync_lease("node-a", at(120), at(180)).await?);
        // Releasing someone else's lease does nothing; the holder's frees it.
        store.release_sync_lease("node-a").await?;
        assert!(!store.acquire_sync_lease("node-a", at(130), at(190)).await?);
        store.release_sync_lease("node-b").await?;
        assert!(store.acquire_sync_lease("node-a", at(131), at(191)).await?);
        store.release_sync_lease("node-a").await?;
        // The lease leaves the state alone, and the state the lease.
        assert_eq!(store.sync_state().await?, SyncState::default());

        // Two nodes racing for a free lease: one wins.
        let other = db.store().await?;
        let (one, two) = tokio::join!(
            store.acquire_sync_lease("node-a", at(200), at(260)),
            other.acquire_sync_lease("node-b", at(200), at(260)),
        );
        let (one, two) = (one?, two?);
        assert!(one ^ two, "exactly one node wins: {one} {two}");
        let loser = if one { "node-b" } else { "node-a" };
        assert!(!store.acquire_sync_lease(loser, at(210), at(270)).await?);
        other.close().await;
        store.close().await;
        Ok(())
    }

    pub(super) async fn sync_state_round_trips(backend: Backend) -> anyhow::Result<()> {
        let (_db, store) = setup(backend).await?;
        assert_eq!(store.sync_state().await?, SyncState::default());
        let events = audit_count(&store).await?;

        let held = SyncState {
            last_run_at: Some(T0),
            last_report: Some(r#"{"added":["ann"],"disabled":[]}"#.into()),
            held: Some(r#"{"would_delete":["bob","kim"]}"#.into()),
            approved: false,
        };
        store.set_sync_state(&held, None).await?;
        // Times to the second.
        assert_eq!(
            store.sync_state().await?,
            SyncState {
                last_run_at: Some(secs(T0)),
                ..held.clone()
            }
        );
        assert_eq!(audit_count(&store).await?, events, "no audit asked for");

        // Approved, with its audit row in the same transaction.
        let approved = SyncState {
            approved: true,
            ..held.clone()
        };
        store
            .set_sync_state(&approved, Some(&ev("sync.approve", None)))
            .await?;
        assert!(store.sync_state().await?.approved);
        assert_eq!(audit_count(&store).await?, events + 1);
        assert_eq!(newest_event(&store).await?, "sync.approve");

        // The lease is not part of the state and survives its replacement.
        assert!(store.acquire_sync_lease("node-a", at(0), at(60)).await?);
        let ran = SyncState {
            last_run_at: Some(at(90)),
            last_report: Some("{}".into()),
            held: None,
            approved: false,
        };
        store.set_sync_state(&ran, None).await?;
        assert!(!store.acquire_sync_lease("node-b", at(1), at(61)).await?);
        assert_eq!(
            store.sync_state().await?,
            SyncState {
                last_run_at: Some(secs(at(90))),
                ..ran
            }
        );
        store.set_sync_state(&SyncState::default(), None).await?;
        assert_eq!(store.sync_state().await?, SyncState::default());
        store.close().await;
        Ok(())
    }
}
use directory_sync::{
    sync_items_are_created_listed_and_deleted, sync_state_round_trips,
    synced_users_are_the_items_users, the_sync_lease_is_compare_and_set,
};
