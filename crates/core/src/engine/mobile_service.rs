//! The Mobile App Web Service, in the engine: every device request is
//! proved by its Ed25519 signature over the request (`signed_message`),
//! a timestamp within `MAX_SKEW` and a nonce the device never used before
//! (remembered in the store, so a replay is refused on every node).
//! Failed proofs are audited and throttled per address like wrong secrets.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use std::time::Duration;

use crate::audit::ResultCode;
use crate::challenge::{is_challenge_id, Challenge, ChallengeReason, ChallengeState};
use crate::error::{AuthFailure, Error, Result};
use crate::factors::{oath_seed_label, Factor, NewOathToken, OathParams};
use crate::mobile::{
    activation_code_hash, normalize_activation_code, MobileDevice, NewMobileDevice, PushTarget,
};
use crate::principal::Access;
use crate::service::mobile::{
    ActivateDevice, DeviceActivated, DeviceAnswered, DeviceDecision, DeviceRequest, SignedRequest,
};
use crate::service::{Actor, Ctx, MobileService};
use crate::user::{MethodKind, User};

use super::challenges::MAX_ATTEMPTS;
use super::Engine;

/// How far a signed timestamp may be from the server's clock.
const MAX_SKEW: i64 = 300;
const ACTIVATE: &str = "device.activate";
const REQUESTS: &str = "device.requests";
const ANSWER: &str = "device.answer";
const DEACTIVATE: &str = "device.deactivate";
const DEVICE_NAME_MAX: usize = 64;
const PUSH_URL_MAX: usize = 2048;
const WRONG: &str = "the activation code is wrong, expired or already used";

/// The bytes a device signs (the same definition as
/// `twofold_proto::mobile::signed_message`, which the server's front-end
/// and the reference authenticator share; a test in `web` holds them equal).
pub fn signed_message(
    method: &str,
    path_and_query: &str,
    timestamp: &str,
    nonce: &str,
    body: &[u8],
) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    format!(
        "twofold-mobile-v1\n{method}\n{path_and_query}\n{timestamp}\n{nonce}\n{}",
        hex::encode(Sha256::digest(body))
    )
    .into_bytes()
}

fn is_nonce(nonce: &str) -> bool {
    (16..=64).contains(&nonce.len())
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn public_key(encoded: &str) -> Result<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(encoded.trim())
        .ok()
        .filter(|k| k.len() == 32)
        .ok_or_else(|| {
            Error::invalid(
                "public_key",
                "must be an Ed25519 public key: 32 bytes, base64url without padding",
            )
        })
}

fn verifies(key: &[u8], request: &SignedRequest) -> bool {
    let Ok(signature) = URL_SAFE_NO_PAD.decode(request.signature.trim()) else {
        return false;
    };
    let message = signed_message(
        &request.method,
        &request.path_and_query,
        &request.timestamp,
        &request.nonce,
        &request.body,
    );
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, key)
        .verify(&message, &signature)
        .is_ok()
}

fn push_target(push: Option<PushTarget>) -> Result<Option<PushTarget>> {
    let Some(p) = push else {
        return Ok(None);
    };
    let url = p.url.trim();
    let loopback_http = url.strip_prefix("http://").is_some_and(|rest| {
        rest.starts_with("127.") || rest.starts_with("localhost") || rest.starts_with("[::1]")
    });
    if !(url.starts_with("https://") || loopback_http)
        || url.len() > PUSH_URL_MAX
        || url.chars().any(char::is_control)
    {
        return Err(Error::invalid(
            "push.url",
            "must be an https:// URL (http:// only on loopback) of at most 2048 characters",
        ));
    }
    Ok(Some(PushTarget {
        kind: p.kind,
        url: url.to_string(),
    }))
}

/// Who asked, as the app shows it: the SDK account's name, or `portal`.
fn application(created_by: &str) -> String {
    if let Some(account) = created_by.strip_prefix("sdk:") {
        account.to_string()
    } else if created_by.starts_with("user:") || created_by.starts_with("admin:") {
        "portal".to_string()
    } else {
        created_by.to_string()
    }
}

impl Engine {
    fn device_ctx(request: &SignedRequest, device: Option<&MobileDevice>) -> Ctx {
        let mut ctx = Ctx::new(
            device.map_or(Actor::Device("unknown".into()), |d| {
                Actor::User(d.username.clone())
            }),
            Access::none(),
            request.source_ip,
        );
        if let Some(d) = device {
            ctx.via = Some(Actor::Device(d.id.clone()));
        }
        ctx
    }

    /// A refused proof: audited, counted against the address, returned.
    async fn forged<T>(
        &self,
        ctx: &Ctx,
        event: &str,
        subject: Option<&str>,
        reason: AuthFailure,
        message: &str,
    ) -> Result<T> {
        self.source_throttle
            .fail(ctx.guess_source, self.clock.now());
        self.refuse(ctx, event, subject, Error::unauthenticated(reason, message))
            .await
    }

    /// Timestamp and nonce well-formed and fresh, before any key is looked at.
    async fn fresh(&self, ctx: &Ctx, event: &str, request: &SignedRequest) -> Result<()> {
        self.rate_limit(ctx)?;
        if !is_nonce(&request.nonce) {
            return Err(Error::invalid(
                "x-twofold-nonce",
                "must be 16 to 64 characters of A-Z a-z 0-9 - _",
            ));
        }
        let Ok(ts) = request.timestamp.trim().parse::<i64>() else {
            return Err(Error::invalid(
                "x-twofold-timestamp",
                "must be unix seconds",
            ));
        };
        let now = self.clock.now().unix_timestamp();
        if (now - ts).abs() > MAX_SKEW {
            return self
                .refuse(
                    ctx,
                    event,
                    None,
                    Error::unauthenticated(
                        AuthFailure::Timestamp,
                        format!(
                            "the request's timestamp is {} seconds from the server's clock (at most {MAX_SKEW}); set the device's clock",
                            now - ts
                        ),
                    ),
                )
                .await;
        }
        Ok(())
    }

    /// The activated device that signed `request`, and the context its
    /// calls run in (its user, via the device). Unknown devices and bad
    /// signatures are one answer; a reused nonce is refused on every node.
    async fn device_caller(
        &self,
        request: &SignedRequest,
        event: &str,
    ) -> Result<(MobileDevice, Ctx)> {
        let anonymous = Self::device_ctx(request, None);
        self.fresh(&anonymous, event, request).await?;
        let id = request.device_id.as_deref().unwrap_or_default();
        let device = if is_challenge_id(id) {
            self.store.mobile_device(id).await?
        } else {
            None
        };
        let Some(device) = device.filter(|d| verifies(&d.public_key, request)) else {
            return self
                .forged(
                    &anonymous,
                    event,
                    None,
                    AuthFailure::Signature,
                    "unknown device or bad signature",
                )
                .await;
        };
        let ctx = Self::device_ctx(request, Some(&device));
        let now = self.clock.now();
        if !self
            .store
            .device_request_seen(
                &device.id,
                &request.nonce,
                now,
                now - time::Duration::seconds(2 * MAX_SKEW),
            )
            .await?
        {
            return self
                .forged(
                    &ctx,
                    event,
                    Some(&device.username),
                    AuthFailure::Nonce,
                    "this nonce was used before: the request is a replay",
                )
                .await;
        }
        Ok((device, ctx))
    }

    /// The pending request `id` of the device's user; any other id —
    /// malformed, unknown, another user's, not the app's — is `NotFound`,
    /// audited.
    async fn device_challenge(
        &self,
        ctx: &Ctx,
        device: &MobileDevice,
        id: &str,
    ) -> Result<Challenge> {
        let found = if is_challenge_id(id) {
            self.store.challenge(id).await?
        } else {
            None
        };
        match found {
            Some(c) if c.user_id == device.user_id && c.method.method == MethodKind::MobileApp => {
                Ok(c)
            }
            Some(c) => {
                let mut ev = self.event(
                    ctx,
                    ANSWER,
                    Some(&device.username),
                    ResultCode::FailedNotAllowed,
                );
                ev.detail = Some(format!(
                    "request {} is not for this device's user",
                    &c.id[..8]
                ));
                self.store.append_audit(&ev).await?;
                Err(Error::NotFound("request"))
            }
            None => {
                self.refuse(
                    ctx,
                    ANSWER,
                    Some(&device.username),
                    Error::NotFound("request"),
                )
                .await
            }
        }
    }

    fn account_name(&self, settings: &crate::settings::Settings) -> String {
        let name = settings.mobile_app.account_name.trim();
        if !name.is_empty() {
            return name.to_string();
        }
        let base = self.public_base(settings);
        let host = base
            .split_once("://")
            .map_or(base.as_str(), |(_, rest)| rest)
            .split(['/', '?', '#'])
            .next()
            .unwrap_or_default();
        host.to_string()
    }

    /// The answer "approve": the right number, then (PIN mode) the PIN.
    async fn approve(
        &self,
        ctx: &Ctx,
        user: &User,
        c: Challenge,
        number: Option<u32>,
        pin: Option<String>,
    ) -> Result<crate::challenge::Authentication> {
        let Some(number) = number else {
            return Err(Error::invalid(
                "number",
                "approving needs the number shown on the sign-in screen",
            ));
        };
        if c.number.map(u32::from) != Some(number) {
            return self
                .decide(
                    ctx,
                    c,
                    ChallengeState::Rejected,
                    ChallengeReason::WrongNumber,
                    ResultCode::FailedWrongNumber,
                )
                .await;
        }
        if c.method.mode.needs_pin() {
            let Some(pin) = pin.filter(|p| !p.is_empty()) else {
                return Err(Error::invalid("pin", "this sign-in needs your PIN"));
            };
            let settings = self.settings_now().await?;
            self.gate(ctx, ANSWER, user, Factor::Code, &settings)
                .await?;
            let Some(pin_hash) = self.challenge_pin_hash(user, &c).await? else {
                return self
                    .decide(
                        ctx,
                        c,
                        ChallengeState::Rejected,
                        ChallengeReason::PinNotSet,
                        ResultCode::FailedPinWrong,
                    )
                    .await;
            };
            let right = pin.len() <= 64 && self.pin_matches(user, pin, pin_hash).await;
            if !right {
                let mut ev = self.event_with_method(
                    ctx,
                    ANSWER,
                    Some(&user.username),
                    Some(c.method.to_string()),
                    ResultCode::FailedPinWrong,
                );
                ev.detail = Some(format!("request {}: wrong_pin", &c.id[..8]));
                self.store.append_audit(&ev).await?;
                let locked = self
                    .count_failure(ctx, ANSWER, user, Factor::Code, &settings)
                    .await?;
                if !locked && c.attempts + 1 >= MAX_ATTEMPTS {
                    // The last wrong PIN says so in the final reason.
                    self.store.count_attempt(&c.id).await?;
                    return self
                        .decide(
                            ctx,
                            c,
                            ChallengeState::Rejected,
                            ChallengeReason::WrongPin,
                            ResultCode::FailedPinWrong,
                        )
                        .await;
                }
                return self
                    .after_wrong_answer(ctx, c, locked, ChallengeReason::WrongPin)
                    .await;
            }
            let policy = super::guessing::guess_policy(&settings, Factor::Code);
            if let Some(until) = self
                .store
                .record_success(user.id, Factor::Code, self.clock.now(), &policy)
                .await?
            {
                return self
                    .closed(ctx, ANSWER, &user.username, Factor::Code, until)
                    .await;
            }
        }
        self.decide(
            ctx,
            c,
            ChallengeState::Accepted,
            ChallengeReason::Accepted,
            ResultCode::SuccessMobileApp,
        )
        .await
    }
}

#[async_trait::async_trait]
impl MobileService for Engine {
    async fn activate_device(
        &self,
        request: &SignedRequest,
        activate: ActivateDevice,
    ) -> Result<DeviceActivated> {
        let mut ctx = Self::device_ctx(request, None);
        ctx.actor = Actor::Device("new".into());
        self.fresh(&ctx, ACTIVATE, request).await?;
        let name = activate.device_name.trim().to_string();
        crate::validate::identifier("device_name", &name)?;
        if name.chars().count() > DEVICE_NAME_MAX {
            return Err(Error::invalid(
                "device_name",
                format!("must be at most {DEVICE_NAME_MAX} characters"),
            ));
        }
        let key = public_key(&activate.public_key)?;
        let push = push_target(activate.push)?;
        if !verifies(&key, request) {
            return self
                .forged(
                    &ctx,
                    ACTIVATE,
                    None,
                    AuthFailure::Signature,
                    "the request is not signed by the key it registers",
                )
                .await;
        }
        let Some(code) = normalize_activation_code(&activate.code) else {
            return self
                .forged(&ctx, ACTIVATE, None, AuthFailure::ActivationCode, WRONG)
                .await;
        };
        let hash = activation_code_hash(&code);
        let now = self.clock.now();
        let record = self
            .store
            .activation_code(&hash)
            .await?
            .filter(|r| !r.used && now < r.expires_at);
        let Some(record) = record else {
            return self
                .forged(&ctx, ACTIVATE, None, AuthFailure::ActivationCode, WRONG)
                .await;
        };
        let user = self.user(&record.username).await?;
        ctx.actor = Actor::User(user.username.clone());
        if let Some((_, code)) = super::validate_passcode::status_refusal(&user, now)
            .filter(|(r, _)| *r != super::ValidateReason::NotEnrolled)
        {
            let mut ev = self.event(&ctx, ACTIVATE, Some(&user.username), code);
            ev.detail = Some("the user may not sign in now".into());
            self.store.append_audit(&ev).await?;
            return Err(Error::Forbidden(
                "this account cannot activate a device now; ask your administrator".into(),
            ));
        }
        let settings = self.settings_now().await?;
        let params = OathParams::default();
        let secret = crate::oath::generate_secret(params.algorithm);
        let token = NewOathToken {
            label: format!("Mobile app: {name}"),
            params,
            sealed_secret: self.sealing.seal(&secret, &oath_seed_label(user.id))?,
            counter: i64::MIN,
        };
        let device = NewMobileDevice {
            id: super::challenges::new_challenge_id(),
            name,
            public_key: key,
            push,
        };
        ctx.via = Some(Actor::Device(device.id.clone()));
        let mut ev = self.event(
            &ctx,
            ACTIVATE,
            Some(&user.username),
            ResultCode::SuccessDeviceActivated,
        );
        ev.detail = Some(format!("device {} \"{}\"", &device.id[..8], device.name));
        let activated = match self
            .store
            .activate_device(
                &hash,
                now,
                &device,
                &token,
                settings.portal.max_mobile_devices,
                &ev,
            )
            .await
        {
            Ok(d) => d,
            // Used by a racing activation meanwhile.
            Err(Error::NotFound(_)) => {
                return self
                    .forged(
                        &ctx,
                        ACTIVATE,
                        Some(&user.username),
                        AuthFailure::ActivationCode,
                        WRONG,
                    )
                    .await
            }
            Err(e) => return self.refuse(&ctx, ACTIVATE, Some(&user.username), e).await,
        };
        Ok(DeviceActivated {
            device_id: activated.id,
            username: user.username,
            account: self.account_name(&settings),
            oath_secret: data_encoding::BASE32_NOPAD.encode(&secret),
            oath: params,
            request_lifetime_seconds: settings.mobile_app.request_lifetime_seconds,
        })
    }

    async fn device_requests(
        &self,
        request: &SignedRequest,
        wait: Duration,
    ) -> Result<Vec<DeviceRequest>> {
        let (device, _ctx) = self.device_caller(request, REQUESTS).await?;
        let settings = self.settings_now().await?;
        let account = self.account_name(&settings);
        let user_id = device.user_id;
        let pending = self
            .wait_on(
                &super::waiting::user_topic(user_id),
                wait,
                None,
                move |_| async move {
                    let now = self.clock.now();
                    let list = self.store.pending_mobile_challenges(user_id, now).await?;
                    Ok((!list.is_empty(), list))
                },
            )
            .await?;
        Ok(pending
            .into_iter()
            .map(|c| DeviceRequest {
                application: application(&c.created_by),
                pin_required: c.method.mode.needs_pin(),
                id: c.id,
                username: c.username,
                account: account.clone(),
                source_address: c.source_address,
                created_at: c.created_at,
                expires_at: c.expires_at,
            })
            .collect())
    }

    async fn answer_device_request(
        &self,
        request: &SignedRequest,
        id: &str,
        decision: DeviceDecision,
    ) -> Result<DeviceAnswered> {
        let (device, ctx) = self.device_caller(request, ANSWER).await?;
        let c = self.device_challenge(&ctx, &device, id).await?;
        let c = self.settle(&ctx, c).await?;
        if c.state.is_final() {
            let a = self.no_more_answers(&ctx, &c).await?;
            return Ok(DeviceAnswered {
                state: a.state,
                reason: a.reason,
            });
        }
        let Some(user) = self.store.find_user(&c.username).await? else {
            return Err(Error::NotFound("request"));
        };
        let decided = if let Some((reason, code)) = self.stop(&user, &c) {
            self.decide(&ctx, c, ChallengeState::Rejected, reason, code)
                .await?
        } else {
            match decision {
                DeviceDecision::Deny => {
                    self.decide(
                        &ctx,
                        c,
                        ChallengeState::Rejected,
                        ChallengeReason::Denied,
                        ResultCode::FailedDenied,
                    )
                    .await?
                }
                DeviceDecision::Fraud => {
                    let settings = self.settings_now().await?;
                    if settings.fraud.allow_report {
                        let id = c.id.clone();
                        self.report_fraud(&ctx, c, &settings).await?;
                        let now = self
                            .store
                            .challenge(&id)
                            .await?
                            .ok_or(Error::NotFound("request"))?;
                        crate::challenge::Authentication::of(&now)
                    } else {
                        self.decide(
                            &ctx,
                            c,
                            ChallengeState::Rejected,
                            ChallengeReason::Denied,
                            ResultCode::FailedDenied,
                        )
                        .await?
                    }
                }
                DeviceDecision::Approve { number, pin } => {
                    self.approve(&ctx, &user, c, number, pin).await?
                }
            }
        };
        Ok(DeviceAnswered {
            state: decided.state,
            reason: decided.reason,
        })
    }

    async fn deactivate_device(&self, request: &SignedRequest) -> Result<()> {
        let (device, ctx) = self.device_caller(request, DEACTIVATE).await?;
        let mut ev = self.event(
            &ctx,
            DEACTIVATE,
            Some(&device.username),
            ResultCode::SuccessDeviceRemoved,
        );
        ev.detail = Some(format!("device {} \"{}\"", &device.id[..8], device.name));
        if self
            .store
            .remove_mobile_device(device.user_id, &device.id, &ev)
            .await?
        {
            Ok(())
        } else {
            Err(Error::NotFound("device"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applications_are_named_for_people() {
        assert_eq!(application("sdk:vpn"), "vpn");
        assert_eq!(application("user:jan"), "portal");
        assert_eq!(application("cli"), "cli");
    }

    #[test]
    fn push_targets_are_https() {
        use crate::mobile::PushKind;
        let t = |url: &str| {
            push_target(Some(PushTarget {
                kind: PushKind::Ntfy,
                url: url.into(),
            }))
        };
        assert!(t("https://ntfy.example.org/topic").is_ok());
        assert!(t("http://127.0.0.1:8080/topic").is_ok());
        assert!(t("http://ntfy.example.org/topic").is_err());
        assert!(t("https://x/a\u{7}b").is_err());
        assert!(push_target(None).unwrap().is_none());
    }

    #[test]
    fn keys_are_32_bytes() {
        assert!(public_key(&URL_SAFE_NO_PAD.encode([7u8; 32])).is_ok());
        assert!(public_key(&URL_SAFE_NO_PAD.encode([7u8; 31])).is_err());
        assert!(public_key("not base64!").is_err());
    }
}
