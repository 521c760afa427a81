//! The reports straight on the engine (`ReportService`), on SQLite and
//! PostgreSQL: after real sign-ins through the `Verifier`, the activity's
//! CSV and SVG add up to exactly the audit rows they stand for, the user
//! lists follow the caller's scope, and a caller without `view_audit_log`
//! is refused — audited.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{ensure, Context};
use time::{Duration, OffsetDateTime};
use twofold_core::audit::{AuditQuery, ResultCode};
use twofold_core::clock::Clock;
use twofold_core::clock::ManualClock;
use twofold_core::factors::{OathKind, OathParams};
use twofold_core::password::{HashCost, Pepper, SecretHasher};
use twofold_core::reports::{
    activity_csv, activity_svg, is_sign_in, users_csv, Bucket, ChartLabels, ReportPeriod,
    UserReportKind,
};
use twofold_core::sealing::SealingKey;
use twofold_core::service::{Actor, CreateUser, ReportService};
use twofold_core::user::Permission;
use twofold_core::{Access, AdminService, Ctx, Engine, Error, Permissions, Scope, Verifier};
use twofold_testkit::{Backend, TestDb};

twofold_testkit::both_backends!(
    #[tokio::test] -> anyhow::Result<()>;
    activity_csv_and_svg_add_up_to_the_audit_rows,
    reports_need_view_audit_log_and_follow_the_scope,
);

const PASSWORD: &str = "correct horse battery";
/// RFC 4226's test secret in base32, and its codes for counters 0 and 1.
const RFC4226_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const HOTP_0: &str = "755224";
const HOTP_1: &str = "287082";

struct Rig {
    engine: Engine,
    clock: Arc<ManualClock>,
    _db: TestDb,
}

impl Rig {
    async fn new(backend: Backend) -> anyhow::Result<Rig> {
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
        Ok(Rig {
            engine,
            clock,
            _db: db,
        })
    }

    async fn user(&self, name: &str, groups: &[&str]) -> anyhow::Result<()> {
        self.engine
            .create_user(
                &Ctx::cli(),
                CreateUser {
                    username: name.into(),
                    password: Some(PASSWORD.into()),
                    groups: groups.iter().map(|g| (*g).to_string()).collect(),
                    ..Default::default()
                },
            )
            .await?;
        Ok(())
    }

    async fn enrolled_user(&self, name: &str, groups: &[&str]) -> anyhow::Result<()> {
        self.user(name, groups).await?;
        let params = OathParams {
            kind: OathKind::Hotp,
            ..OathParams::default()
        };
        self.engine
            .add_token(&Ctx::cli(), name, RFC4226_SECRET, params, "")
            .await?;
        Ok(())
    }

    /// Every audit event, oldest first.
    async fn log(&self) -> anyhow::Result<Vec<twofold_core::audit::AuditEvent>> {
        let mut events = self
            .engine
            .store()
            .audit_events(&AuditQuery {
                limit: 1000,
                ..AuditQuery::default()
            })
            .await?;
        events.reverse();
        Ok(events)
    }
}

fn admin(permissions: &[Permission], scope: Scope) -> Ctx {
    Ctx::new(
        Actor::Admin("ann".into()),
        Access::administrator(permissions.iter().copied().collect::<Permissions>(), scope),
        None,
    )
}

/// The values of `attr="…"` in every element that starts with `element`.
fn attrs(svg: &str, element: &str, attr: &str) -> Vec<String> {
    svg.match_indices(element)
        .filter_map(|(i, _)| {
            let tag = &svg[i..i + svg[i..].find('>')?];
            let marker = format!(" {attr}=\"");
            let start = tag.find(&marker)? + marker.len();
            Some(tag[start..start + tag[start..].find('"')?].to_string())
        })
        .collect()
}

async fn activity_csv_and_svg_add_up_to_the_audit_rows(backend: Backend) -> anyhow::Result<()> {
    let rig = Rig::new(backend).await?;
    rig.enrolled_user("jan", &[]).await?;
    rig.user("piet", &[]).await?;
    let sdk = Ctx::cli();
    // Day one: a right code, a wrong one, an unknown user, a user without
    // a method, a wrong password.
    ensure!(rig.engine.validate(&sdk, "jan", HOTP_0).await?.accepted);
    ensure!(!rig.engine.validate(&sdk, "jan", "000000").await?.accepted);
    ensure!(!rig.engine.validate(&sdk, "nobody", HOTP_1).await?.accepted);
    ensure!(!rig.engine.validate(&sdk, "piet", "123456").await?.accepted);
    rig.engine
        .check_password(&sdk, "piet", "wrong password".into())
        .await?;
    // Three hours later, and the next day: more of them.
    rig.clock.advance(Duration::hours(3));
    ensure!(rig.engine.validate(&sdk, "jan", HOTP_1).await?.accepted);
    rig.clock.advance(Duration::days(1));
    rig.engine
        .check_password(&sdk, "piet", PASSWORD.into())
        .await?;
    let now = rig.clock.now();

    for period in [
        ReportPeriod::last_days(now, 3)?,
        ReportPeriod::new(now - Duration::days(2), now, Bucket::Hour)?,
    ] {
        let rows = rig.engine.activity_report(&Ctx::cli(), &period).await?;
        // What the audit log holds that the report stands for.
        let mut per_bucket: BTreeMap<String, u64> = BTreeMap::new();
        let mut matching = 0u64;
        for e in rig.log().await? {
            if period.contains(e.at) && is_sign_in(&e.event, e.result) {
                matching += 1;
                let start = period.bucket().start_of(e.at);
                *per_bucket
                    .entry(start.format(&time::format_description::well_known::Rfc3339)?)
                    .or_default() += 1;
            }
        }
        ensure!(matching >= 7, "the sign-ins were audited: {matching}");

        // The CSV: one record per row, and its counts sum to the events.
        let csv = activity_csv(&rows);
        // (Event names, methods and result codes hold no comma or quote.)
        let mut csv_total = 0u64;
        let mut records = 0;
        for record in csv.split_terminator("\r\n").skip(1) {
            let cells = record.split(',').collect::<Vec<_>>();
            ensure!(cells.len() == 5, "{record}");
            csv_total += cells[4].parse::<u64>()?;
            ensure!(ResultCode::parse(cells[3]).is_some(), "{record}");
            records += 1;
        }
        ensure!(records == rows.len(), "{csv}");
        ensure!(csv_total == matching, "{csv_total} != {matching}\n{csv}");

        // The SVG: a bar per bucket, each bar's count the bucket's events.
        let svg = activity_svg(&rows, &period, &ChartLabels::activity_english());
        ensure!(attrs(&svg, "<svg", "data-total") == [matching.to_string()]);
        let keys = attrs(&svg, "<g data-key", "data-key");
        let counts = attrs(&svg, "<g data-key", "data-count");
        ensure!(keys.len() == period.buckets().count());
        for (key, count) in keys.iter().zip(&counts) {
            let expected = per_bucket.get(key).copied().unwrap_or(0);
            ensure!(
                *count == expected.to_string(),
                "{key}: {count} != {expected}"
            );
        }
        // The stacked parts are the successes and failures of the rows.
        let successes: u64 = rows
            .iter()
            .filter(|r| r.result.is_success())
            .map(|r| r.count)
            .sum();
        // (The legend's swatches carry no `data-series`: their group does.)
        let marker = r#"data-series="0" data-count=""#;
        let drawn: u64 = svg
            .match_indices("<rect ")
            .filter_map(|(i, _)| {
                let tag = &svg[i..i + svg[i..].find('>')?];
                let at = tag.find(marker)? + marker.len();
                tag[at..at + tag[at..].find('"')?].parse::<u64>().ok()
            })
            .sum();
        ensure!(drawn == successes, "{drawn} != {successes}");
    }

    // The read itself is audited, and is no sign-in.
    let log = rig.log().await?;
    let reads = log.iter().filter(|e| e.event == "report.activity").count();
    ensure!(reads == 2, "{reads}");
    ensure!(!is_sign_in("report.activity", ResultCode::Success));
    Ok(())
}

async fn reports_need_view_audit_log_and_follow_the_scope(backend: Backend) -> anyhow::Result<()> {
    let rig = Rig::new(backend).await?;
    rig.user("vpn-user", &["vpn"]).await?;
    rig.user("staff-user", &["staff"]).await?;
    let period = ReportPeriod::last_days(rig.clock.now(), 7)?;

    let no_audit = admin(&[Permission::AddUsers, Permission::Unblock], Scope::All);
    let refused = rig.engine.activity_report(&no_audit, &period).await;
    ensure!(matches!(refused, Err(Error::Forbidden(_))), "{refused:?}");
    let refused = rig.engine.unenrolled_users_report(&no_audit, 0).await;
    ensure!(matches!(refused, Err(Error::Forbidden(_))), "{refused:?}");
    let refused = rig.engine.blocked_users_report(&no_audit, 0).await;
    ensure!(matches!(refused, Err(Error::Forbidden(_))), "{refused:?}");
    let log = rig.log().await?;
    ensure!(
        log.iter().any(|e| e.event == "report.activity"
            && e.result == ResultCode::FailedNotAllowed
            && e.actor == "admin:ann"),
        "the refusal is audited"
    );

    // A group-scoped auditor: not everyone's activity, their group's users.
    let vpn = admin(&[Permission::ViewAuditLog], Scope::Group("vpn".into()));
    let refused = rig.engine.activity_report(&vpn, &period).await;
    ensure!(matches!(refused, Err(Error::Forbidden(_))), "{refused:?}");
    let theirs = rig.engine.unenrolled_users_report(&vpn, 0).await?;
    ensure!(
        theirs.len() == 1 && theirs[0].username == "vpn-user",
        "{theirs:?}"
    );
    ensure!(theirs[0].kind == UserReportKind::NoMethod);
    let everyone = rig.engine.unenrolled_users_report(&Ctx::cli(), 0).await?;
    ensure!(everyone.len() == 2, "{everyone:?}");
    let csv = users_csv(&everyone);
    ensure!(csv.lines().count() == 3, "{csv}");
    ensure!(rig.engine.blocked_users_report(&vpn, 0).await?.is_empty());
    ensure!(rig
        .engine
        .bypassed_users_report(&vpn, &period, 0)
        .await?
        .is_empty());
    ensure!(rig.engine.fraud_report(&vpn, &period, 0).await?.is_empty());
    let reads = rig.log().await?;
    let read = reads
        .iter()
        .rev()
        .find(|e| e.event == "report.unenrolled")
        .context("the read is audited")?;
    ensure!(read.result == ResultCode::Success && read.subject.is_none());
    Ok(())
}
