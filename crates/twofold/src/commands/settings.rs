use anyhow::Result;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::BufRead;
use twofold_core::settings::{display_value, key_def, parse_text, KEYS};
use twofold_core::{AdminService, Ctx};

use super::output;
use super::output::out;
use crate::cli::SettingsCommand;

/// `settings show` fits a terminal this wide; `--json` has everything unwrapped.
const WIDTH: usize = 100;
/// Long values (lists of methods, of IP ranges) wrap within this.
const VALUE_WIDTH: usize = 24;
/// Descriptions go on their own lines under the key, indented this much.
const INDENT: &str = "    ";

type Values = BTreeMap<&'static str, serde_json::Value>;

#[derive(Serialize)]
struct Row<'a> {
    key: &'a str,
    value: serde_json::Value,
    default: serde_json::Value,
    allowed: String,
    description: &'a str,
}

pub async fn run(svc: &dyn AdminService, ctx: &Ctx, cmd: SettingsCommand) -> Result<()> {
    match cmd {
        SettingsCommand::Show { json } => {
            let current = svc.settings(ctx).await?.public_map();
            let defaults = twofold_core::settings::Settings::default().to_map();
            if json {
                let rows: Vec<Row<'_>> = KEYS
                    .iter()
                    .map(|d| Row {
                        key: d.key,
                        value: current[d.key].clone(),
                        default: defaults[d.key].clone(),
                        allowed: d.kind.describe(),
                        description: d.help,
                    })
                    .collect();
                return output::json(&rows);
            }
            show_table(&current, &defaults);
        }
        SettingsCommand::Set { key, value } => {
            let def = key_def(&key)?;
            let value = if value == "-" {
                let mut line = String::new();
                std::io::stdin().lock().read_line(&mut line)?;
                line.trim_end_matches(['\r', '\n']).to_string()
            } else {
                value
            };
            let parsed = parse_text(def, &value)?;
            let next = svc.set_setting(ctx, def.key, parsed).await?;
            out!(
                "{} = {}",
                def.key,
                display_value(&next.public_map()[def.key])
            );
        }
        SettingsCommand::Reset { key } => {
            let next = svc.reset_setting(ctx, &key).await?;
            let def = key_def(&key)?;
            out!(
                "{} = {} (default)",
                def.key,
                display_value(&next.public_map()[def.key])
            );
        }
    }
    Ok(())
}

/// One row per key (`*` marks a changed one) with its value and the values
/// it allows, wrapped to fit, and its description on the lines below.
fn show_table(current: &Values, defaults: &Values) {
    let key_width = KEYS.iter().map(|d| d.key.len() + 1).max().unwrap_or(0);
    // Whatever the keys leave; never squeezed to nothing by a long new key.
    let allowed_width = WIDTH.saturating_sub(key_width + VALUE_WIDTH + 4).max(20);
    let rows: Vec<Vec<String>> = KEYS
        .iter()
        .map(|d| {
            let v = &current[d.key];
            let marker = if *v == defaults[d.key] { " " } else { "*" };
            vec![
                format!("{marker}{}", d.key),
                display_value(v),
                d.kind.describe(),
            ]
        })
        .collect();
    let (head, printed) = output::layout(
        &[" KEY", "VALUE", "ALLOWED"],
        &rows,
        &[None, Some(VALUE_WIDTH), Some(allowed_width)],
    );
    out!("{head}");
    for (def, lines) in KEYS.iter().zip(printed) {
        for l in lines {
            out!("{l}");
        }
        for l in output::wrap(def.help, WIDTH - INDENT.len()) {
            out!("{INDENT}{l}");
        }
    }
    out!("(* differs from the default; --json shows every field in full)");
}
