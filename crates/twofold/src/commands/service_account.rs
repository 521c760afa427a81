use anyhow::Result;
use twofold_core::{Ctx, Engine};

use super::output::{self, out};
use crate::cli::ServiceAccountCommand;

pub async fn run(engine: &Engine, cmd: ServiceAccountCommand) -> Result<()> {
    let ctx = Ctx::cli();
    match cmd {
        ServiceAccountCommand::Create { name } => {
            let (account, secret) = engine.create_service_account(&ctx, &name).await?;
            out!(
                "Service account {} created. Its secret is shown only now; store it safely:",
                account.name
            );
            out!("{secret}");
        }
        ServiceAccountCommand::List { json } => {
            let accounts = engine.service_accounts().await?;
            if json {
                let views: Vec<twofold_proto::ServiceAccountView> =
                    accounts.iter().map(Into::into).collect();
                return output::json(&views);
            }
            let rows: Vec<Vec<String>> = accounts
                .iter()
                .map(|a| {
                    vec![
                        a.name.clone(),
                        output::when(a.created_at),
                        a.rotated_at.map(output::when).unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect();
            output::table(&["NAME", "CREATED", "ROTATED"], &rows);
        }
        ServiceAccountCommand::Rotate { name } => {
            let secret = engine.rotate_service_account(&ctx, &name).await?;
            out!("New secret for {name} (the old one no longer works):");
            out!("{secret}");
        }
        ServiceAccountCommand::Delete { name } => {
            engine.delete_service_account(&ctx, &name).await?;
            out!("deleted service account {name}");
        }
    }
    Ok(())
}
