//! PIN rules: digits only, a length range, and (when the administrator asks
//! for it) no weak PINs: no sequences like 123 or 987, no repeats like 111 and
//! nothing taken from the user's own phone numbers. Messages never repeat the
//! PIN, so they are safe to show and to log.

use time::{Duration, OffsetDateTime};

use crate::error::{Error, Result};
use crate::settings::PinRules;

/// Longest PIN accepted, whatever the minimum.
pub const PIN_MAX_LENGTH: usize = 16;

/// Digits of a phone number run compared against the PIN.
const PHONE_RUN: usize = 4;

fn is_sequential(w: &[u8]) -> bool {
    match w {
        [a, b, c] => {
            (b.wrapping_sub(*a) == 1 && c.wrapping_sub(*b) == 1)
                || (a.wrapping_sub(*b) == 1 && b.wrapping_sub(*c) == 1)
        }
        _ => false,
    }
}

fn is_repeated(w: &[u8]) -> bool {
    matches!(w, [a, b, c] if a == b && b == c)
}

/// Which rule a refused PIN broke. The engine's refusal is
/// `Error::InvalidInput` on `pin` with the rule's `message()`; `of` reads the
/// rule back from that message, so a portal (in process or across the link,
/// where only the message travels) names the rule that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinProblem {
    Empty,
    NotDigits,
    /// Shorter than the configured minimum.
    TooShort(u32),
    TooLong,
    Sequence,
    Repeat,
    /// A run of digits from one of the user's phone numbers.
    Phone,
    /// One of the user's last N PINs.
    Recent(u32),
}

impl PinProblem {
    pub fn message(self) -> String {
        match self {
            PinProblem::Empty => "must not be empty".into(),
            PinProblem::NotDigits => "must contain digits only".into(),
            PinProblem::TooShort(min) => format!("must be at least {min} digits long"),
            PinProblem::TooLong => format!("must be at most {PIN_MAX_LENGTH} digits long"),
            PinProblem::Sequence => {
                "must not contain three digits in sequence, such as 123 or 987".into()
            }
            PinProblem::Repeat => {
                "must not contain the same digit three times in a row, such as 111".into()
            }
            PinProblem::Phone => format!(
                "must not contain {PHONE_RUN} digits in a row from one of your phone numbers"
            ),
            PinProblem::Recent(n) => {
                format!("choose a PIN you have not used for your last {n} PINs")
            }
        }
    }

    pub fn error(self) -> Error {
        Error::invalid("pin", self.message())
    }

    /// The rule whose `message()` this is.
    pub fn of(message: &str) -> Option<PinProblem> {
        let number = |prefix: &str, suffix: &str| {
            message
                .strip_prefix(prefix)?
                .strip_suffix(suffix)?
                .parse::<u32>()
                .ok()
        };
        [
            PinProblem::Empty,
            PinProblem::NotDigits,
            PinProblem::TooLong,
            PinProblem::Sequence,
            PinProblem::Repeat,
            PinProblem::Phone,
        ]
        .into_iter()
        .find(|p| p.message() == message)
        .or_else(|| number("must be at least ", " digits long").map(PinProblem::TooShort))
        .or_else(|| {
            number("choose a PIN you have not used for your last ", " PINs").map(PinProblem::Recent)
        })
    }
}

/// Checks a new PIN against the rules. `phone_numbers` are the user's phone
/// numbers as stored (any formatting; only their digits are compared).
pub fn check_pin(pin: &str, rules: &PinRules, phone_numbers: &[&str]) -> Result<()> {
    if pin.is_empty() {
        return Err(PinProblem::Empty.error());
    }
    if !pin.chars().all(|c| c.is_ascii_digit()) {
        return Err(PinProblem::NotDigits.error());
    }
    // Digits only, so bytes and characters are the same count.
    let len = pin.len();
    let min = usize::try_from(rules.min_length).unwrap_or(usize::MAX);
    if len < min {
        return Err(PinProblem::TooShort(rules.min_length).error());
    }
    if len > PIN_MAX_LENGTH {
        return Err(PinProblem::TooLong.error());
    }
    if !rules.prevent_weak {
        return Ok(());
    }
    let digits = pin.as_bytes();
    if digits.windows(3).any(is_sequential) {
        return Err(PinProblem::Sequence.error());
    }
    if digits.windows(3).any(is_repeated) {
        return Err(PinProblem::Repeat.error());
    }
    for phone in phone_numbers {
        let phone_digits: Vec<u8> = phone.bytes().filter(u8::is_ascii_digit).collect();
        if phone_digits.len() < PHONE_RUN {
            continue;
        }
        let taken = digits
            .windows(PHONE_RUN)
            .any(|run| phone_digits.windows(PHONE_RUN).any(|p| p == run));
        if taken {
            return Err(PinProblem::Phone.error());
        }
    }
    Ok(())
}

/// Whether a PIN set at `set_at` must be changed at `now`. `expiry_days` 0
/// means PINs never expire. A PIN expires at exactly `set_at + expiry_days`.
pub fn pin_expired(set_at: OffsetDateTime, now: OffsetDateTime, expiry_days: u32) -> bool {
    if expiry_days == 0 {
        return false;
    }
    match set_at.checked_add(Duration::days(i64::from(expiry_days))) {
        Some(expires_at) => now >= expires_at,
        // Beyond the calendar's end: never reached.
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn rules(min_length: u32, prevent_weak: bool) -> PinRules {
        PinRules {
            min_length,
            prevent_weak,
            expiry_days: 0,
            history: 5,
        }
    }

    fn message(r: Result<()>) -> String {
        match r.unwrap_err() {
            Error::InvalidInput { field, message } => {
                assert_eq!(field, "pin");
                message
            }
            other => panic!("unexpected error {other:?}"),
        }
    }

    #[test]
    fn digits_only() {
        let r = rules(4, false);
        for bad in [
            "12a4",
            "12 34",
            " 1357",
            "1357 ",
            "١٣٥٧",
            "１３５７",
            "-1357",
            "13.5",
        ] {
            assert!(
                message(check_pin(bad, &r, &[])).contains("digits only"),
                "{bad:?}"
            );
        }
        assert!(message(check_pin("", &r, &[])).contains("empty"));
    }

    #[test]
    fn length_bounds() {
        let r = rules(4, false);
        assert!(message(check_pin("135", &r, &[])).contains("at least 4"));
        assert!(check_pin("1357", &r, &[]).is_ok());
        let r6 = rules(6, false);
        assert!(message(check_pin("13579", &r6, &[])).contains("at least 6"));
        assert!(check_pin("135792", &r6, &[]).is_ok());
        assert!(check_pin(&"1".repeat(16), &r, &[]).is_ok());
        assert!(message(check_pin(&"1".repeat(17), &r, &[])).contains("at most 16"));
        // A minimum above the maximum refuses everything, without panicking.
        assert!(check_pin("1357", &rules(u32::MAX, false), &[]).is_err());
    }

    #[test]
    fn sequences() {
        let r = rules(4, true);
        for bad in ["1234", "9876", "5123", "2987", "13579012", "0123", "7890"] {
            assert!(
                message(check_pin(bad, &r, &[])).contains("in sequence"),
                "{bad}"
            );
        }
        // Two in a row is fine, so is a wrap-around 901 or a gap.
        for ok in ["1247", "8653", "9013", "1357", "2468", "1213"] {
            assert!(check_pin(ok, &r, &[]).is_ok(), "{ok}");
        }
    }

    #[test]
    fn repeats() {
        let r = rules(4, true);
        for bad in ["1111", "5000", "2444", "13555"] {
            assert!(
                message(check_pin(bad, &r, &[])).contains("three times"),
                "{bad}"
            );
        }
        for ok in ["1100", "5005", "2442"] {
            assert!(check_pin(ok, &r, &[]).is_ok(), "{ok}");
        }
    }

    #[test]
    fn weak_allowed_when_not_prevented() {
        let r = rules(4, false);
        for pin in ["1111", "1234", "9876", "5550"] {
            assert!(check_pin(pin, &r, &["+1 555 0123"]).is_ok(), "{pin}");
        }
    }

    #[test]
    fn phone_numbers() {
        let r = rules(4, true);
        let phones = ["+31 (20) 794-8152", "06-1357 2468"];
        for bad in [
            "7948", "9481", "8152", "0794", "5724", "135724", "61357", "24680", "13579481",
        ] {
            assert!(
                message(check_pin(bad, &r, &phones)).contains("phone number"),
                "{bad}"
            );
        }
        // Three digits from a phone number are fine, and so is a run that
        // spans the end of one number and the start of the next.
        for ok in ["7940", "8150", "1520", "6813", "5206"] {
            assert!(check_pin(ok, &r, &phones).is_ok(), "{ok}");
        }
        // Short or digit-less numbers never match.
        assert!(check_pin("1357", &r, &["135", "n/a", ""]).is_ok());
        assert!(check_pin("7948", &r, &[]).is_ok());
    }

    #[test]
    fn every_rule_is_read_back_from_its_message() {
        for p in [
            PinProblem::Empty,
            PinProblem::NotDigits,
            PinProblem::TooShort(6),
            PinProblem::TooLong,
            PinProblem::Sequence,
            PinProblem::Repeat,
            PinProblem::Phone,
            PinProblem::Recent(5),
        ] {
            assert_eq!(PinProblem::of(&p.message()), Some(p), "{p:?}");
        }
        assert_eq!(PinProblem::of("something else"), None);
        let Error::InvalidInput { message, .. } =
            check_pin("12", &rules(4, true), &[]).unwrap_err()
        else {
            panic!("invalid input");
        };
        assert_eq!(PinProblem::of(&message), Some(PinProblem::TooShort(4)));
    }

    #[test]
    fn expiry() {
        let set = datetime!(2024-01-01 12:00 UTC);
        assert!(!pin_expired(set, datetime!(2100-01-01 0:00 UTC), 0));
        assert!(!pin_expired(set, datetime!(2024-01-31 11:59:59 UTC), 30));
        assert!(pin_expired(set, datetime!(2024-01-31 12:00 UTC), 30));
        assert!(pin_expired(set, datetime!(2024-03-01 0:00 UTC), 30));
        assert!(!pin_expired(set, set, 1));
        assert!(!pin_expired(
            OffsetDateTime::new_utc(time::Date::MAX, time::Time::MIDNIGHT),
            OffsetDateTime::new_utc(time::Date::MAX, time::Time::MIDNIGHT),
            u32::MAX
        ));
    }
}
