//! Security questions: the text an administrator sets for a question, and the
//! form an answer is hashed and compared in, so " Amsterdam" and "amsterdam"
//! are the same answer.

use crate::error::{Error, Result};

/// Answers a user gives when enrolling; sign-in then asks for a subset
/// (`portal.security_questions_required`).
pub const ANSWERS_REQUIRED_AT_ENROLLMENT: usize = 4;
/// Longest answer, in characters, as typed (after trimming and collapsing
/// whitespace).
pub const ANSWER_MAX: usize = 128;
pub const QUESTION_MIN: usize = 5;
pub const QUESTION_MAX: usize = 200;

/// The comparable form of an answer: trimmed, inner whitespace runs collapsed
/// to one space, lowercased.
pub fn normalize_answer(raw: &str) -> Result<String> {
    let collapsed = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.is_empty() {
        return Err(Error::invalid("answer", "must not be empty"));
    }
    if collapsed.chars().count() > ANSWER_MAX {
        return Err(Error::invalid(
            "answer",
            format!("must be at most {ANSWER_MAX} characters"),
        ));
    }
    if collapsed.chars().any(char::is_control) {
        return Err(Error::invalid(
            "answer",
            "must not contain control characters",
        ));
    }
    Ok(collapsed.to_lowercase())
}

/// A question's text as an administrator enters it: trimmed, 5 to 200
/// characters, no control characters.
pub fn validate_question_text(raw: &str) -> Result<String> {
    let text = raw.trim();
    let len = text.chars().count();
    if len == 0 {
        return Err(Error::invalid("question", "must not be empty"));
    }
    if len < QUESTION_MIN {
        return Err(Error::invalid(
            "question",
            format!("must be at least {QUESTION_MIN} characters"),
        ));
    }
    if len > QUESTION_MAX {
        return Err(Error::invalid(
            "question",
            format!("must be at most {QUESTION_MAX} characters"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(Error::invalid(
            "question",
            "must not contain control characters",
        ));
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal<T: std::fmt::Debug>(r: Result<T>) -> (String, String) {
        match r.unwrap_err() {
            Error::InvalidInput { field, message } => (field, message),
            other => panic!("unexpected error {other:?}"),
        }
    }

    #[test]
    fn answers_are_normalized() {
        assert_eq!(normalize_answer("Amsterdam").unwrap(), "amsterdam");
        assert_eq!(
            normalize_answer("  New \t York\n City  ").unwrap(),
            "new york city"
        );
        assert_eq!(normalize_answer("ÉCOLE Ülm").unwrap(), "école ülm");
        assert_eq!(normalize_answer("ΣΊΣΥΦΟΣ").unwrap(), "σίσυφος");
        assert_eq!(
            normalize_answer("a\u{00A0}\u{3000}b").unwrap(),
            "a b",
            "Unicode spaces collapse too"
        );
        assert_eq!(
            normalize_answer("Rex 2").unwrap(),
            normalize_answer(" rex  2").unwrap()
        );
    }

    #[test]
    fn answer_refusals() {
        for empty in ["", "   ", "\t\n", "\u{3000}"] {
            let (field, message) = refusal(normalize_answer(empty));
            assert_eq!(field, "answer");
            assert!(message.contains("empty"), "{empty:?}");
        }
        assert!(normalize_answer(&"é".repeat(ANSWER_MAX)).is_ok());
        let (field, message) = refusal(normalize_answer(&"é".repeat(ANSWER_MAX + 1)));
        assert_eq!(field, "answer");
        assert!(message.contains("at most 128"));
        // Surrounding and collapsed whitespace does not count towards the limit.
        assert!(normalize_answer(&format!("  {}  ", "x".repeat(ANSWER_MAX))).is_ok());
        let (_, message) = refusal(normalize_answer("a\u{0}b"));
        assert!(message.contains("control"));
        let (_, message) = refusal(normalize_answer("a\u{1b}[31mb"));
        assert!(message.contains("control"));
    }

    #[test]
    fn question_text() {
        assert_eq!(
            validate_question_text("  What was your first pet's name?  ").unwrap(),
            "What was your first pet's name?"
        );
        assert_eq!(validate_question_text("Pet?!").unwrap(), "Pet?!");
        assert!(validate_question_text(&"q".repeat(QUESTION_MAX)).is_ok());
        for (raw, needle) in [
            ("", "empty"),
            ("   ", "empty"),
            ("Pet?", "at least 5"),
            ("  Pet?  ", "at least 5"),
            ("What\u{0}is this?", "control"),
            ("Where were\nyou born?", "control"),
        ] {
            let (field, message) = refusal(validate_question_text(raw));
            assert_eq!(field, "question");
            assert!(message.contains(needle), "{raw:?}: {message}");
        }
        let (_, message) = refusal(validate_question_text(&"q".repeat(QUESTION_MAX + 1)));
        assert!(message.contains("at most 200"));
    }

    #[test]
    fn enrollment_count() {
        assert_eq!(ANSWERS_REQUIRED_AT_ENROLLMENT, 4);
    }
}
