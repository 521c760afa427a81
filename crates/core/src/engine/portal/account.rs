//! Account maintenance: the account page, PIN, answers, tokens, language,
//! method, and the one-time bypass.

use time::{Duration, OffsetDateTime};

use crate::audit::ResultCode;
use crate::error::{ConflictReason, Error, Result};
use crate::factors::OathToken;
use crate::methods::{self, Holdings};
use crate::pin;
use crate::portal::{Account, AccountAllows};
use crate::service::Ctx;
use crate::user::{DefaultMethod, MethodKind, User};
use crate::validate;

use crate::engine::Engine;

impl Engine {
    pub(in crate::engine) async fn portal_account(
        &self,
        _ctx: &Ctx,
        username: &str,
    ) -> Result<Account> {
        let settings = self.settings_now().await?;
        let user = self.user(username).await?;
        let tokens = self.store.oath_tokens(user.id).await?;
        let pin = self.store.pin(user.id).await?;
        let now = self.clock.now();
        let choices = self.question_choices(&user).await?;
        let p = &settings.portal;
        let needs_pin = user.default_method.is_some_and(|m| m.mode.needs_pin());
        Ok(Account {
            has_pin: pin.is_some(),
            pin_expired: pin
                .as_ref()
                .is_some_and(|p| pin::pin_expired(p.set_at, now, settings.pin.expiry_days)),
            pin_rules: settings.pin.clone(),
            answers_set: self.store.answers(user.id).await?.len(),
            bypass_until: self.store.bypass_until(user.id).await?.filter(|t| *t > now),
            allow: AccountAllows {
                select_method: p.allow_select_method,
                select_language: p.allow_select_language,
                bypass: p.allow_bypass,
                bypass_prompt_seconds: p.bypass_prompt_seconds,
                bypass_default_seconds: p.bypass_default_seconds,
                bypass_max_seconds: p.bypass_max_seconds,
                third_party_oath: p.allow_third_party_oath,
                security_questions: Self::questions_needed(&settings, &choices) > 0,
                change_pin: needs_pin || pin.is_some(),
                change_phone: self.can_deliver(MethodKind::PhoneCall, &settings)
                    || self.can_deliver(MethodKind::TextMessage, &settings),
                activate_mobile_app: p.allow_mobile_app_activation,
                max_mobile_devices: p.max_mobile_devices,
            },
            devices: self.device_views(&user).await?,
            selectable_methods: p
                .selectable_methods
                .iter()
                .copied()
                .filter(|m| self.available(*m, &settings))
                .collect(),
            questions_required: Self::questions_needed(&settings, &choices),
            questions: choices,
            answered: self.user_questions(&user).await?,
            tokens,
            user,
        })
    }

    pub(in crate::engine) async fn portal_change_pin(
        &self,
        ctx: &Ctx,
        username: &str,
        new_pin: String,
    ) -> Result<()> {
        const EVENT: &str = "portal.pin";
        let settings = self.settings_now().await?;
        let user = self.user(username).await?;
        let allowed = user.default_method.is_some_and(|m| m.mode.needs_pin())
            || self.store.pin(user.id).await?.is_some();
        if !allowed {
            return self
                .refuse(
                    ctx,
                    EVENT,
                    Some(&user.username),
                    Error::Forbidden("your method does not use a PIN".into()),
                )
                .await;
        }
        let hash = match self.checked_pin_hash(&user, &new_pin, &settings).await {
            Ok(h) => h,
            Err(e) => {
                let mut ev =
                    self.event(ctx, EVENT, Some(&user.username), ResultCode::FailedPinRule);
                ev.detail = Some(e.to_string());
                self.store.append_audit(&ev).await?;
                return Err(e);
            }
        };
        let keep = settings.pin.history.saturating_sub(1);
        let ev = self.event(
            ctx,
            EVENT,
            Some(&user.username),
            ResultCode::SuccessPinChanged,
        );
        self.store
            .set_pin(user.id, &hash, self.clock.now(), keep, &ev)
            .await
    }

    pub(in crate::engine) async fn portal_change_answers(
        &self,
        ctx: &Ctx,
        username: &str,
        answers: Vec<(i64, String)>,
    ) -> Result<()> {
        const EVENT: &str = "portal.answers";
        let settings = self.settings_now().await?;
        let user = self.user(username).await?;
        let choices = self.question_choices(&user).await?;
        if Self::questions_needed(&settings, &choices) == 0 {
            return self
                .refuse(
                    ctx,
                    EVENT,
                    Some(&user.username),
                    Error::Forbidden("security questions are not in use".into()),
                )
                .await;
        }
        let hashed = match self.hashed_answers(&answers, &choices).await {
            Ok(h) => h,
            Err(e) => return self.refuse(ctx, EVENT, Some(&user.username), e).await,
        };
        let ev = self.event(
            ctx,
            EVENT,
            Some(&user.username),
            ResultCode::SuccessAnswersChanged,
        );
        self.store.set_answers(user.id, &hashed, &ev).await
    }

    pub(in crate::engine) async fn portal_add_oath_token(
        &self,
        ctx: &Ctx,
        username: &str,
        confirmed: String,
        label: String,
    ) -> Result<OathToken> {
        const EVENT: &str = "portal.token_add";
        let settings = self.settings_now().await?;
        let user = self.user(username).await?;
        let token = self
            .checked(
                ctx,
                EVENT,
                Some(&user.username),
                self.confirmed_token(&user, &confirmed, &label),
            )
            .await?;
        let imported = self
            .open_oath(&confirmed, &user, true)
            .map_or(true, |s| s.imported);
        if imported && !settings.portal.allow_third_party_oath {
            return self
                .refuse(
                    ctx,
                    EVENT,
                    Some(&user.username),
                    Error::Forbidden("third-party OATH tokens are not allowed".into()),
                )
                .await;
        }
        if self.store.oath_tokens(user.id).await?.len() >= 10 {
            return self
                .refuse(
                    ctx,
                    EVENT,
                    Some(&user.username),
                    Error::invalid("token", "at most 10 tokens per user"),
                )
                .await;
        }
        let ev = self.event(
            ctx,
            EVENT,
            Some(&user.username),
            ResultCode::SuccessTokenAdded,
        );
        self.store.add_oath_token(user.id, &token, &ev).await
    }

    pub(in crate::engine) async fn portal_delete_oath_token(
        &self,
        ctx: &Ctx,
        username: &str,
        token_id: i64,
    ) -> Result<()> {
        const EVENT: &str = "portal.token_delete";
        let user = self.user(username).await?;
        let tokens = self.store.oath_tokens(user.id).await?;
        if !tokens.iter().any(|t| t.id == token_id) {
            return self
                .refuse(ctx, EVENT, Some(&user.username), Error::NotFound("token"))
                .await;
        }
        // Refused when the user's method stands on this token alone.
        let before = Holdings::of(&user, tokens.len());
        let after = Holdings::of(&user, tokens.len() - 1);
        let needed = user
            .default_method
            .and_then(|m| methods::method(m.method))
            .is_some_and(|m| m.ready(&before) && !m.ready(&after));
        if needed {
            return self
                .refuse(
                    ctx,
                    EVENT,
                    Some(&user.username),
                    Error::conflict(
                        ConflictReason::LastFactor,
                        "this is your only token and your method needs it; add another token first",
                    ),
                )
                .await;
        }
        self.remove_token(ctx, EVENT, &user, token_id).await
    }

    pub(in crate::engine) async fn portal_change_language(
        &self,
        ctx: &Ctx,
        username: &str,
        language: String,
    ) -> Result<User> {
        const EVENT: &str = "portal.language";
        let settings = self.settings_now().await?;
        let mut user = self.user(username).await?;
        if !settings.portal.allow_select_language {
            return self
                .refuse(
                    ctx,
                    EVENT,
                    Some(&user.username),
                    Error::Forbidden("changing the language is not allowed".into()),
                )
                .await;
        }
        let offered = validate::language(&language).and_then(|l| {
            let base = l.as_deref().and_then(validate::base_language);
            match base {
                Some(b) if !settings.portal.languages.iter().any(|x| x == b) => Err(
                    Error::invalid("language", format!("{b} is not offered by this portal")),
                ),
                _ => Ok(l),
            }
        });
        match offered {
            Ok(l) => user.language = l,
            Err(e) => return self.refuse(ctx, EVENT, Some(&user.username), e).await,
        }
        self.save(
            ctx,
            EVENT,
            user,
            ResultCode::SuccessLanguageChanged,
            Some(language),
        )
        .await
    }

    pub(in crate::engine) async fn portal_change_method(
        &self,
        ctx: &Ctx,
        username: &str,
        method: MethodKind,
    ) -> Result<User> {
        const EVENT: &str = "portal.method";
        let settings = self.settings_now().await?;
        let mut user = self.user(username).await?;
        let refusal = if !settings.portal.allow_select_method {
            Some(Error::Forbidden(
                "changing the method is not allowed".into(),
            ))
        } else if !settings.portal.selectable_methods.contains(&method)
            || !self.available(method, &settings)
        {
            Some(Error::invalid("method", "this method cannot be chosen"))
        } else {
            let held = Holdings::of(&user, self.store.oath_tokens(user.id).await?.len())
                .with_devices(self.store.mobile_devices(user.id).await?.len());
            methods::method(method)
                .filter(|m| !m.ready(&held))
                .map(|m| Error::invalid("method", m.not_ready_hint()))
        };
        if let Some(e) = refusal {
            return self.refuse(ctx, EVENT, Some(&user.username), e).await;
        }
        user.default_method = Some(DefaultMethod {
            method,
            mode: method.modes()[0],
        });
        self.save(
            ctx,
            EVENT,
            user,
            ResultCode::SuccessMethodChanged,
            Some(method.as_str().into()),
        )
        .await
    }

    pub(in crate::engine) async fn portal_start_bypass(
        &self,
        ctx: &Ctx,
        username: &str,
        seconds: Option<u32>,
    ) -> Result<OffsetDateTime> {
        const EVENT: &str = "portal.bypass";
        let settings = self.settings_now().await?;
        let user = self.user(username).await?;
        // `Some(0)` withdraws a waiting bypass (the portal's cancel button,
        // through the same call the link already carries). Users may always
        // withdraw their own, whatever the settings say now.
        if seconds == Some(0) {
            let ev = self.event(
                ctx,
                EVENT,
                Some(&user.username),
                ResultCode::SuccessBypassCancelled,
            );
            self.store.set_bypass(user.id, None, &ev).await?;
            return Ok(self.clock.now());
        }
        let p = &settings.portal;
        let checked = if p.allow_bypass {
            match seconds {
                None => Ok(p.bypass_default_seconds),
                Some(_) if !p.bypass_prompt_seconds => Err(Error::Forbidden(
                    "choosing the bypass seconds is not allowed".into(),
                )),
                Some(s) if s > p.bypass_max_seconds => Err(Error::invalid(
                    "seconds",
                    format!("choose between 1 and {} seconds", p.bypass_max_seconds),
                )),
                Some(s) => Ok(s),
            }
        } else {
            Err(Error::Forbidden("one-time bypass is not allowed".into()))
        };
        let secs = self
            .checked(ctx, EVENT, Some(&user.username), checked)
            .await?;
        let until = self.clock.now() + Duration::seconds(i64::from(secs));
        let mut ev = self.event(
            ctx,
            EVENT,
            Some(&user.username),
            ResultCode::SuccessBypassStarted,
        );
        ev.detail = Some(format!("{secs} seconds"));
        self.store.set_bypass(user.id, Some(until), &ev).await?;
        Ok(until)
    }
}
