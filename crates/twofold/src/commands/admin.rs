use anyhow::Result;
use twofold_core::{Ctx, Engine};

use super::output::out;
use super::{output, read_password};
use crate::cli::AdminCommand;

pub async fn run(engine: &Engine, cmd: AdminCommand) -> Result<()> {
    let ctx = Ctx::cli();
    match cmd {
        AdminCommand::Bootstrap { username, password } => {
            let exists = engine.store().find_user(&username).await?.is_some();
            // An existing user keeps their password unless a new one is given.
            let pw = read_password(&password, !exists)?;
            let admin = engine.bootstrap_admin(&ctx, &username, pw).await?;
            out!(
                "{} is now a portal administrator with every permission over all users",
                admin.username
            );
        }
        AdminCommand::List { json } => {
            let admins = engine.admins().await?;
            if json {
                return output::json(&admins);
            }
            let rows: Vec<Vec<String>> = admins
                .iter()
                .map(|a| {
                    vec![
                        a.username.clone(),
                        a.scope_group.clone().unwrap_or_else(|| "all users".into()),
                        a.permissions
                            .iter()
                            .map(|p| p.as_str())
                            .collect::<Vec<_>>()
                            .join(","),
                    ]
                })
                .collect();
            output::table(&["USERNAME", "SCOPE", "PERMISSIONS"], &rows);
        }
    }
    Ok(())
}
