//! Verification methods, one module each, behind the `Method` trait: what a
//! method needs the user to hold, what a verification with it asks for, and
//! what the enrollment wizard collects for it. The engine asks these
//! questions through the trait and never names a method itself, so phone
//! call, text message and mobile app arrive as modules beside `oath`
//! without touching the flows.
//!
//! A method whose delivery does not exist in this version has no module:
//! `method(kind)` is `None`, and the portal does not offer it.

pub mod mobile_app;
pub mod oath;
pub mod phone_call;
pub mod text_message;

use crate::challenge::Prompt;
use crate::user::{MethodKind, Mode, User};

/// What a user holds for their methods: counts and flags, never secrets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Holdings {
    pub oath_tokens: usize,
    /// A primary phone number is set.
    pub phone: bool,
    /// A mobile number (for text messages) is set.
    pub mobile_phone: bool,
    /// A backup phone is set.
    pub backup_phone: bool,
    /// Activated mobile-app devices.
    pub mobile_devices: usize,
}

impl Holdings {
    pub fn of(user: &User, oath_tokens: usize) -> Holdings {
        Holdings {
            oath_tokens,
            phone: user.phone.is_some(),
            mobile_phone: user.mobile_phone.is_some(),
            backup_phone: user.backup_phone.is_some(),
            mobile_devices: 0,
        }
    }

    /// The same, with the user's activated devices counted.
    pub fn with_devices(self, mobile_devices: usize) -> Holdings {
        Holdings {
            mobile_devices,
            ..self
        }
    }
}

/// What the enrollment wizard collects for a method before it is saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enrollment {
    /// An OATH secret the user proves with one code (authenticator app or
    /// third-party token).
    OathSecret,
    /// A phone number proved by a call or a text message to it before it is
    /// saved (not yet in the portal's wizard: set by an administrator).
    Phone,
    /// A device activated with a code from the wizard, proved by an
    /// approval in the app before the method is saved.
    MobileApp,
}

pub trait Method: Send + Sync + 'static {
    fn kind(&self) -> MethodKind;

    /// The user holds what this method needs to verify them.
    fn ready(&self, holdings: &Holdings) -> bool;

    /// What to tell a user (or an administrator) who chose the method but
    /// does not hold what it needs.
    fn not_ready_hint(&self) -> &'static str;

    /// What a verification with this method asks of the user.
    fn prompt(&self, mode: Mode) -> Prompt;

    /// The PIN is typed in front of the passcode (rather than asked by the
    /// method itself, as a phone call would).
    fn pin_in_passcode(&self, mode: Mode) -> bool;

    /// The code comes from something the user holds (an OATH token), so a
    /// single `validate` call can check it. Methods whose code Twofold
    /// sends, or that answer on the phone, need a challenge.
    fn code_held_by_user(&self) -> bool;

    /// What the wizard collects for it.
    fn enrollment(&self) -> Enrollment;
}

/// The methods this version can verify with.
/// The first is what a portal without a choice of method offers (OATH, as
/// before phones existed), so an upgrade changes nothing unasked.
pub const AVAILABLE: &[&dyn Method] = &[
    &oath::Oath,
    &phone_call::PhoneCall,
    &text_message::TextMessage,
    &mobile_app::MobileApp,
];

/// The module of `kind`, if this version has one.
pub fn method(kind: MethodKind) -> Option<&'static dyn Method> {
    AVAILABLE.iter().copied().find(|m| m.kind() == kind)
}

pub fn is_available(kind: MethodKind) -> bool {
    method(kind).is_some()
}

/// The method the original product offered as a fallback for every other
/// one ("Use OATH token for fallback"): the user's OATH token.
pub fn fallback() -> &'static dyn Method {
    &oath::Oath
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_methods_with_a_module_are_available() {
        for kind in [
            MethodKind::OathToken,
            MethodKind::PhoneCall,
            MethodKind::TextMessage,
            MethodKind::MobileApp,
        ] {
            assert!(is_available(kind), "{kind:?}");
        }
        for m in AVAILABLE {
            assert_eq!(method(m.kind()).map(Method::kind), Some(m.kind()));
        }
    }
}
