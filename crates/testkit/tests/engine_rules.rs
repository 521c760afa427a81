//! The User Portal's rules straight on the engine, through the service
//! traits the front-ends call (`PortalService`, `AdminService`, `Verifier`):
//! no HTTP, no TLS, no browser, a manual clock. The HTTPS suites in
//! `crates/web/tests` show the same rules as a browser meets them; these say
//! in milliseconds whether the engine keeps them, on SQLite and PostgreSQL.

use std::net::IpAddr;
use std::sync::Arc;

use serde_json::{json, Value};
use time::OffsetDateTime;
use twofold_core::audit::AuditQuery;
use twofold_core::clock::{Clock, ManualClock};
use twofold_core::factors::{OathKind, OathParams};
use twofold_core::password::{HashCost, Pepper, SecretHasher};
use twofold_core::portal::{Proof, SignIn, Skip, Verified};
use twofold_core::sealing::SealingKey;
use twofold_core::service::CreateUser;
use twofold_core::user::{DefaultMethod, MethodKind, Mode};
use twofold_core::{oath, AdminService, Ctx, Engine, Error, PortalService, Verifier};
use twofold_testkit::{Backend, TestDb};

twofold_testkit::both_backends!(
    #[tokio::test] -> anyhow::Result<()>;
    unknown_user_and_wrong_password_look_the_same,
    user_without_a_method_enrolls_or_is_sent_away,
    bypass_works_once_and_expires,
    wrong_codes_pause_the_code_alone_then_lock,
    trusted_ip_skips_the_second_step,
    end_user_may_not_administer,
    given_token_becomes_the_method_and_validates,
    audit_events_past_their_retention_are_pruned,
    a_proof_of_a_number_never_signs_in,
);

const PASSWORD: &str = "correct horse battery";
/// RFC 4226's test secret, "12345678901234567890", in base32.
const RFC4226_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
/// RFC 4226 appendix D: the codes for counters 0 and 1.
const HOTP_0: &str = "755224";
const HOTP_1: &str = "287082";

/// An engine on a fresh database with a clock that moves only when told.
struct Rig {
    engine: Engine,
    clock: Arc<ManualClock>,
    // Last: the database goes after the engine's pool.
    _db: TestDb,
}

impl Rig {
    async fn new(backend: Backend) -> anyhow::Result<Rig> {
        Rig::with(backend, false).await
    }

    /// `outbox`: calls and text messages go to the development outbox.
    async fn with(backend: Backend, outbox: bool) -> anyhow::Result<Rig> {
        let db = TestDb::new(backend).await?;
        let store = db.store().await?;
        let clock = Arc::new(ManualClock::new(OffsetDateTime::from_unix_timestamp(
            1_772_359_205,
        )?));
        let engine = Engine::new(
            Arc::new(store),
            clock.clone(),
            SecretHasher::new(HashCost::Fast, Pepper::from_bytes(&[9; 32])),
            Arc::new(SealingKey::from_bytes(&[7; 32])),
        );
        let engine = if outbox { engine.with_outbox() } else { engine };
        Ok(Rig {
            engine,
            clock,
            _db: db,
        })
    }

    async fn set(&self, key: &str, value: Value) -> anyhow::Result<()> {
        self.engine.set_setting(&Ctx::cli(), key, value).await?;
        Ok(())
    }

    /// A user with a local password and no method.
    async fn user(&self, name: &str) -> anyhow::Result<()> {
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
        Ok(())
    }

    /// A user whose method is an event-based token with the RFC 4226 secret
    /// (counter 0), given by an administrator.
    async fn enrolled_user(&self, name: &str) -> anyhow::Result<()> {
        self.user(name).await?;
        let added = self
            .engine
            .add_token(&Ctx::cli(), name, RFC4226_SECRET, hotp_params(), "")
            .await?;
        anyhow::ensure!(added.method_set, "the token became the method");
        Ok(())
    }

    async fn sign_in(&self, ctx: &Ctx, name: &str, password: &str) -> anyhow::Result<SignIn> {
        Ok(self
            .engine
            .begin_sign_in(ctx, name, password.to_string())
            .await?)
    }

    async fn verify(&self, name: &str, code: &str) -> anyhow::Result<Verified> {
        Ok(self
            .engine
            .verify(
                &Ctx::end_user(name, None),
                name,
                Proof::Method,
                Some(code.to_string()),
                Vec::new(),
            )
            .await?)
    }

    fn advance(&self, seconds: i64) {
        self.clock.advance(time::Duration::seconds(seconds));
    }

    async fn audit_results(&self, subject: &str) -> anyhow::Result<Vec<String>> {
        Ok(self
            .engine
            .audit_events(
                &Ctx::cli(),
                AuditQuery {
                    limit: 1000,
                    subject: Some(subject.into()),
                    ..Default::default()
                },
            )
            .await?
            .into_iter()
            .map(|e| e.result.as_str())
            .collect())
    }
}

fn hotp_params() -> OathParams {
    OathParams {
        kind: OathKind::Hotp,
        ..OathParams::default()
    }
}

/// A six-digit code that none of the first counters of the RFC secret give,
/// so it is wrong whatever the look-ahead.
fn wrong_code() -> String {
    let secret = oath::parse_base32_secret(RFC4226_SECRET).expect("RFC secret");
    let params = hotp_params();
    let near: Vec<String> = (0..200)
        .map(|c| oath::hotp(&secret, c, params.algorithm, params.digits))
        .collect();
    // Every six-digit code; at most 200 of them are taken.
    (0..1_000_000)
        .map(|n| format!("{n:06}"))
        .find(|code| !near.contains(code))
        .expect("a code outside the window")
}

fn user_ctx(name: &str) -> Ctx {
    Ctx::end_user(name, None)
}

fn from(name: &str, ip: &str) -> Ctx {
    Ctx::end_user(name, Some(ip.parse::<IpAddr>().expect("address")))
}

fn is_second_step(s: &SignIn) -> bool {
    matches!(s, SignIn::SecondStep { .. })
}

async fn unknown_user_and_wrong_password_look_the_same(backend: Backend) -> anyhow::Result<()> {
    let rig = Rig::new(backend).await?;
    rig.enrolled_user("jan").await?;

    let wrong_password = rig
        .sign_in(&user_ctx("jan"), "jan", "not the password")
        .await?;
    let unknown = rig
        .sign_in(&user_ctx("nobody"), "nobody", "not the password")
        .await?;
    anyhow::ensure!(
        matches!(wrong_password, SignIn::Rejected),
        "{wrong_password:?}"
    );
    // Byte for byte what a remote portal would receive.
    anyhow::ensure!(
        serde_json::to_value(&wrong_password)? == serde_json::to_value(&unknown)?,
        "{wrong_password:?} vs {unknown:?}"
    );
    // Only the audit log tells them apart.
    anyhow::ensure!(rig
        .audit_results("jan")
        .await?
        .contains(&"FAILED_PASSWORD_WRONG".to_string()));
    anyhow::ensure!(rig
        .audit_results("nobody")
        .await?
        .contains(&"FAILED_USER_NOT_FOUND".to_string()));
    Ok(())
}

async fn user_without_a_method_enrolls_or_is_sent_away(backend: Backend) -> anyhow::Result<()> {
    let rig = Rig::new(backend).await?;
    rig.user("jan").await?;

    let s = rig.sign_in(&user_ctx("jan"), "jan", PASSWORD).await?;
    anyhow::ensure!(
        matches!(&s, SignIn::Enroll { user } if user.username == "jan"),
        "{s:?}"
    );

    rig.set("portal.allow_enrollment", json!(false)).await?;
    let s = rig.sign_in(&user_ctx("jan"), "jan", PASSWORD).await?;
    anyhow::ensure!(
        matches!(&s, SignIn::NotEnrolled { user } if user.username == "jan"),
        "{s:?}"
    );
    anyhow::ensure!(rig
        .audit_results("jan")
        .await?
        .contains(&"FAILED_NOT_ENROLLED".to_string()));
    Ok(())
}

async fn bypass_works_once_and_expires(backend: Backend) -> anyhow::Result<()> {
    let rig = Rig::new(backend).await?;
    rig.enrolled_user("jan").await?;
    let ctx = user_ctx("jan");

    // Not allowed until the setting says so.
    let refused = rig.engine.start_bypass(&ctx, "jan", None).await;
    anyhow::ensure!(matches!(refused, Err(Error::Forbidden(_))), "{refused:?}");
    rig.set("portal.allow_bypass", json!(true)).await?;

    // 300 seconds by default; used by the next sign-in, and only by that one.
    let until = rig.engine.start_bypass(&ctx, "jan", None).await?;
    anyhow::ensure!(until == rig.clock.now() + time::Duration::seconds(300));
    rig.advance(299);
    let s = rig.sign_in(&ctx, "jan", PASSWORD).await?;
    anyhow::ensure!(
        matches!(
            s,
            SignIn::Complete {
                skip: Skip::Bypass,
                ..
            }
        ),
        "{s:?}"
    );
    let s = rig.sign_in(&ctx, "jan", PASSWORD).await?;
    anyhow::ensure!(is_second_step(&s), "a bypass works once: {s:?}");

    // Unused, it expires with the clock.
    rig.engine.start_bypass(&ctx, "jan", None).await?;
    rig.advance(301);
    let s = rig.sign_in(&ctx, "jan", PASSWORD).await?;
    anyhow::ensure!(is_second_step(&s), "an expired bypass does nothing: {s:?}");

    // A wrong password is wrong with a bypass too, and does not use it.
    rig.engine.start_bypass(&ctx, "jan", None).await?;
    let s = rig.sign_in(&ctx, "jan", "not the password").await?;
    anyhow::ensure!(matches!(s, SignIn::Rejected), "{s:?}");
    let s = rig.sign_in(&ctx, "jan", PASSWORD).await?;
    anyhow::ensure!(
        matches!(
            s,
            SignIn::Complete {
                skip: Skip::Bypass,
                ..
            }
        ),
        "{s:?}"
    );
    let used = rig
        .audit_results("jan")
        .await?
        .iter()
        .filter(|r| *r == "SUCCESS_BYPASS_USED")
        .count();
    anyhow::ensure!(used == 2, "{used} bypasses used");
    Ok(())
}

async fn wrong_codes_pause_the_code_alone_then_lock(backend: Backend) -> anyhow::Result<()> {
    let rig = Rig::new(backend).await?;
    rig.enrolled_user("jan").await?;
    rig.set("lockout.denials_to_lock", json!(3)).await?;
    rig.set("lockout.auto_unblock_minutes", json!(15)).await?;
    let ctx = user_ctx("jan");
    let wrong = wrong_code();
    let paused = |r: anyhow::Result<Verified>, secs: u64| match r {
        Err(e)
            if matches!(
                e.downcast_ref::<Error>(),
                Some(Error::RateLimited { retry_after_seconds }) if *retry_after_seconds == secs
            ) =>
        {
            Ok(())
        }
        other => Err(anyhow::anyhow!("expected a {secs} s pause: {other:?}")),
    };

    let s = rig.sign_in(&ctx, "jan", PASSWORD).await?;
    anyhow::ensure!(is_second_step(&s), "{s:?}");
    for _ in 0..3 {
        let v = rig.verify("jan", &wrong).await?;
        anyhow::ensure!(
            matches!(v, Verified::Rejected { locked: false, .. }),
            "{v:?}"
        );
    }
    // Paused for a minute: even the right code is not checked...
    paused(rig.verify("jan", HOTP_0).await, 60)?;
    // ...which an administrator sees, for the code alone.
    let record = rig.engine.failures(&Ctx::cli(), "jan").await?;
    let (password, code) = (record[0], record[1]);
    anyhow::ensure!(
        password.since_success == 0 && password.paused_until.is_none(),
        "{password:?}"
    );
    anyhow::ensure!(
        (code.in_a_row, code.since_success, code.this_hour) == (3, 3, 3)
            && code.paused_until.is_some(),
        "{code:?}"
    );
    // ...but the password is another factor: signing in still works.
    let s = rig.sign_in(&ctx, "jan", PASSWORD).await?;
    anyhow::ensure!(is_second_step(&s), "the password is not paused: {s:?}");

    // One more wrong code after the pause doubles it.
    rig.advance(60);
    let v = rig.verify("jan", &wrong).await?;
    anyhow::ensure!(
        matches!(v, Verified::Rejected { locked: false, .. }),
        "{v:?}"
    );
    rig.advance(61);
    paused(rig.verify("jan", HOTP_0).await, 59)?;
    rig.advance(59);
    let v = rig.verify("jan", HOTP_0).await?;
    anyhow::ensure!(matches!(v, Verified::Accepted { .. }), "{v:?}");
    let results = rig.audit_results("jan").await?;
    anyhow::ensure!(
        results.contains(&"FAILED_RATE_LIMITED".to_string()),
        "{results:?}"
    );

    // With no automatic unblock the first pause is a lock instead.
    rig.set("lockout.auto_unblock_minutes", json!(0)).await?;
    for i in 0..3 {
        let v = rig.verify("jan", &wrong).await?;
        anyhow::ensure!(
            matches!(v, Verified::Rejected { locked, .. } if locked == (i == 2)),
            "{v:?}"
        );
    }
    let s = rig.sign_in(&ctx, "jan", PASSWORD).await?;
    anyhow::ensure!(matches!(s, SignIn::Blocked { .. }), "{s:?}");
    rig.advance(24 * 3600);
    let s = rig.sign_in(&ctx, "jan", PASSWORD).await?;
    anyhow::ensure!(
        matches!(s, SignIn::Blocked { .. }),
        "still locked a day later: {s:?}"
    );
    anyhow::ensure!(rig
        .audit_results("jan")
        .await?
        .contains(&"FAILED_LOCKED_OUT".to_string()));
    Ok(())
}

async fn trusted_ip_skips_the_second_step(backend: Backend) -> anyhow::Result<()> {
    let rig = Rig::new(backend).await?;
    rig.enrolled_user("jan").await?;
    let trusted = from("jan", "192.0.2.10");
    let other = from("jan", "198.51.100.7");

    // Listed but switched off: no effect.
    rig.set("trusted_ips.ranges", json!(["192.0.2.0/24"]))
        .await?;
    let s = rig.sign_in(&trusted, "jan", PASSWORD).await?;
    anyhow::ensure!(is_second_step(&s), "{s:?}");

    rig.set("trusted_ips.enabled", json!(true)).await?;
    let s = rig.sign_in(&trusted, "jan", PASSWORD).await?;
    anyhow::ensure!(
        matches!(
            s,
            SignIn::Complete {
                skip: Skip::TrustedIp,
                ..
            }
        ),
        "{s:?}"
    );
    // Another address, or no address, is not trusted.
    let s = rig.sign_in(&other, "jan", PASSWORD).await?;
    anyhow::ensure!(is_second_step(&s), "{s:?}");
    let s = rig.sign_in(&user_ctx("jan"), "jan", PASSWORD).await?;
    anyhow::ensure!(is_second_step(&s), "{s:?}");
    // The password still counts from a trusted address.
    let s = rig.sign_in(&trusted, "jan", "not the password").await?;
    anyhow::ensure!(matches!(s, SignIn::Rejected), "{s:?}");
    anyhow::ensure!(rig
        .audit_results("jan")
        .await?
        .contains(&"SUCCESS_TRUSTED_IP".to_string()));
    Ok(())
}

async fn end_user_may_not_administer(backend: Backend) -> anyhow::Result<()> {
    let rig = Rig::new(backend).await?;
    rig.user("jan").await?;
    let jan = user_ctx("jan");

    let r = rig
        .engine
        .set_setting(&jan, "portal.allow_bypass", json!(true))
        .await;
    anyhow::ensure!(matches!(r, Err(Error::Forbidden(_))), "{r:?}");
    let r = rig.engine.grant_bypass(&jan, "jan", None, None).await;
    anyhow::ensure!(matches!(r, Err(Error::Forbidden(_))), "{r:?}");
    let r = rig
        .engine
        .add_token(&jan, "jan", RFC4226_SECRET, hotp_params(), "")
        .await;
    anyhow::ensure!(matches!(r, Err(Error::Forbidden(_))), "{r:?}");

    // Nothing changed.
    let settings = rig.engine.settings(&Ctx::cli()).await?;
    anyhow::ensure!(!settings.portal.allow_bypass);
    anyhow::ensure!(rig.engine.tokens(&Ctx::cli(), "jan").await?.is_empty());
    Ok(())
}

async fn given_token_becomes_the_method_and_validates(backend: Backend) -> anyhow::Result<()> {
    let rig = Rig::new(backend).await?;
    rig.user("jan").await?;
    let before = rig.engine.get_user(&Ctx::cli(), "jan").await?;
    anyhow::ensure!(before.default_method.is_none());

    let added = rig
        .engine
        .add_token(&Ctx::cli(), "jan", RFC4226_SECRET, hotp_params(), "")
        .await?;
    anyhow::ensure!(added.method_set);
    let after = rig.engine.get_user(&Ctx::cli(), "jan").await?;
    anyhow::ensure!(
        after.default_method
            == Some(DefaultMethod {
                method: MethodKind::OathToken,
                mode: Mode::Oath,
            }),
        "{:?}",
        after.default_method
    );

    let v = rig.engine.validate(&Ctx::cli(), "jan", HOTP_0).await?;
    anyhow::ensure!(v.accepted, "RFC 4226 counter 0: {v:?}");
    let v = rig.engine.validate(&Ctx::cli(), "jan", HOTP_0).await?;
    anyhow::ensure!(!v.accepted, "a used code is refused: {v:?}");
    let v = rig.engine.validate(&Ctx::cli(), "jan", HOTP_1).await?;
    anyhow::ensure!(v.accepted, "RFC 4226 counter 1: {v:?}");
    Ok(())
}

/// `audit.retention_days`: a prune deletes the events older than it, says
/// so in one `audit.prune` event, keeps everything at 0, and is an
/// administrator's power only.
async fn audit_events_past_their_retention_are_pruned(backend: Backend) -> anyhow::Result<()> {
    let rig = Rig::new(backend).await?;
    rig.user("jan").await?;
    rig.user("piet").await?;
    let all = || async {
        rig.engine
            .audit_events(
                &Ctx::cli(),
                AuditQuery {
                    limit: 1000,
                    ..Default::default()
                },
            )
            .await
    };
    let old = all().await?.len();
    anyhow::ensure!(old >= 2);

    // Nothing is old enough yet.
    let p = rig.engine.prune_audit(&Ctx::system()).await?;
    anyhow::ensure!(p.removed == 0 && p.retention_days == 365, "{p:?}");
    anyhow::ensure!(all().await?.len() == old);

    // A user may not prune.
    let r = rig.engine.prune_audit(&user_ctx("jan")).await;
    anyhow::ensure!(matches!(r, Err(Error::Forbidden(_))), "{r:?}");

    rig.clock.advance(time::Duration::days(200));
    rig.user("kim").await?;
    rig.set("audit.retention_days", json!(0)).await?;
    rig.clock.advance(time::Duration::days(200));
    // 0: everything stays, however old.
    let p = rig.engine.prune_audit(&Ctx::system()).await?;
    anyhow::ensure!(p.removed == 0 && p.retention_days == 0, "{p:?}");

    rig.set("audit.retention_days", json!(365)).await?;
    let before = all().await?;
    let p = rig.engine.prune_audit(&Ctx::system()).await?;
    // The events of the first day (400 days ago) go, kim's (200) stay.
    anyhow::ensure!(
        p.removed == u64::try_from(old + 1)?,
        "{p:?} of {}",
        before.len()
    );
    let after = all().await?;
    anyhow::ensure!(after.iter().any(|e| e.subject.as_deref() == Some("kim")));
    anyhow::ensure!(!after.iter().any(|e| e.subject.as_deref() == Some("piet")));
    let note = after
        .iter()
        .find(|e| e.event == "audit.prune")
        .ok_or_else(|| anyhow::anyhow!("no audit.prune event: {after:?}"))?;
    anyhow::ensure!(
        note.detail
            .as_deref()
            .unwrap_or("")
            .starts_with(&format!("{} events from before", p.removed)),
        "{note:?}"
    );
    Ok(())
}

/// A call that proves a number for the wizard is answered, but its
/// challenge never counts as the second step of a sign-in: only a call of
/// the user's own method does.
async fn a_proof_of_a_number_never_signs_in(backend: Backend) -> anyhow::Result<()> {
    use twofold_core::challenge::{ChallengeState, PhoneChoice};
    use twofold_core::portal::EnrollPhone;
    use twofold_core::service::DevOutbox;
    let rig = Rig::with(backend, true).await?;
    rig.set("portal.allow_select_method", json!(true)).await?;
    rig.user("eva").await?;
    let ctx = Ctx::end_user("eva", None);
    let proof = rig
        .engine
        .enrollment_phone(
            &ctx,
            "eva",
            EnrollPhone {
                method: MethodKind::PhoneCall,
                phone: "+31612345678".into(),
                extension: String::new(),
                pin: None,
            },
        )
        .await?;
    assert_eq!(proof.state, ChallengeState::Pending);
    let id = proof.id.clone().expect("a challenge");
    let call = rig.engine.outbox(&ctx).await?[0].message.id;
    rig.engine.outbox_call(&ctx, call, Some("#")).await?;
    let proved = rig
        .engine
        .enrollment_phone_status(&ctx, "eva", &id, None, None)
        .await?;
    assert_eq!(proved.state, ChallengeState::Accepted);
    // The same id at the sign-in's second step: no such challenge.
    assert!(matches!(
        rig.engine.verify_phone(&ctx, "eva", &id, None, None).await,
        Err(Error::NotFound(_))
    ));
    // And a sign-in's call is not a proof for the wizard.
    rig.engine
        .update_user(
            &Ctx::cli(),
            "eva",
            twofold_core::user::UserPatch {
                phone: Some("+31612345678".into()),
                default_method: Some("phone_call".into()),
                ..Default::default()
            },
        )
        .await?;
    let sign_in = rig
        .engine
        .call_or_text(&ctx, "eva", PhoneChoice::Primary)
        .await?;
    let id = sign_in.id.expect("a call");
    assert!(matches!(
        rig.engine
            .enrollment_phone_status(&ctx, "eva", &id, None, None)
            .await,
        Err(Error::NotFound(_))
    ));
    Ok(())
}
