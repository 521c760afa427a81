use anyhow::Result;
use serde::Serialize;
use twofold_core::settings::{display_value, key_def, parse_text, KEYS};
use twofold_core::{AdminService, Ctx};

use super::output;
use super::output::out;
use crate::cli::SettingsCommand;

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
            let current = svc.settings(ctx).await?.to_map();
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
            let rows: Vec<Vec<String>> = KEYS
                .iter()
                .map(|d| {
                    let v = &current[d.key];
                    let marker = if *v == defaults[d.key] { " " } else { "*" };
                    vec![
                        format!("{marker}{}", d.key),
                        display_value(v),
                        d.kind.describe(),
                        d.help.to_string(),
                    ]
                })
                .collect();
            output::table(&[" KEY", "VALUE", "ALLOWED", "DESCRIPTION"], &rows);
            out!("(* differs from the default)");
        }
        SettingsCommand::Set { key, value } => {
            let def = key_def(&key)?;
            let parsed = parse_text(def, &value)?;
            let next = svc.set_setting(ctx, def.key, parsed).await?;
            out!("{} = {}", def.key, display_value(&next.to_map()[def.key]));
        }
        SettingsCommand::Reset { key } => {
            let next = svc.reset_setting(ctx, &key).await?;
            let def = key_def(&key)?;
            out!(
                "{} = {} (default)",
                def.key,
                display_value(&next.to_map()[def.key])
            );
        }
    }
    Ok(())
}
