//! Shared row helpers: reading typed columns, the time encodings, counts,
//! page limits and the permissions text, used by every repository file.

use sqlx::any::AnyRow;
use sqlx::{Any, Row};
use time::OffsetDateTime;
use twofold_core::user::Permission;
use twofold_core::{Error, Result};

use crate::errors::bad_column;

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

/// A page size: 0 asks for the default, anything above the maximum gets the
/// maximum.
pub(crate) fn limit(requested: u32) -> i64 {
    i64::from(match requested {
        0 => DEFAULT_LIMIT,
        n => n.min(MAX_LIMIT),
    })
}

pub(crate) fn unix_seconds(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

pub(crate) fn unix_millis(t: OffsetDateTime) -> Result<i64> {
    i64::try_from(t.unix_timestamp_nanos().div_euclid(1_000_000))
        .map_err(|_| Error::invalid("at", "timestamp out of range"))
}

pub(crate) fn get<'r, T>(row: &'r AnyRow, column: &str) -> Result<T>
where
    T: sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    row.try_get::<T, _>(column)
        .map_err(|e| bad_column(column, e))
}

/// A row of either driver — sqlx's `AnyRow`, or a row of SQLite's direct
/// connections (`direct.rs`) — so that one function maps a row to the
/// model for both, and the hot reads cannot drift from the others.
pub(crate) trait Cells {
    fn int(&self, column: &str) -> Result<Option<i64>>;
    fn text(&self, column: &str) -> Result<Option<String>>;
}

impl Cells for AnyRow {
    fn int(&self, column: &str) -> Result<Option<i64>> {
        get(self, column)
    }

    fn text(&self, column: &str) -> Result<Option<String>> {
        get(self, column)
    }
}

impl Cells for rusqlite::Row<'_> {
    fn int(&self, column: &str) -> Result<Option<i64>> {
        self.get(column).map_err(|e| bad_column(column, e))
    }

    fn text(&self, column: &str) -> Result<Option<String>> {
        self.get(column).map_err(|e| bad_column(column, e))
    }
}

/// The columns of `row` whose names start with `prefix`, read by the name
/// without it: how a join reads a second table whose column names clash
/// with the first's (`t.id AS t_id`).
pub(crate) struct Prefixed<'r, R>(pub &'r R, pub &'static str);

impl<R: Cells> Cells for Prefixed<'_, R> {
    fn int(&self, column: &str) -> Result<Option<i64>> {
        self.0.int(&format!("{}{column}", self.1))
    }

    fn text(&self, column: &str) -> Result<Option<String>> {
        self.0.text(&format!("{}{column}", self.1))
    }
}

/// `columns` (a list like "id, user_id") each as `table.column AS
/// prefixcolumn`, for `Prefixed`.
pub(crate) fn prefixed_columns(table: &str, columns: &str, prefix: &str) -> String {
    columns
        .split(',')
        .map(str::trim)
        .map(|c| format!("{table}.{c} AS {prefix}{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A column's value as one of the types the model stores.
pub(crate) trait Cell: Sized {
    fn read(row: &impl Cells, column: &str) -> Result<Self>;
}

impl Cell for Option<i64> {
    fn read(row: &impl Cells, column: &str) -> Result<Self> {
        row.int(column)
    }
}

impl Cell for Option<String> {
    fn read(row: &impl Cells, column: &str) -> Result<Self> {
        row.text(column)
    }
}

impl Cell for i64 {
    fn read(row: &impl Cells, column: &str) -> Result<Self> {
        row.int(column)?.ok_or_else(|| bad_column(column, "NULL"))
    }
}

impl Cell for String {
    fn read(row: &impl Cells, column: &str) -> Result<Self> {
        row.text(column)?.ok_or_else(|| bad_column(column, "NULL"))
    }
}

/// `get` for a row of either driver.
pub(crate) fn cell<T: Cell>(row: &impl Cells, column: &str) -> Result<T> {
    T::read(row, column)
}

pub(crate) fn flag(row: &impl Cells, column: &str) -> Result<bool> {
    match cell::<i64>(row, column)? {
        0 => Ok(false),
        1 => Ok(true),
        n => Err(bad_column(column, format!("{n} is not 0 or 1"))),
    }
}

pub(crate) fn from_seconds(column: &str, secs: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(secs).map_err(|e| bad_column(column, e))
}

pub(crate) fn from_millis(column: &str, ms: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|e| bad_column(column, e))
}

pub(crate) fn count(row: &AnyRow) -> Result<u64> {
    let n: i64 = row.try_get(0).map_err(|e| bad_column("count", e))?;
    u64::try_from(n).map_err(|e| bad_column("count", e))
}

pub(crate) fn parse_permissions(text: &str) -> Result<Vec<Permission>> {
    text.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<Permission>().map_err(|_| {
                bad_column(
                    "portal_admins.permissions",
                    format!("{p:?} is not a permission"),
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        assert_eq!(limit(0), 100);
        assert_eq!(limit(5), 5);
        assert_eq!(limit(5000), 1000);
    }

    #[test]
    fn permissions_text() {
        assert_eq!(
            parse_permissions("add_users, view_audit_log").unwrap(),
            vec![Permission::AddUsers, Permission::ViewAuditLog]
        );
        assert!(parse_permissions("").unwrap().is_empty());
        let err = parse_permissions("add_users,fly").unwrap_err().to_string();
        assert!(err.contains("portal_admins.permissions"), "{err}");
    }
}
