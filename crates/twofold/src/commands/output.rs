//! Printing for people (aligned text) and for scripts (`--json`).

use anyhow::Result;
use serde::Serialize;
use std::io::Write;
use time::macros::format_description;
use time::OffsetDateTime;
use twofold_core::user::User;

/// Prints one line to stdout. A closed pipe (`twofold user list | head`)
/// ends the program quietly instead of panicking like `println!`.
pub fn line(text: impl std::fmt::Display) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{text}") {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write output: {e}");
        std::process::exit(1);
    }
}

macro_rules! out {
    ($($arg:tt)*) => { $crate::commands::output::line(format_args!($($arg)*)) };
}
pub(crate) use out;

pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    line(serde_json::to_string_pretty(value)?);
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
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let last = cells.len() - 1;
        cells
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                if i == last {
                    c
                } else {
                    format!("{c:<w$}", w = widths[i])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    out!("{}", line(header.iter().map(ToString::to_string).collect()));
    for row in rows {
        out!("{}", line(row.clone()));
    }
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
