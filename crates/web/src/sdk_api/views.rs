//! The engine's types as the SDK serves them (`twofold_proto`), and the
//! few requests that turn into engine types. `twofold_proto` knows nothing
//! of the engine, so the conversions live here, where both sides are known.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use twofold_core::audit::AuditEvent;
use twofold_core::challenge::{Authentication, ChallengeState, Prompt};
use twofold_core::factors::{
    OathAlgorithm, OathKind, OathParams, OathToken, SecurityQuestion, ServiceAccount,
};
use twofold_core::user::User;
use twofold_core::Scope;
use twofold_proto::{
    AnswerResponse, AuditView, AuthenticationPrompt, AuthenticationState, AuthenticationStatus,
    QuestionView, ServiceAccountView, StartAuthenticationResponse, TokenAlgorithm, TokenRequest,
    TokenType, TokenView, UserView,
};

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// A user as of `now` (the status says whether a lockout still holds).
pub fn user_view(u: &User, now: OffsetDateTime) -> UserView {
    UserView {
        username: u.username.clone(),
        display_name: u.display_name.clone(),
        email: u.email.clone(),
        groups: u.groups.clone(),
        language: u.language.clone(),
        phone: u.phone.clone(),
        phone_extension: u.phone_extension.clone(),
        backup_phone: u.backup_phone.clone(),
        mobile_phone: u.mobile_phone.clone(),
        status: u.status(now).to_string(),
        enabled: u.enabled,
        method: u.default_method.map(|m| m.to_string()),
        created_at: rfc3339(u.created_at),
        updated_at: rfc3339(u.updated_at),
    }
}

/// A token's parameters from a request; what is left out takes the usual
/// defaults (SHA-1, 6 digits, 30 seconds). The engine checks the period of
/// time-based tokens only (an event-based one has no use for it), but the
/// document gives one range for both, so a period out of it is refused for
/// either: an event-based token never shows a period the document denies.
pub fn token_params(r: &TokenRequest) -> Result<OathParams, twofold_core::Error> {
    use twofold_core::oath::{PERIOD_MAX, PERIOD_MIN};
    if let Some(p) = r.period.filter(|p| !(PERIOD_MIN..=PERIOD_MAX).contains(p)) {
        return Err(twofold_core::Error::invalid(
            "period",
            format!("must be {PERIOD_MIN} to {PERIOD_MAX} seconds, not {p}"),
        ));
    }
    Ok(OathParams {
        kind: match r.kind {
            TokenType::Totp => OathKind::Totp,
            TokenType::Hotp => OathKind::Hotp,
        },
        algorithm: match r.algorithm.unwrap_or(TokenAlgorithm::Sha1) {
            TokenAlgorithm::Sha1 => OathAlgorithm::Sha1,
            TokenAlgorithm::Sha256 => OathAlgorithm::Sha256,
            TokenAlgorithm::Sha512 => OathAlgorithm::Sha512,
        },
        digits: r.digits.unwrap_or(6),
        period: r.period.unwrap_or(30),
    })
}

/// A token without its secret.
pub fn token_view(t: &OathToken) -> TokenView {
    TokenView {
        id: t.id,
        label: t.label.clone(),
        kind: match t.params.kind {
            OathKind::Totp => TokenType::Totp,
            OathKind::Hotp => TokenType::Hotp,
        },
        algorithm: match t.params.algorithm {
            OathAlgorithm::Sha1 => TokenAlgorithm::Sha1,
            OathAlgorithm::Sha256 => TokenAlgorithm::Sha256,
            OathAlgorithm::Sha512 => TokenAlgorithm::Sha512,
        },
        digits: t.params.digits,
        period: t.params.period,
        created_at: rfc3339(t.created_at),
    }
}

pub fn question_view(q: &SecurityQuestion) -> QuestionView {
    QuestionView {
        id: q.id,
        language: q.language.clone(),
        text: q.text.clone(),
    }
}

pub fn audit_view(e: &AuditEvent) -> AuditView {
    AuditView {
        id: e.id,
        at: rfc3339(e.at),
        actor: e.actor.clone(),
        via: e.via.clone(),
        subject: e.subject.clone(),
        event: e.event.clone(),
        method: e.method.clone(),
        result: e.result.as_str(),
        source_ip: e.source_ip.map(|i| i.to_string()),
        detail: e.detail.clone(),
    }
}

/// A service account without its secret (also the CLI's `--json`).
pub fn service_account_view(a: &ServiceAccount) -> ServiceAccountView {
    ServiceAccountView {
        name: a.name.clone(),
        role: a.role.as_str().into(),
        permissions: a.permissions.iter().map(|p| p.as_str().into()).collect(),
        scope: Scope::from_group(a.scope_group.clone()).to_string(),
        created_at: rfc3339(a.created_at),
        rotated_at: a.rotated_at.map(rfc3339),
        last_used_at: a.last_used_at.map(rfc3339),
    }
}

pub fn authentication_state(s: ChallengeState) -> AuthenticationState {
    match s {
        ChallengeState::Pending => AuthenticationState::Pending,
        ChallengeState::Accepted => AuthenticationState::Accepted,
        ChallengeState::Rejected => AuthenticationState::Rejected,
        ChallengeState::Expired => AuthenticationState::Expired,
    }
}

pub fn start_authentication_response(a: &Authentication) -> StartAuthenticationResponse {
    StartAuthenticationResponse {
        id: a.id.clone(),
        state: authentication_state(a.state),
        reason: a
            .reason
            .map(twofold_core::challenge::ChallengeReason::as_str),
        method: a.method.map(|m| m.to_string()),
        prompt: a.prompt.map(|p| match p {
            Prompt::Passcode => AuthenticationPrompt::Passcode,
            Prompt::PhoneCall => AuthenticationPrompt::PhoneCall,
            Prompt::SmsReply => AuthenticationPrompt::SmsReply,
            Prompt::MobileApp => AuthenticationPrompt::MobileApp,
        }),
        pin_required: a.pin_required,
        expires_at: a.expires_at.map(rfc3339),
        phone: a.phone.clone(),
        number: a.number,
    }
}

pub fn authentication_status(a: &Authentication) -> AuthenticationStatus {
    AuthenticationStatus {
        id: a.id.clone().unwrap_or_default(),
        state: authentication_state(a.state),
        reason: a
            .reason
            .map(twofold_core::challenge::ChallengeReason::as_str),
        expires_at: a.expires_at.map(rfc3339).unwrap_or_default(),
    }
}

pub fn answer_response(a: &Authentication) -> AnswerResponse {
    AnswerResponse {
        state: authentication_state(a.state),
        reason: a
            .reason
            .map(twofold_core::challenge::ChallengeReason::as_str),
    }
}
