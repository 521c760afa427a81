use anyhow::Result;
use std::time::Duration;
use twofold_core::audit::{AuditEvent, AuditQuery};
use twofold_core::{AdminService, Ctx};

use super::output;
use super::output::out;
use crate::cli::AuditCommand;

const FOLLOW_POLL: Duration = Duration::from_secs(1);
const PAGE: u32 = 1000;

fn print(e: &AuditEvent, json: bool) -> Result<()> {
    if json {
        out!("{}", serde_json::to_string(e)?);
        return Ok(());
    }
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    out!(
        "{}  {:<20} {:<28} {:<18} {:<24} {}{}",
        output::when(e.at),
        e.event,
        e.result.as_str(),
        match &e.via {
            Some(via) => format!("{} via {via}", e.actor),
            None => e.actor.clone(),
        },
        dash(&e.subject),
        e.source_ip.map_or_else(|| "-".into(), |ip| ip.to_string()),
        e.detail
            .as_ref()
            .map(|d| format!("  {d}"))
            .unwrap_or_default()
    );
    Ok(())
}

pub async fn run(svc: &dyn AdminService, ctx: &Ctx, cmd: AuditCommand) -> Result<()> {
    let AuditCommand::Tail {
        lines,
        user,
        follow,
        json,
    } = cmd;
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
