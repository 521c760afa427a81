//! Mobile app: Twofold asks the user's activated devices (Mobile App Web
//! Service, `engine::mobile_app`), the application shows a two-digit
//! number, and the user approves in the app by picking that number
//! (`phone_app_standard`), with their PIN too (`phone_app_pin`), or denies
//! or reports fraud. The app's TOTP codes are OATH tokens and work as the
//! `oath` fallback.

use super::{Enrollment, Holdings, Method};
use crate::challenge::Prompt;
use crate::user::{MethodKind, Mode};

pub struct MobileApp;

impl Method for MobileApp {
    fn kind(&self) -> MethodKind {
        MethodKind::MobileApp
    }

    fn ready(&self, holdings: &Holdings) -> bool {
        holdings.mobile_devices > 0
    }

    fn not_ready_hint(&self) -> &'static str {
        "activate the mobile app first"
    }

    fn prompt(&self, _mode: Mode) -> Prompt {
        Prompt::MobileApp
    }

    fn pin_in_passcode(&self, _mode: Mode) -> bool {
        // The PIN is typed in the app, with the approval.
        false
    }

    fn code_held_by_user(&self) -> bool {
        false
    }

    fn enrollment(&self) -> Enrollment {
        Enrollment::MobileApp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_a_device_and_answers_in_the_app() {
        assert!(!MobileApp.ready(&Holdings {
            oath_tokens: 1,
            phone: true,
            ..Holdings::default()
        }));
        assert!(MobileApp.ready(&Holdings {
            mobile_devices: 1,
            ..Holdings::default()
        }));
        assert_eq!(MobileApp.prompt(Mode::PhoneAppPin), Prompt::MobileApp);
        assert!(!MobileApp.pin_in_passcode(Mode::PhoneAppPin));
        assert!(!MobileApp.code_held_by_user());
    }
}
