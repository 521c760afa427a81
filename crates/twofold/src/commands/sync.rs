//! `twofold sync`: sync items, a run now, approval of a held run, status.

use anyhow::Result;
use twofold_core::service::SyncService;
use twofold_core::sync::{GoneAction, NewSyncItem, SyncReport};
use twofold_core::Ctx;

use super::output::{self, out};
use crate::cli::SyncCommand;

pub async fn run(svc: &dyn SyncService, ctx: &Ctx, cmd: SyncCommand) -> Result<()> {
    let holder = format!("cli-{}", std::process::id());
    match cmd {
        SyncCommand::Add {
            name,
            filter,
            group,
            method,
            language,
            gone,
        } => {
            let item = svc
                .add_sync_item(
                    ctx,
                    NewSyncItem {
                        name,
                        filter,
                        group,
                        default_method: method.as_deref().map(str::parse).transpose()?,
                        default_language: language,
                        gone: Some(GoneAction::parse(&gone)?),
                    },
                )
                .await?;
            out!("added sync item {}", item.name);
        }
        SyncCommand::List { json } => {
            let items = svc.sync_items(ctx).await?;
            if json {
                return output::json(&items);
            }
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|i| {
                    vec![
                        i.name.clone(),
                        i.filter.clone().unwrap_or_default(),
                        i.group.clone().unwrap_or_default(),
                        i.default_method.map(|m| m.to_string()).unwrap_or_default(),
                        i.default_language.clone().unwrap_or_default(),
                        i.gone.as_str().to_string(),
                    ]
                })
                .collect();
            output::table(
                &["NAME", "FILTER", "GROUP", "METHOD", "LANGUAGE", "GONE"],
                &rows,
            );
        }
        SyncCommand::Remove { name } => {
            svc.remove_sync_item(ctx, &name).await?;
            out!("removed sync item {name}");
        }
        SyncCommand::Now { dry_run, json } => {
            let report = svc.sync_now(ctx, &holder, dry_run).await?;
            return finish(&report, json);
        }
        SyncCommand::Approve { json } => {
            let report = svc.approve_sync(ctx, &holder).await?;
            return finish(&report, json);
        }
        SyncCommand::Status { json } => {
            let state = svc.sync_status(ctx).await?;
            let last: Option<SyncReport> = state
                .last_report
                .as_deref()
                .and_then(|r| serde_json::from_str(r).ok());
            if json {
                return output::json(&serde_json::json!({
                    "last_run_at": state.last_run_at.map(output::when),
                    "held": state.held.is_some(),
                    "approved": state.approved,
                    "last_report": last,
                }));
            }
            match state.last_run_at {
                Some(at) => out!("last run  {}", output::when(at)),
                None => out!("last run  never"),
            }
            if let Some(r) = &last {
                summary(r);
            }
            if state.held.is_some() {
                out!("a run is held: `twofold sync approve` lets it disable or delete the users it named");
            }
        }
    }
    Ok(())
}

fn finish(report: &SyncReport, json: bool) -> Result<()> {
    if json {
        output::json(report)?;
    } else {
        summary(report);
    }
    if report.held {
        anyhow::bail!(
            "held: {} users would be disabled or deleted, more than sync.threshold allows; nothing changed. Check them, then run `twofold sync approve`",
            report.removals().count()
        );
    }
    if report.refused > 0 {
        anyhow::bail!("{} directory entries refused", report.refused);
    }
    Ok(())
}

fn summary(r: &SyncReport) {
    for item in &r.items {
        out!(
            "{}: {} found, {} added, {} updated, {} unchanged, {} refused, {} gone ({})",
            item.item,
            item.found,
            item.import.added,
            item.import.updated,
            item.import.unchanged,
            item.import.refused,
            item.gone.len(),
            item.gone_action
        );
        for row in &item.import.rows {
            if let twofold_core::import::RowOutcome::Refused { message } = &row.outcome {
                out!("  refused {}: {message}", row.username);
            }
        }
        for name in &item.gone {
            out!("  gone: {name}");
        }
    }
    if r.held {
        out!(
            "held: {} would be disabled or deleted; nothing was changed",
            r.removals().count()
        );
    } else if r.dry_run {
        out!(
            "{} would be added, {} would be updated, {} would be disabled or deleted",
            r.added,
            r.updated,
            r.removals().count()
        );
    } else {
        out!(
            "{} added, {} updated, {} disabled, {} deleted",
            r.added,
            r.updated,
            r.disabled,
            r.deleted
        );
    }
    if r.dry_run {
        out!("dry run: nothing was changed");
    }
}
