//! Phone call: Twofold calls the user's phone (the extension dialled after
//! it connects), says a short text in their language and gathers keys with
//! `#` as the finishing key. `standard`: `#` alone approves. `pin`: the PIN
//! and `#`. The fraud code and `#` reports fraud (when allowed). The keys
//! come back through the provider's webhook (`engine::telephony`).

use super::{Enrollment, Holdings, Method};
use crate::challenge::Prompt;
use crate::user::{MethodKind, Mode};

pub struct PhoneCall;

impl Method for PhoneCall {
    fn kind(&self) -> MethodKind {
        MethodKind::PhoneCall
    }

    fn ready(&self, holdings: &Holdings) -> bool {
        holdings.phone
    }

    fn not_ready_hint(&self) -> &'static str {
        "set a phone number first"
    }

    fn prompt(&self, _mode: Mode) -> Prompt {
        Prompt::PhoneCall
    }

    fn pin_in_passcode(&self, _mode: Mode) -> bool {
        // The PIN is pressed on the phone, not typed with a code.
        false
    }

    fn code_held_by_user(&self) -> bool {
        false
    }

    fn enrollment(&self) -> Enrollment {
        Enrollment::Phone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_a_phone_and_answers_on_it() {
        assert!(!PhoneCall.ready(&Holdings {
            mobile_phone: true,
            ..Holdings::default()
        }));
        assert!(PhoneCall.ready(&Holdings {
            phone: true,
            ..Holdings::default()
        }));
        assert_eq!(PhoneCall.prompt(Mode::Pin), Prompt::PhoneCall);
        assert!(!PhoneCall.pin_in_passcode(Mode::Pin));
        assert!(!PhoneCall.code_held_by_user());
    }
}
