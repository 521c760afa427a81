//! `ReportRepo` for `SqlStore`: the reports' counts and lists, read-only
//! and bounded. The activity is one aggregate query over the audit log;
//! the user lists join the audit log or the users with their groups.
//!
//! Buckets are computed in SQL on the audit log's unit, milliseconds:
//! `at - at % 86400000` is the start of the UTC day (`at` is never
//! negative: `ReportPeriod` starts in 1970 or later), the same in SQLite
//! and PostgreSQL. The period's bounds let both use `audit_events_by_time`.

use std::collections::HashMap;

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use time::OffsetDateTime;
use twofold_core::audit::ResultCode;
use twofold_core::methods::{self, Holdings};
use twofold_core::ports::ReportRepo;
use twofold_core::reports::{
    enrollment_gap, ActivityRow, ReportPeriod, UserReportKind, UserReportQuery, UserReportRow,
    BYPASS_RESULTS, FRAUD_BLOCK_EVENT, MAX_ACTIVITY_ROWS, SIGN_IN_EVENTS,
};
use twofold_core::user::{MethodKind, UserId};
use twofold_core::Result;

use crate::errors::{bad_column, db_err};
use crate::rows::{flag, from_millis, from_seconds, get, unix_millis, unix_seconds};
use crate::users::default_method_of;
use crate::{SqlStore, LOCKED_UNTIL_UNBLOCKED};

/// A value to bind, in the order the placeholders were numbered.
enum Value {
    Int(i64),
    Text(String),
}

/// Placeholders numbered as they are pushed, with their values.
#[derive(Default)]
struct Binds(Vec<Value>);

impl Binds {
    fn int(&mut self, v: i64) -> String {
        self.0.push(Value::Int(v));
        format!("${}", self.0.len())
    }

    fn text(&mut self, v: impl Into<String>) -> String {
        self.0.push(Value::Text(v.into()));
        format!("${}", self.0.len())
    }

    fn query<'q>(
        &'q self,
        sql: &'q str,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        let mut q = sqlx::query(sql);
        for v in &self.0 {
            q = match v {
                Value::Int(i) => q.bind(*i),
                Value::Text(t) => q.bind(t.as_str()),
            };
        }
        q
    }
}

/// The same key `users.rs` stores groups under.
fn group_key(name: &str) -> String {
    name.trim().to_lowercase()
}

/// ` AND` the user `u` is a member of the query's group, if it names one.
fn group_filter(query: &UserReportQuery, binds: &mut Binds) -> String {
    match query.group.as_deref() {
        None => String::new(),
        Some(g) => format!(
            " AND EXISTS (SELECT 1 FROM user_groups g WHERE g.user_id = u.id AND g.group_key = {})",
            binds.text(group_key(g))
        ),
    }
}

/// `reports::is_sign_in` in SQL: each sign-in event, less its excepted
/// results.
fn sign_in_filter(binds: &mut Binds) -> String {
    SIGN_IN_EVENTS
        .iter()
        .map(|s| {
            let event = binds.text(s.event);
            if s.except.is_empty() {
                format!("event = {event}")
            } else {
                let except = s
                    .except
                    .iter()
                    .map(|r| binds.text(r.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("(event = {event} AND result NOT IN ({except}))")
            }
        })
        .collect::<Vec<_>>()
        .join(" OR ")
}

/// Where a user with this method lacks what it needs — each method
/// module's `ready` in SQL (`reports::enrollment_gap` decides again on the
/// rows, and the conformance tests hold the two together). Exhaustive, so
/// a new method cannot be forgotten here.
fn not_ready(kind: MethodKind) -> &'static str {
    match kind {
        MethodKind::OathToken => "NOT EXISTS (SELECT 1 FROM oath_tokens t WHERE t.user_id = u.id)",
        MethodKind::PhoneCall => "u.phone IS NULL",
        MethodKind::TextMessage => "u.phone IS NULL AND u.mobile_phone IS NULL",
        MethodKind::MobileApp => {
            "NOT EXISTS (SELECT 1 FROM mobile_devices d WHERE d.user_id = u.id)"
        }
    }
}

fn limit_of(query: &UserReportQuery) -> i64 {
    i64::from(query.limit())
}

fn result_of(row: &AnyRow) -> Result<ResultCode> {
    let text: String = get(row, "result")?;
    ResultCode::parse(&text).ok_or_else(|| {
        bad_column(
            "audit_events.result",
            format!("{text:?} is not a result code"),
        )
    })
}

/// The groups of each user, by id; in chunks, so thousands of rows stay
/// well under either database's limit on bound parameters.
async fn groups_of(
    conn: &mut AnyConnection,
    ids: &[UserId],
) -> Result<HashMap<UserId, Vec<String>>> {
    let mut out: HashMap<UserId, Vec<String>> = HashMap::new();
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    for chunk in ids.chunks(500) {
        let placeholders = (1..=chunk.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT user_id, group_name FROM user_groups WHERE user_id IN ({placeholders}) \
             ORDER BY user_id, group_key"
        );
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        for row in q.fetch_all(&mut *conn).await.map_err(db_err)? {
            out.entry(get(&row, "user_id")?)
                .or_default()
                .push(get(&row, "group_name")?);
        }
    }
    Ok(out)
}

/// Rows read with their user's id (`None`: deleted since), given their
/// groups.
async fn with_groups(
    conn: &mut AnyConnection,
    rows: Vec<(Option<UserId>, UserReportRow)>,
) -> Result<Vec<UserReportRow>> {
    let ids = rows.iter().filter_map(|(id, _)| *id).collect::<Vec<_>>();
    let mut groups = groups_of(conn, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|(id, mut row)| {
            if let Some(g) = id.and_then(|id| groups.get_mut(&id)) {
                row.groups.clone_from(g);
            }
            row
        })
        .collect())
}

impl SqlStore {
    /// Audit events of `period` with one of `results` (less `except_event`)
    /// about a user, newest first, with the user as they are now.
    async fn audit_user_rows(
        &self,
        period: &ReportPeriod,
        query: &UserReportQuery,
        results: &[ResultCode],
        except_event: Option<&str>,
        row_of: impl Fn(&AnyRow, OffsetDateTime) -> Result<UserReportRow>,
    ) -> Result<Vec<UserReportRow>> {
        let mut binds = Binds::default();
        let from = binds.int(unix_millis(period.from())?);
        let to = binds.int(unix_millis(period.to())?);
        let results = results
            .iter()
            .map(|r| binds.text(r.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        let except = except_event.map_or(String::new(), |e| {
            format!(" AND a.event <> {}", binds.text(e))
        });
        let group = group_filter(query, &mut binds);
        let limit = binds.int(limit_of(query));
        let sql = format!(
            "SELECT a.at, a.subject, a.actor, a.method, a.result, a.detail, \
                    u.id AS user_id, u.display_name \
               FROM audit_events a LEFT JOIN users u ON u.username_key = a.subject_key \
              WHERE a.at >= {from} AND a.at < {to} AND a.result IN ({results}) \
                AND a.subject IS NOT NULL{except}{group} \
              ORDER BY a.at DESC, a.id DESC LIMIT {limit}"
        );
        let mut conn = self.acquire().await?;
        let found = binds
            .query(&sql)
            .fetch_all(&mut *conn)
            .await
            .map_err(db_err)?;
        let rows = found
            .iter()
            .map(|row| {
                let at = from_millis("audit_events.at", get(row, "at")?)?;
                Ok((get::<Option<i64>>(row, "user_id")?, row_of(row, at)?))
            })
            .collect::<Result<Vec<_>>>()?;
        with_groups(&mut conn, rows).await
    }
}

#[async_trait]
impl ReportRepo for SqlStore {
    async fn activity(&self, period: &ReportPeriod) -> Result<Vec<ActivityRow>> {
        let mut binds = Binds::default();
        let from = binds.int(unix_millis(period.from())?);
        let to = binds.int(unix_millis(period.to())?);
        let events = sign_in_filter(&mut binds);
        let limit = binds.int(i64::from(MAX_ACTIVITY_ROWS));
        // The bucket's size is a constant of the code, not input: written
        // into the SQL so the select list and GROUP BY are the same
        // expression for PostgreSQL.
        let size = period.bucket().seconds() * 1000;
        let bucket = format!("at - at % {size}");
        let sql = format!(
            "SELECT {bucket} AS bucket, event, method, result, COUNT(*) AS n \
               FROM audit_events \
              WHERE at >= {from} AND at < {to} AND ({events}) \
              GROUP BY {bucket}, event, method, result \
              ORDER BY bucket, event, method, result LIMIT {limit}"
        );
        let found = binds
            .query(&sql)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        let mut rows = found
            .iter()
            .map(|row| {
                let n: i64 = get(row, "n")?;
                Ok(ActivityRow {
                    bucket_start: from_millis("bucket", get(row, "bucket")?)?,
                    event: get(row, "event")?,
                    method: get(row, "method")?,
                    result: result_of(row)?,
                    count: u64::try_from(n).map_err(|e| bad_column("count", e))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        // The databases sort a missing method differently (first, last):
        // one order whatever the backend.
        rows.sort_by(|a, b| {
            (a.bucket_start, &a.event, &a.method, a.result.as_str()).cmp(&(
                b.bucket_start,
                &b.event,
                &b.method,
                b.result.as_str(),
            ))
        });
        Ok(rows)
    }

    async fn bypassed_users(
        &self,
        period: &ReportPeriod,
        query: &UserReportQuery,
    ) -> Result<Vec<UserReportRow>> {
        self.audit_user_rows(period, query, BYPASS_RESULTS, None, |row, at| {
            let detail: Option<String> = get(row, "detail")?;
            let (kind, detail) = if result_of(row)? == ResultCode::SuccessBypassUsed {
                (UserReportKind::BypassUsed, "used to sign in".to_string())
            } else {
                let actor: String = get(row, "actor")?;
                let detail = detail.map_or(String::new(), |d| format!(": {d}"));
                (
                    UserReportKind::BypassGranted,
                    format!("granted by {actor}{detail}"),
                )
            };
            Ok(UserReportRow {
                username: get(row, "subject")?,
                display_name: get(row, "display_name")?,
                groups: Vec::new(),
                since: Some(at),
                kind,
                detail,
            })
        })
        .await
    }

    async fn fraud_reports(
        &self,
        period: &ReportPeriod,
        query: &UserReportQuery,
    ) -> Result<Vec<UserReportRow>> {
        self.audit_user_rows(
            period,
            query,
            &[ResultCode::FailedFraudReported],
            Some(FRAUD_BLOCK_EVENT),
            |row, at| {
                let method: Option<String> = get(row, "method")?;
                let detail: Option<String> = get(row, "detail")?;
                let detail = [method, detail]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(": ");
                Ok(UserReportRow {
                    username: get(row, "subject")?,
                    display_name: get(row, "display_name")?,
                    groups: Vec::new(),
                    since: Some(at),
                    kind: UserReportKind::FraudReported,
                    detail,
                })
            },
        )
        .await
    }

    async fn blocked_users(
        &self,
        now: OffsetDateTime,
        query: &UserReportQuery,
    ) -> Result<Vec<UserReportRow>> {
        let mut binds = Binds::default();
        let fraud = binds.text(ResultCode::FailedFraudReported.as_str());
        let now_secs = binds.int(unix_seconds(now));
        let group = group_filter(query, &mut binds);
        let limit = binds.int(limit_of(query));
        // The latest fraud report about a blocked user says since when
        // (the audit log by subject is indexed); a lock keeps no start.
        let sql = format!(
            "SELECT u.id, u.username, u.display_name, u.locked_until, u.fraud_blocked, \
                    (SELECT MAX(a.at) FROM audit_events a \
                      WHERE a.subject_key = u.username_key AND a.result = {fraud}) AS reported_at \
               FROM users u \
              WHERE (u.fraud_blocked = 1 OR u.locked_until > {now_secs}){group} \
              ORDER BY u.username_key LIMIT {limit}"
        );
        let mut conn = self.acquire().await?;
        let found = binds
            .query(&sql)
            .fetch_all(&mut *conn)
            .await
            .map_err(db_err)?;
        let unblock = LOCKED_UNTIL_UNBLOCKED.unix_timestamp();
        let rows = found
            .iter()
            .map(|row| {
                let locked_until: Option<i64> = get(row, "locked_until")?;
                let reported_at = get::<Option<i64>>(row, "reported_at")?
                    .map(|ms| from_millis("audit_events.at", ms))
                    .transpose()?;
                let (kind, since, detail) = if flag(row, "fraud_blocked")? {
                    (
                        UserReportKind::FraudBlocked,
                        reported_at,
                        "blocked after a fraud report, until an administrator unblocks".into(),
                    )
                } else if locked_until.is_some_and(|t| t >= unblock) {
                    (
                        UserReportKind::LockedUntilUnblocked,
                        None,
                        "locked until an administrator unblocks".into(),
                    )
                } else {
                    let until = from_seconds("users.locked_until", locked_until.unwrap_or(0))?;
                    let until = until
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default();
                    (
                        UserReportKind::Locked,
                        None,
                        format!("locked until {until}"),
                    )
                };
                Ok((
                    Some(get::<i64>(row, "id")?),
                    UserReportRow {
                        username: get(row, "username")?,
                        display_name: get(row, "display_name")?,
                        groups: Vec::new(),
                        since,
                        kind,
                        detail,
                    },
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        with_groups(&mut conn, rows).await
    }

    async fn unenrolled_users(&self, query: &UserReportQuery) -> Result<Vec<UserReportRow>> {
        let mut binds = Binds::default();
        let mut gaps = vec!["u.default_method IS NULL".to_string()];
        for kind in MethodKind::ALL {
            let Some(module) = methods::method(kind) else {
                continue;
            };
            let method = binds.text(kind.as_str());
            gaps.push(format!(
                "(u.default_method = {method} AND {})",
                not_ready(kind)
            ));
            // A PIN mode of a method that asks for the PIN itself (a call,
            // the app) without a PIN: the portal's wizard sets one up.
            if !module.code_held_by_user() {
                for mode in kind.modes().iter().filter(|m| m.needs_pin()) {
                    let method = binds.text(kind.as_str());
                    let mode = binds.text(mode.as_str());
                    gaps.push(format!(
                        "(u.default_method = {method} AND u.default_mode = {mode} AND \
                         NOT EXISTS (SELECT 1 FROM user_pins p WHERE p.user_id = u.id))"
                    ));
                }
            }
        }
        let gaps = gaps.join(" OR ");
        let group = group_filter(query, &mut binds);
        let limit = binds.int(limit_of(query));
        let sql = format!(
            "SELECT u.id, u.username, u.display_name, u.created_at, u.default_method, \
                    u.default_mode, u.phone, u.mobile_phone, \
                    (SELECT COUNT(*) FROM oath_tokens t WHERE t.user_id = u.id) AS tokens, \
                    (SELECT COUNT(*) FROM mobile_devices d WHERE d.user_id = u.id) AS devices, \
                    (SELECT COUNT(*) FROM user_pins p WHERE p.user_id = u.id) AS pins \
               FROM users u \
              WHERE ({gaps}){group} \
              ORDER BY u.username_key LIMIT {limit}"
        );
        let mut conn = self.acquire().await?;
        let found = binds
            .query(&sql)
            .fetch_all(&mut *conn)
            .await
            .map_err(db_err)?;
        let mut rows = Vec::with_capacity(found.len());
        for row in &found {
            let count = |column: &str| -> Result<usize> {
                let n: i64 = get(row, column)?;
                usize::try_from(n).map_err(|e| bad_column(column, e))
            };
            let holdings = Holdings {
                oath_tokens: count("tokens")?,
                phone: get::<Option<String>>(row, "phone")?.is_some(),
                mobile_phone: get::<Option<String>>(row, "mobile_phone")?.is_some(),
                backup_phone: false,
                mobile_devices: count("devices")?,
            };
            let method = default_method_of(row, "users")?;
            // The engine's rule has the last word on every row the SQL
            // found; where the two ever disagree the row is left out.
            let Some((kind, detail)) = enrollment_gap(method, &holdings, count("pins")? > 0) else {
                continue;
            };
            rows.push((
                Some(get::<i64>(row, "id")?),
                UserReportRow {
                    username: get(row, "username")?,
                    display_name: get(row, "display_name")?,
                    groups: Vec::new(),
                    since: Some(from_seconds("users.created_at", get(row, "created_at")?)?),
                    kind,
                    detail,
                },
            ));
        }
        with_groups(&mut conn, rows).await
    }
}
