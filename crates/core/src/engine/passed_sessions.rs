//! Passed sessions (forward-auth): opened by the portal once its sign-in is
//! complete, checked on every request a reverse proxy asks about, ended by
//! signing out. The rules themselves are in `crate::passed`.

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use super::Engine;
use crate::audit::ResultCode;
use crate::error::{Error, Result};
use crate::passed::{
    check_return_url, parse_rules, parse_sites, policy_for, ForwardDecision, ForwardRequest, Level,
    PassedSession, PassedTicket, PassedVia, Policy, RemoteUser, ReturnRefused, Target, MAX_COOKIES,
};
use crate::principal::Need;
use crate::service::{Ctx, ForwardAuth};
use crate::settings::{PassedSessions, Settings};
use crate::user::{User, UserStatus};

/// A passed session's last use is written at most this often (and at
/// least every tenth of the inactivity timeout): a page with fifty assets
/// must not cost fifty writes.
const TOUCH_EVERY_SECONDS: i64 = 60;

/// The SHA-256 of a passed-session token, as stored: the table holds no
/// usable token. Tokens are 43 base64url characters (32 random bytes);
/// anything else is no token at all.
fn token_hash(token: &str) -> Option<String> {
    let well_formed = token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    well_formed.then(|| hex::encode(Sha256::digest(format!("passed:{token}").as_bytes())))
}

fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    B64.encode(bytes)
}

impl PassedSessions {
    /// What a sign-in completed `via` proves, as these settings count it.
    fn level(&self, via: PassedVia) -> Level {
        match via {
            PassedVia::SecondStep => Level::TwoFactor,
            PassedVia::Bypass if self.bypass_counts => Level::TwoFactor,
            PassedVia::TrustedIp if self.trusted_ip_counts => Level::TwoFactor,
            PassedVia::Bypass | PassedVia::TrustedIp | PassedVia::Enrollment => Level::OneFactor,
        }
    }

    fn expiry(&self, created: OffsetDateTime, seen: OffsetDateTime) -> OffsetDateTime {
        (seen + Duration::seconds(i64::from(self.lifetime_seconds)))
            .min(created + Duration::seconds(i64::from(self.max_lifetime_seconds)))
    }

    fn cookie_domain(&self) -> Option<String> {
        (!self.cookie_domain.is_empty()).then(|| self.cookie_domain.clone())
    }
}

/// Whether `user` is among the groups of the rule that matched (no groups:
/// everyone).
fn in_groups(user: &User, groups: &[String]) -> bool {
    groups.is_empty()
        || user
            .groups
            .iter()
            .any(|g| groups.iter().any(|want| want.eq_ignore_ascii_case(g)))
}

/// The address to send `user` back to, or why not: a protected site's
/// (never elsewhere: no open redirect) that lets this user in.
fn return_address(
    settings: &Settings,
    user: &User,
    level: Level,
    raw: &str,
) -> std::result::Result<String, ReturnRefused> {
    let config = &settings.passed_sessions;
    let sites = parse_sites(&config.sites);
    let url = check_return_url(raw, &sites).ok_or(ReturnRefused::NotProtected)?;
    let target = Target::parse(&url).map_err(|_| ReturnRefused::NotProtected)?;
    let rules = parse_rules(&config.rules);
    let (policy, rule) = policy_for(&rules, &sites, &target);
    if policy == Policy::Deny || !rule.is_none_or(|r| in_groups(user, &r.groups)) {
        return Err(ReturnRefused::Denied);
    }
    if !policy.admits(level) {
        return Err(ReturnRefused::NeedsSecondStep);
    }
    Ok(url)
}

impl Engine {
    /// The portal's sign-in page, for a browser sent to sign in: the
    /// `portal.url` setting, else the server's public URL, with `/portal`.
    fn sign_in_page(&self, settings: &Settings) -> String {
        let base = settings.portal.url.trim().trim_end_matches('/');
        let base = if base.is_empty() {
            self.public_base(settings)
        } else {
            base.to_string()
        };
        if base.ends_with("/portal") {
            base
        } else {
            format!("{base}/portal")
        }
    }

    /// Opens a passed session for `username`, who has just completed the
    /// portal's sign-in `via`; `None` while passed sessions are off.
    pub(super) async fn open_passed_session(
        &self,
        ctx: &Ctx,
        username: &str,
        via: PassedVia,
        return_to: Option<String>,
    ) -> Result<Option<PassedTicket>> {
        let settings = self.settings_now().await?;
        let config = &settings.passed_sessions;
        if !config.enabled {
            return Ok(None);
        }
        let user = self.subject(ctx, "passed.open", username).await?;
        let now = self.clock.now();
        if user.status(now) != UserStatus::Enabled {
            return self
                .refuse(
                    ctx,
                    "passed.open",
                    Some(&user.username),
                    Error::Forbidden("the user may not sign in".into()),
                )
                .await;
        }
        let level = config.level(via);
        let (return_to, refused) = match return_to {
            None => (None, None),
            Some(raw) => match return_address(&settings, &user, level, &raw) {
                Ok(url) => (Some(url), None),
                Err(why) => (None, Some(why)),
            },
        };
        let token = new_token();
        let id_hash = token_hash(&token).ok_or_else(|| Error::Internal("token shape".into()))?;
        let session = PassedSession {
            id_hash,
            username: user.username.clone(),
            level,
            via,
            created_at: now,
            last_seen_at: now,
            expires_at: config.expiry(now, now),
        };
        let mut ev = self.event(
            ctx,
            "passed.open",
            Some(&user.username),
            ResultCode::SuccessSessionPassed,
        );
        ev.method = Some(via.as_str().to_string());
        ev.detail = Some(format!(
            "{}{}",
            level.as_str(),
            refused.map_or(String::new(), |r| format!(", not returned: {}", r.as_str()))
        ));
        self.store.passed_put(&session, user.id, &ev).await?;
        Ok(Some(PassedTicket {
            token,
            cookie_domain: config.cookie_domain(),
            max_age_seconds: i64::from(config.max_lifetime_seconds),
            return_to,
            refused,
        }))
    }

    /// Ends the passed session whose cookie is `token` (signing out ends it
    /// for every protected site). Returns the cookie domain to clear.
    pub(super) async fn close_passed_session(
        &self,
        ctx: &Ctx,
        token: &str,
    ) -> Result<Option<String>> {
        let settings = self.settings_now().await?;
        let now = self.clock.now();
        if let Some(id_hash) = token_hash(token) {
            if let Some(session) = self.store.passed_get(&id_hash, now).await? {
                let ev = self.event(
                    ctx,
                    "passed.close",
                    Some(&session.username),
                    ResultCode::SuccessSignedOut,
                );
                self.store.passed_delete(&id_hash, &ev).await?;
            }
        }
        Ok(settings.passed_sessions.cookie_domain())
    }

    /// The decision for one request a reverse proxy asks about.
    async fn forward_decision(
        &self,
        ctx: &Ctx,
        request: ForwardRequest,
    ) -> Result<ForwardDecision> {
        let settings = self.settings_now().await?;
        let config = &settings.passed_sessions;
        if !config.enabled {
            // Fail closed: a proxy pointed here while the feature is off
            // lets nothing through.
            tracing::warn!("forward-auth asked while passed_sessions.enabled is off: refused");
            return Ok(ForwardDecision::Forbidden);
        }
        let Some(target) = request.target else {
            // A proxy that did not say (or is not trusted to say) which
            // request it asks about: nothing can be let through.
            return Ok(ForwardDecision::Forbidden);
        };
        let sites = parse_sites(&config.sites);
        let rules = parse_rules(&config.rules);
        let (policy, rule) = policy_for(&rules, &sites, &target);
        match policy {
            Policy::Deny => return Ok(ForwardDecision::Forbidden),
            Policy::Bypass => return Ok(ForwardDecision::Allow(None)),
            Policy::OneFactor | Policy::TwoFactor => {}
        }
        let sign_in = || ForwardDecision::SignIn {
            portal: self.sign_in_page(&settings),
            return_to: check_return_url(&target.url, &sites),
        };
        let now = self.clock.now();
        let mut found = None;
        for id_hash in request.tokens.iter().filter_map(|t| token_hash(t)) {
            if let Some(session) = self.store.passed_get(&id_hash, now).await? {
                found = Some((id_hash, session));
                break;
            }
        }
        let Some((id_hash, session)) = found else {
            return Ok(sign_in());
        };
        let user = match self.store.find_user(&session.username).await? {
            Some(u) if u.status(now) == UserStatus::Enabled => u,
            other => {
                // Disabled, locked or deleted since: the session ends now.
                let mut ev = self.event(
                    ctx,
                    "passed.check",
                    Some(&session.username),
                    if other.is_some() {
                        ResultCode::FailedUserDisabled
                    } else {
                        ResultCode::FailedUserNotFound
                    },
                );
                ev.detail = Some("passed session ended: the user may no longer sign in".into());
                self.store.passed_delete(&id_hash, &ev).await?;
                return Ok(sign_in());
            }
        };
        if !policy.admits(session.level) {
            return Ok(sign_in());
        }
        if !rule.is_none_or(|r| in_groups(&user, &r.groups)) {
            let mut ev = self.event(
                ctx,
                "passed.check",
                Some(&user.username),
                ResultCode::FailedNotAllowed,
            );
            ev.detail = Some(format!(
                "{}{} needs a group of the rule {}",
                target.host,
                target.path,
                rule.map(ToString::to_string).unwrap_or_default()
            ));
            self.store.append_audit(&ev).await?;
            return Ok(ForwardDecision::Forbidden);
        }
        let idle = i64::from(config.lifetime_seconds);
        let every = (idle / 10).clamp(1, TOUCH_EVERY_SECONDS);
        if (now - session.last_seen_at).whole_seconds() >= every {
            let expires = config.expiry(session.created_at, now);
            self.store.passed_touch(&id_hash, now, expires).await?;
        }
        Ok(ForwardDecision::Allow(Some(RemoteUser {
            username: user.username,
            groups: user.groups,
            name: user.display_name,
            email: user.email,
        })))
    }
}

#[async_trait]
impl ForwardAuth for Engine {
    async fn forward_check(&self, ctx: &Ctx, request: ForwardRequest) -> Result<ForwardDecision> {
        // Never logged or audited; only bounded (a token that is not one
        // costs no lookup: `token_hash` refuses it).
        if request.tokens.len() > MAX_COOKIES {
            return Err(Error::invalid("cookie", "too many passed-session cookies"));
        }
        self.require(ctx, "passed.check", Need::Portal, None)
            .await?;
        self.forward_decision(ctx, request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> PassedSessions {
        Settings::default().passed_sessions
    }

    #[test]
    fn a_skipped_second_step_counts_only_where_the_settings_say() {
        let mut c = config();
        assert_eq!(c.level(PassedVia::SecondStep), Level::TwoFactor);
        for via in [
            PassedVia::Bypass,
            PassedVia::TrustedIp,
            PassedVia::Enrollment,
        ] {
            assert_eq!(c.level(via), Level::OneFactor, "{via:?}");
        }
        c.bypass_counts = true;
        c.trusted_ip_counts = true;
        assert_eq!(c.level(PassedVia::Bypass), Level::TwoFactor);
        assert_eq!(c.level(PassedVia::TrustedIp), Level::TwoFactor);
        assert_eq!(c.level(PassedVia::Enrollment), Level::OneFactor);
    }

    #[test]
    fn use_extends_a_session_up_to_its_absolute_lifetime() {
        let mut c = config();
        c.lifetime_seconds = 600;
        c.max_lifetime_seconds = 3600;
        let t0 = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        assert_eq!(c.expiry(t0, t0), t0 + Duration::seconds(600));
        let later = t0 + Duration::seconds(3300);
        assert_eq!(c.expiry(t0, later), t0 + Duration::seconds(3600));
    }

    #[test]
    fn tokens_of_the_wrong_shape_are_no_tokens() {
        let t = new_token();
        assert_eq!(t.len(), 43);
        assert_eq!(token_hash(&t).map(|h| h.len()), Some(64));
        assert_ne!(token_hash(&t), token_hash(&new_token()));
        assert!(token_hash("short").is_none());
        assert!(token_hash(&"a".repeat(44)).is_none());
        assert!(token_hash(&format!("{}=", &t[..42])).is_none());
    }
}
