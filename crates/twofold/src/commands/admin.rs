use anyhow::Result;
use twofold_core::ports::UserQuery;
use twofold_core::{AdminService, Ctx, Permissions, Scope};

use super::output::out;
use super::{output, read_password};
use crate::cli::AdminCommand;

pub async fn run(svc: &dyn AdminService, ctx: &Ctx, cmd: AdminCommand) -> Result<()> {
    match cmd {
        AdminCommand::Bootstrap { username, password } => {
            let exists = svc
                .list_users(
                    ctx,
                    UserQuery {
                        prefix: Some(username.trim().to_string()),
                        limit: 1000,
                        ..Default::default()
                    },
                )
                .await?
                .iter()
                .any(|u| u.username.eq_ignore_ascii_case(username.trim()));
            // An existing user keeps their password unless a new one is given.
            let pw = read_password(&password, !exists)?;
            let admin = svc.bootstrap_admin(ctx, &username, pw).await?;
            out!(
                "{} is now a portal administrator with every permission over all users",
                admin.username
            );
        }
        AdminCommand::List { json } => {
            let admins = svc.admins(ctx).await?;
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
        AdminCommand::Grant {
            username,
            perms,
            all,
            scope,
        } => {
            let permissions = if all {
                Permissions::all()
            } else {
                perms
                    .iter()
                    .map(|p| Permissions::parse_list(p))
                    .collect::<Result<Vec<_>, _>>()?
                    .into_iter()
                    .flat_map(Permissions::to_vec)
                    .collect()
            };
            let scope: Scope = scope.parse()?;
            let admin = svc.grant_admin(ctx, &username, permissions, scope).await?;
            out!(
                "{} is a portal administrator: permissions {}; scope {}",
                admin.username,
                admin
                    .permissions
                    .iter()
                    .copied()
                    .collect::<Permissions>()
                    .describe(),
                Scope::from_group(admin.scope_group.clone())
            );
        }
        AdminCommand::Revoke { username } => {
            svc.revoke_admin(ctx, &username).await?;
            out!("{username} is no longer an administrator");
        }
    }
    Ok(())
}
