//! Names and ids as the engine takes them (issue 8): control characters are
//! refused for their shape alike on SQLite and PostgreSQL (which cannot
//! store NUL and used to answer 500), usernames are normalised and kept to
//! one script, and refusals name the rule that was broken.

use std::sync::Arc;

use anyhow::{ensure, Context};
use time::OffsetDateTime;
use twofold_core::audit::AuditQuery;
use twofold_core::clock::ManualClock;
use twofold_core::display::is_unsafe_for_terminal;
use twofold_core::factors::OathParams;
use twofold_core::password::{HashCost, Pepper, SecretHasher};
use twofold_core::portal::Proof;
use twofold_core::ports::UserQuery;
use twofold_core::sealing::SealingKey;
use twofold_core::service::{CreateUser, ServiceAccountSpec};
use twofold_core::{
    AdminService, CallerAuthenticator, ConflictReason, Ctx, Engine, Error, Permissions,
    PortalService, Role, Scope, Verifier,
};
use twofold_testkit::{Backend, TestDb};

twofold_testkit::both_backends!(
    #[tokio::test] -> anyhow::Result<()>;
    control_characters_are_invalid_input_everywhere,
    look_alike_usernames_are_refused,
    names_made_before_normalisation_are_still_found,
    refusals_name_the_rule_they_apply,
);

const PASSWORD: &str = "correct horse battery";
const RFC4226_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

/// NUL (which PostgreSQL text cannot hold), a terminal escape that retitles
/// the window, and a newline that would start a forged audit line.
const BAD: [&str; 3] = [
    "a\0b",
    "jan\u{1b}]0;owned\u{7}",
    "jan\n2025-01-01T00:00:00Z forged",
];

struct Rig {
    engine: Engine,
    db: TestDb,
}

impl Rig {
    async fn new(backend: Backend) -> anyhow::Result<Rig> {
        let db = TestDb::new(backend).await?;
        let store = db.store().await?;
        let engine = Engine::new(
            Arc::new(store),
            Arc::new(ManualClock::new(OffsetDateTime::from_unix_timestamp(
                1_772_359_205,
            )?)),
            SecretHasher::new(HashCost::Fast, Pepper::from_bytes(&[9; 32])),
            Arc::new(SealingKey::from_bytes(&[7; 32])),
        );
        Ok(Rig { engine, db })
    }

    async fn create(&self, name: &str) -> Result<twofold_core::user::User, Error> {
        self.engine
            .create_user(
                &Ctx::cli(),
                CreateUser {
                    username: name.into(),
                    password: Some(PASSWORD.into()),
                    ..Default::default()
                },
            )
            .await
    }
}

/// `Err(InvalidInput)` on `field`, whatever the backend.
fn invalid<T: std::fmt::Debug>(what: &str, field: &str, r: Result<T, Error>) -> anyhow::Result<()> {
    match r {
        Err(Error::InvalidInput { field: f, message }) if f == field => {
            ensure!(
                message.contains("control characters") || message.contains("NUL"),
                "{what}: {message}"
            );
            Ok(())
        }
        other => anyhow::bail!("{what}: expected invalid {field}, got {other:?}"),
    }
}

async fn control_characters_are_invalid_input_everywhere(backend: Backend) -> anyhow::Result<()> {
    let rig = Rig::new(backend).await?;
    let e = &rig.engine;
    let cli = Ctx::cli();
    rig.create("jan").await?;
    let (_, secret) = e
        .create_service_account(
            &cli,
            "vpn",
            ServiceAccountSpec {
                role: Role::Validate,
                permissions: Permissions::default(),
                scope: Scope::All,
            },
        )
        .await?;
    for bad in BAD {
        let u = |what: &str| format!("{what} {bad:?}");
        // Verifier: the SDK's validate, primary and authenticate.
        invalid(
            &u("primary"),
            "username",
            e.check_password(&cli, bad, PASSWORD.into()).await,
        )?;
        invalid(
            &u("validate"),
            "username",
            e.validate(&cli, bad, "123456").await,
        )?;
        invalid(
            &u("authenticate"),
            "username",
            e.start_authentication(&cli, bad, twofold_core::challenge::PhoneChoice::Primary)
                .await,
        )?;
        // PortalService, as the in-process portal and the link call it.
        let user = Ctx::end_user(bad, None);
        invalid(
            &u("sign in"),
            "username",
            e.begin_sign_in(&user, bad, PASSWORD.into()).await,
        )?;
        invalid(
            &u("portal user"),
            "username",
            e.portal_user(&cli, bad).await,
        )?;
        invalid(
            &u("verify"),
            "username",
            e.verify(&user, bad, Proof::Method, Some("1".into()), vec![])
                .await,
        )?;
        invalid(&u("account"), "username", e.account(&user, bad).await)?;
        invalid(
            &u("bypass"),
            "username",
            e.start_bypass(&user, bad, None).await,
        )?;
        invalid(
            &u("session load"),
            "session",
            e.session_load(&cli, bad).await,
        )?;
        invalid(
            &u("session drop"),
            "session",
            e.session_drop(&cli, bad).await,
        )?;
        // AdminService: user paths and the queries of lists and the log.
        invalid(&u("show"), "username", e.get_user(&cli, bad).await)?;
        invalid(
            &u("enable"),
            "username",
            e.set_user_enabled(&cli, bad, true).await,
        )?;
        invalid(&u("delete"), "username", e.delete_user(&cli, bad).await)?;
        invalid(&u("tokens"), "username", e.tokens(&cli, bad).await)?;
        invalid(&u("revoke"), "username", e.revoke_admin(&cli, bad).await)?;
        invalid(&u("act as"), "username", e.act_as(&cli, bad).await)?;
        invalid(
            &u("bootstrap"),
            "username",
            e.bootstrap_admin(&cli, bad, None).await,
        )?;
        for (field, query) in [
            (
                "prefix",
                UserQuery {
                    prefix: Some(bad.into()),
                    ..UserQuery::default()
                },
            ),
            (
                "group",
                UserQuery {
                    group: Some(bad.into()),
                    ..UserQuery::default()
                },
            ),
            (
                "after",
                UserQuery {
                    after: Some(bad.into()),
                    ..UserQuery::default()
                },
            ),
        ] {
            invalid(&u(field), field, e.list_users(&cli, query).await)?;
        }
        let query = AuditQuery {
            limit: 10,
            subject: Some(bad.into()),
            ..AuditQuery::default()
        };
        invalid(&u("audit"), "subject", e.audit_events(&cli, query).await)?;
        invalid(
            &u("questions"),
            "language",
            e.questions(&cli, Some(bad)).await,
        )?;
        invalid(
            &u("rotate"),
            "name",
            e.rotate_service_account(&cli, bad).await,
        )?;
        // The store refuses them too, as a second line.
        invalid(&u("store"), "username", e.store().find_user(bad).await)?;
        // SDK credentials: a name with control characters is wrong
        // credentials, never a database error.
        let r = e.authenticate_caller(bad, &secret, None).await;
        ensure!(
            matches!(r, Err(Error::Forbidden(_))),
            "caller {bad:?}: {r:?}"
        );
    }
    invalid(
        "session data",
        "session",
        e.session_save(&cli, &"ab".repeat(32), "{\"x\":\"\0\"}".into(), 60)
            .await,
    )?;
    // Nothing of it reached the audit log raw.
    let events = e
        .audit_events(
            &cli,
            AuditQuery {
                limit: 1000,
                ..AuditQuery::default()
            },
        )
        .await?;
    ensure!(
        events.iter().any(|ev| ev.event == "sdk.auth"),
        "refused callers are audited"
    );
    for ev in &events {
        let fields = [
            Some(&ev.actor),
            ev.subject.as_ref(),
            ev.detail.as_ref(),
            ev.via.as_ref(),
        ];
        for text in fields.into_iter().flatten() {
            ensure!(
                !text.contains(is_unsafe_for_terminal),
                "raw in the audit log: {ev:?}"
            );
        }
    }
    Ok(())
}

async fn look_alike_usernames_are_refused(backend: Backend) -> anyhow::Result<()> {
    let rig = Rig::new(backend).await?;
    let e = &rig.engine;
    rig.create("jan").await?;
    // A Cyrillic а among Latin letters.
    match rig.create("j\u{430}n").await {
        Err(Error::InvalidInput { field, message }) => {
            ensure!(
                field == "username" && message.contains("Latin and Cyrillic"),
                "{message}"
            );
        }
        other => anyhow::bail!("j\\u{{430}}n: {other:?}"),
    }
    // Full-width letters are the same name (PRECIS width mapping), and so is
    // another case of it.
    for same in ["ｊａｎ", "JAN", "Ｊａｎ"] {
        match rig.create(same).await {
            Err(Error::Conflict {
                reason: ConflictReason::Exists,
                ..
            }) => {}
            other => anyhow::bail!("{same}: {other:?}"),
        }
        ensure!(
            e.get_user(&Ctx::cli(), same).await?.username == "jan",
            "{same} finds jan"
        );
    }
    // One script is fine, in any script.
    let ivan = rig.create("Иван").await?;
    ensure!(e.get_user(&Ctx::cli(), "ИВАН").await?.id == ivan.id);
    let names: Vec<String> = e
        .list_users(
            &Ctx::cli(),
            UserQuery {
                limit: 10,
                ..UserQuery::default()
            },
        )
        .await?
        .into_iter()
        .map(|u| u.username)
        .collect();
    ensure!(names == ["jan", "Иван"], "{names:?}");
    Ok(())
}

/// Users created before usernames were normalised keep the key they got
/// (plain lower case): they are still found, and the same name cannot be
/// created again beside them.
async fn names_made_before_normalisation_are_still_found(backend: Backend) -> anyhow::Result<()> {
    let rig = Rig::new(backend).await?;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&rig.db.url).await?;
    for (name, key) in [("ｐｉｅｔ", "ｐｉｅｔ"), ("ΟΔΟΣ", "οδος")] {
        sqlx::query(
            "INSERT INTO users (username, username_key, enabled, fraud_blocked, created_at, \
             updated_at, version) VALUES ($1, $2, 1, 0, 1, 1, 1)",
        )
        .bind(name)
        .bind(key)
        .execute(&pool)
        .await
        .context("a row as an older release wrote it")?;
    }
    pool.close().await;
    let e = &rig.engine;
    for name in ["ｐｉｅｔ", "ΟΔΟΣ", "οδος"] {
        let found = e.get_user(&Ctx::cli(), name).await?;
        ensure!(
            found.username.to_lowercase() == name.to_lowercase(),
            "{name}: {found:?}"
        );
    }
    match rig.create("ΟΔΟΣ").await {
        Err(Error::Conflict {
            reason: ConflictReason::Exists,
            ..
        }) => {}
        other => anyhow::bail!("ΟΔΟΣ beside the old row: {other:?}"),
    }
    Ok(())
}

async fn refusals_name_the_rule_they_apply(backend: Backend) -> anyhow::Result<()> {
    let rig = Rig::new(backend).await?;
    let e = &rig.engine;
    let cli = Ctx::cli();
    rig.create("jan").await?;
    // A label with a newline or NUL is refused for that, not for its length.
    for label in ["my\nphone", "my\0phone"] {
        let r = e
            .add_token(&cli, "jan", RFC4226_SECRET, OathParams::default(), label)
            .await;
        match r {
            Err(Error::InvalidInput { field, message }) => ensure!(
                field == "label" && message == "must not contain control characters",
                "{label:?}: {field}: {message}"
            ),
            other => anyhow::bail!("{label:?}: {other:?}"),
        }
        let r = e
            .add_oath_token(&Ctx::end_user("jan", None), "jan", "x".into(), label.into())
            .await;
        match r {
            Err(Error::InvalidInput { field, message }) => ensure!(
                field == "label" && message == "must not contain control characters",
                "portal {label:?}: {field}: {message}"
            ),
            other => anyhow::bail!("portal {label:?}: {other:?}"),
        }
    }
    let r = e
        .add_token(
            &cli,
            "jan",
            RFC4226_SECRET,
            OathParams::default(),
            &"x".repeat(65),
        )
        .await;
    ensure!(
        matches!(&r, Err(Error::InvalidInput { field, message })
            if field == "label" && message.contains("at most 64")),
        "{r:?}"
    );
    // A username longer than any user's is the username's fault.
    let r = e.validate(&cli, &"a".repeat(200), "123456").await;
    ensure!(
        matches!(&r, Err(Error::InvalidInput { field, .. }) if field == "username"),
        "{r:?}"
    );
    Ok(())
}
