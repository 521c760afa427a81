//! The connection a grouped write runs on: a sqlx one (PostgreSQL, and an
//! in-memory SQLite), or SQLite's direct writer (`direct.rs`), so that each
//! hot write is written once for both. Only what those writes need: a
//! statement with numbered arguments, its row count, and at most one row.

use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use twofold_core::Result;

use crate::direct::sqlite_err;
use crate::errors::db_err;
use crate::rows::Cells;

/// An argument of a statement. NULLs carry their type: PostgreSQL will not
/// put an untyped (or integer) NULL into a text column.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Arg<'a> {
    Int(Option<i64>),
    Text(Option<&'a str>),
}

impl From<i64> for Arg<'_> {
    fn from(n: i64) -> Self {
        Arg::Int(Some(n))
    }
}

impl From<Option<i64>> for Arg<'_> {
    fn from(n: Option<i64>) -> Self {
        Arg::Int(n)
    }
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(s: &'a str) -> Self {
        Arg::Text(Some(s))
    }
}

impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(s: Option<&'a str>) -> Self {
        Arg::Text(s)
    }
}

impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Arg::Int(n) => n.to_sql(),
            Arg::Text(s) => s.to_sql(),
        }
    }
}

/// A row read by a grouped write.
pub(crate) enum Fetched {
    Any(AnyRow),
    Direct(OwnedRow),
}

impl Cells for Fetched {
    fn int(&self, column: &str) -> Result<Option<i64>> {
        match self {
            Fetched::Any(row) => row.int(column),
            Fetched::Direct(row) => row.int(column),
        }
    }

    fn text(&self, column: &str) -> Result<Option<String>> {
        match self {
            Fetched::Any(row) => row.text(column),
            Fetched::Direct(row) => row.text(column),
        }
    }
}

/// A row of a direct connection, copied out of its statement.
pub(crate) struct OwnedRow(Vec<(String, rusqlite::types::Value)>);

impl OwnedRow {
    fn of(row: &rusqlite::Row<'_>) -> rusqlite::Result<OwnedRow> {
        let statement = row.as_ref();
        (0..statement.column_count())
            .map(|i| Ok((statement.column_name(i)?.to_string(), row.get(i)?)))
            .collect::<rusqlite::Result<_>>()
            .map(OwnedRow)
    }

    fn value(&self, column: &str) -> Result<&rusqlite::types::Value> {
        self.0
            .iter()
            .find(|(name, _)| name == column)
            .map(|(_, value)| value)
            .ok_or_else(|| crate::errors::bad_column(column, "no such column"))
    }
}

impl Cells for OwnedRow {
    fn int(&self, column: &str) -> Result<Option<i64>> {
        match self.value(column)? {
            rusqlite::types::Value::Null => Ok(None),
            rusqlite::types::Value::Integer(n) => Ok(Some(*n)),
            other => Err(crate::errors::bad_column(
                column,
                format!("{:?} is not an integer", other.data_type()),
            )),
        }
    }

    fn text(&self, column: &str) -> Result<Option<String>> {
        match self.value(column)? {
            rusqlite::types::Value::Null => Ok(None),
            rusqlite::types::Value::Text(s) => Ok(Some(s.clone())),
            other => Err(crate::errors::bad_column(
                column,
                format!("{:?} is not text", other.data_type()),
            )),
        }
    }
}

/// See the module's comment.
pub(crate) enum Conn<'c> {
    Any(&'c mut AnyConnection),
    Direct(&'c mut rusqlite::Connection),
}

impl Conn<'_> {
    /// A PostgreSQL connection, which can put a data-modifying statement in
    /// a `WITH` (SQLite cannot) and saves a round trip by it.
    pub(crate) fn is_postgres(&self) -> bool {
        match self {
            Conn::Any(conn) => conn.backend_name() == <sqlx::Postgres as sqlx::Database>::NAME,
            Conn::Direct(_) => false,
        }
    }

    /// Runs `sql`; the number of rows it changed.
    pub(crate) async fn execute(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64> {
        match self {
            Conn::Any(conn) => Ok(bind(sqlx::query(sql), args)
                .execute(&mut **conn)
                .await
                .map_err(db_err)?
                .rows_affected()),
            Conn::Direct(conn) => {
                let mut statement = conn.prepare_cached(sql).map_err(sqlite_err)?;
                let changed = statement
                    .execute(rusqlite::params_from_iter(args))
                    .map_err(sqlite_err)?;
                Ok(changed as u64)
            }
        }
    }

    /// Runs `sql`; its first row, if any.
    pub(crate) async fn fetch_optional(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<Option<Fetched>> {
        match self {
            Conn::Any(conn) => Ok(bind(sqlx::query(sql), args)
                .fetch_optional(&mut **conn)
                .await
                .map_err(db_err)?
                .map(Fetched::Any)),
            Conn::Direct(conn) => {
                let mut statement = conn.prepare_cached(sql).map_err(sqlite_err)?;
                let mut rows = statement
                    .query(rusqlite::params_from_iter(args))
                    .map_err(sqlite_err)?;
                let first = match rows.next().map_err(sqlite_err)? {
                    Some(row) => Some(Fetched::Direct(OwnedRow::of(row).map_err(sqlite_err)?)),
                    None => None,
                };
                // Run the statement to its end, as sqlx does: an `UPDATE …
                // RETURNING` changes its rows only as they are stepped.
                while rows.next().map_err(sqlite_err)?.is_some() {}
                Ok(first)
            }
        }
    }
}

fn bind<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    args: &[Arg<'q>],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for arg in args {
        query = match *arg {
            Arg::Int(n) => query.bind(n),
            Arg::Text(s) => query.bind(s),
        };
    }
    query
}
