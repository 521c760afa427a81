//! Checking a passcode — an OATH code, with the PIN in front when the mode
//! asks for one — against a user's tokens, once and only once.

use crate::audit::{NewAuditEvent, ResultCode};
use crate::error::Result;
use crate::factors::{oath_seed_label, CodeUse, Factor, OathKind, OathToken};
use crate::methods;
use crate::oath;
use crate::settings::Settings;
use crate::user::User;
use time::OffsetDateTime;

use super::Engine;

/// Why a passcode was accepted or not; the SDK's `validate` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasscodeCheck {
    Accepted,
    WrongPasscode,
    ReplayedPasscode,
    WrongPin,
    PinNotSet,
    NoToken,
    /// The right code, but the code factor was closed by a parallel
    /// request meanwhile: not used, and answered as closed.
    Closed(OffsetDateTime),
}

impl PasscodeCheck {
    pub(super) fn failure_code(self) -> ResultCode {
        match self {
            PasscodeCheck::ReplayedPasscode => ResultCode::FailedOathCodeDuplicate,
            PasscodeCheck::WrongPin | PasscodeCheck::PinNotSet => ResultCode::FailedPinWrong,
            PasscodeCheck::Closed(_) => ResultCode::FailedRateLimited,
            _ => ResultCode::FailedOathCode,
        }
    }

    /// A guess that counts towards the user's limits: a wrong PIN or code.
    /// A replay (a RADIUS or client retry) or a missing token is not one.
    pub(super) fn is_guess(self) -> bool {
        matches!(self, PasscodeCheck::WrongPasscode | PasscodeCheck::WrongPin)
    }
}

impl Engine {
    /// Checks `pin` against `hash` — the user's stored PIN hash, or the copy
    /// a challenge sealed when it began. When the PIN is right and the hash
    /// is unpeppered or cheaper than the current cost, the stored hash is
    /// replaced by compare-and-set on `hash` (a PIN changed meanwhile stays);
    /// a failed write is logged and never fails the check.
    pub(super) async fn pin_matches(&self, user: &User, pin: String, hash: String) -> bool {
        let verified = self.hasher.verify_upgrading(pin, hash.clone()).await;
        if let Some(new) = verified.rehashed {
            if let Err(e) = self.store.rehash_pin(user.id, &hash, &new).await {
                tracing::warn!(
                    error = %e,
                    user = %user.username,
                    "could not store the upgraded PIN hash; it is tried again at the next check"
                );
            }
        }
        verified.matched
    }

    /// The user's mode types a PIN in front of the code, and they have
    /// none: an administrator set the mode after they enrolled.
    pub(super) async fn pin_not_chosen(&self, user: &User) -> Result<bool> {
        let needs_pin = user
            .default_method
            .and_then(|m| methods::method(m.method).map(|x| x.pin_in_passcode(m.mode)))
            .unwrap_or(false);
        Ok(needs_pin && self.store.pin(user.id).await?.is_none())
    }

    /// Checks `passcode` for `user`. When the user's mode needs a PIN, the
    /// passcode is the PIN followed by the code. On success the token's
    /// counter advances, the code factor's streak ends and `success` is
    /// written — together, unless the code factor is closed.
    pub(super) async fn check_passcode(
        &self,
        user: &User,
        passcode: &str,
        settings: &Settings,
        success: &NewAuditEvent,
    ) -> Result<PasscodeCheck> {
        let tokens = self.store.oath_tokens(user.id).await?;
        self.check_passcode_with(user, &tokens, passcode, settings, success)
            .await
    }

    /// `check_passcode` with the user's tokens already read
    /// (`Store::passcode_view`).
    pub(super) async fn check_passcode_with(
        &self,
        user: &User,
        tokens: &[OathToken],
        passcode: &str,
        settings: &Settings,
        success: &NewAuditEvent,
    ) -> Result<PasscodeCheck> {
        if tokens.is_empty() {
            return Ok(PasscodeCheck::NoToken);
        }
        let passcode: String = passcode.chars().filter(|c| !c.is_whitespace()).collect();
        let needs_pin = user
            .default_method
            .and_then(|m| methods::method(m.method).map(|x| x.pin_in_passcode(m.mode)))
            .unwrap_or(false);
        if !needs_pin {
            return self.check_code(tokens, &passcode, settings, success).await;
        }
        let Some(pin) = self.store.pin(user.id).await? else {
            return Ok(PasscodeCheck::PinNotSet);
        };
        // The code is the tail; tokens may differ in length, so try each length.
        let mut lengths: Vec<usize> = tokens.iter().map(|t| t.params.digits as usize).collect();
        lengths.sort_unstable();
        lengths.dedup();
        for digits in lengths {
            if passcode.len() <= digits || !passcode.is_char_boundary(passcode.len() - digits) {
                continue;
            }
            let (pin_part, code_part) = passcode.split_at(passcode.len() - digits);
            if self
                .pin_matches(user, pin_part.to_string(), pin.hash.clone())
                .await
            {
                let same_length: Vec<OathToken> = tokens
                    .iter()
                    .filter(|t| t.params.digits as usize == digits)
                    .cloned()
                    .collect();
                return self
                    .check_code(&same_length, code_part, settings, success)
                    .await;
            }
        }
        Ok(PasscodeCheck::WrongPin)
    }

    /// Tries `code` on each token; the matching token's counter advances by
    /// compare-and-set, so two requests racing with one code cannot both win.
    pub(super) async fn check_code(
        &self,
        tokens: &[OathToken],
        code: &str,
        settings: &Settings,
        success: &NewAuditEvent,
    ) -> Result<PasscodeCheck> {
        let cfg = &settings.oath;
        let now = self.clock.now().unix_timestamp();
        let mut replayed = false;
        for token in tokens {
            let Ok(code) = oath::normalize_code(code, token.params.digits) else {
                continue;
            };
            let secret = self
                .sealing
                .open(&token.sealed_secret, &oath_seed_label(token.user_id))?;
            let matched_next = match token.params.kind {
                OathKind::Totp => oath::verify_totp(
                    &secret,
                    &token.params,
                    &code,
                    now,
                    cfg.time_step_window,
                    token.counter,
                ),
                OathKind::Hotp => oath::verify_hotp(
                    &secret,
                    &token.params,
                    &code,
                    token.counter,
                    cfg.hotp_look_ahead,
                )
                .map(|c| c + 1),
            };
            if let Some(next) = matched_next {
                let gate = super::guessing::guess_policy(settings, Factor::Code);
                match self
                    .store
                    .accept_code(
                        token.user_id,
                        token.id,
                        token.counter,
                        next,
                        Some(&gate),
                        success,
                    )
                    .await?
                {
                    CodeUse::Accepted => return Ok(PasscodeCheck::Accepted),
                    CodeUse::Closed { until } => return Ok(PasscodeCheck::Closed(until)),
                    CodeUse::Taken => replayed = true,
                }
            } else {
                // Tell a replay from a wrong code, for the audit log and the SDK's reason.
                let again = match token.params.kind {
                    OathKind::Totp => oath::verify_totp(
                        &secret,
                        &token.params,
                        &code,
                        now,
                        cfg.time_step_window,
                        i64::MIN,
                    ),
                    OathKind::Hotp => oath::verify_hotp(
                        &secret,
                        &token.params,
                        &code,
                        (token.counter - 10).max(0),
                        10,
                    ),
                };
                replayed |= again.is_some();
            }
        }
        Ok(if replayed {
            PasscodeCheck::ReplayedPasscode
        } else {
            PasscodeCheck::WrongPasscode
        })
    }
}
