use anyhow::Result;
use std::time::Duration;
use twofold_core::audit::{AuditEvent, AuditQuery};
use twofold_core::{AdminService, Ctx, Engine};

use super::output;
use super::output::out;
use crate::cli::AuditCommand;

const FOLLOW_POLL: Duration = Duration::from_secs(1);
const PAGE: u32 = 1000;

/// The columns of one line, in order: time, event, result, actor, subject,
/// source address, detail.
type Columns<'a> = [&'a str; 7];

/// One event per line in fixed columns (wider values push the rest along);
/// the detail, of any length, last.
fn columns([at, event, result, actor, subject, source, detail]: Columns<'_>) -> String {
    let text = format!(
        "{at:<24}  {event:<20} {result:<28} {actor:<18} {subject:<24} {source:<15}  {detail}"
    );
    text.trim_end().to_string()
}

/// Says what each column is, once, above the events (not with `--json`).
fn print_header() {
    out!(
        "{}",
        columns([
            "TIME (UTC)",
            "EVENT",
            "RESULT",
            "ACTOR",
            "SUBJECT",
            "SOURCE",
            "DETAIL"
        ])
    );
}

fn print(e: &AuditEvent, json: bool) -> Result<()> {
    if json {
        return output::json_line(e);
    }
    let actor = match &e.via {
        Some(via) => format!("{} via {via}", e.actor),
        None => e.actor.clone(),
    };
    out!(
        "{}",
        columns([
            &output::when(e.at),
            &e.event,
            &e.result.as_str(),
            &actor,
            e.subject.as_deref().unwrap_or("-"),
            &e.source_ip.map_or_else(|| "-".into(), |ip| ip.to_string()),
            e.detail.as_deref().unwrap_or(""),
        ])
    );
    Ok(())
}

pub async fn run(engine: &Engine, ctx: &Ctx, cmd: AuditCommand) -> Result<()> {
    let (lines, user, follow, json) = match cmd {
        AuditCommand::Tail {
            lines,
            user,
            follow,
            json,
        } => (lines, user, follow, json),
        AuditCommand::Prune => {
            let pruned = engine.prune_audit(ctx).await?;
            if pruned.retention_days == 0 {
                out!("audit.retention_days is 0: every event is kept");
            } else {
                out!(
                    "removed {} events older than {} days",
                    pruned.removed,
                    pruned.retention_days
                );
            }
            return Ok(());
        }
    };
    let svc: &dyn AdminService = engine;
    let mut events = svc
        .audit_events(
            ctx,
            AuditQuery {
                limit: lines.clamp(1, 1000),
                subject: user.clone(),
                ..Default::default()
            },
        )
        .await?;
    events.reverse();
    if !json {
        print_header();
    }
    for e in &events {
        print(e, json)?;
    }
    if !follow {
        return Ok(());
    }
    let mut last = events.last().map_or(0, |e| e.id);
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            () = tokio::time::sleep(FOLLOW_POLL) => {}
        }
        // Pages come newest first; page back to `last` so a burst of more
        // than one page between two polls is printed whole.
        let mut fresh = Vec::new();
        let mut before = None;
        loop {
            let page = svc
                .audit_events(
                    ctx,
                    AuditQuery {
                        limit: PAGE,
                        after_id: Some(last),
                        before_id: before,
                        subject: user.clone(),
                    },
                )
                .await?;
            let full = u32::try_from(page.len()) == Ok(PAGE);
            before = page.last().map(|e| e.id);
            fresh.extend(page);
            if !full {
                break;
            }
        }
        fresh.reverse();
        for e in &fresh {
            print(e, json)?;
            last = last.max(e.id);
        }
    }
}
