//! Text message: Twofold texts a 6-digit one-time code (valid 5 minutes,
//! used once) to the user's mobile number, or their phone when they have no
//! separate mobile. One-way modes: the user types the code (PIN in front in
//! the `_plus_pin` modes) where they sign in. Two-way modes: they reply to
//! the message with it; the reply comes back through the provider's webhook
//! (`engine::telephony`).

use super::{Enrollment, Holdings, Method};
use crate::challenge::Prompt;
use crate::user::{MethodKind, Mode};

pub struct TextMessage;

/// Digits of the code a text message carries.
pub const CODE_DIGITS: usize = 6;

/// Whether the user replies to the message (two-way) rather than typing the
/// code where they sign in.
pub fn two_way(mode: Mode) -> bool {
    matches!(mode, Mode::SmsTwoWayOtp | Mode::SmsTwoWayOtpPlusPin)
}

impl Method for TextMessage {
    fn kind(&self) -> MethodKind {
        MethodKind::TextMessage
    }

    fn ready(&self, holdings: &Holdings) -> bool {
        holdings.mobile_phone || holdings.phone
    }

    fn not_ready_hint(&self) -> &'static str {
        "set a mobile phone number first"
    }

    fn prompt(&self, mode: Mode) -> Prompt {
        if two_way(mode) {
            Prompt::SmsReply
        } else {
            Prompt::Passcode
        }
    }

    fn pin_in_passcode(&self, mode: Mode) -> bool {
        mode.needs_pin()
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
    fn modes() {
        assert!(TextMessage.ready(&Holdings {
            mobile_phone: true,
            ..Holdings::default()
        }));
        assert!(!TextMessage.ready(&Holdings::default()));
        assert_eq!(TextMessage.prompt(Mode::SmsOneWayOtp), Prompt::Passcode);
        assert_eq!(
            TextMessage.prompt(Mode::SmsTwoWayOtpPlusPin),
            Prompt::SmsReply
        );
        assert!(TextMessage.pin_in_passcode(Mode::SmsOneWayOtpPlusPin));
        assert!(!TextMessage.pin_in_passcode(Mode::SmsTwoWayOtp));
        assert!(!TextMessage.code_held_by_user());
    }
}
