//! Text meant for people's terminals. Values that came from outside (a
//! username typed at a sign-in form, an audit detail, a Basic-auth name)
//! must not drive the terminal that shows them: an escape sequence can
//! retitle the window, recolour or hide text, and a newline can forge a
//! whole audit line. Every human-readable output escapes them here; JSON
//! output needs nothing more, its encoder already escapes control characters.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Characters a terminal acts on instead of showing: the C0 and C1 controls
/// and DEL (`char::is_control`), and the bidirectional formatting controls,
/// which reorder the text around them (the "Trojan Source" characters).
pub fn is_unsafe_for_terminal(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// `s` with every character a terminal would act on written as a Rust-style
/// escape (`\u{1b}`), so it shows as text on one line. Borrowed when there is
/// nothing to escape, which is almost always.
pub fn escape_control(s: &str) -> Cow<'_, str> {
    let Some(first) = s.find(is_unsafe_for_terminal) else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len() + 8);
    out.push_str(&s[..first]);
    for c in s[first..].chars() {
        if is_unsafe_for_terminal(c) {
            // Writing to a `String` cannot fail.
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed() {
        assert!(matches!(
            escape_control("jan.de.vries@contoso.nl ü ё 田"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn controls_become_visible_escapes() {
        assert_eq!(
            escape_control("a\u{1b}]0;pwned\u{7}\nb\tc\0d\u{7f}\u{9b}"),
            r"a\u{1b}]0;pwned\u{7}\u{a}b\u{9}c\u{0}d\u{7f}\u{9b}"
        );
        assert_eq!(escape_control("x\u{202e}y\u{2066}"), r"x\u{202e}y\u{2066}");
    }
}
