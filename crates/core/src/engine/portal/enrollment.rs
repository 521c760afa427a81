//! The enrollment wizard: its options, a new or imported OATH secret sealed
//! through the portal session, its confirming code, and finishing.

use crate::audit::ResultCode;
use crate::error::{Error, Result};
use crate::factors::{Enrollment, OathKind, OathParams};
use crate::methods;
use crate::oath;
use crate::portal::{EnrollmentOptions, FinishEnrollment, ImportOath, PendingOath};
use crate::service::Ctx;
use crate::user::{MethodKind, User};

use super::{pending_label, SealedOath};
use crate::engine::Engine;

/// The issuer when neither an organisation name nor a portal URL is set.
const ISSUER: &str = "Twofold";

/// The issuer an authenticator app lists the entry under: the organisation's
/// name, else the portal URL's host, else the product's name.
fn issuer(settings: &crate::settings::Settings) -> String {
    let name = settings.portal.organization_name.trim();
    if !name.is_empty() {
        return name.to_string();
    }
    let authority = settings
        .portal
        .url
        .split_once("://")
        .and_then(|(_, rest)| rest.split(['/', '?', '#']).next())
        .unwrap_or_default();
    // No credentials and no port in an app's entry.
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let host = if host_port.starts_with('[') {
        host_port.split_inclusive(']').next().unwrap_or_default()
    } else {
        host_port.split(':').next().unwrap_or_default()
    };
    Some(host)
        .filter(|h| !h.is_empty())
        .map_or_else(|| ISSUER.to_string(), str::to_string)
}

impl Engine {
    pub(in crate::engine) async fn portal_enrollment_options(
        &self,
        _ctx: &Ctx,
        username: &str,
    ) -> Result<EnrollmentOptions> {
        let settings = self.settings_now().await?;
        let user = self.user(username).await?;
        let mut methods: Vec<MethodKind> = settings
            .portal
            .selectable_methods
            .iter()
            .copied()
            .filter(|m| self.available(*m, &settings))
            .collect();
        let preset = user
            .default_method
            .filter(|m| self.available(m.method, &settings));
        if let Some(p) = preset {
            methods = vec![p.method];
        } else if !settings.portal.allow_select_method {
            methods.truncate(1);
        }
        if methods.is_empty() {
            return Err(Error::Forbidden(
                "no verification method can be enrolled here; ask your administrator".into(),
            ));
        }
        let questions = self.question_choices(&user).await?;
        Ok(EnrollmentOptions {
            methods,
            preset,
            allow_third_party_oath: settings.portal.enrollment_prompt_oath_token,
            questions_required: Self::questions_needed(&settings, &questions),
            questions,
            pin_rules: settings.pin.clone(),
            prompt_backup_phone: settings.portal.enrollment_prompt_backup_phone,
        })
    }

    fn seal_oath(&self, s: &SealedOath) -> Result<String> {
        let json = serde_json::to_vec(s).map_err(|e| Error::Internal(e.to_string()))?;
        self.sealing
            .seal(&json, &pending_label(s.user_id, s.confirmed))
    }

    fn pending(
        &self,
        user: &User,
        secret: &[u8],
        params: OathParams,
        imported: bool,
        issuer: &str,
    ) -> Result<PendingOath> {
        let sealed = self.seal_oath(&SealedOath {
            user_id: user.id,
            secret: oath::encode_base32(secret),
            params,
            counter: if params.kind == OathKind::Totp {
                i64::MIN
            } else {
                0
            },
            issued_at: self.clock.now().unix_timestamp(),
            confirmed: false,
            imported,
        })?;
        Ok(PendingOath {
            sealed,
            secret_base32: oath::encode_base32(secret),
            uri: oath::otpauth_uri(issuer, &user.username, secret, &params),
            params,
        })
    }

    pub(in crate::engine) async fn portal_new_oath_secret(
        &self,
        _ctx: &Ctx,
        username: &str,
    ) -> Result<PendingOath> {
        let settings = self.settings_now().await?;
        let user = self.user(username).await?;
        let params = OathParams::default();
        let secret = oath::generate_secret(params.algorithm);
        self.pending(&user, &secret, params, false, &issuer(&settings))
    }

    pub(in crate::engine) async fn portal_import_oath_secret(
        &self,
        ctx: &Ctx,
        username: &str,
        import: ImportOath,
    ) -> Result<PendingOath> {
        const EVENT: &str = "portal.oath_import";
        let settings = self.settings_now().await?;
        let user = self.user(username).await?;
        let allowed = if user.default_method.is_none() {
            settings.portal.enrollment_prompt_oath_token
        } else {
            settings.portal.allow_third_party_oath
        };
        if !allowed {
            return self
                .refuse(
                    ctx,
                    EVENT,
                    Some(&user.username),
                    Error::Forbidden("third-party OATH tokens are not allowed".into()),
                )
                .await;
        }
        let parsed = oath::parse_base32_secret(&import.secret_base32).and_then(|secret| {
            let params = OathParams {
                kind: import.kind,
                digits: import.digits.unwrap_or(6),
                ..OathParams::default()
            };
            oath::validate_params(&params).map(|()| (secret, params))
        });
        match parsed {
            Ok((secret, params)) => self.pending(&user, &secret, params, true, &issuer(&settings)),
            Err(e) => self.refuse(ctx, EVENT, Some(&user.username), e).await,
        }
    }

    pub(in crate::engine) async fn portal_confirm_oath(
        &self,
        ctx: &Ctx,
        username: &str,
        pending: String,
        code: String,
    ) -> Result<String> {
        const EVENT: &str = "portal.oath_confirm";
        let settings = self.settings_now().await?;
        self.rate_limit(ctx)?;
        let user = self.user(username).await?;
        let mut s = match self.open_oath(&pending, &user, false) {
            Ok(s) => s,
            Err(e) => return self.refuse(ctx, EVENT, Some(&user.username), e).await,
        };
        let code = self
            .checked(
                ctx,
                EVENT,
                Some(&user.username),
                oath::normalize_code(&code, s.params.digits),
            )
            .await?;
        let secret = oath::parse_base32_secret(&s.secret)?;
        let matched = match s.params.kind {
            OathKind::Totp => oath::verify_totp(
                &secret,
                &s.params,
                &code,
                self.clock.now().unix_timestamp(),
                settings.oath.time_step_window,
                s.counter,
            ),
            OathKind::Hotp => oath::verify_hotp(
                &secret,
                &s.params,
                &code,
                s.counter,
                settings.oath.hotp_look_ahead,
            )
            .map(|c| c + 1),
        };
        let Some(next) = matched else {
            self.source_throttle
                .fail(ctx.guess_source, self.clock.now());
            return self
                .refuse(ctx, EVENT, Some(&user.username), Error::invalid("code", "the code does not match; check that your device's clock is right and try the next code"))
                .await;
        };
        s.counter = next;
        s.confirmed = true;
        s.issued_at = self.clock.now().unix_timestamp();
        self.audit_result(
            ctx,
            EVENT,
            &user.username,
            ResultCode::SuccessOathConfirmed,
            None,
        )
        .await?;
        self.seal_oath(&s)
    }

    pub(in crate::engine) async fn portal_finish_enrollment(
        &self,
        ctx: &Ctx,
        username: &str,
        finish: FinishEnrollment,
    ) -> Result<User> {
        const EVENT: &str = "portal.enroll";
        let settings = self.settings_now().await?;
        let user = self.user(username).await?;
        let result: Result<Enrollment> = async {
            if !settings.portal.allow_enrollment {
                return Err(Error::Forbidden("enrollment is not allowed".into()));
            }
            let options = self.portal_enrollment_options(ctx, username).await?;
            if !options.methods.contains(&finish.method.method)
                || options.mode_for(finish.method.method) != finish.method.mode
            {
                return Err(Error::invalid("method", "this method cannot be chosen"));
            }
            let chosen = methods::method(finish.method.method)
                .ok_or_else(|| Error::invalid("method", "this method cannot be chosen"))?;
            let (token, proved) = match chosen.enrollment() {
                methods::Enrollment::OathSecret => (
                    Some(self.confirmed_token(
                        &user,
                        finish.oath.as_deref().ok_or_else(|| {
                            Error::invalid("code", "confirm your token with a code first")
                        })?,
                        "",
                    )?),
                    None,
                ),
                methods::Enrollment::Phone => (
                    None,
                    Some(
                        self.proved_phone(ctx, &user, &finish, &settings)
                            .await
                            .map(|(phones, pin)| (Some(phones), pin))?,
                    ),
                ),
                methods::Enrollment::MobileApp => {
                    let pin = self.proved_app(ctx, &user, &finish).await?;
                    (None, Some((None, pin)))
                }
            };
            let (phones, proved_pin) = proved.unzip();
            let phones = phones.flatten();
            let pin_hash = if let Some(hash) = proved_pin.flatten() {
                // Chosen with the call or text, and asked by it.
                Some(hash)
            } else if finish.method.mode.needs_pin() {
                let p = finish
                    .pin
                    .as_deref()
                    .ok_or_else(|| crate::pin::PinProblem::Empty.error())?;
                Some(self.checked_pin_hash(&user, p, &settings).await?)
            } else {
                None
            };
            let answers = if options.questions_required > 0 {
                self.hashed_answers(&finish.answers, &options.questions)
                    .await?
            } else {
                Vec::new()
            };
            Ok(Enrollment {
                method: finish.method,
                token,
                pin_hash,
                answers,
                expected_version: Some(user.version),
                phones,
            })
        }
        .await;
        let enrollment = match result {
            Ok(e) => e,
            Err(e) => return self.refuse(ctx, EVENT, Some(&user.username), e).await,
        };
        let ev = self.event_with_method(
            ctx,
            EVENT,
            Some(&user.username),
            Some(enrollment.method.to_string()),
            ResultCode::SuccessEnrolled,
        );
        match self
            .store
            .complete_enrollment(user.id, &enrollment, &ev)
            .await
        {
            Ok(u) => Ok(u),
            Err(e) => self.refuse(ctx, EVENT, Some(&user.username), e).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;

    #[test]
    fn the_issuer_is_the_organisation_then_the_portals_host() {
        let mut s = Settings::default();
        assert_eq!(issuer(&s), "Twofold");
        s.portal.url = "https://mfa.example.org:8443/portal".into();
        assert_eq!(issuer(&s), "mfa.example.org");
        s.portal.url = "https://[2001:db8::1]:8443/".into();
        assert_eq!(issuer(&s), "[2001:db8::1]");
        s.portal.organization_name = " Example B.V. ".into();
        assert_eq!(issuer(&s), "Example B.V.");
    }
}
