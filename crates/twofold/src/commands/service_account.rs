use anyhow::Result;
use twofold_core::factors::ServiceAccount;
use twofold_core::service::ServiceAccountSpec;
use twofold_core::{AdminService, Ctx, Permissions, Role, Scope};

use super::output::{self, out};
use crate::cli::ServiceAccountCommand;

pub async fn run(svc: &dyn AdminService, ctx: &Ctx, cmd: ServiceAccountCommand) -> Result<()> {
    match cmd {
        ServiceAccountCommand::Create {
            name,
            role,
            perms,
            scope,
        } => {
            let role: Role = role.into();
            let permissions = perms
                .iter()
                .map(|p| Permissions::parse_list(p))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .flat_map(Permissions::to_vec)
                .collect::<Permissions>();
            let scope = match scope {
                Some(s) => s.parse::<Scope>()?,
                None => Scope::All,
            };
            let spec = ServiceAccountSpec {
                role,
                permissions,
                scope,
            };
            let (account, secret) = svc.create_service_account(ctx, &name, spec).await?;
            out!(
                "Service account {} created with role {}. Its secret is shown only now; store it safely:",
                account.name,
                describe(&account)
            );
            out!("{secret}");
        }
        ServiceAccountCommand::List { json } => {
            let accounts = svc.service_accounts(ctx).await?;
            if json {
                let views: Vec<twofold_proto::ServiceAccountView> = accounts
                    .iter()
                    .map(twofold_web::sdk_api::service_account_view)
                    .collect();
                return output::json(&views);
            }
            let rows: Vec<Vec<String>> = accounts
                .iter()
                .map(|a| {
                    vec![
                        a.name.clone(),
                        describe(a),
                        output::when(a.created_at),
                        a.rotated_at.map_or_else(|| "-".into(), output::when),
                        // Kept to the minute: a call in the last minute may not show yet.
                        a.last_used_at.map_or_else(|| "never".into(), output::when),
                    ]
                })
                .collect();
            output::table(&["NAME", "ROLE", "CREATED", "ROTATED", "LAST USED"], &rows);
        }
        ServiceAccountCommand::Rotate { name } => {
            let secret = svc.rotate_service_account(ctx, &name).await?;
            out!("New secret for {name} (the old one no longer works):");
            out!("{secret}");
        }
        ServiceAccountCommand::Delete { name } => {
            svc.delete_service_account(ctx, &name).await?;
            out!("deleted service account {name}");
        }
    }
    Ok(())
}

/// `validate`, `portal`, or `admin (PERMISSIONS; SCOPE)`.
fn describe(a: &ServiceAccount) -> String {
    match a.role {
        Role::Admin => format!(
            "admin ({}; {})",
            a.permissions
                .iter()
                .copied()
                .collect::<Permissions>()
                .describe(),
            Scope::from_group(a.scope_group.clone())
        ),
        role => role.to_string(),
    }
}
