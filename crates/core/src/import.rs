//! Users from elsewhere: a CSV file (`twofold import csv`, `POST
//! /sdk/v1/import`) or a directory (`twofold import ldap`). This module
//! turns either into rows; `engine::import` applies them, each user in one
//! transaction.
//!
//! The CSV layout, in this order when the file has no header line:
//!
//! | column | meaning |
//! |---|---|
//! | `username` | required |
//! | `display_name` | |
//! | `email` | |
//! | `phone` | E.164 or national in `phone.default_country`; `x204` at the end marks the extension |
//! | `extension` | digits dialled after the call is answered |
//! | `mobile` | |
//! | `language` | `en`, `nl`, `de-AT`, ... |
//! | `method` | `oath_token`, `phone_call:pin`, ... |
//! | `groups` | separated by `;` |
//!
//! A first line starting with `username` is a header: its column names (any
//! order, any subset with `username`) say which column is which. An empty
//! cell leaves what an existing user has; a new user gets nothing there.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ports::DirectoryEntry;

/// The columns, in their order without a header.
pub const COLUMNS: [&str; 9] = [
    "username",
    "display_name",
    "email",
    "phone",
    "extension",
    "mobile",
    "language",
    "method",
    "groups",
];

/// Rows a request may carry: larger files go through the CLI, which reads
/// any size.
pub const MAX_ROWS: usize = 100_000;

/// One person to add or update. `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportRow {
    /// Where the row came from: its line in the file (1-based), or its
    /// place in the directory's answer.
    pub line: usize,
    pub username: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub extension: Option<String>,
    pub mobile: Option<String>,
    pub language: Option<String>,
    pub method: Option<String>,
    pub groups: Option<Vec<String>>,
    /// The sync item a new user is added for (synchronisation only).
    #[serde(skip)]
    pub sync_item: Option<i64>,
}

/// What happened to one row (or, in a dry run, would happen).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum RowOutcome {
    Added,
    /// The fields that changed.
    Updated {
        fields: Vec<String>,
    },
    Unchanged,
    /// Why the row was refused; nothing of it was written.
    Refused {
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowReport {
    pub line: usize,
    pub username: String,
    #[serde(flatten)]
    pub outcome: RowOutcome,
}

/// The summary of an import: counts, and every row that was (or would be)
/// added, updated or refused. Unchanged rows are counted only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReport {
    pub dry_run: bool,
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub refused: usize,
    pub rows: Vec<RowReport>,
}

impl ImportReport {
    pub fn record(&mut self, line: usize, username: &str, outcome: RowOutcome) {
        match &outcome {
            RowOutcome::Added => self.added += 1,
            RowOutcome::Updated { .. } => self.updated += 1,
            RowOutcome::Unchanged => {
                self.unchanged += 1;
                return;
            }
            RowOutcome::Refused { .. } => self.refused += 1,
        }
        self.rows.push(RowReport {
            line,
            username: username.to_string(),
            outcome,
        });
    }

    pub fn total(&self) -> usize {
        self.added + self.updated + self.unchanged + self.refused
    }
}

/// Rows to import, and the lines already refused while reading them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportBatch {
    pub rows: Vec<ImportRow>,
    pub refused: Vec<RowReport>,
}

/// Rows of a CSV text, and the lines refused while reading it (a row with
/// the wrong number of cells, no username, a cell too long). A header that
/// names an unknown column refuses the whole file.
pub fn parse_csv(text: &str) -> Result<ImportBatch> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let mut columns: Vec<&'static str> = COLUMNS.to_vec();
    let mut rows = Vec::new();
    let mut refused = Vec::new();
    let mut first = true;
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| line_at(text, p.byte()));
                refused.push(RowReport {
                    line,
                    username: String::new(),
                    outcome: RowOutcome::Refused {
                        message: format!("not readable as CSV: {e}"),
                    },
                });
                continue;
            }
        };
        // The reader's own line count skips blank and comment lines; the
        // byte offset does not, so people find the line they see.
        let line = record.position().map_or(0, |p| line_at(text, p.byte()));
        if first {
            first = false;
            if record
                .get(0)
                .is_some_and(|c| c.eq_ignore_ascii_case("username"))
            {
                columns = header(&record)?;
                continue;
            }
        }
        if record.iter().all(str::is_empty) {
            continue;
        }
        if rows.len() + refused.len() >= MAX_ROWS {
            return Err(Error::invalid(
                "file",
                format!("more than {MAX_ROWS} rows: split the file"),
            ));
        }
        match row_of(line, &columns, &record) {
            Ok(row) => rows.push(row),
            Err(message) => refused.push(RowReport {
                line,
                username: record
                    .get(0)
                    .map(crate::display::escape_control)
                    .map_or_else(String::new, |u| u.chars().take(64).collect()),
                outcome: RowOutcome::Refused { message },
            }),
        }
    }
    Ok(ImportBatch { rows, refused })
}

/// The 1-based line of the record the reader started at `byte`: the
/// reader starts where the previous record ended, before the blank and
/// comment lines it skips, so those are skipped here too.
pub(crate) fn line_at(text: &str, byte: u64) -> usize {
    let start = usize::try_from(byte).unwrap_or(usize::MAX).min(text.len());
    let mut line = 1 + text.get(..start).map_or(0, |t| t.matches('\n').count());
    for rest in text.get(start..).unwrap_or_default().split('\n') {
        let t = rest.trim();
        if !(t.is_empty() || t.starts_with('#')) {
            break;
        }
        line += 1;
    }
    line
}

fn header(record: &csv::StringRecord) -> Result<Vec<&'static str>> {
    let mut columns = Vec::new();
    for name in record {
        let known = COLUMNS
            .iter()
            .find(|c| c.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                Error::invalid(
                    "file",
                    format!(
                        "line 1: unknown column {:?}; the columns are {}",
                        crate::display::escape_control(name),
                        COLUMNS.join(", ")
                    ),
                )
            })?;
        if columns.contains(known) {
            return Err(Error::invalid(
                "file",
                format!("line 1: column {known} appears twice"),
            ));
        }
        columns.push(*known);
    }
    Ok(columns)
}

/// Longest cell accepted: every field has a far smaller rule of its own.
const CELL_MAX: usize = 1024;

fn row_of(
    line: usize,
    columns: &[&'static str],
    record: &csv::StringRecord,
) -> std::result::Result<ImportRow, String> {
    if record.len() > columns.len() {
        return Err(format!(
            "{} cells where {} columns are expected ({})",
            record.len(),
            columns.len(),
            columns.join(", ")
        ));
    }
    let mut row = ImportRow {
        line,
        ..ImportRow::default()
    };
    for (column, cell) in columns.iter().zip(record.iter()) {
        if cell.len() > CELL_MAX {
            return Err(format!("{column}: longer than {CELL_MAX} characters"));
        }
        let value = (!cell.is_empty()).then(|| cell.to_string());
        match *column {
            "username" => row.username = cell.to_string(),
            "display_name" => row.display_name = value,
            "email" => row.email = value,
            "phone" => row.phone = value,
            "extension" => row.extension = value,
            "mobile" => row.mobile = value,
            "language" => row.language = value,
            "method" => row.method = value,
            "groups" => {
                row.groups = value.map(|v| {
                    v.split(';')
                        .map(str::trim)
                        .filter(|g| !g.is_empty())
                        .map(str::to_string)
                        .collect()
                });
            }
            _ => {}
        }
    }
    if row.username.is_empty() {
        return Err("username: missing".into());
    }
    if row.phone.is_some() {
        let (phone, extension) = split_extension(row.phone.as_deref().unwrap_or(""));
        if let Some(ext) = extension {
            if row.extension.as_ref().is_some_and(|e| *e != ext) {
                return Err(format!(
                    "phone: its extension x{ext} differs from the extension column"
                ));
            }
            row.extension = Some(ext);
        }
        row.phone = Some(phone);
    }
    Ok(row)
}

/// A phone number as directories write it, with an `x` before the
/// extension: `+31 20 555 0101x204` → (`+31 20 555 0101`, `204`). Also
/// `ext`, `ext.` and `#`. Without one, the number as it is.
pub fn split_extension(raw: &str) -> (String, Option<String>) {
    let lower = raw.to_ascii_lowercase();
    for marker in ["ext.", "ext", "x", "#"] {
        if let Some(at) = lower.rfind(marker) {
            let ext = raw[at + marker.len()..].trim();
            if !ext.is_empty() && ext.chars().all(|c| c.is_ascii_digit()) {
                return (raw[..at].trim().to_string(), Some(ext.to_string()));
            }
        }
    }
    (raw.trim().to_string(), None)
}

/// A directory's person as a row. What the directory does not hold
/// (method) stays `None`; fields it holds but leaves empty clear nothing.
pub fn from_directory(line: usize, entry: &DirectoryEntry) -> ImportRow {
    let (phone, extension) = match entry.phone.as_deref() {
        Some(p) => {
            let (phone, ext) = split_extension(p);
            (Some(phone).filter(|p| !p.is_empty()), ext)
        }
        None => (None, None),
    };
    ImportRow {
        line,
        username: entry.username.clone(),
        display_name: entry.display_name.clone(),
        email: entry.email.clone(),
        phone,
        extension,
        mobile: entry.mobile_phone.clone(),
        language: entry.language.clone(),
        method: None,
        groups: Some(entry.groups.clone()),
        sync_item: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_are_split_off() {
        for (raw, phone, ext) in [
            ("+31 20 555 0101x204", "+31 20 555 0101", Some("204")),
            ("+31 20 555 0101 x 204", "+31 20 555 0101", Some("204")),
            ("+31 20 555 0101 ext. 7", "+31 20 555 0101", Some("7")),
            ("+1 212 555 0100#12", "+1 212 555 0100", Some("12")),
            ("+31 20 555 0101", "+31 20 555 0101", None),
            ("020 555 0101", "020 555 0101", None),
        ] {
            assert_eq!(
                split_extension(raw),
                (phone.to_string(), ext.map(str::to_string)),
                "{raw}"
            );
        }
    }

    #[test]
    fn positional_rows_and_bad_lines_by_number() {
        let text = "alice,Alice Adams,alice@example.org,+31 20 555 0101x204,,+31 6 12345678,nl,oath_token,staff;vpn\n\
                    \n\
                    # a comment\n\
                    bob\n\
                    ,No Name\n\
                    carol,C,c@example.org,,,,,,,,extra\n";
        let ImportBatch { rows, refused } = parse_csv(text).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].line, 1);
        assert_eq!(rows[0].phone.as_deref(), Some("+31 20 555 0101"));
        assert_eq!(rows[0].extension.as_deref(), Some("204"));
        assert_eq!(
            rows[0].groups,
            Some(vec!["staff".to_string(), "vpn".to_string()])
        );
        assert_eq!(rows[1].username, "bob");
        assert_eq!(rows[1].line, 4);
        assert_eq!(rows[1].email, None);
        let lines: Vec<usize> = refused.iter().map(|r| r.line).collect();
        assert_eq!(lines, [5, 6]);
        assert!(
            matches!(&refused[0].outcome, RowOutcome::Refused { message } if message.contains("username"))
        );
        assert!(
            matches!(&refused[1].outcome, RowOutcome::Refused { message } if message.contains("11 cells"))
        );
    }

    #[test]
    fn a_header_picks_the_columns() {
        let text = "\u{feff}Username,email,groups\nalice,a@example.org,\n\"bob\",\"b@example.org\",\"x; y\"\n";
        let ImportBatch { rows, refused } = parse_csv(text).unwrap();
        assert!(refused.is_empty());
        assert_eq!(rows[0].email.as_deref(), Some("a@example.org"));
        assert_eq!(rows[0].groups, None);
        assert_eq!(rows[1].line, 3);
        assert_eq!(rows[1].groups.as_ref().unwrap().len(), 2);
        let e = parse_csv("username,mail\n").unwrap_err().to_string();
        assert!(e.contains("unknown column \"mail\""), "{e}");
        let e = parse_csv("username,email,email\n").unwrap_err().to_string();
        assert!(e.contains("twice"), "{e}");
    }

    #[test]
    fn a_directory_entry_maps_to_a_row() {
        let entry = DirectoryEntry {
            username: "alice".into(),
            display_name: Some("Alice Adams".into()),
            phone: Some("+31 20 555 0101x204".into()),
            mobile_phone: Some("+31 6 12345678".into()),
            language: Some("nl".into()),
            groups: vec!["vpn-users".into()],
            ..DirectoryEntry::default()
        };
        let row = from_directory(3, &entry);
        assert_eq!(row.phone.as_deref(), Some("+31 20 555 0101"));
        assert_eq!(row.extension.as_deref(), Some("204"));
        assert_eq!(row.mobile.as_deref(), Some("+31 6 12345678"));
        assert_eq!(row.groups, Some(vec!["vpn-users".to_string()]));
        assert_eq!(row.method, None);
    }

    #[test]
    fn the_report_counts_and_keeps_changes() {
        let mut r = ImportReport::default();
        r.record(1, "a", RowOutcome::Added);
        r.record(2, "b", RowOutcome::Unchanged);
        r.record(
            3,
            "c",
            RowOutcome::Refused {
                message: "x".into(),
            },
        );
        assert_eq!((r.added, r.unchanged, r.refused, r.total()), (1, 1, 1, 3));
        assert_eq!(r.rows.len(), 2);
        let json = serde_json::to_value(&r.rows[1]).unwrap();
        assert_eq!(json["outcome"], "refused");
        assert_eq!(json["line"], 3);
    }
}
