//! Printing for people (aligned text) and for scripts (`--json`).
//!
//! What people read goes through `line` (and `out!`, `table`), which shows
//! control characters as escapes (`\u{1b}`): usernames, audit subjects and
//! details can come from anyone who reaches a sign-in form, and must not
//! drive the administrator's terminal or start a line of their own. Only
//! text of our own and JSON (whose encoder escapes control characters) are
//! printed as they are, with `raw`.

use anyhow::Result;
use serde::Serialize;
use std::fmt::Write as _;
use std::io::Write;
use time::macros::format_description;
use time::OffsetDateTime;
use twofold_core::display::escape_control;
use twofold_core::factors::FactorFailures;
use twofold_core::user::User;

/// Prints one line for people to stdout, control characters escaped.
pub fn line(text: impl std::fmt::Display) {
    raw(escape_control(&text.to_string()));
}

/// Prints text as it is: multi-line text of our own, and JSON. A closed pipe
/// (`twofold user list | head`) ends the program quietly instead of
/// panicking like `println!`.
pub fn raw(text: impl std::fmt::Display) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{text}") {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write output: {e}");
        std::process::exit(1);
    }
}

/// A warning for people, to stderr, control characters escaped.
pub fn warn(text: impl std::fmt::Display) {
    eprintln!("warning: {}", escape_control(&text.to_string()));
}

macro_rules! out {
    ($($arg:tt)*) => { $crate::commands::output::line(format_args!($($arg)*)) };
}
pub(crate) use out;

pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    raw(serde_json::to_string_pretty(value)?);
    Ok(())
}

/// One JSON value on one line (`audit tail --json` streams them).
pub fn json_line<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    raw(serde_json::to_string(value)?);
    Ok(())
}

/// UTC, fixed width, millisecond precision.
pub fn when(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        ))
        .unwrap_or_default()
}

pub fn table(header: &[&str], rows: &[Vec<String>]) {
    let limits = vec![None; header.len()];
    let (head, rows) = layout(header, rows, &limits);
    out!("{head}");
    for lines in rows {
        for l in lines {
            out!("{l}");
        }
    }
}

/// Lays `rows` out in columns under `header`, each cell wrapped to at most
/// `limits[i]` characters (`None`: as wide as its widest cell). Returns the
/// header line and, per row, its printed lines (several when a cell
/// wraps), so a caller can add lines of its own after a row.
pub fn layout(
    header: &[&str],
    rows: &[Vec<String>],
    limits: &[Option<usize>],
) -> (String, Vec<Vec<String>>) {
    // Escaped before measuring, so the columns line up as printed.
    let cells: Vec<Vec<Vec<String>>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .zip(limits)
                .map(|(c, limit)| {
                    let c = escape_control(c);
                    limit.map_or_else(|| vec![c.clone().into_owned()], |w| wrap(&c, w))
                })
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &cells {
        for (i, cell) in row.iter().enumerate() {
            for l in cell {
                widths[i] = widths[i].max(l.chars().count());
            }
        }
    }
    let join = |cells: Vec<&str>| {
        let last = cells.len() - 1;
        let mut text = String::new();
        for (i, c) in cells.into_iter().enumerate() {
            if i == last {
                text.push_str(c);
            } else {
                let _ = write!(text, "{c:<w$}  ", w = widths[i]);
            }
        }
        text.trim_end().to_string()
    };
    let head = join(header.to_vec());
    let printed = cells
        .iter()
        .map(|row| {
            let height = row.iter().map(Vec::len).max().unwrap_or(1);
            (0..height)
                .map(|n| {
                    join(
                        row.iter()
                            .map(|c| c.get(n).map_or("", String::as_str))
                            .collect(),
                    )
                })
                .collect()
        })
        .collect();
    (head, printed)
}

/// Breaks `text` into lines of at most `width` characters: after spaces and
/// commas (lists like `a,b,c` have no spaces), and inside a word only when
/// the word alone is wider than a line.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut current = String::new();
    for piece in pieces(text) {
        if current.chars().count() + piece.trim_end().chars().count() > width && !current.is_empty()
        {
            lines.push(current.trim_end().to_string());
            current.clear();
        }
        let piece = if current.is_empty() {
            piece.trim_start()
        } else {
            piece
        };
        let mut chars: Vec<char> = piece.chars().collect();
        while chars.len() > width {
            lines.push(chars.drain(..width).collect());
        }
        current.extend(chars);
    }
    if !current.trim_end().is_empty() || lines.is_empty() {
        lines.push(current.trim_end().to_string());
    }
    lines
}

/// `text` cut after each space and comma, keeping them.
fn pieces(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if c == ' ' || c == ',' {
            out.push(&text[start..=i]);
            start = i + 1;
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

pub fn user_detail(u: &User, now: OffsetDateTime) {
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    out!("username        {}", u.username);
    out!("display name    {}", opt(&u.display_name));
    out!("email           {}", opt(&u.email));
    out!(
        "groups          {}",
        if u.groups.is_empty() {
            "-".into()
        } else {
            u.groups.join(", ")
        }
    );
    out!("language        {}", opt(&u.language));
    out!(
        "phone           {}{}",
        opt(&u.phone),
        u.phone_extension
            .as_ref()
            .map(|x| format!(" ext. {x}"))
            .unwrap_or_default()
    );
    out!("backup phone    {}", opt(&u.backup_phone));
    out!("mobile phone    {}", opt(&u.mobile_phone));
    out!("status          {}", u.status(now));
    out!(
        "method          {}",
        u.default_method
            .map_or_else(|| "not enrolled".into(), |m| m.to_string())
    );
    out!("created         {}", when(u.created_at));
    out!("updated         {}", when(u.updated_at));
}

/// The guessing record of `user show`: only factors with something to say.
pub fn user_failures(failures: &[FactorFailures]) {
    let lines: Vec<String> = failures
        .iter()
        .filter(|f| f.since_success > 0 || f.this_hour > 0 || f.paused_until.is_some())
        .map(|f| {
            let mut text = format!(
                "{}: {} in a row, {} since the last success, {} this hour",
                f.factor.as_str(),
                f.in_a_row,
                f.since_success,
                f.this_hour
            );
            if let Some(t) = f.paused_until {
                let _ = write!(text, "; paused until {}", when(t));
            }
            text
        })
        .collect();
    if lines.is_empty() {
        out!("wrong attempts  none");
    }
    for (i, l) in lines.iter().enumerate() {
        out!(
            "{}{l}",
            if i == 0 {
                "wrong attempts  "
            } else {
                "                "
            }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wrap_breaks_after_spaces_and_commas_and_inside_only_long_words() {
        assert_eq!(wrap("a,b,c", 4), ["a,b,", "c"]);
        assert_eq!(wrap("one two three", 7), ["one two", "three"]);
        assert_eq!(wrap("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap("", 5), [""]);
    }
}
