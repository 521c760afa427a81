//! An accepted code's writes when nothing stands in their way — the code
//! factor has no failures on record, as for almost every sign-in — in as
//! few statements as the database allows.
//!
//! The write is a compare-and-set of the token's counter (so a code is
//! accepted once, across nodes) and the success's audit row. On SQLite the
//! direct writer runs them as two statements with no round trip between.
//! On PostgreSQL every statement is a round trip, and on a busy node each
//! is also a wait for the database's process to be scheduled, so: one
//! statement per accepted code (`accept_with_audit_sql`), and, when a
//! group-commit batch holds several, one statement for all of them
//! (`accept_together`) — the batch then costs BEGIN, one statement and
//! COMMIT. Anything the fast path does not do (a failure record to clear,
//! a gate to check, a counter someone else moved) falls to the write's own
//! `run`, which starts with the same compare-and-set and so decides alike.

use std::sync::LazyLock;

use serde_json::{Map, Value};
use sqlx::AnyConnection;
use twofold_core::audit::NewAuditEvent;
use twofold_core::factors::Factor;
use twofold_core::Result;

use crate::audit::{AuditValues, AUDIT_INSERT_COLUMNS};
use crate::conn::Arg;
use crate::errors::db_err;
use crate::rows::cell;

/// Which failure records keep a code off the fast path (`f` the record of
/// the user's code factor).
const NO_FAILURES: &str = "(f.streak <> 0 OR f.consecutive <> 0 \
     OR f.blocked_until IS NOT NULL OR f.hour_failures <> 0)";

/// The compare-and-set alone (`$1` new counter, `$2` token, `$3` old
/// counter, `$4` user, `$5` the code factor's name): changes one row when
/// the code is taken now and the factor has no failures on record.
pub(crate) static FAST_ACCEPT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE oath_tokens SET counter = $1 WHERE id = $2 AND counter = $3 AND user_id = $4 \
         AND NOT EXISTS (SELECT 1 FROM secret_failures f \
           WHERE f.user_id = $4 AND f.factor = $5 AND {NO_FAILURES})"
    )
});

/// `FAST_ACCEPT` and the audit row (`$6`…`$15`, `AuditValues::args`) in
/// one PostgreSQL statement: the row is written only when the counter
/// moved, and its id is returned then.
pub(crate) static ACCEPT_WITH_AUDIT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH advanced AS ({} RETURNING 1) \
         INSERT INTO audit_events ({AUDIT_INSERT_COLUMNS}) \
         SELECT $6, $7, $8, $9, $10, $11, $12, $13, $14, $15 FROM advanced RETURNING id",
        *FAST_ACCEPT
    )
});

/// A batch's accepted codes in one PostgreSQL statement. `$1` is a JSON
/// array with one object per code (its place in the batch, the
/// compare-and-set's values, the audit row's); `$2` the code factor's name.
/// The caller gives each token at most once (were a token there twice,
/// PostgreSQL would update its row once, for either of them, and return
/// only that one).
static ACCEPT_TOGETHER: LazyLock<String> = LazyLock::new(|| {
    let audit_types: Vec<String> = AUDIT_INSERT_COLUMNS
        .split(',')
        .map(str::trim)
        .map(|c| format!("{c} {}", if c == "at" { "bigint" } else { "text" }))
        .collect();
    let audit_values: Vec<String> = AUDIT_INSERT_COLUMNS
        .split(',')
        .map(str::trim)
        .map(|c| format!("input.{c}"))
        .collect();
    format!(
        "WITH input AS (SELECT * FROM json_to_recordset($1::json) AS x(\
            place bigint, user_id bigint, token_id bigint, from_counter bigint, to_counter bigint, \
            {types})), \
         advanced AS (UPDATE oath_tokens t SET counter = input.to_counter FROM input \
            WHERE t.id = input.token_id AND t.counter = input.from_counter \
              AND t.user_id = input.user_id \
              AND NOT EXISTS (SELECT 1 FROM secret_failures f \
                WHERE f.user_id = input.user_id AND f.factor = $2 AND {NO_FAILURES}) \
            RETURNING input.place), \
         logged AS (INSERT INTO audit_events ({AUDIT_INSERT_COLUMNS}) \
            SELECT {values} FROM input JOIN advanced ON advanced.place = input.place \
            ORDER BY input.place) \
         SELECT place FROM advanced",
        types = audit_types.join(", "),
        values = audit_values.join(", "),
    )
});

/// What one accepted code changes on the fast path.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FastAccept {
    pub user_id: i64,
    pub token_id: i64,
    pub from: i64,
    pub to: i64,
}

/// Runs the fast path of `accepts` in one statement (PostgreSQL); returns
/// the places (indexes into `accepts`) whose counter moved and whose audit
/// row was written.
pub(crate) async fn accept_together(
    conn: &mut AnyConnection,
    accepts: &[(FastAccept, &NewAuditEvent)],
) -> Result<Vec<usize>> {
    let columns: Vec<&str> = AUDIT_INSERT_COLUMNS.split(',').map(str::trim).collect();
    let mut input = Vec::with_capacity(accepts.len());
    for (place, (accept, event)) in accepts.iter().enumerate() {
        let mut row = Map::new();
        row.insert("place".into(), Value::from(place));
        row.insert("user_id".into(), Value::from(accept.user_id));
        row.insert("token_id".into(), Value::from(accept.token_id));
        row.insert("from_counter".into(), Value::from(accept.from));
        row.insert("to_counter".into(), Value::from(accept.to));
        let values = AuditValues::of(event)?;
        for (column, arg) in columns.iter().zip(values.args()) {
            let value = match arg {
                Arg::Int(n) => n.map_or(Value::Null, Value::from),
                Arg::Text(s) => s.map_or(Value::Null, Value::from),
            };
            row.insert((*column).to_string(), value);
        }
        input.push(Value::Object(row));
    }
    let input = Value::Array(input).to_string();
    let rows = sqlx::query(&ACCEPT_TOGETHER)
        .bind(input)
        .bind(Factor::Code.as_str())
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
    rows.iter()
        .map(|row| {
            let place: i64 = cell(row, "place")?;
            usize::try_from(place)
                .ok()
                .filter(|p| *p < accepts.len())
                .ok_or_else(|| {
                    twofold_core::Error::Internal(format!(
                        "the batch's accepted codes returned place {place} of {}",
                        accepts.len()
                    ))
                })
        })
        .collect()
}
