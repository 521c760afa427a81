use anyhow::Result;
use serde::Serialize;
use twofold_core::factors::FactorFailures;
use twofold_core::ports::UserQuery;
use twofold_core::service::CreateUser;
use twofold_core::settings::PrimaryAuth;
use twofold_core::user::{User, UserPatch};
use twofold_core::{AdminService, Ctx};

use super::output::out;
use super::{output, read_password, Naming};
use crate::cli::UserCommand;

#[derive(Serialize)]
struct UserView<'a> {
    #[serde(flatten)]
    user: &'a User,
    status: String,
    /// Only in `user show`: the guessing record per factor.
    #[serde(skip_serializing_if = "Option::is_none")]
    failures: Option<&'a [FactorFailures]>,
}

fn view<'a>(u: &'a User, svc: &dyn AdminService) -> UserView<'a> {
    UserView {
        user: u,
        status: u.status(svc.now()).to_string(),
        failures: None,
    }
}

pub async fn run(svc: &dyn AdminService, ctx: &Ctx, cmd: UserCommand) -> Result<()> {
    match cmd {
        UserCommand::Add {
            username,
            email,
            display_name,
            groups,
            language,
            password,
        } => {
            let has_password = password.password_stdin;
            let password = if has_password {
                read_password(&password, true)?
            } else {
                None
            };
            let user = svc
                .create_user(
                    ctx,
                    CreateUser {
                        username,
                        display_name,
                        email,
                        groups,
                        language,
                        password,
                        ..CreateUser::default()
                    },
                )
                .await?;
            out!("created user {}", user.username);
            if !has_password {
                warn_without_password(svc, ctx, &user.username).await;
            }
        }
        UserCommand::List {
            prefix,
            group,
            limit,
            json,
        } => {
            let users = svc
                .list_users(
                    ctx,
                    UserQuery {
                        prefix,
                        group,
                        after: None,
                        limit,
                        ..UserQuery::default()
                    },
                )
                .await?;
            if json {
                let views: Vec<_> = users.iter().map(|u| view(u, svc)).collect();
                return output::json(&views);
            }
            let now = svc.now();
            let rows: Vec<Vec<String>> = users
                .iter()
                .map(|u| {
                    vec![
                        u.username.clone(),
                        u.display_name.clone().unwrap_or_default(),
                        u.email.clone().unwrap_or_default(),
                        u.status(now).to_string(),
                        u.default_method
                            .map_or_else(|| "-".into(), |m| m.to_string()),
                        u.groups.join(","),
                    ]
                })
                .collect();
            output::table(
                &[
                    "USERNAME",
                    "DISPLAY NAME",
                    "EMAIL",
                    "STATUS",
                    "METHOD",
                    "GROUPS",
                ],
                &rows,
            );
        }
        UserCommand::Show { username, json } => {
            let user = svc.get_user(ctx, &username).await.naming(&username)?;
            let failures = svc
                .failures(ctx, &user.username)
                .await
                .naming(&user.username)?;
            if json {
                return output::json(&UserView {
                    failures: Some(&failures),
                    ..view(&user, svc)
                });
            }
            output::user_detail(&user, svc.now());
            output::user_failures(&failures);
        }
        UserCommand::Set {
            username,
            email,
            display_name,
            groups,
            language,
            method,
            phone,
            extension,
            backup_phone,
            mobile_phone,
        } => {
            let patch = UserPatch {
                display_name,
                email,
                groups: groups.map(|g| {
                    g.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                }),
                language,
                default_method: method,
                phone,
                phone_extension: extension,
                backup_phone,
                mobile_phone,
            };
            let user = svc
                .update_user(ctx, &username, patch)
                .await
                .naming(&username)?;
            out!("updated user {}", user.username);
        }
        UserCommand::Enable { username } => {
            let user = svc
                .set_user_enabled(ctx, &username, true)
                .await
                .naming(&username)?;
            out!("enabled user {}", user.username);
        }
        UserCommand::Disable { username } => {
            let user = svc
                .set_user_enabled(ctx, &username, false)
                .await
                .naming(&username)?;
            out!("disabled user {}", user.username);
        }
        UserCommand::Unblock { username } => {
            let user = svc.unblock_user(ctx, &username).await.naming(&username)?;
            out!("unblocked user {}", user.username);
        }
        UserCommand::Delete { username } => {
            svc.delete_user(ctx, &username).await.naming(&username)?;
            out!("deleted user {username}");
        }
        UserCommand::Passwd { username, password } => {
            // Fail on an unknown user before asking for a password.
            let user = svc.get_user(ctx, &username).await.naming(&username)?;
            let pw = read_password(&password, true)?.unwrap_or_default();
            svc.set_password(ctx, &user.username, pw).await?;
            out!("password changed for {}", user.username);
        }
    }
    Ok(())
}

/// With local primary authentication the portal's first step is the
/// password, so a user made without one cannot sign in until an
/// administrator sets it; say so now rather than leave it to be found by
/// the user.
async fn warn_without_password(svc: &dyn AdminService, ctx: &Ctx, username: &str) {
    let local = svc
        .settings(ctx)
        .await
        .is_ok_and(|s| s.portal.primary_auth == PrimaryAuth::Local);
    if local {
        output::warn(format_args!(
            "{username} has no password, so they cannot sign in yet; set one with \
             `twofold user passwd {username}`"
        ));
    }
}
