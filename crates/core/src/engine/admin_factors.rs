//! Administrators' direct management of tokens and security questions (CLI
//! today, admin pages and SDK later): no proof from the user is involved.

use crate::audit::ResultCode;
use crate::error::{Error, Result};
use crate::factors::{
    oath_seed_label, NewOathToken, OathKind, OathParams, OathToken, SecurityQuestion,
};
use crate::oath;
use crate::questions::validate_question_text;
use crate::service::Ctx;
use crate::validate;

use super::Engine;

impl Engine {
    pub async fn admin_add_token(
        &self,
        ctx: &Ctx,
        username: &str,
        secret_base32: &str,
        params: OathParams,
        label: &str,
    ) -> Result<OathToken> {
        const EVENT: &str = "token.add";
        let user = match self.user(username).await {
            Ok(u) => u,
            Err(e) => return self.refuse(ctx, EVENT, Some(username), e).await,
        };
        let checked = oath::parse_base32_secret(secret_base32)
            .and_then(|s| oath::validate_params(&params).map(|_| s));
        let secret = match checked {
            Ok(s) => s,
            Err(e) => return self.refuse(ctx, EVENT, Some(&user.username), e).await,
        };
        let label = label.trim();
        if label.chars().count() > 64 || label.chars().any(char::is_control) {
            return self
                .refuse(
                    ctx,
                    EVENT,
                    Some(&user.username),
                    Error::invalid("label", "must be at most 64 characters"),
                )
                .await;
        }
        let token = NewOathToken {
            label: if label.is_empty() {
                "OATH token".into()
            } else {
                label.to_string()
            },
            params,
            sealed_secret: self.sealing.seal(&secret, &oath_seed_label(user.id))?,
            counter: if params.kind == OathKind::Totp {
                i64::MIN
            } else {
                0
            },
        };
        let mut ev = self.event(
            ctx,
            EVENT,
            Some(&user.username),
            ResultCode::SuccessTokenAdded,
        );
        ev.method = Some("oath_token".into());
        self.store.add_oath_token(user.id, &token, &ev).await
    }

    pub async fn admin_tokens(&self, username: &str) -> Result<Vec<OathToken>> {
        let user = self.user(username).await?;
        self.store.oath_tokens(user.id).await
    }

    pub async fn admin_delete_token(&self, ctx: &Ctx, username: &str, token_id: i64) -> Result<()> {
        const EVENT: &str = "token.delete";
        let user = match self.user(username).await {
            Ok(u) => u,
            Err(e) => return self.refuse(ctx, EVENT, Some(username), e).await,
        };
        let ev = self.event(
            ctx,
            EVENT,
            Some(&user.username),
            ResultCode::SuccessTokenDeleted,
        );
        if self.store.delete_oath_token(user.id, token_id, &ev).await? {
            Ok(())
        } else {
            self.refuse(ctx, EVENT, Some(&user.username), Error::NotFound("token"))
                .await
        }
    }

    pub async fn admin_add_question(
        &self,
        ctx: &Ctx,
        language: &str,
        text: &str,
    ) -> Result<SecurityQuestion> {
        const EVENT: &str = "question.add";
        let checked = validate::language(language).and_then(|l| {
            let l = l.ok_or_else(|| Error::invalid("language", "must not be empty"))?;
            Ok((l, validate_question_text(text)?))
        });
        let (lang, text) = match checked {
            Ok(v) => v,
            Err(e) => return self.refuse(ctx, EVENT, None, e).await,
        };
        let mut ev = self.event(ctx, EVENT, None, ResultCode::SuccessQuestionAdded);
        ev.detail = Some(format!("{lang}: {text}"));
        match self.store.add_question(&lang, &text, &ev).await {
            Ok(q) => Ok(q),
            Err(e) => self.refuse(ctx, EVENT, None, e).await,
        }
    }

    pub async fn admin_questions(&self, language: Option<&str>) -> Result<Vec<SecurityQuestion>> {
        self.store.questions(language).await
    }

    pub async fn admin_delete_question(&self, ctx: &Ctx, id: i64) -> Result<()> {
        const EVENT: &str = "question.delete";
        let mut ev = self.event(ctx, EVENT, None, ResultCode::SuccessQuestionDeleted);
        ev.detail = Some(format!("question {id}"));
        if self.store.delete_question(id, &ev).await? {
            Ok(())
        } else {
            self.refuse(ctx, EVENT, None, Error::NotFound("question"))
                .await
        }
    }
}
