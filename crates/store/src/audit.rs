//! `AuditRepo` for `SqlStore`: the audit log, and the insert every audited
//! change writes inside its own transaction.

use std::net::IpAddr;

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use time::OffsetDateTime;
use twofold_core::audit::{AuditEvent, AuditQuery, NewAuditEvent, ResultCode};
use twofold_core::ports::AuditRepo;
use twofold_core::validate::username_key;
use twofold_core::{Error, Result};

use crate::conn::{Arg, Conn};
use crate::errors::{bad_column, db_err};
use crate::group_commit::GroupedWrite;
use crate::rows::{cell, from_millis, get, limit, unix_millis};
use crate::SqlStore;

const AUDIT_COLUMNS: &str = "id, at, actor, via, subject, event, method, result, source_ip, detail";

fn audit_from_row(row: &AnyRow) -> Result<AuditEvent> {
    let result: String = get(row, "result")?;
    let result = ResultCode::parse(&result).ok_or_else(|| {
        bad_column(
            "audit_events.result",
            format!("{result:?} is not a result code"),
        )
    })?;
    let source_ip = get::<Option<String>>(row, "source_ip")?
        .map(|s| {
            s.parse::<IpAddr>().map_err(|_| {
                bad_column(
                    "audit_events.source_ip",
                    format!("{s:?} is not an IP address"),
                )
            })
        })
        .transpose()?;
    Ok(AuditEvent {
        id: get(row, "id")?,
        at: from_millis("audit_events.at", get(row, "at")?)?,
        actor: get(row, "actor")?,
        via: get(row, "via")?,
        subject: get(row, "subject")?,
        event: get(row, "event")?,
        method: get(row, "method")?,
        result,
        source_ip,
        detail: get(row, "detail")?,
    })
}

pub(crate) async fn insert_audit(conn: &mut AnyConnection, ev: &NewAuditEvent) -> Result<i64> {
    audit_row(&mut Conn::Any(conn), ev).await
}

/// The columns of an audit row, in the order of [`AuditValues::args`].
pub(crate) const AUDIT_INSERT_COLUMNS: &str =
    "at, actor, via, subject, subject_key, event, method, result, source_ip, detail";

/// An event's values as the audit insert binds them (the derived ones
/// computed once).
pub(crate) struct AuditValues<'e> {
    ev: &'e NewAuditEvent,
    at: i64,
    subject_key: Option<String>,
    result: String,
    source_ip: Option<String>,
}

impl<'e> AuditValues<'e> {
    pub(crate) fn of(ev: &'e NewAuditEvent) -> Result<AuditValues<'e>> {
        Ok(AuditValues {
            ev,
            at: unix_millis(ev.at)?,
            subject_key: ev.subject.as_deref().map(username_key),
            result: ev.result.as_str(),
            source_ip: ev.source_ip.map(|ip| ip.to_string()),
        })
    }

    /// The ten values, in the order of [`AUDIT_INSERT_COLUMNS`].
    pub(crate) fn args(&self) -> [Arg<'_>; 10] {
        let ev = self.ev;
        [
            self.at.into(),
            ev.actor.as_str().into(),
            ev.via.as_deref().into(),
            ev.subject.as_deref().into(),
            self.subject_key.as_deref().into(),
            ev.event.as_str().into(),
            ev.method.as_deref().into(),
            self.result.as_str().into(),
            self.source_ip.as_deref().into(),
            ev.detail.as_deref().into(),
        ]
    }
}

/// `insert_audit` on the connection of a grouped write.
pub(crate) async fn audit_row(conn: &mut Conn<'_>, ev: &NewAuditEvent) -> Result<i64> {
    let values = AuditValues::of(ev)?;
    let row = conn
        .fetch_optional(
            "INSERT INTO audit_events (at, actor, via, subject, subject_key, event, method, result, source_ip, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
            &values.args(),
        )
        .await?
        .ok_or_else(|| Error::Internal("an audit insert returned no id".into()))?;
    cell(&row, "id")
}

#[async_trait]
impl AuditRepo for SqlStore {
    async fn append_audit(&self, event: &NewAuditEvent) -> Result<i64> {
        // Denials and refusals arrive in bursts too (a retry storm): their
        // rows share the group commit. The lane follows the subject, so a
        // user's rows keep their order.
        let key = event.subject.as_deref().map_or(0, lane_key);
        self.grouped(key, AppendAudit(event.clone())).await
    }

    async fn prune_audit(&self, before: OffsetDateTime, batch: u32) -> Result<u64> {
        // In batches, so a first prune of years of events holds the writer
        // for a moment at a time, not for minutes.
        let done = sqlx::query(
            "DELETE FROM audit_events WHERE id IN \
             (SELECT id FROM audit_events WHERE at < $1 ORDER BY at, id LIMIT $2)",
        )
        .bind(unix_millis(before)?)
        .bind(i64::from(batch))
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected())
    }

    async fn audit_events(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>> {
        let mut clauses: Vec<String> = Vec::new();
        let mut n = 0;
        let mut next = || {
            n += 1;
            n
        };
        if query.before_id.is_some() {
            clauses.push(format!("id < ${}", next()));
        }
        if query.after_id.is_some() {
            clauses.push(format!("id > ${}", next()));
        }
        if query.subject.is_some() {
            clauses.push(format!("subject_key = ${}", next()));
        }
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_events {filter} ORDER BY id DESC LIMIT ${}",
            next()
        );
        let mut q = sqlx::query(&sql);
        if let Some(id) = query.before_id {
            q = q.bind(id);
        }
        if let Some(id) = query.after_id {
            q = q.bind(id);
        }
        if let Some(subject) = query.subject.as_deref() {
            q = q.bind(username_key(subject));
        }
        let rows = q
            .bind(limit(query.limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(audit_from_row).collect()
    }
}

/// An audit row on its own (a decision that changed nothing else).
struct AppendAudit(NewAuditEvent);

#[async_trait]
impl GroupedWrite for AppendAudit {
    type Output = i64;

    async fn run(&mut self, conn: &mut Conn<'_>) -> Result<i64> {
        audit_row(conn, &self.0).await
    }
}

/// A lane for writes about `subject` (a name, an id): the same subject
/// always the same lane.
pub(crate) fn lane_key(subject: &str) -> i64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    username_key(subject).hash(&mut h);
    i64::from_ne_bytes(h.finish().to_ne_bytes())
}
