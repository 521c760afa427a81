//! The pepper on the engine, on SQLite and PostgreSQL: hashes stored by a
//! version before the pepper (argon2id without a key) still verify, and the
//! first successful check stores a peppered hash in their place — PIN,
//! local password and security answer — changing nothing else, and never
//! over a secret changed meanwhile.

use std::sync::Arc;

use serde_json::json;
use time::OffsetDateTime;
use twofold_core::audit::{NewAuditEvent, ResultCode};
use twofold_core::clock::ManualClock;
use twofold_core::factors::{OathKind, OathParams};
use twofold_core::password::{HashCost, SecretHasher};
use twofold_core::portal::{Proof, SignIn, Verified};
use twofold_core::ports::{PinRepo, QuestionRepo, UserRepo};
use twofold_core::sealing::SealingKey;
use twofold_core::service::CreateUser;
use twofold_core::user::{User, UserPatch};
use twofold_core::{AdminService, Ctx, Engine, PortalService};
use twofold_store::SqlStore;
use twofold_testkit::{Backend, TestDb};

twofold_testkit::both_backends!(
    #[tokio::test] -> anyhow::Result<()>;
    new_secrets_are_peppered,
    an_unpeppered_pin_is_accepted_then_stored_peppered,
    an_unpeppered_password_is_accepted_then_stored_peppered,
    an_unpeppered_answer_is_accepted_then_stored_peppered,
    a_secret_changed_meanwhile_is_not_overwritten,
);

const PASSWORD: &str = "correct horse battery";
const PIN: &str = "4826";
/// Hashes as versions before the pepper stored them: argon2id, no key, at
/// the test suites' cost (m=1024, t=1), of `PIN`, `PASSWORD` and the
/// normalised answer "amsterdam".
const UNPEPPERED_PIN: &str = "$argon2id$v=19$m=1024,t=1,p=1$G51Ag8PgahnbpPWiKXUqZQ$\
GeqI1Q0opTSngBSdP9txLu7EoK2lKI701iMLyltF5XA";
const UNPEPPERED_PASSWORD: &str = "$argon2id$v=19$m=1024,t=1,p=1$RcG9i2Yj45ZUxWtHqrC2Hg$\
uoQ1hZ6avAhGX8fqHsAR+5qPc7mXdd8/WCXbnGXzsgw";
const UNPEPPERED_ANSWER: &str = "$argon2id$v=19$m=1024,t=1,p=1$5BlA3k9FZDVVoQ940g54Aw$\
1r5WqceGB3PZTzLunDezBRn9GydOtWk2gRsJ8hexOFo";
/// The same PIN at production cost (m=19456, t=2), unpeppered.
const UNPEPPERED_PRODUCTION_PIN: &str = "$argon2id$v=19$m=19456,t=2,p=1$dOLhP9vpsZYlMraZj9NC5A$\
w9W+cUTMNuIIaggjka7R7q+S7JTmT4bEv73wqcTpTV0";

/// RFC 4226's test secret, "12345678901234567890", in base32.
const RFC4226_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
/// RFC 4226 appendix D: the codes for counters 0, 1 and 2.
const HOTP: [&str; 3] = ["755224", "287082", "359152"];

/// The marker of a peppered hash: the pepper's identifier.
fn peppered(phc: &str) -> bool {
    phc.starts_with("$argon2id$v=19$") && phc.contains(",keyid=")
}

struct Rig {
    engine: Engine,
    /// The engine's database, for looking at (and planting) hashes.
    store: Arc<SqlStore>,
    // Last: the database goes after the engine's pool.
    _db: TestDb,
}

impl Rig {
    /// A security question, and `user`'s answer to it stored as an earlier
    /// version hashed it (no pepper). Returns the question's id.
    async fn plant_unpeppered_answer(&self, user: &User) -> anyhow::Result<i64> {
        let question = self
            .store
            .add_question("en", "In which city were you born?", &ev(&user.username))
            .await?;
        self.store
            .set_answers(
                user.id,
                &[(question.id, UNPEPPERED_ANSWER.to_string())],
                &ev(&user.username),
            )
            .await?;
        Ok(question.id)
    }

    async fn new(backend: Backend) -> anyhow::Result<Rig> {
        let db = TestDb::new(backend).await?;
        let store = Arc::new(db.store().await?);
        let clock = Arc::new(ManualClock::new(OffsetDateTime::from_unix_timestamp(
            1_772_359_205,
        )?));
        // As the server wires it: the pepper comes from the sealing key.
        let key = SealingKey::from_bytes(&[7; 32]);
        let hasher = SecretHasher::new(HashCost::Fast, key.pepper());
        let engine = Engine::new(store.clone(), clock, hasher, Arc::new(key));
        Ok(Rig {
            engine,
            store,
            _db: db,
        })
    }

    /// A user with a local password whose method is an event-based token
    /// with the RFC 4226 secret, the PIN typed in front of the code.
    async fn user_with_pin_mode(&self, name: &str) -> anyhow::Result<User> {
        self.engine
            .create_user(
                &Ctx::cli(),
                CreateUser {
                    username: name.into(),
                    password: Some(PASSWORD.into()),
                    ..Default::default()
                },
            )
            .await?;
        let params = OathParams {
            kind: OathKind::Hotp,
            ..OathParams::default()
        };
        self.engine
            .add_token(&Ctx::cli(), name, RFC4226_SECRET, params, "")
            .await?;
        self.engine
            .update_user(
                &Ctx::cli(),
                name,
                UserPatch {
                    default_method: Some("oath_token:oath_pin".into()),
                    ..Default::default()
                },
            )
            .await?;
        self.find(name).await
    }

    async fn find(&self, name: &str) -> anyhow::Result<User> {
        self.store
            .find_user(name)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no user {name}"))
    }

    async fn pin_hash(&self, user: &User) -> anyhow::Result<String> {
        Ok(self
            .store
            .pin(user.id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no PIN"))?
            .hash)
    }

    async fn passcode(&self, name: &str, passcode: String) -> anyhow::Result<Verified> {
        Ok(self
            .engine
            .verify(
                &Ctx::end_user(name, None),
                name,
                Proof::Method,
                Some(passcode),
                Vec::new(),
            )
            .await?)
    }
}

fn ev(subject: &str) -> NewAuditEvent {
    NewAuditEvent {
        at: OffsetDateTime::from_unix_timestamp(1_772_359_205).expect("time"),
        actor: "tester".into(),
        via: None,
        subject: Some(subject.into()),
        event: "test.plant".into(),
        method: None,
        result: ResultCode::Success,
        source_ip: None,
        detail: None,
    }
}

fn accepted(v: &Verified) -> bool {
    matches!(v, Verified::Accepted { .. })
}

async fn new_secrets_are_peppered(backend: Backend) -> anyhow::Result<()> {
    let rig = Rig::new(backend).await?;
    let jan = rig.user_with_pin_mode("jan").await?;
    let hash = rig
        .store
        .password_hash(jan.id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no password"))?;
    anyhow::ensure!(peppered(&hash), "{hash}");
    rig.engine.set_pin(&Ctx::cli(), "jan", PIN).await?;
    let hash = rig.pin_hash(&jan).await?;
    anyhow::ensure!(peppered(&hash), "{hash}");
    let v = rig.passcode("jan", format!("{PIN}{}", HOTP[0])).await?;
    anyhow::ensure!(accepted(&v), "{v:?}");
    // Already peppered at the current cost: left as it is.
    anyhow::ensure!(rig.pin_hash(&jan).await? == hash);
    Ok(())
}

async fn an_unpeppered_pin_is_accepted_then_stored_peppered(
    backend: Backend,
) -> anyhow::Result<()> {
    let rig = Rig::new(backend).await?;
    let jan = rig.user_with_pin_mode("jan").await?;
    let set_at = OffsetDateTime::from_unix_timestamp(1_700_000_000)?;
    rig.store
        .set_pin(jan.id, UNPEPPERED_PIN, set_at, 5, &ev("jan"))
        .await?;

    // A wrong PIN (with the right code) is refused and upgrades nothing.
    let v = rig.passcode("jan", format!("4827{}", HOTP[0])).await?;
    anyhow::ensure!(!accepted(&v), "{v:?}");
    anyhow::ensure!(rig.pin_hash(&jan).await? == UNPEPPERED_PIN);

    // The right one is accepted, and the hash is peppered from then on...
    let v = rig.passcode("jan", format!("{PIN}{}", HOTP[0])).await?;
    anyhow::ensure!(accepted(&v), "{v:?}");
    let upgraded = rig.pin_hash(&jan).await?;
    anyhow::ensure!(peppered(&upgraded), "{upgraded}");
    // ...with nothing else changed: not when it was set, not the history.
    let record = rig.store.pin(jan.id).await?.expect("a PIN");
    anyhow::ensure!(record.set_at == set_at, "{:?}", record.set_at);
    anyhow::ensure!(rig.store.pin_history(jan.id).await?.is_empty());

    // Still accepted, and not re-hashed again.
    let v = rig.passcode("jan", format!("{PIN}{}", HOTP[1])).await?;
    anyhow::ensure!(accepted(&v), "{v:?}");
    anyhow::ensure!(rig.pin_hash(&jan).await? == upgraded);
    // A wrong PIN is still wrong.
    let v = rig.passcode("jan", format!("4827{}", HOTP[2])).await?;
    anyhow::ensure!(!accepted(&v), "{v:?}");

    // A hash of an earlier version at production cost verifies too (it is
    // dearer than this rig's, but unpeppered: upgraded all the same).
    rig.store
        .set_pin(jan.id, UNPEPPERED_PRODUCTION_PIN, set_at, 5, &ev("jan"))
        .await?;
    let v = rig.passcode("jan", format!("{PIN}{}", HOTP[2])).await?;
    anyhow::ensure!(accepted(&v), "{v:?}");
    let upgraded = rig.pin_hash(&jan).await?;
    anyhow::ensure!(peppered(&upgraded), "{upgraded}");
    Ok(())
}

async fn an_unpeppered_password_is_accepted_then_stored_peppered(
    backend: Backend,
) -> anyhow::Result<()> {
    let rig = Rig::new(backend).await?;
    let jan = rig.user_with_pin_mode("jan").await?;
    rig.store
        .set_password_hash(jan.id, UNPEPPERED_PASSWORD, &ev("jan"))
        .await?;
    let version = rig.find("jan").await?.version;
    let ctx = Ctx::end_user("jan", None);

    let s = rig
        .engine
        .begin_sign_in(&ctx, "jan", "not the password".into())
        .await?;
    anyhow::ensure!(matches!(s, SignIn::Rejected), "{s:?}");
    anyhow::ensure!(rig.store.password_hash(jan.id).await?.as_deref() == Some(UNPEPPERED_PASSWORD));

    let s = rig
        .engine
        .begin_sign_in(&ctx, "jan", PASSWORD.into())
        .await?;
    anyhow::ensure!(matches!(s, SignIn::SecondStep { .. }), "{s:?}");
    let upgraded = rig
        .store
        .password_hash(jan.id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no password"))?;
    anyhow::ensure!(peppered(&upgraded), "{upgraded}");
    // Not an edit of the user: an administrator's form open meanwhile
    // still saves.
    anyhow::ensure!(rig.find("jan").await?.version == version);

    let s = rig
        .engine
        .begin_sign_in(&ctx, "jan", PASSWORD.into())
        .await?;
    anyhow::ensure!(matches!(s, SignIn::SecondStep { .. }), "{s:?}");
    anyhow::ensure!(rig.store.password_hash(jan.id).await?.as_deref() == Some(&*upgraded));
    Ok(())
}

async fn an_unpeppered_answer_is_accepted_then_stored_peppered(
    backend: Backend,
) -> anyhow::Result<()> {
    let rig = Rig::new(backend).await?;
    let jan = rig.user_with_pin_mode("jan").await?;
    rig.engine
        .set_setting(
            &Ctx::cli(),
            "portal.security_questions_fallback",
            json!(true),
        )
        .await?;
    rig.engine
        .set_setting(&Ctx::cli(), "portal.security_questions_required", json!(1))
        .await?;
    let question = rig.plant_unpeppered_answer(&jan).await?;
    let answer = |text: &str| vec![(question, text.to_string())];
    let ctx = Ctx::end_user("jan", None);
    let stored = || async {
        anyhow::Ok(
            rig.store
                .answers(jan.id)
                .await?
                .into_iter()
                .map(|a| a.hash)
                .collect::<Vec<_>>(),
        )
    };

    let v = rig
        .engine
        .verify(
            &ctx,
            "jan",
            Proof::SecurityQuestions,
            None,
            answer("Utrecht"),
        )
        .await?;
    anyhow::ensure!(!accepted(&v), "{v:?}");
    anyhow::ensure!(stored().await? == [UNPEPPERED_ANSWER]);

    // Normalised as when it was set ("amsterdam").
    let v = rig
        .engine
        .verify(
            &ctx,
            "jan",
            Proof::SecurityQuestions,
            None,
            answer(" Amsterdam "),
        )
        .await?;
    anyhow::ensure!(accepted(&v), "{v:?}");
    let upgraded = stored().await?;
    anyhow::ensure!(
        upgraded.len() == 1 && peppered(&upgraded[0]),
        "{upgraded:?}"
    );

    let v = rig
        .engine
        .verify(
            &ctx,
            "jan",
            Proof::SecurityQuestions,
            None,
            answer("amsterdam"),
        )
        .await?;
    anyhow::ensure!(accepted(&v), "{v:?}");
    anyhow::ensure!(stored().await? == upgraded);
    Ok(())
}

/// The compare-and-set itself: a hash that is no longer the stored one
/// (the secret was changed between the check and the write) replaces
/// nothing.
async fn a_secret_changed_meanwhile_is_not_overwritten(backend: Backend) -> anyhow::Result<()> {
    let rig = Rig::new(backend).await?;
    let jan = rig.user_with_pin_mode("jan").await?;
    let set_at = OffsetDateTime::from_unix_timestamp(1_700_000_000)?;
    rig.store
        .set_pin(jan.id, UNPEPPERED_PIN, set_at, 5, &ev("jan"))
        .await?;
    anyhow::ensure!(
        !rig.store
            .rehash_pin(jan.id, "$argon2id$an-earlier-pin", "new")
            .await?
    );
    anyhow::ensure!(rig.pin_hash(&jan).await? == UNPEPPERED_PIN);
    anyhow::ensure!(rig.store.rehash_pin(jan.id, UNPEPPERED_PIN, "new").await?);
    anyhow::ensure!(rig.pin_hash(&jan).await? == "new");
    // Another user's PIN of the same hash is not touched.
    let eva = rig.user_with_pin_mode("eva").await?;
    rig.store
        .set_pin(eva.id, UNPEPPERED_PIN, set_at, 5, &ev("eva"))
        .await?;
    anyhow::ensure!(!rig.store.rehash_pin(jan.id, UNPEPPERED_PIN, "x").await?);
    anyhow::ensure!(rig.pin_hash(&eva).await? == UNPEPPERED_PIN);

    let password = rig.store.password_hash(jan.id).await?;
    anyhow::ensure!(
        !rig.store
            .rehash_password(jan.id, UNPEPPERED_PASSWORD, "new")
            .await?
    );
    anyhow::ensure!(rig.store.password_hash(jan.id).await? == password);

    let question = rig.plant_unpeppered_answer(&jan).await?;
    anyhow::ensure!(
        !rig.store
            .rehash_answer(jan.id, question, "stale", "new")
            .await?
    );
    anyhow::ensure!(
        !rig.store
            .rehash_answer(jan.id, question + 1, UNPEPPERED_ANSWER, "new")
            .await?
    );
    anyhow::ensure!(
        rig.store
            .rehash_answer(jan.id, question, UNPEPPERED_ANSWER, "new")
            .await?
    );
    anyhow::ensure!(rig.store.answers(jan.id).await?[0].hash == "new");
    Ok(())
}
