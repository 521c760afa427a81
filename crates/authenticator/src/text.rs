//! Text from the server (user names, application names, error messages) is
//! shown on the user's terminal. A hostile or broken server must not be able
//! to move the cursor, rewrite earlier lines or reorder text, so control and
//! bidirectional-formatting characters are printed escaped.

use std::borrow::Cow;

/// `s` with every control character (and the invisible formatting
/// characters that reorder or hide text) written as a Rust escape, e.g.
/// `\n`, `\u{1b}`, `\u{202e}`. Printable text comes back unchanged.
pub fn clean(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if needs_escape(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{feff}'
        )
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(clean("jan"), "jan");
        assert_eq!(clean("Ünïcødé ok"), "Ünïcødé ok");
        assert_eq!(clean("a\nb\tc"), "a\\nb\\tc");
        assert_eq!(clean("\u{1b}[2J"), "\\u{1b}[2J");
        assert_eq!(clean("abc\u{202e}def"), "abc\\u{202e}def");
        assert_eq!(clean("\u{7f}"), "\\u{7f}");
    }
}
