//! Administrators' direct management of tokens, PINs, bypasses and security
//! questions (CLI, SDK, admin pages): no proof from the user is involved, so
//! each is held to a permission and scope.

use crate::audit::ResultCode;
use crate::error::{ConflictReason, Error, Result};
use crate::factors::{
    oath_seed_label, CodeUse, NewOathToken, OathKind, OathParams, SecurityQuestion,
};
use crate::oath;
use crate::principal::Need;
use crate::questions::validate_question_text;
use crate::service::{AddedToken, Ctx};
use crate::user::{Permission, User};
use crate::validate;

const SETTINGS: Need = Need::Permission(Permission::ManageSettings);
const TOKENS: Need = Need::Permission(Permission::ManageOathTokens);

use super::Engine;

impl Engine {
    /// A user with no method yet gets `oath_token` with the token, like the
    /// original console did: otherwise the token would not let them sign in.
    pub(super) async fn admin_add_token(
        &self,
        ctx: &Ctx,
        username: &str,
        secret_base32: &str,
        params: OathParams,
        label: &str,
    ) -> Result<AddedToken> {
        const EVENT: &str = "token.add";
        let user = self.subject_for(ctx, EVENT, username, TOKENS).await?;
        let checked = oath::parse_base32_secret(secret_base32)
            .and_then(|s| oath::validate_params(&params).map(|()| s));
        let secret = self
            .checked(ctx, EVENT, Some(&user.username), checked)
            .await?;
        let label = self
            .checked(
                ctx,
                EVENT,
                Some(&user.username),
                validate::token_label(label),
            )
            .await?;
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
        let mut ev = self.event_with_method(
            ctx,
            EVENT,
            Some(&user.username),
            Some("oath_token".into()),
            ResultCode::SuccessTokenAdded,
        );
        if user.default_method.is_none() {
            ev.detail = Some("method set to oath_token".into());
        }
        let (token, method_set) = self
            .store
            .give_oath_token(user.id, &token, crate::methods::oath::DEFAULT, &ev)
            .await?;
        Ok(AddedToken { token, method_set })
    }

    pub(super) async fn admin_delete_token(
        &self,
        ctx: &Ctx,
        username: &str,
        token_id: i64,
    ) -> Result<()> {
        const EVENT: &str = "token.delete";
        let user = self.subject_for(ctx, EVENT, username, TOKENS).await?;
        self.remove_token(ctx, EVENT, &user, token_id).await
    }

    /// Removes one of `user`'s tokens, audited as `event`; `NotFound` when
    /// the user has no such token. Shared by the portal and administrators.
    pub(super) async fn remove_token(
        &self,
        ctx: &Ctx,
        event: &str,
        user: &User,
        token_id: i64,
    ) -> Result<()> {
        let ev = self.event(
            ctx,
            event,
            Some(&user.username),
            ResultCode::SuccessTokenDeleted,
        );
        if self.store.delete_oath_token(user.id, token_id, &ev).await? {
            Ok(())
        } else {
            self.refuse(ctx, event, Some(&user.username), Error::NotFound("token"))
                .await
        }
    }

    pub(super) async fn admin_add_question(
        &self,
        ctx: &Ctx,
        language: &str,
        text: &str,
    ) -> Result<SecurityQuestion> {
        const EVENT: &str = "question.add";
        self.authorize_global(ctx, EVENT, SETTINGS).await?;
        let checked = validate::language(language).and_then(|l| {
            let l = l.ok_or_else(|| Error::invalid("language", "must not be empty"))?;
            if validate::base_language(&l) != Some(l.as_str()) {
                return Err(Error::invalid(
                    "language",
                    "questions are written per language: use de, not de-AT",
                ));
            }
            Ok((l, validate_question_text(text)?))
        });
        let (lang, text) = self.checked(ctx, EVENT, None, checked).await?;
        let mut ev = self.event(ctx, EVENT, None, ResultCode::SuccessQuestionAdded);
        ev.detail = Some(format!("{lang}: {text}"));
        match self.store.add_question(&lang, &text, &ev).await {
            Ok(q) => Ok(q),
            Err(e) => self.refuse(ctx, EVENT, None, e).await,
        }
    }

    /// Moves a question one place up or down among its language's: users
    /// see them in this order, and the first four are the defaults.
    pub(super) async fn admin_move_question(&self, ctx: &Ctx, id: i64, up: bool) -> Result<()> {
        const EVENT: &str = "question.move";
        self.authorize_global(ctx, EVENT, SETTINGS).await?;
        let mut ev = self.event(ctx, EVENT, None, ResultCode::SuccessSettingChanged);
        ev.detail = Some(format!("question {id} {}", if up { "up" } else { "down" }));
        match self.store.move_question(id, up, &ev).await? {
            Some(_) => Ok(()),
            None => {
                self.refuse(ctx, EVENT, None, Error::NotFound("question"))
                    .await
            }
        }
    }

    pub(super) async fn admin_delete_question(&self, ctx: &Ctx, id: i64) -> Result<()> {
        const EVENT: &str = "question.delete";
        self.authorize_global(ctx, EVENT, SETTINGS).await?;
        let mut ev = self.event(ctx, EVENT, None, ResultCode::SuccessQuestionDeleted);
        ev.detail = Some(format!("question {id}"));
        if self.store.delete_question(id, &ev).await? {
            Ok(())
        } else {
            self.refuse(ctx, EVENT, None, Error::NotFound("question"))
                .await
        }
    }

    /// Clears the user's answers to the security questions: they choose
    /// and answer new ones at their next sign-in (when the fallback is on).
    pub(super) async fn admin_reset_answers(&self, ctx: &Ctx, username: &str) -> Result<()> {
        const EVENT: &str = "answers.reset";
        let user = self
            .subject_for(
                ctx,
                EVENT,
                username,
                Need::Permission(Permission::ResetSecurityQuestions),
            )
            .await?;
        let ev = self.event(
            ctx,
            EVENT,
            Some(&user.username),
            ResultCode::SuccessAnswersChanged,
        );
        self.store.set_answers(user.id, &[], &ev).await
    }

    /// An administrator sets (or resets) a user's PIN; the PIN rules apply.
    pub(super) async fn admin_set_pin(
        &self,
        ctx: &Ctx,
        username: &str,
        pin_code: &str,
    ) -> Result<()> {
        const EVENT: &str = "pin.set";
        let settings = self.settings_now().await?;
        let user = self
            .subject_for(ctx, EVENT, username, Need::Permission(Permission::ResetPin))
            .await?;
        if let Err(e) = crate::pin::check_pin(pin_code, &settings.pin, &user.phones()) {
            return self.refuse(ctx, EVENT, Some(&user.username), e).await;
        }
        let hash = self.hasher.hash(pin_code.to_string()).await?;
        let ev = self.event(
            ctx,
            EVENT,
            Some(&user.username),
            ResultCode::SuccessPinChanged,
        );
        self.store
            .set_pin(
                user.id,
                &hash,
                self.clock.now(),
                settings.pin.history.saturating_sub(1),
                &ev,
            )
            .await
    }

    /// An administrator grants a one-time bypass (not bound by the portal's
    /// "allow users to initiate" setting, which is about users themselves).
    pub(super) async fn admin_grant_bypass(
        &self,
        ctx: &Ctx,
        username: &str,
        seconds: Option<u32>,
        reason: Option<&str>,
    ) -> Result<time::OffsetDateTime> {
        const EVENT: &str = "bypass.grant";
        let settings = self.settings_now().await?;
        let user = self
            .subject_for(
                ctx,
                EVENT,
                username,
                Need::Permission(Permission::GrantBypass),
            )
            .await?;
        let secs = seconds.unwrap_or(settings.portal.bypass_default_seconds);
        if secs == 0 || secs > 86_400 {
            return self
                .refuse(
                    ctx,
                    EVENT,
                    Some(&user.username),
                    Error::invalid("seconds", "choose between 1 and 86400 seconds"),
                )
                .await;
        }
        let reason = reason.map_or("", str::trim);
        if reason.chars().count() > 256 || reason.chars().any(char::is_control) {
            return self
                .refuse(
                    ctx,
                    EVENT,
                    Some(&user.username),
                    Error::invalid(
                        "reason",
                        "must be at most 256 characters without control characters",
                    ),
                )
                .await;
        }
        let until = self.clock.now() + time::Duration::seconds(i64::from(secs));
        let mut ev = self.event(
            ctx,
            EVENT,
            Some(&user.username),
            ResultCode::SuccessBypassStarted,
        );
        ev.detail = Some(if reason.is_empty() {
            format!("{secs} seconds")
        } else {
            format!("{secs} seconds: {reason}")
        });
        self.store.set_bypass(user.id, Some(until), &ev).await?;
        Ok(until)
    }

    /// Brings an event-based token that drifted beyond the look-ahead back in
    /// step with two consecutive codes.
    pub(super) async fn admin_resync_token(
        &self,
        ctx: &Ctx,
        username: &str,
        token_id: i64,
        code1: &str,
        code2: &str,
    ) -> Result<()> {
        const EVENT: &str = "token.resync";
        let user = self.subject_for(ctx, EVENT, username, TOKENS).await?;
        let tokens = self.store.oath_tokens(user.id).await?;
        let Some(token) = tokens.into_iter().find(|t| t.id == token_id) else {
            return self
                .refuse(ctx, EVENT, Some(&user.username), Error::NotFound("token"))
                .await;
        };
        if token.params.kind != OathKind::Hotp {
            return self
                .refuse(
                    ctx,
                    EVENT,
                    Some(&user.username),
                    Error::invalid("token", "only event-based tokens need resynchronising"),
                )
                .await;
        }
        let secret = self
            .sealing
            .open(&token.sealed_secret, &oath_seed_label(user.id))?;
        let Some(next) =
            oath::resync_hotp(&secret, &token.params, code1, code2, token.counter, 1000)
        else {
            return self
                .refuse(
                    ctx,
                    EVENT,
                    Some(&user.username),
                    Error::invalid(
                        "code",
                        "the two codes do not follow each other within the next 1000",
                    ),
                )
                .await;
        };
        let ev = self.event(ctx, EVENT, Some(&user.username), ResultCode::Success);
        // An administrator resynchronising is not guessing: no gate.
        if self
            .store
            .accept_code(user.id, token.id, token.counter, next, None, &ev)
            .await?
            == CodeUse::Accepted
        {
            Ok(())
        } else {
            self.refuse(
                ctx,
                EVENT,
                Some(&user.username),
                Error::conflict(
                    ConflictReason::Concurrent,
                    "the token was used meanwhile; try again",
                ),
            )
            .await
        }
    }
}
