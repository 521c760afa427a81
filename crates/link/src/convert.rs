//! Engine types to and from the link's wire types (`twofold_proto::link`).
//! The server turns its answers into wire types with `to_*`; the remote
//! portal turns them back with `from_*`. A value the other side cannot read
//! is an error naming what was wrong, never a guess.

use serde::de::DeserializeOwned;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use twofold_core::challenge::{Authentication, ChallengeReason, ChallengeState};
use twofold_core::factors::{OathParams, OathToken, SecurityQuestion};
use twofold_core::mobile::{ActivationOffer, DeviceView, PushKind};
use twofold_core::portal::{
    Account, AccountAllows, EnrollmentOptions, PendingOath, SecondStep, SignIn, Verified,
};
use twofold_core::settings::{PinRules, Settings};
use twofold_core::user::{DefaultMethod, MethodKind, User};
use twofold_core::{Error, Result};
use twofold_proto::link::{
    LinkAccount, LinkActivation, LinkAllows, LinkAnswer, LinkDevice, LinkEnrollmentOptions,
    LinkOathParams, LinkPendingOath, LinkPhoneStarted, LinkPinRules, LinkQuestion, LinkSecondStep,
    LinkSignIn, LinkToken, LinkUser, LinkVerified, PortalSettings,
};

fn bad(what: &str, why: impl std::fmt::Display) -> Error {
    Error::Internal(format!("portal link: {what}: {why}"))
}

/// An engine enum's stable snake_case name.
pub fn name<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// An engine enum from its name.
pub fn named<T: DeserializeOwned>(what: &str, s: &str) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).map_err(|e| bad(what, e))
}

pub fn time_text(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

pub fn time_of(what: &str, s: &str) -> Result<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).map_err(|e| bad(what, e))
}

pub fn method_of(s: &str) -> Result<DefaultMethod> {
    s.parse().map_err(|e| bad("method", e))
}

// --- engine → wire (the server) -------------------------------------------------

pub fn to_user(u: &User) -> LinkUser {
    LinkUser {
        id: u.id,
        username: u.username.clone(),
        display_name: u.display_name.clone(),
        email: u.email.clone(),
        groups: u.groups.clone(),
        language: u.language.clone(),
        phone: u.phone.clone(),
        phone_extension: u.phone_extension.clone(),
        backup_phone: u.backup_phone.clone(),
        mobile_phone: u.mobile_phone.clone(),
        enabled: u.enabled,
        locked_until: u.locked_until.map(time_text),
        fraud_blocked: u.fraud_blocked,
        method: u.default_method.map(|m| m.to_string()),
        created_at: time_text(u.created_at),
        updated_at: time_text(u.updated_at),
        version: u.version,
    }
}

pub fn to_question(q: &SecurityQuestion) -> LinkQuestion {
    LinkQuestion {
        id: q.id,
        language: q.language.clone(),
        text: q.text.clone(),
    }
}

fn to_params(p: &OathParams) -> LinkOathParams {
    LinkOathParams {
        kind: name(&p.kind),
        algorithm: name(&p.algorithm),
        digits: p.digits,
        period: p.period,
    }
}

fn to_pin_rules(r: &PinRules) -> LinkPinRules {
    LinkPinRules {
        min_length: r.min_length,
        prevent_weak: r.prevent_weak,
        expiry_days: r.expiry_days,
        history: r.history,
    }
}

pub fn to_settings(s: &Settings) -> PortalSettings {
    PortalSettings {
        allow_login: s.portal.allow_login,
        logging: s.portal.logging,
        languages: s.portal.languages.clone(),
        time_zone: Some(s.portal.time_zone.clone()),
    }
}

pub fn to_sign_in(s: &SignIn) -> LinkSignIn {
    match s {
        SignIn::Rejected => LinkSignIn::Rejected,
        SignIn::Blocked { user } => LinkSignIn::Blocked {
            user: to_user(user),
        },
        SignIn::LoginDisabled => LinkSignIn::LoginDisabled,
        SignIn::Complete { user, skip } => LinkSignIn::Complete {
            user: to_user(user),
            skip: name(skip),
        },
        SignIn::SecondStep { user, step } => LinkSignIn::SecondStep {
            user: to_user(user),
            step: LinkSecondStep {
                method: step.method.to_string(),
                method_available: step.method_available,
                fallback_questions: step.fallback_questions.iter().map(to_question).collect(),
                fallback_oath: step.fallback_oath,
                choose_pin: step.choose_pin,
                backup_phone: step.backup_phone,
            },
        },
        SignIn::Enroll { user } => LinkSignIn::Enroll {
            user: to_user(user),
        },
        SignIn::NotEnrolled { user } => LinkSignIn::NotEnrolled {
            user: to_user(user),
        },
    }
}

pub fn to_verified(v: &Verified) -> LinkVerified {
    match v {
        Verified::Accepted {
            user,
            session_minutes,
            choose_pin,
        } => LinkVerified::Accepted {
            user: Box::new(to_user(user)),
            session_minutes: *session_minutes,
            choose_pin: *choose_pin,
        },
        Verified::Rejected {
            locked,
            attempts_left,
            paused_seconds,
            reason,
        } => LinkVerified::Rejected {
            locked: *locked,
            attempts_left: *attempts_left,
            paused_seconds: *paused_seconds,
            reason: reason.map(ChallengeReason::as_str),
        },
        Verified::Waiting {
            phone,
            prompt,
            reason,
            number,
        } => LinkVerified::Waiting {
            phone: phone.clone(),
            prompt: name(prompt),
            reason: reason.map(ChallengeReason::as_str),
            number: *number,
        },
    }
}

pub fn to_phone_started(a: &Authentication) -> LinkPhoneStarted {
    LinkPhoneStarted {
        challenge: a.id.clone(),
        state: a.state.as_str().to_string(),
        reason: a.reason.map(ChallengeReason::as_str),
        prompt: a.prompt.map(|p| name(&p)),
        phone: a.phone.clone(),
        number: a.number,
    }
}

pub fn from_phone_started(s: LinkPhoneStarted) -> Result<Authentication> {
    Ok(Authentication {
        id: s.challenge,
        state: ChallengeState::parse(&s.state)
            .ok_or_else(|| bad("state", format!("{:?} is no challenge state", s.state)))?,
        reason: s.reason.as_deref().map(reason_of).transpose()?,
        method: None,
        prompt: s
            .prompt
            .as_deref()
            .map(|p| named("prompt", p))
            .transpose()?,
        pin_required: false,
        expires_at: None,
        phone: s.phone,
        number: s.number,
    })
}

fn reason_of(s: &str) -> Result<ChallengeReason> {
    ChallengeReason::parse(s).ok_or_else(|| bad("reason", format!("{s:?} is no reason")))
}

pub fn to_enrollment_options(o: &EnrollmentOptions) -> LinkEnrollmentOptions {
    LinkEnrollmentOptions {
        methods: o.methods.iter().map(|m| m.as_str().to_string()).collect(),
        preset: o.preset.map(|m| m.to_string()),
        allow_third_party_oath: o.allow_third_party_oath,
        questions_required: u32::try_from(o.questions_required).unwrap_or(u32::MAX),
        questions: o.questions.iter().map(to_question).collect(),
        pin_rules: to_pin_rules(&o.pin_rules),
        prompt_backup_phone: o.prompt_backup_phone,
    }
}

pub fn to_pending(p: &PendingOath) -> LinkPendingOath {
    LinkPendingOath {
        sealed: p.sealed.clone(),
        secret_base32: p.secret_base32.clone(),
        uri: p.uri.clone(),
        params: to_params(&p.params),
    }
}

pub fn to_token(t: &OathToken) -> LinkToken {
    LinkToken {
        id: t.id,
        label: t.label.clone(),
        params: to_params(&t.params),
        created_at: time_text(t.created_at),
    }
}

pub fn to_account(a: &Account) -> LinkAccount {
    let w = &a.allow;
    LinkAccount {
        user: to_user(&a.user),
        tokens: a.tokens.iter().map(to_token).collect(),
        has_pin: a.has_pin,
        pin_expired: a.pin_expired,
        pin_rules: to_pin_rules(&a.pin_rules),
        answers_set: u32::try_from(a.answers_set).unwrap_or(u32::MAX),
        bypass_until: a.bypass_until.map(time_text),
        allow: LinkAllows {
            select_method: w.select_method,
            select_language: w.select_language,
            bypass: w.bypass,
            bypass_prompt_seconds: w.bypass_prompt_seconds,
            bypass_default_seconds: w.bypass_default_seconds,
            bypass_max_seconds: w.bypass_max_seconds,
            third_party_oath: w.third_party_oath,
            security_questions: w.security_questions,
            change_pin: w.change_pin,
            change_phone: w.change_phone,
            activate_mobile_app: w.activate_mobile_app,
            max_mobile_devices: w.max_mobile_devices,
        },
        devices: a.devices.iter().map(to_device).collect(),
        selectable_methods: a
            .selectable_methods
            .iter()
            .map(|m| m.as_str().to_string())
            .collect(),
        questions: a.questions.iter().map(to_question).collect(),
        answered: a.answered.iter().map(to_question).collect(),
        questions_required: u32::try_from(a.questions_required).unwrap_or(u32::MAX),
    }
}

pub fn to_device(d: &DeviceView) -> LinkDevice {
    LinkDevice {
        id: d.id.clone(),
        name: d.name.clone(),
        activated_at: time_text(d.activated_at),
        last_used_at: d.last_used_at.map(time_text),
        push: d.push.map(|p| p.as_str().to_string()),
    }
}

pub fn to_activation(a: &ActivationOffer) -> LinkActivation {
    LinkActivation {
        code: a.code.clone(),
        url: a.url.clone(),
        uri: a.uri.clone(),
        fingerprint: a.fingerprint.clone(),
        expires_at: time_text(a.expires_at),
    }
}

// --- wire → engine (the remote portal) ------------------------------------------

pub fn from_device(d: LinkDevice) -> Result<DeviceView> {
    Ok(DeviceView {
        activated_at: time_of("activated_at", &d.activated_at)?,
        last_used_at: d
            .last_used_at
            .as_deref()
            .map(|t| time_of("last_used_at", t))
            .transpose()?,
        push: d.push.as_deref().and_then(PushKind::parse),
        id: d.id,
        name: d.name,
    })
}

pub fn from_activation(a: LinkActivation) -> Result<ActivationOffer> {
    Ok(ActivationOffer {
        expires_at: time_of("expires_at", &a.expires_at)?,
        code: a.code,
        url: a.url,
        uri: a.uri,
        fingerprint: a.fingerprint,
    })
}

pub fn from_user(u: LinkUser) -> Result<User> {
    Ok(User {
        id: u.id,
        username: u.username,
        display_name: u.display_name,
        email: u.email,
        groups: u.groups,
        language: u.language,
        phone: u.phone,
        phone_extension: u.phone_extension,
        backup_phone: u.backup_phone,
        mobile_phone: u.mobile_phone,
        enabled: u.enabled,
        locked_until: u
            .locked_until
            .as_deref()
            .map(|t| time_of("locked_until", t))
            .transpose()?,
        fraud_blocked: u.fraud_blocked,
        default_method: u.method.as_deref().map(method_of).transpose()?,
        created_at: time_of("created_at", &u.created_at)?,
        updated_at: time_of("updated_at", &u.updated_at)?,
        version: u.version,
    })
}

pub fn from_question(q: LinkQuestion) -> SecurityQuestion {
    SecurityQuestion {
        id: q.id,
        language: q.language,
        text: q.text,
    }
}

fn from_params(p: &LinkOathParams) -> Result<OathParams> {
    Ok(OathParams {
        kind: named("kind", &p.kind)?,
        algorithm: named("algorithm", &p.algorithm)?,
        digits: p.digits,
        period: p.period,
    })
}

fn from_pin_rules(r: &LinkPinRules) -> PinRules {
    PinRules {
        min_length: r.min_length,
        prevent_weak: r.prevent_weak,
        expiry_days: r.expiry_days,
        history: r.history,
    }
}

fn methods_of(names: &[String]) -> Result<Vec<MethodKind>> {
    names
        .iter()
        .map(|m| m.parse().map_err(|e| bad("methods", e)))
        .collect()
}

pub fn from_sign_in(s: LinkSignIn) -> Result<SignIn> {
    Ok(match s {
        LinkSignIn::Rejected => SignIn::Rejected,
        LinkSignIn::Blocked { user } => SignIn::Blocked {
            user: from_user(user)?,
        },
        LinkSignIn::LoginDisabled => SignIn::LoginDisabled,
        LinkSignIn::Complete { user, skip } => SignIn::Complete {
            user: from_user(user)?,
            skip: named("skip", &skip)?,
        },
        LinkSignIn::SecondStep { user, step } => SignIn::SecondStep {
            user: from_user(user)?,
            step: SecondStep {
                method: method_of(&step.method)?,
                method_available: step.method_available,
                fallback_questions: step
                    .fallback_questions
                    .into_iter()
                    .map(from_question)
                    .collect(),
                fallback_oath: step.fallback_oath,
                choose_pin: step.choose_pin,
                backup_phone: step.backup_phone,
            },
        },
        LinkSignIn::Enroll { user } => SignIn::Enroll {
            user: from_user(user)?,
        },
        LinkSignIn::NotEnrolled { user } => SignIn::NotEnrolled {
            user: from_user(user)?,
        },
    })
}

pub fn from_verified(v: LinkVerified) -> Result<Verified> {
    Ok(match v {
        LinkVerified::Accepted {
            user,
            session_minutes,
            choose_pin,
        } => Verified::Accepted {
            user: Box::new(from_user(*user)?),
            session_minutes,
            choose_pin,
        },
        LinkVerified::Rejected {
            locked,
            attempts_left,
            paused_seconds,
            reason,
        } => Verified::Rejected {
            locked,
            attempts_left,
            paused_seconds,
            reason: reason.as_deref().map(reason_of).transpose()?,
        },
        LinkVerified::Waiting {
            phone,
            prompt,
            reason,
            number,
        } => Verified::Waiting {
            phone,
            prompt: named("prompt", &prompt)?,
            reason: reason.as_deref().map(reason_of).transpose()?,
            number,
        },
    })
}

pub fn from_enrollment_options(o: LinkEnrollmentOptions) -> Result<EnrollmentOptions> {
    Ok(EnrollmentOptions {
        methods: methods_of(&o.methods)?,
        preset: o.preset.as_deref().map(method_of).transpose()?,
        allow_third_party_oath: o.allow_third_party_oath,
        questions_required: o.questions_required as usize,
        questions: o.questions.into_iter().map(from_question).collect(),
        pin_rules: from_pin_rules(&o.pin_rules),
        prompt_backup_phone: o.prompt_backup_phone,
    })
}

pub fn from_pending(p: LinkPendingOath) -> Result<PendingOath> {
    Ok(PendingOath {
        sealed: p.sealed,
        secret_base32: p.secret_base32,
        uri: p.uri,
        params: from_params(&p.params)?,
    })
}

/// A token as the portal shows it (no secret, no counter: the portal does
/// not need them and never receives them).
pub fn from_token(t: LinkToken, user_id: i64) -> Result<OathToken> {
    Ok(OathToken {
        id: t.id,
        user_id,
        label: t.label,
        params: from_params(&t.params)?,
        sealed_secret: String::new(),
        counter: 0,
        created_at: time_of("created_at", &t.created_at)?,
    })
}

pub fn from_account(a: LinkAccount) -> Result<Account> {
    let user = from_user(a.user)?;
    let w = a.allow;
    Ok(Account {
        tokens: a
            .tokens
            .into_iter()
            .map(|t| from_token(t, user.id))
            .collect::<Result<_>>()?,
        user,
        has_pin: a.has_pin,
        pin_expired: a.pin_expired,
        pin_rules: from_pin_rules(&a.pin_rules),
        answers_set: a.answers_set as usize,
        bypass_until: a
            .bypass_until
            .as_deref()
            .map(|t| time_of("bypass_until", t))
            .transpose()?,
        allow: AccountAllows {
            select_method: w.select_method,
            select_language: w.select_language,
            bypass: w.bypass,
            bypass_prompt_seconds: w.bypass_prompt_seconds,
            bypass_default_seconds: w.bypass_default_seconds,
            bypass_max_seconds: w.bypass_max_seconds,
            third_party_oath: w.third_party_oath,
            security_questions: w.security_questions,
            change_pin: w.change_pin,
            change_phone: w.change_phone,
            activate_mobile_app: w.activate_mobile_app,
            max_mobile_devices: w.max_mobile_devices,
        },
        devices: a
            .devices
            .into_iter()
            .map(from_device)
            .collect::<Result<_>>()?,
        selectable_methods: methods_of(&a.selectable_methods)?,
        questions: a.questions.into_iter().map(from_question).collect(),
        answered: a.answered.into_iter().map(from_question).collect(),
        questions_required: a.questions_required as usize,
    })
}

pub fn answers_to_wire(answers: Vec<(i64, String)>) -> Vec<LinkAnswer> {
    answers
        .into_iter()
        .map(|(question_id, answer)| LinkAnswer {
            question_id,
            answer,
        })
        .collect()
}

pub fn answers_from_wire(answers: Vec<LinkAnswer>) -> Vec<(i64, String)> {
    answers
        .into_iter()
        .map(|a| (a.question_id, a.answer))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use twofold_core::factors::{OathAlgorithm, OathKind};
    use twofold_core::portal::Skip;

    fn user() -> User {
        let t = time::macros::datetime!(2026-03-01 10:00 UTC);
        User {
            id: 7,
            username: "jan".into(),
            display_name: Some("Jan".into()),
            email: None,
            groups: vec!["VPN".into()],
            language: Some("nl".into()),
            phone: Some("+31207948261".into()),
            phone_extension: Some("42".into()),
            backup_phone: None,
            mobile_phone: None,
            enabled: true,
            locked_until: Some(t),
            fraud_blocked: false,
            default_method: Some("oath_token:oath_pin".parse().unwrap()),
            created_at: t,
            updated_at: t,
            version: 4,
        }
    }

    #[test]
    fn users_survive_the_link() {
        let u = user();
        assert_eq!(from_user(to_user(&u)).unwrap(), u);
    }

    #[test]
    fn sign_in_survives_the_link() {
        let s = SignIn::SecondStep {
            user: user(),
            step: SecondStep {
                method: "oath_token:oath".parse().unwrap(),
                method_available: true,
                fallback_questions: vec![SecurityQuestion {
                    id: 2,
                    language: "en".into(),
                    text: "Pet?".into(),
                }],
                fallback_oath: true,
                choose_pin: true,
                backup_phone: true,
            },
        };
        let back = from_sign_in(to_sign_in(&s)).unwrap();
        assert_eq!(format!("{back:?}"), format!("{s:?}"));
        let c = SignIn::Complete {
            user: user(),
            skip: Skip::TrustedIp,
        };
        assert_eq!(
            format!("{:?}", from_sign_in(to_sign_in(&c)).unwrap()),
            format!("{c:?}")
        );
    }

    #[test]
    fn pending_secrets_and_tokens_survive_the_link() {
        let p = PendingOath {
            sealed: "s".into(),
            secret_base32: "JBSWY3DP".into(),
            uri: "otpauth://totp/x".into(),
            params: OathParams {
                kind: OathKind::Hotp,
                algorithm: OathAlgorithm::Sha256,
                digits: 8,
                period: 30,
            },
        };
        let back = from_pending(to_pending(&p)).unwrap();
        assert_eq!(back.params, p.params);
        assert_eq!(back.sealed, "s");
    }

    #[test]
    fn unreadable_values_are_errors() {
        let mut u = to_user(&user());
        u.method = Some("fax".into());
        assert!(from_user(u).is_err());
        let mut u = to_user(&user());
        u.created_at = "yesterday".into();
        assert!(from_user(u).is_err());
    }
}
