//! Calls and text messages for a challenge: which number, the rate limits
//! that keep a caller from pumping SMS or toll calls through Twofold, the
//! hand-over to the provider, and the check of a text message's code.
//!
//! A challenge is stored (with its destination and the sealed code) before
//! the provider is asked, so the call's webhooks always find it; when the
//! provider refuses or does not answer, the challenge is rejected at once
//! with `provider_error` — none stays pending — and the provider's answer
//! never reaches the caller (the adapter logs it).

use rand::Rng;
use subtle::ConstantTimeEq;

use crate::audit::ResultCode;
use crate::challenge::{
    challenge_pin_label, challenge_secret_label, Authentication, Challenge, ChallengeReason,
    ChallengeState, NewChallenge, PhoneChoice,
};
use crate::error::Result;
use crate::methods::text_message::{self, CODE_DIGITS};
use crate::ports::{GatewayRequest, Outgoing};
use crate::service::Ctx;
use crate::settings::Settings;
use crate::user::{DefaultMethod, MethodKind, User};

use super::oath_check::PasscodeCheck;
use super::phone_texts::texts;
use super::Engine;

/// A text message's code is valid this long.
pub const SMS_CODE_SECONDS: i64 = 300;
/// A call rings, speaks and gathers within this.
pub const CALL_SECONDS: i64 = 120;

const SENT: &str = "delivery.sent";

/// Where a call or text message goes.
#[derive(Debug, Clone)]
pub(super) struct Route {
    pub to: String,
    /// Dialled after the call connects (primary phone only).
    pub extension: Option<String>,
}

/// A call or text a new challenge makes: to whom, for which method, and
/// whether it proves a number for the wizard or the account page (then
/// with the PIN chosen with it).
pub(super) struct PhoneProof {
    pub method: DefaultMethod,
    pub route: Route,
    pub enrolling: bool,
    pub pin_hash: Option<String>,
}

/// How long a challenge with `method` waits for its answer.
pub(super) fn lifetime(method: MethodKind) -> i64 {
    match method {
        MethodKind::TextMessage => SMS_CODE_SECONDS,
        MethodKind::PhoneCall => CALL_SECONDS,
        _ => super::challenges::CHALLENGE_SECONDS,
    }
}

/// The number a challenge with `method` calls or texts (`None`: the method
/// uses no phone). Text messages go to the mobile number when there is one.
pub(super) fn route(user: &User, method: DefaultMethod, choice: PhoneChoice) -> Option<Route> {
    let primary = match method.method {
        MethodKind::PhoneCall => user.phone.clone().map(|to| Route {
            to,
            extension: user.phone_extension.clone(),
        }),
        MethodKind::TextMessage => user
            .mobile_phone
            .clone()
            .or_else(|| user.phone.clone())
            .map(|to| Route {
                to,
                extension: None,
            }),
        _ => return None,
    };
    match choice {
        PhoneChoice::Primary => primary,
        PhoneChoice::Backup => user.backup_phone.clone().map(|to| Route {
            to,
            extension: None,
        }),
    }
}

/// A uniformly random code of `CODE_DIGITS` digits.
pub(super) fn new_sms_code() -> String {
    let mut rng = rand::rngs::OsRng;
    (0..CODE_DIGITS)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect()
}

/// A number as the audit log shows it: its last two digits.
pub fn masked(number: &str) -> String {
    let digits: Vec<char> = number.chars().filter(char::is_ascii_digit).collect();
    let tail: String = digits[digits.len().saturating_sub(2)..].iter().collect();
    format!("…{tail}")
}

fn equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

impl Engine {
    /// The same engine calling and texting through `provider`.
    pub fn with_telephony(mut self, provider: std::sync::Arc<dyn crate::ports::Delivery>) -> Self {
        self.telephony = Some(provider);
        self.outbox = false;
        self
    }

    /// The same engine telling providers to reach it at `url` (the process
    /// configuration's `public_url`).
    pub fn with_public_url(mut self, url: &str) -> Self {
        self.public_url = Some(url.trim_end_matches('/').to_string());
        self
    }

    /// The address the server is listening on (`https://127.0.0.1:8443`),
    /// once bound: the public URL when neither `public_url` nor the
    /// `portal.url` setting says otherwise.
    pub fn listening_at(&self, url: &str) {
        let _ = self.listen_url.set(url.trim_end_matches('/').to_string());
    }

    /// Where providers reach the webhooks: `public_url`, else the
    /// `portal.url` setting, else the listen address.
    pub(super) fn public_base(&self, settings: &Settings) -> String {
        let portal = settings.portal.url.trim().trim_end_matches('/');
        self.public_url
            .clone()
            .or_else(|| (!portal.is_empty()).then(|| portal.to_string()))
            .or_else(|| self.listen_url.get().cloned())
            .unwrap_or_else(|| "https://localhost".into())
    }

    /// The same engine able to text through the generic HTTP SMS gateway
    /// the `sms_gateway.*` settings describe (when `sms_gateway.url` is set).
    pub fn with_sms_gateway(mut self, gateway: std::sync::Arc<dyn crate::ports::Delivery>) -> Self {
        self.gateway = Some(gateway);
        self
    }

    /// Whether a call or text message provider is set up at all.
    pub fn has_telephony(&self) -> bool {
        self.telephony.is_some()
    }

    /// The gateway request of the settings, when texts go through it.
    fn gateway_request(&self, settings: &Settings) -> Option<GatewayRequest> {
        let g = &settings.sms_gateway;
        (self.gateway.is_some() && !g.url.trim().is_empty()).then(|| GatewayRequest {
            url: g.url.trim().to_string(),
            method: g.method.clone(),
            json: g.body_format == "json",
            template: g.body_template.clone(),
            authorization: Some(g.authorization.reveal().to_string()).filter(|a| !a.is_empty()),
            success_status: u16::try_from(g.success_status).unwrap_or(0),
        })
    }

    /// Whether a challenge with `method` can reach the user now: calls need
    /// a provider (or the outbox); texts that, or the SMS gateway.
    pub(super) fn can_deliver(&self, method: MethodKind, settings: &Settings) -> bool {
        match method {
            MethodKind::PhoneCall => self.telephony.is_some(),
            MethodKind::TextMessage => {
                self.telephony.is_some() || self.gateway_request(settings).is_some()
            }
            _ => true,
        }
    }

    /// Why no more calls or texts may go to `user` or `to` this hour
    /// (`None`: they may). Counted from the stored challenges, so every
    /// node sees the same counts.
    pub(super) async fn delivery_limit(
        &self,
        user: &User,
        to: &str,
        settings: &Settings,
    ) -> Result<Option<String>> {
        let since = self.clock.now() - time::Duration::hours(1);
        let (by_user, to_number) = self.store.deliveries_since(user.id, to, since).await?;
        let per_user = u64::from(settings.phone.user_deliveries_per_hour);
        let per_number = u64::from(settings.phone.number_deliveries_per_hour);
        Ok(if by_user >= per_user {
            Some(format!(
                "{by_user} calls and text messages to this user in the last hour (limit {per_user})"
            ))
        } else if to_number >= per_number {
            Some(format!(
                "{to_number} calls and text messages to {} in the last hour (limit {per_number})",
                masked(to)
            ))
        } else {
            None
        })
    }

    /// Starts a challenge that calls or texts for `user`: within the hourly
    /// limits (else refused `rate_limited`), stored with the text's code and
    /// the PIN hash sealed (audited as `event`, with `detail`), then handed
    /// to the provider.
    pub(super) async fn start_phone_challenge(
        &self,
        ctx: &Ctx,
        user: &User,
        proof: PhoneProof,
        event: &str,
        detail: &str,
        settings: &Settings,
    ) -> Result<Authentication> {
        let method = proof.method;
        if let Some(limit) = self.delivery_limit(user, &proof.route.to, settings).await? {
            let mut ev = self.event_with_method(
                ctx,
                event,
                Some(&user.username),
                Some(method.to_string()),
                ResultCode::FailedRateLimited,
            );
            ev.detail = Some(limit);
            self.store.append_audit(&ev).await?;
            return Ok(Authentication::refused(ChallengeReason::RateLimited));
        }
        let now = self.clock.now();
        // Whole seconds, as stored: what the start says is what every node sees.
        let now = now.replace_nanosecond(0).unwrap_or(now);
        let id = super::challenges::new_challenge_id();
        let code = (method.method == MethodKind::TextMessage).then(new_sms_code);
        let sealed_code = code
            .as_ref()
            .map(|c| {
                self.sealing
                    .seal(c.as_bytes(), &challenge_secret_label(&id))
            })
            .transpose()?;
        let sealed_pin = proof
            .pin_hash
            .map(|h| self.sealing.seal(h.as_bytes(), &challenge_pin_label(&id)))
            .transpose()?;
        let new = NewChallenge {
            id,
            user_id: user.id,
            method,
            created_at: now,
            expires_at: now + time::Duration::seconds(lifetime(method.method)),
            created_by: ctx.actor.to_string(),
            destination: Some(proof.route.to.clone()),
            sealed_code,
            enrolling: proof.enrolling,
            extension: proof.route.extension.clone(),
            sealed_pin,
            number: None,
            source_address: None,
        };
        let mut ev = self.event_with_method(
            ctx,
            event,
            Some(&user.username),
            Some(method.to_string()),
            ResultCode::Success,
        );
        ev.detail = Some(format!("{detail}challenge {}", &new.id[..8]));
        self.store.create_challenge(&new, &ev).await?;
        let c = new.stored(user.username.clone());
        self.deliver(ctx, c, user, proof.route, code.as_deref(), settings)
            .await
    }

    /// A phone challenge answered with the typed `code` of a text, or —
    /// without one — as it stands after waiting up to `wait` (at most the
    /// portal's patience) for its decision.
    pub(super) async fn follow_or_answer(
        &self,
        ctx: &Ctx,
        c: Challenge,
        code: Option<String>,
        wait: Option<std::time::Duration>,
    ) -> Result<Authentication> {
        let Some(code) = code else {
            return self.phone_state(ctx, c, wait).await;
        };
        self.rate_limit(ctx)?;
        match self
            .answer(ctx, c.clone(), &code, crate::challenge::Prompt::Passcode)
            .await
        {
            Ok(a) => Ok(a),
            // Decided meanwhile (or answered on the phone): as it stands.
            Err(crate::error::Error::Conflict {
                reason:
                    crate::error::ConflictReason::Finished
                    | crate::error::ConflictReason::AnsweredElsewhere,
                ..
            }) => self.phone_state(ctx, c, None).await,
            Err(e) => Err(e),
        }
    }

    /// A challenge as it stands, after waiting up to `wait` (at most the
    /// portal's patience) for its decision.
    pub(super) async fn phone_state(
        &self,
        ctx: &Ctx,
        c: Challenge,
        wait: Option<std::time::Duration>,
    ) -> Result<Authentication> {
        let fresh = self.store.challenge(&c.id).await?.unwrap_or(c);
        let c = self.settle(ctx, fresh).await?;
        let c = match wait {
            Some(w) if !c.state.is_final() => {
                self.wait_for_decision(ctx, c, w.min(super::portal::phone::PORTAL_WAIT))
                    .await?
            }
            _ => c,
        };
        Ok(Authentication::of(&c))
    }

    /// Asks the provider to call or text for the stored challenge `c`.
    pub(super) async fn deliver(
        &self,
        ctx: &Ctx,
        c: Challenge,
        user: &User,
        route: Route,
        code: Option<&str>,
        settings: &Settings,
    ) -> Result<Authentication> {
        let t = texts(user.language.as_deref());
        let message = match c.method.method {
            MethodKind::TextMessage => {
                let template = if !text_message::two_way(c.method.mode) {
                    t.sms_type
                } else if c.method.mode.needs_pin() {
                    t.sms_reply_pin
                } else {
                    t.sms_reply
                };
                let text = template
                    .replace("{code}", code.unwrap_or_default())
                    .replace("{minutes}", &(SMS_CODE_SECONDS / 60).to_string());
                match self.gateway_request(settings) {
                    Some(gateway) => Outgoing::GatewaySms {
                        gateway,
                        to: route.to.clone(),
                        text,
                    },
                    None => Outgoing::Sms {
                        to: route.to.clone(),
                        text,
                    },
                }
            }
            _ => Outgoing::VoiceCall {
                to: route.to.clone(),
                extension: route.extension.clone(),
                language: t.voice.to_string(),
                challenge_id: c.id.clone(),
                hooks_base: self.public_base(settings),
            },
        };
        let adapter = if matches!(message, Outgoing::GatewaySms { .. }) {
            self.gateway.clone()
        } else {
            self.telephony.clone()
        };
        let Some(provider) = adapter else {
            // `unready` refuses before a challenge is stored; should it
            // get here, the challenge ends as the provider's failure.
            return self
                .provider_failed(ctx, c, "no telephony provider is configured")
                .await;
        };
        let kind = if c.method.method == MethodKind::TextMessage {
            "text message"
        } else {
            "call"
        };
        match provider.send(&message).await {
            Ok(provider_id) => {
                let mut ev = self.event_with_method(
                    ctx,
                    SENT,
                    Some(&user.username),
                    Some(c.method.to_string()),
                    ResultCode::SuccessDeliverySent,
                );
                ev.detail = Some(format!(
                    "{kind} to {} for challenge {} ({} id {provider_id})",
                    masked(&route.to),
                    &c.id[..8],
                    provider.name(),
                ));
                self.store.append_audit(&ev).await?;
                Ok(Authentication::of(&c))
            }
            Err(e) => {
                tracing::warn!(error = %e, kind, "the telephony provider did not take the {kind}");
                self.provider_failed(ctx, c, &e.to_string()).await
            }
        }
    }

    async fn provider_failed(&self, ctx: &Ctx, c: Challenge, why: &str) -> Result<Authentication> {
        let mut ev = self.event_with_method(
            ctx,
            SENT,
            Some(&c.username),
            Some(c.method.to_string()),
            ResultCode::FailedProviderError,
        );
        ev.detail = Some(why.to_string());
        self.store.append_audit(&ev).await?;
        let (_, c) = self
            .finish(
                ctx,
                c,
                ChallengeState::Rejected,
                ChallengeReason::ProviderError,
                ResultCode::FailedProviderError,
            )
            .await?;
        Ok(Authentication::of(&c))
    }

    /// The PIN hash a challenge's answer is checked against: the one chosen
    /// in the enrollment wizard (sealed in the challenge), else the user's.
    pub(super) async fn challenge_pin_hash(
        &self,
        user: &User,
        c: &Challenge,
    ) -> Result<Option<String>> {
        match &c.sealed_pin {
            Some(sealed) => {
                let hash = self.sealing.open(sealed, &challenge_pin_label(&c.id))?;
                Ok(Some(String::from_utf8_lossy(&hash).into_owned()))
            }
            None => Ok(self.store.pin(user.id).await?.map(|p| p.hash)),
        }
    }

    /// Checks an answer to a text message challenge: the code it carried —
    /// after the PIN when typed (`…_plus_pin`, one-way), before the PIN when
    /// replied (two-way). The code is compared in constant time, the PIN
    /// with argon2id.
    pub(super) async fn check_sent_code(
        &self,
        user: &User,
        c: &Challenge,
        answer: &str,
    ) -> Result<PasscodeCheck> {
        let Some(sealed) = &c.sealed_code else {
            return Ok(PasscodeCheck::WrongPasscode);
        };
        let code = self.sealing.open(sealed, &challenge_secret_label(&c.id))?;
        let code = String::from_utf8_lossy(&code).into_owned();
        let answer: String = answer.chars().filter(|c| !c.is_whitespace()).collect();
        if !c.method.mode.needs_pin() {
            return Ok(if equal(&answer, &code) {
                PasscodeCheck::Accepted
            } else {
                PasscodeCheck::WrongPasscode
            });
        }
        let Some(pin_hash) = self.challenge_pin_hash(user, c).await? else {
            return Ok(PasscodeCheck::PinNotSet);
        };
        if !answer.is_ascii() || answer.len() <= CODE_DIGITS {
            // No room for a PIN beside the code: as for OATH, the PIN is wrong.
            return Ok(PasscodeCheck::WrongPin);
        }
        let (code_part, pin_part) = if text_message::two_way(c.method.mode) {
            let (code_part, pin_part) = answer.split_at(CODE_DIGITS);
            (code_part, pin_part)
        } else {
            let (pin_part, code_part) = answer.split_at(answer.len() - CODE_DIGITS);
            (code_part, pin_part)
        };
        // Both are checked whatever the first says: the time taken tells
        // nothing about which part was wrong.
        let code_ok = equal(code_part, &code);
        let pin_ok = self.pin_matches(user, pin_part.to_string(), pin_hash).await;
        Ok(match (code_ok, pin_ok) {
            (true, true) => PasscodeCheck::Accepted,
            (_, false) => PasscodeCheck::WrongPin,
            (false, true) => PasscodeCheck::WrongPasscode,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_random_digits() {
        let a = new_sms_code();
        assert_eq!(a.len(), CODE_DIGITS);
        assert!(a.bytes().all(|b| b.is_ascii_digit()));
        assert!((0..20).any(|_| new_sms_code() != a));
    }

    #[test]
    fn numbers_are_masked() {
        assert_eq!(masked("+31612345678"), "…78");
        assert_eq!(masked("7"), "…7");
        assert_eq!(masked(""), "…");
    }
}
