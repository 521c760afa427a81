use anyhow::Result;
use twofold_core::ports::UserQuery;
use twofold_core::{AdminService, Ctx, Permissions, Scope};

use super::output::out;
use super::{output, read_password, Naming};
use crate::cli::{AdminCommand, PasswordInput};

pub async fn run(svc: &dyn AdminService, ctx: &Ctx, cmd: AdminCommand) -> Result<()> {
    match cmd {
        AdminCommand::Bootstrap { username, password } => {
            // Closed once an administrator exists: the engine refuses (and
            // audits it) before anyone is asked for a password it would not use.
            let pw = if svc.admin_count(ctx).await? > 0 {
                None
            } else {
                bootstrap_password(svc, ctx, &username, &password).await?
            };
            let admin = svc
                .bootstrap_admin(ctx, &username, pw)
                .await
                .naming(&username)?;
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
            let admin = svc
                .grant_admin(ctx, &username, permissions, scope)
                .await
                .naming(&username)?;
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
            svc.revoke_admin(ctx, &username).await.naming(&username)?;
            out!("{username} is no longer an administrator");
        }
    }
    Ok(())
}

/// A new user needs a password; an existing one keeps theirs unless a new
/// one is given.
async fn bootstrap_password(
    svc: &dyn AdminService,
    ctx: &Ctx,
    username: &str,
    input: &PasswordInput,
) -> Result<Option<String>> {
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
    read_password(input, !exists)
}
