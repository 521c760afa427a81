//! Store conformance of the reports, once on SQLite and once on PostgreSQL:
//! the activity's one aggregate query counts exactly the audit rows
//! `reports::is_sign_in` names, per UTC day and hour; the user lists find
//! who the audit log and the users' rows say, within a group when asked;
//! and the not-enrolled query agrees with `reports::enrollment_gap`.

use std::collections::BTreeMap;

use anyhow::{ensure, Context};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use twofold_core::audit::{NewAuditEvent, ResultCode};
use twofold_core::factors::{NewOathToken, OathAlgorithm, OathKind, OathParams};
use twofold_core::ports::{AuditRepo, OathTokenRepo, PinRepo, ReportRepo, UserRepo};
use twofold_core::reports::{
    is_sign_in, Bucket, ReportPeriod, UserReportKind, UserReportQuery, UserReportRow,
};
use twofold_core::user::{DefaultMethod, MethodKind, Mode, NewUser, User};
use twofold_store::{SqlStore, LOCKED_UNTIL_UNBLOCKED};
use twofold_testkit::{Backend, TestDb};

twofold_testkit::both_backends!(
    #[tokio::test] -> anyhow::Result<()>;
    activity_counts_the_sign_in_rows_per_bucket,
    bypassed_and_fraud_reports_list_the_events,
    blocked_users_are_locked_or_fraud_blocked_now,
    not_enrolled_agrees_with_the_engine_rule,
);

const DAY0: OffsetDateTime = datetime!(2026-03-01 00:00 UTC);

fn ev(at: OffsetDateTime, event: &str, result: ResultCode) -> NewAuditEvent {
    NewAuditEvent {
        at,
        actor: "tester".into(),
        via: None,
        subject: None,
        event: event.into(),
        method: None,
        result,
        source_ip: None,
        detail: None,
    }
}

fn about(mut e: NewAuditEvent, subject: &str) -> NewAuditEvent {
    e.subject = Some(subject.into());
    e
}

async fn setup(backend: Backend) -> anyhow::Result<(TestDb, SqlStore)> {
    let db = TestDb::new(backend).await?;
    let store = db.store().await?;
    ensure!(store.backend() == backend.name());
    Ok((db, store))
}

async fn user(store: &SqlStore, name: &str, groups: &[&str]) -> anyhow::Result<User> {
    let new = NewUser {
        username: name.into(),
        display_name: Some(format!("{name} display")),
        groups: groups.iter().map(|g| (*g).to_string()).collect(),
        ..NewUser::default()
    };
    Ok(store
        .create_user(
            &new,
            &about(
                ev(DAY0, "user.create", ResultCode::SuccessUserCreated),
                name,
            ),
        )
        .await?)
}

async fn change(store: &SqlStore, mut u: User, f: impl FnOnce(&mut User)) -> anyhow::Result<User> {
    f(&mut u);
    let name = u.username.clone();
    Ok(store
        .update_user(
            &u,
            &about(
                ev(DAY0, "user.update", ResultCode::SuccessUserUpdated),
                &name,
            ),
        )
        .await?)
}

fn names(rows: &[UserReportRow]) -> Vec<&str> {
    rows.iter().map(|r| r.username.as_str()).collect()
}

async fn activity_counts_the_sign_in_rows_per_bucket(backend: Backend) -> anyhow::Result<()> {
    let (db, store) = setup(backend).await?;
    // (minutes after DAY0, event, method, result): sign-ins, their
    // excepted results, other events, and events just outside the period.
    let mut log: Vec<(i64, &str, Option<&str>, ResultCode)> = vec![
        (
            5,
            "primary.password",
            None,
            ResultCode::SuccessPasswordVerified,
        ),
        (6, "portal.verify", None, ResultCode::SuccessOathCode),
        (7, "portal.verify", None, ResultCode::FailedOathCode),
        (8, "portal.verify", None, ResultCode::SuccessPhoneCall),
        (
            61,
            "sdk.validate",
            Some("oath_token"),
            ResultCode::SuccessPasscode,
        ),
        (
            62,
            "sdk.validate",
            Some("oath_token"),
            ResultCode::SuccessPasscode,
        ),
        (
            63,
            "sdk.validate",
            Some("oath_token:oath_pin"),
            ResultCode::FailedPinWrong,
        ),
        (
            64,
            "sdk.authenticate_start",
            Some("phone_call"),
            ResultCode::Success,
        ),
        (
            65,
            "sdk.authenticate_start",
            None,
            ResultCode::FailedNotEnrolled,
        ),
        (
            66,
            "sdk.authenticate_finish",
            Some("phone_call"),
            ResultCode::SuccessPhoneCall,
        ),
        (
            67,
            "sdk.authenticate_answer",
            Some("text_message"),
            ResultCode::FailedOathCode,
        ),
        (68, "user.create", None, ResultCode::SuccessUserCreated),
        (
            24 * 60 + 1,
            "portal.sign_in",
            None,
            ResultCode::SuccessTrustedIp,
        ),
        (
            24 * 60 + 2,
            "sdk.authenticate_finish",
            Some("phone_call"),
            ResultCode::FailedFraudReported,
        ),
        (
            3 * 24 * 60 - 1,
            "primary.password",
            None,
            ResultCode::FailedPasswordWrong,
        ),
        // Outside: the minute before and the first minute after.
        (
            -1,
            "sdk.validate",
            Some("oath_token"),
            ResultCode::SuccessPasscode,
        ),
        (
            3 * 24 * 60,
            "sdk.validate",
            Some("oath_token"),
            ResultCode::SuccessPasscode,
        ),
    ];
    // Milliseconds count: an event 1 ms before a bucket's end is in it.
    log.push((0, "sdk.validate", None, ResultCode::FailedUserNotFound));
    for (minutes, event, method, result) in &log {
        let mut e = ev(DAY0 + Duration::minutes(*minutes), event, *result);
        e.method = method.map(str::to_string);
        store.append_audit(&e).await?;
    }
    let mut edge = ev(
        DAY0 + Duration::days(1) - Duration::milliseconds(1),
        "sdk.validate",
        ResultCode::FailedOathCode,
    );
    edge.method = Some("oath_token".into());
    store.append_audit(&edge).await?;

    for bucket in [Bucket::Day, Bucket::Hour] {
        let period = ReportPeriod::new(DAY0, DAY0 + Duration::days(3), bucket)?;
        let rows = store.activity(&period).await?;
        let mut expected: BTreeMap<(OffsetDateTime, String, Option<String>, String), u64> =
            BTreeMap::new();
        let all = log
            .iter()
            .map(|(m, e, meth, r)| (DAY0 + Duration::minutes(*m), *e, *meth, *r))
            .chain([(edge.at, "sdk.validate", Some("oath_token"), edge.result)]);
        for (at, event, method, result) in all {
            if period.contains(at) && is_sign_in(event, result) {
                *expected
                    .entry((
                        bucket.start_of(at),
                        event.to_string(),
                        method.map(str::to_string),
                        result.as_str(),
                    ))
                    .or_default() += 1;
            }
        }
        let got: BTreeMap<_, _> = rows
            .iter()
            .map(|r| {
                (
                    (
                        r.bucket_start,
                        r.event.clone(),
                        r.method.clone(),
                        r.result.as_str(),
                    ),
                    r.count,
                )
            })
            .collect();
        ensure!(got.len() == rows.len(), "one row per group: {rows:?}");
        ensure!(got == expected, "{bucket:?}: {got:#?} != {expected:#?}");
        let total: u64 = rows.iter().map(|r| r.count).sum();
        ensure!(total == 13, "{bucket:?}: {total}");
        // Sorted by bucket first.
        ensure!(rows
            .windows(2)
            .all(|w| w[0].bucket_start <= w[1].bucket_start));
    }
    // By day: the two validations of 01:01/01:02 are one row of 2.
    let by_day = store
        .activity(&ReportPeriod::new(
            DAY0,
            DAY0 + Duration::days(1),
            Bucket::Day,
        )?)
        .await?;
    let two = by_day
        .iter()
        .find(|r| r.event == "sdk.validate" && r.result == ResultCode::SuccessPasscode)
        .context("the day's validations")?;
    ensure!(two.count == 2 && two.bucket_start == DAY0, "{two:?}");
    db.destroy().await
}

async fn bypassed_and_fraud_reports_list_the_events(backend: Backend) -> anyhow::Result<()> {
    let (db, store) = setup(backend).await?;
    user(&store, "Jan", &["VPN", "staff"]).await?;
    user(&store, "ann", &["staff"]).await?;
    let gone = user(&store, "gone", &["vpn"]).await?;
    let t = |h: i64| DAY0 + Duration::hours(h);

    let mut granted = about(
        ev(t(1), "bypass.grant", ResultCode::SuccessBypassStarted),
        "Jan",
    );
    granted.actor = "admin:root".into();
    granted.detail = Some("300 seconds: lost phone".into());
    store.append_audit(&granted).await?;
    store
        .append_audit(&about(
            ev(t(2), "portal.sign_in", ResultCode::SuccessBypassUsed),
            "Jan",
        ))
        .await?;
    store
        .append_audit(&about(
            ev(t(3), "portal.bypass", ResultCode::SuccessBypassStarted),
            "ann",
        ))
        .await?;
    store
        .append_audit(&about(
            ev(t(4), "portal.bypass", ResultCode::SuccessBypassCancelled),
            "ann",
        ))
        .await?;
    store
        .append_audit(&about(
            ev(t(5), "bypass.grant", ResultCode::SuccessBypassStarted),
            "gone",
        ))
        .await?;
    // Outside the period.
    store
        .append_audit(&about(
            ev(t(80), "bypass.grant", ResultCode::SuccessBypassStarted),
            "ann",
        ))
        .await?;

    let mut report = about(
        ev(
            t(6),
            "sdk.authenticate_finish",
            ResultCode::FailedFraudReported,
        ),
        "ann",
    );
    report.method = Some("phone_call".into());
    report.detail = Some("challenge 1a2b3c4d rejected: fraud_reported".into());
    store.append_audit(&report).await?;
    store
        .append_audit(&about(
            ev(t(6), "user.fraud_block", ResultCode::FailedFraudReported),
            "ann",
        ))
        .await?;
    store
        .delete_user(
            gone.id,
            &about(
                ev(t(7), "user.delete", ResultCode::SuccessUserDeleted),
                "gone",
            ),
        )
        .await?;

    let period = ReportPeriod::new(DAY0, DAY0 + Duration::days(2), Bucket::Day)?;
    let all = UserReportQuery::default();
    let bypassed = store.bypassed_users(&period, &all).await?;
    ensure!(
        names(&bypassed) == ["gone", "ann", "Jan", "Jan"],
        "{bypassed:#?}"
    );
    let jan_granted = &bypassed[3];
    ensure!(jan_granted.kind == UserReportKind::BypassGranted);
    ensure!(jan_granted.since == Some(t(1)));
    ensure!(jan_granted.detail == "granted by admin:root: 300 seconds: lost phone");
    ensure!(jan_granted.display_name.as_deref() == Some("Jan display"));
    ensure!(
        jan_granted.groups == ["staff", "VPN"],
        "{:?}",
        jan_granted.groups
    );
    ensure!(bypassed[2].kind == UserReportKind::BypassUsed);
    // A deleted user keeps their line, without what only the user row had.
    ensure!(bypassed[0].display_name.is_none() && bypassed[0].groups.is_empty());

    let vpn = UserReportQuery {
        group: Some("vpn".into()),
        limit: 0,
    };
    let in_vpn = store.bypassed_users(&period, &vpn).await?;
    ensure!(names(&in_vpn) == ["Jan", "Jan"], "{in_vpn:#?}");
    let one = UserReportQuery {
        group: None,
        limit: 1,
    };
    ensure!(names(&store.bypassed_users(&period, &one).await?) == ["gone"]);

    let fraud = store.fraud_reports(&period, &all).await?;
    ensure!(
        fraud.len() == 1,
        "the block is not a second report: {fraud:#?}"
    );
    ensure!(fraud[0].username == "ann" && fraud[0].since == Some(t(6)));
    ensure!(fraud[0].kind == UserReportKind::FraudReported);
    ensure!(fraud[0].detail == "phone_call: challenge 1a2b3c4d rejected: fraud_reported");
    ensure!(store.fraud_reports(&period, &vpn).await?.is_empty());
    db.destroy().await
}

async fn blocked_users_are_locked_or_fraud_blocked_now(backend: Backend) -> anyhow::Result<()> {
    let (db, store) = setup(backend).await?;
    let now = DAY0 + Duration::days(1);
    let a = user(&store, "a-locked", &["vpn"]).await?;
    change(&store, a, |u| {
        u.locked_until = Some(now + Duration::minutes(5));
    })
    .await?;
    let b = user(&store, "b-was-locked", &["vpn"]).await?;
    change(&store, b, |u| {
        u.locked_until = Some(now - Duration::minutes(5));
    })
    .await?;
    let c = user(&store, "c-hard", &["staff"]).await?;
    change(&store, c, |u| u.locked_until = Some(LOCKED_UNTIL_UNBLOCKED)).await?;
    let d = user(&store, "d-fraud", &["vpn"]).await?;
    change(&store, d, |u| u.fraud_blocked = true).await?;
    user(&store, "e-fine", &["vpn"]).await?;
    store
        .append_audit(&about(
            ev(
                DAY0 + Duration::hours(3),
                "sdk.authenticate_finish",
                ResultCode::FailedFraudReported,
            ),
            "d-fraud",
        ))
        .await?;

    let rows = store
        .blocked_users(now, &UserReportQuery::default())
        .await?;
    ensure!(
        names(&rows) == ["a-locked", "c-hard", "d-fraud"],
        "{rows:#?}"
    );
    ensure!(rows[0].kind == UserReportKind::Locked && rows[0].since.is_none());
    ensure!(
        rows[0].detail == "locked until 2026-03-02T00:05:00Z",
        "{}",
        rows[0].detail
    );
    ensure!(rows[1].kind == UserReportKind::LockedUntilUnblocked);
    ensure!(rows[2].kind == UserReportKind::FraudBlocked);
    ensure!(rows[2].since == Some(DAY0 + Duration::hours(3)));
    ensure!(rows[2].groups == ["vpn"]);

    let vpn = UserReportQuery {
        group: Some("VPN".into()),
        limit: 0,
    };
    let rows = store.blocked_users(now, &vpn).await?;
    ensure!(names(&rows) == ["a-locked", "d-fraud"], "{rows:#?}");
    db.destroy().await
}

fn method(kind: MethodKind, mode: Mode) -> DefaultMethod {
    DefaultMethod { method: kind, mode }
}

fn token() -> NewOathToken {
    NewOathToken {
        label: "app".into(),
        params: OathParams {
            kind: OathKind::Totp,
            algorithm: OathAlgorithm::Sha1,
            digits: 6,
            period: 30,
        },
        sealed_secret: "sealed".into(),
        counter: 0,
    }
}

/// A user's method and holdings, and the gap the report should find.
struct Case {
    name: &'static str,
    method: Option<DefaultMethod>,
    phone: bool,
    mobile: bool,
    token: bool,
    pin: bool,
    gap: Option<UserReportKind>,
}

async fn not_enrolled_agrees_with_the_engine_rule(backend: Backend) -> anyhow::Result<()> {
    let (db, store) = setup(backend).await?;
    let cases = [
        Case {
            name: "a-none",
            method: None,
            phone: false,
            mobile: false,
            token: false,
            pin: false,
            gap: Some(UserReportKind::NoMethod),
        },
        Case {
            name: "b-oath-no-token",
            method: Some(method(MethodKind::OathToken, Mode::Oath)),
            phone: false,
            mobile: false,
            token: false,
            pin: false,
            gap: Some(UserReportKind::MethodNotReady),
        },
        Case {
            name: "c-oath",
            method: Some(method(MethodKind::OathToken, Mode::Oath)),
            phone: false,
            mobile: false,
            token: true,
            pin: false,
            gap: None,
        },
        Case {
            name: "d-oath-pin-no-pin",
            method: Some(method(MethodKind::OathToken, Mode::OathPin)),
            phone: false,
            mobile: false,
            token: true,
            pin: false,
            gap: None,
        },
        Case {
            name: "e-call-no-phone",
            method: Some(method(MethodKind::PhoneCall, Mode::Standard)),
            phone: false,
            mobile: false,
            token: false,
            pin: false,
            gap: Some(UserReportKind::MethodNotReady),
        },
        Case {
            name: "f-call",
            method: Some(method(MethodKind::PhoneCall, Mode::Standard)),
            phone: true,
            mobile: false,
            token: false,
            pin: false,
            gap: None,
        },
        Case {
            name: "g-call-pin-no-pin",
            method: Some(method(MethodKind::PhoneCall, Mode::Pin)),
            phone: true,
            mobile: false,
            token: false,
            pin: false,
            gap: Some(UserReportKind::MethodNotReady),
        },
        Case {
            name: "h-call-pin",
            method: Some(method(MethodKind::PhoneCall, Mode::Pin)),
            phone: true,
            mobile: false,
            token: false,
            pin: true,
            gap: None,
        },
        Case {
            name: "i-text-mobile",
            method: Some(method(MethodKind::TextMessage, Mode::SmsOneWayOtp)),
            phone: false,
            mobile: true,
            token: false,
            pin: false,
            gap: None,
        },
        Case {
            name: "j-app-no-device",
            method: Some(method(MethodKind::MobileApp, Mode::PhoneAppStandard)),
            phone: true,
            mobile: true,
            token: true,
            pin: true,
            gap: Some(UserReportKind::MethodNotReady),
        },
    ];
    for case in &cases {
        let Case {
            name,
            method: m,
            phone,
            mobile,
            token: has_token,
            pin,
            gap: _,
        } = case;
        let u = user(
            &store,
            name,
            &[if name.len() % 2 == 0 { "even" } else { "odd" }],
        )
        .await?;
        if *has_token {
            store
                .add_oath_token(
                    u.id,
                    &token(),
                    &about(ev(DAY0, "token.add", ResultCode::SuccessTokenAdded), name),
                )
                .await?;
        }
        if *pin {
            store
                .set_pin(
                    u.id,
                    "hash",
                    DAY0,
                    0,
                    &about(ev(DAY0, "pin.set", ResultCode::SuccessPinChanged), name),
                )
                .await?;
        }
        let u = store.find_user(name).await?.context("the user")?;
        change(&store, u, |u| {
            u.default_method = *m;
            u.phone = phone.then(|| "+31201234567".to_string());
            u.mobile_phone = mobile.then(|| "+31612345678".to_string());
        })
        .await?;
    }
    let rows = store.unenrolled_users(&UserReportQuery::default()).await?;
    let expected = cases
        .iter()
        .filter_map(|c| c.gap.map(|k| (c.name, k)))
        .collect::<Vec<_>>();
    let got = rows
        .iter()
        .map(|r| (r.username.as_str(), r.kind))
        .collect::<Vec<_>>();
    ensure!(got == expected, "{rows:#?}");
    ensure!(rows
        .iter()
        .all(|r| r.since == Some(DAY0) && r.display_name.is_some()));
    ensure!(
        rows[1].detail == "oath_token: add an OATH token first",
        "{}",
        rows[1].detail
    );
    let odd = UserReportQuery {
        group: Some("odd".into()),
        limit: 0,
    };
    let odd_rows = store.unenrolled_users(&odd).await?;
    ensure!(
        odd_rows.iter().all(|r| r.groups == ["odd"]) && !odd_rows.is_empty(),
        "{odd_rows:#?}"
    );
    let two = UserReportQuery {
        group: None,
        limit: 2,
    };
    ensure!(names(&store.unenrolled_users(&two).await?) == ["a-none", "b-oath-no-token"]);
    db.destroy().await
}
