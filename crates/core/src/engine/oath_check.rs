//! Checking a code against a user's OATH tokens, once and only once.

use crate::audit::ResultCode;
use crate::error::Result;
use crate::factors::{oath_seed_label, OathKind, OathToken};
use crate::oath;
use crate::settings::OathSettings;

use super::Engine;

pub(super) enum CodeCheck {
    Accepted,
    Replayed,
    Wrong,
}

impl CodeCheck {
    pub(super) fn failure_code(&self) -> ResultCode {
        match self {
            CodeCheck::Replayed => ResultCode::FailedOathCodeDuplicate,
            _ => ResultCode::FailedOathCode,
        }
    }
}

impl Engine {
    /// Tries `code` on each token; the matching token's counter advances by
    /// compare-and-set, so two requests racing with one code cannot both win.
    pub(super) async fn check_code(
        &self,
        tokens: &[OathToken],
        code: &str,
        cfg: &OathSettings,
    ) -> Result<CodeCheck> {
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
            match matched_next {
                Some(next) => {
                    if self
                        .store
                        .advance_oath_counter(token.id, token.counter, next)
                        .await?
                    {
                        return Ok(CodeCheck::Accepted);
                    }
                    replayed = true;
                }
                None => {
                    // Tell a replay from a wrong code, for the audit log only.
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
        }
        Ok(if replayed {
            CodeCheck::Replayed
        } else {
            CodeCheck::Wrong
        })
    }
}
