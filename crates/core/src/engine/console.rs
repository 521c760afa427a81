//! `AdminConsole` for the engine: the admin pages' principal.

use async_trait::async_trait;

use super::Engine;
use crate::error::{Error, Result};
use crate::principal::{Access, Need, Permissions, Scope};
use crate::service::{Actor, AdminConsole, ConsoleGrant, Ctx};
use crate::user::UserStatus;
use crate::validate;

#[async_trait]
impl AdminConsole for Engine {
    async fn console_grant(&self, ctx: &Ctx, username: &str) -> Result<ConsoleGrant> {
        const EVENT: &str = "admin.console";
        validate::username_lookup(username)?;
        self.require(ctx, EVENT, Need::Portal, Some(username))
            .await?;
        let admin = self
            .store
            .list_admins()
            .await?
            .into_iter()
            .find(|a| a.username.eq_ignore_ascii_case(username.trim()));
        let Some(admin) = admin else {
            let e = Error::Forbidden(format!("{} is not a portal administrator", username.trim()));
            return self.refuse(ctx, EVENT, Some(username), e).await;
        };
        let user = self.subject(ctx, EVENT, &admin.username).await?;
        if user.status(self.clock.now()) != UserStatus::Enabled {
            let e = Error::Forbidden(format!("{} cannot sign in now", user.username));
            return self.refuse(ctx, EVENT, Some(&user.username), e).await;
        }
        let permissions: Permissions = admin.permissions.into_iter().collect();
        let scope = Scope::from_group(admin.scope_group);
        let settings = self.settings_now().await?;
        Ok(ConsoleGrant {
            ctx: Ctx {
                actor: Actor::Admin(admin.username),
                via: None,
                access: Access::administrator(permissions, scope.clone()),
                source_ip: ctx.source_ip,
                guess_source: ctx.guess_source,
            },
            permissions,
            scope,
            idle_minutes: settings.admin.idle_minutes,
        })
    }
}
