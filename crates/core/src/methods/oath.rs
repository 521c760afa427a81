//! OATH tokens (TOTP and HOTP: authenticator apps and hardware tokens): the
//! user types the code shown, with their PIN in front in `oath_pin` mode.
//! The code checks themselves are in `crate::oath` (RFC 4226/6238) and the
//! engine's `oath_check` (replay-safe counter compare-and-set).

use super::{Enrollment, Holdings, Method};
use crate::challenge::Prompt;
use crate::user::{DefaultMethod, MethodKind, Mode};

pub struct Oath;

/// What a user given a token by an administrator gets when they had no
/// method yet.
pub const DEFAULT: DefaultMethod = DefaultMethod {
    method: MethodKind::OathToken,
    mode: Mode::Oath,
};

impl Method for Oath {
    fn kind(&self) -> MethodKind {
        MethodKind::OathToken
    }

    fn ready(&self, holdings: &Holdings) -> bool {
        holdings.oath_tokens > 0
    }

    fn not_ready_hint(&self) -> &'static str {
        "add an OATH token first"
    }

    fn prompt(&self, _mode: Mode) -> Prompt {
        Prompt::Passcode
    }

    fn pin_in_passcode(&self, mode: Mode) -> bool {
        mode.needs_pin()
    }

    fn code_held_by_user(&self) -> bool {
        true
    }

    fn enrollment(&self) -> Enrollment {
        Enrollment::OathSecret
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_with_a_token() {
        assert!(!Oath.ready(&Holdings::default()));
        assert!(Oath.ready(&Holdings {
            oath_tokens: 1,
            ..Default::default()
        }));
        assert!(Oath.pin_in_passcode(Mode::OathPin));
        assert!(!Oath.pin_in_passcode(Mode::Oath));
    }
}
