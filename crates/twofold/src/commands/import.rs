//! `twofold import csv|ldap`: users from a file or the directory, with a
//! progress bar on a terminal and a summary (`--json` for scripts).

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Read};
use twofold_core::import::{parse_csv, ImportBatch, ImportReport, RowOutcome};
use twofold_core::service::ImportService;
use twofold_core::Ctx;

use super::output::{self, out};
use crate::cli::ImportCommand;

pub async fn run(svc: &dyn ImportService, ctx: &Ctx, cmd: ImportCommand) -> Result<()> {
    let (batch, dry_run, json) = match cmd {
        ImportCommand::Csv {
            file,
            dry_run,
            json,
        } => {
            let text = if file.as_os_str() == "-" {
                let mut s = String::new();
                std::io::stdin()
                    .read_to_string(&mut s)
                    .context("reading standard input")?;
                s
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?
            };
            (parse_csv(&text)?, dry_run, json)
        }
        ImportCommand::Ldap {
            filter,
            group,
            dry_run,
            json,
        } => {
            let rows = svc
                .directory_rows(ctx, filter.as_deref(), group.as_deref())
                .await?;
            (
                ImportBatch {
                    rows,
                    refused: Vec::new(),
                },
                dry_run,
                json,
            )
        }
    };
    let bar = progress_bar(batch.rows.len(), json);
    let tick = |done: usize| bar.set_position(u64::try_from(done).unwrap_or(u64::MAX));
    let report = svc.import_users(ctx, batch, dry_run, Some(&tick)).await;
    bar.finish_and_clear();
    let report = report?;
    if json {
        output::json(&report)?;
    } else {
        summary(&report);
    }
    if report.refused > 0 {
        anyhow::bail!(
            "{} row{} refused",
            report.refused,
            if report.refused == 1 { "" } else { "s" }
        );
    }
    Ok(())
}

/// A bar on a terminal (standard error), nothing otherwise: scripts and
/// logs get the summary only.
fn progress_bar(total: usize, json: bool) -> ProgressBar {
    if json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(u64::try_from(total).unwrap_or(u64::MAX));
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40} {human_pos}/{human_len} users  {elapsed_precise}  eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// Added and updated rows shown by name before the rest are only counted.
const SHOWN_CHANGES: usize = 50;

fn summary(r: &ImportReport) {
    // Every refused row (someone has to fix it), and the changes while
    // they are few enough to read; `--json` lists them all.
    let changes = r
        .rows
        .iter()
        .filter(|row| !matches!(row.outcome, RowOutcome::Refused { .. }))
        .count();
    let mut shown_changes = 0;
    let rows: Vec<Vec<String>> = r
        .rows
        .iter()
        .filter(|row| {
            if matches!(row.outcome, RowOutcome::Refused { .. }) {
                return true;
            }
            shown_changes += 1;
            changes <= SHOWN_CHANGES
        })
        .map(|row| {
            let (what, detail) = match &row.outcome {
                RowOutcome::Added => ("added", String::new()),
                RowOutcome::Updated { fields } => ("updated", fields.join(", ")),
                RowOutcome::Unchanged => ("unchanged", String::new()),
                RowOutcome::Refused { message } => ("refused", message.clone()),
            };
            vec![
                row.line.to_string(),
                row.username.clone(),
                what.to_string(),
                detail,
            ]
        })
        .collect();
    if !rows.is_empty() {
        output::table(&["LINE", "USERNAME", "OUTCOME", "DETAIL"], &rows);
        if changes > SHOWN_CHANGES {
            out!("({shown_changes} added or updated rows not listed; --json lists them)");
        }
        out!("");
    }
    let would = if r.dry_run { "would be " } else { "" };
    out!("{} {would}added", r.added);
    out!("{} {would}updated", r.updated);
    out!("{} unchanged", r.unchanged);
    out!("{} refused", r.refused);
    if r.dry_run {
        out!("dry run: nothing was changed");
    }
}
