//! Field rules shared by every way in (CLI, portal, SDK). Each refusal names
//! the field and says what is wrong, so callers can show it as it is.

use crate::error::{Error, Result};

pub const USERNAME_MAX: usize = 128;
pub const DISPLAY_NAME_MAX: usize = 128;
pub const EMAIL_MAX: usize = 254;
pub const GROUP_MAX: usize = 128;
pub const GROUPS_MAX: usize = 200;
pub const PASSWORD_MIN: usize = 8;
/// argon2 takes any length, but an unbounded input is a denial-of-service lever.
pub const PASSWORD_MAX_BYTES: usize = 1024;

/// Languages Twofold ships text for.
pub const SUPPORTED_LANGUAGES: &[&str] = &["en", "nl"];

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// Usernames keep the case they were entered with but are unique regardless of
/// case; `username_key` is the form they are compared in.
pub fn username(raw: &str) -> Result<String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(Error::invalid("username", "must not be empty"));
    }
    if name.chars().count() > USERNAME_MAX {
        return Err(Error::invalid(
            "username",
            format!("must be at most {USERNAME_MAX} characters"),
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '\\' | '+' | '\'')))
    {
        return Err(Error::invalid(
            "username",
            format!("contains {c:?}; use letters, digits and . _ - @ \\ + ' only"),
        ));
    }
    Ok(name.to_string())
}

pub fn username_key(name: &str) -> String {
    name.trim().to_lowercase()
}

pub fn display_name(raw: &str) -> Result<Option<String>> {
    let v = raw.trim();
    if v.is_empty() {
        return Ok(None);
    }
    if v.chars().count() > DISPLAY_NAME_MAX {
        return Err(Error::invalid(
            "display_name",
            format!("must be at most {DISPLAY_NAME_MAX} characters"),
        ));
    }
    if has_control(v) {
        return Err(Error::invalid(
            "display_name",
            "must not contain control characters",
        ));
    }
    Ok(Some(v.to_string()))
}

/// A deliberately plain address check: one `@`, a non-empty local part, a
/// dotted domain, no spaces. Deliverability is the mailer's business.
pub fn email(raw: &str) -> Result<Option<String>> {
    let v = raw.trim();
    if v.is_empty() {
        return Ok(None);
    }
    let bad = || Error::invalid("email", format!("{v:?} is not an email address"));
    if v.len() > EMAIL_MAX {
        return Err(Error::invalid(
            "email",
            format!("must be at most {EMAIL_MAX} characters"),
        ));
    }
    if has_control(v) || v.contains(char::is_whitespace) {
        return Err(bad());
    }
    let (local, domain) = v.split_once('@').ok_or_else(bad)?;
    if local.is_empty()
        || domain.contains('@')
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
        || domain.contains("..")
    {
        return Err(bad());
    }
    Ok(Some(v.to_string()))
}

pub fn language(raw: &str) -> Result<Option<String>> {
    let v = raw.trim().to_ascii_lowercase();
    if v.is_empty() {
        return Ok(None);
    }
    if SUPPORTED_LANGUAGES.contains(&v.as_str()) {
        Ok(Some(v))
    } else {
        Err(Error::invalid(
            "language",
            format!(
                "{v:?} is not supported; choose one of {}",
                SUPPORTED_LANGUAGES.join(", ")
            ),
        ))
    }
}

pub fn groups<S: AsRef<str>>(raw: &[S]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for g in raw {
        let g = g.as_ref().trim();
        if g.is_empty() {
            return Err(Error::invalid("groups", "a group name must not be empty"));
        }
        if g.chars().count() > GROUP_MAX {
            return Err(Error::invalid(
                "groups",
                format!("a group name must be at most {GROUP_MAX} characters"),
            ));
        }
        if has_control(g) || g.contains(',') {
            return Err(Error::invalid(
                "groups",
                "a group name must not contain commas or control characters",
            ));
        }
        if !out.iter().any(|o| o.eq_ignore_ascii_case(g)) {
            out.push(g.to_string());
        }
    }
    if out.len() > GROUPS_MAX {
        return Err(Error::invalid(
            "groups",
            format!("at most {GROUPS_MAX} groups"),
        ));
    }
    out.sort_by_key(|g| g.to_lowercase());
    Ok(out)
}

/// A phone number in E.164 (`+31612345678`). Numbers without `+` are read
/// in `default_country` (the setting `phone.default_country`); without one,
/// the international form is required. `field` names the phone in errors.
pub fn phone(field: &str, raw: &str, default_country: Option<&str>) -> Result<Option<String>> {
    let v = raw.trim();
    if v.is_empty() {
        return Ok(None);
    }
    if v.len() > 40 || has_control(v) {
        return Err(Error::invalid(field, "is not a phone number"));
    }
    let country = default_country.filter(|c| !c.is_empty()).and_then(|c| {
        c.to_ascii_uppercase()
            .parse::<phonenumber::country::Id>()
            .ok()
    });
    if country.is_none() && !v.starts_with('+') {
        return Err(Error::invalid(
            field,
            format!("{v:?} needs the international form, e.g. +31 20 123 4567"),
        ));
    }
    let parsed = phonenumber::parse(country, v)
        .map_err(|_| Error::invalid(field, format!("{v:?} is not a phone number")))?;
    if !phonenumber::is_valid(&parsed) {
        return Err(Error::invalid(
            field,
            format!("{v:?} is not a valid phone number"),
        ));
    }
    Ok(Some(
        parsed.format().mode(phonenumber::Mode::E164).to_string(),
    ))
}

/// A phone extension: 1 to 10 digits.
pub fn extension(raw: &str) -> Result<Option<String>> {
    let v = raw.trim();
    if v.is_empty() {
        return Ok(None);
    }
    if v.len() > 10 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::invalid("phone_extension", "must be 1 to 10 digits"));
    }
    Ok(Some(v.to_string()))
}

/// Whether `code` names a country the phone parser knows (`NL`, `US`, …).
pub fn is_country(code: &str) -> bool {
    code.to_ascii_uppercase()
        .parse::<phonenumber::country::Id>()
        .is_ok()
}

pub fn password(raw: &str) -> Result<()> {
    if raw.chars().count() < PASSWORD_MIN {
        return Err(Error::invalid(
            "password",
            format!("must be at least {PASSWORD_MIN} characters"),
        ));
    }
    if raw.len() > PASSWORD_MAX_BYTES {
        return Err(Error::invalid(
            "password",
            format!("must be at most {PASSWORD_MAX_BYTES} bytes"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert_eq!(username("  Alice ").unwrap(), "Alice");
        assert_eq!(username("CONTOSO\\bob").unwrap(), "CONTOSO\\bob");
        assert_eq!(
            username("jan.de.vries@contoso.nl").unwrap(),
            "jan.de.vries@contoso.nl"
        );
        assert!(username("").is_err());
        assert!(username("a b").is_err());
        assert!(username("a/b").is_err());
        assert!(username("x\u{0}").is_err());
        assert!(username(&"a".repeat(USERNAME_MAX)).is_ok());
        assert!(username(&"a".repeat(USERNAME_MAX + 1)).is_err());
        assert_eq!(username_key("ÄLICE"), "älice");
    }

    #[test]
    fn emails() {
        assert_eq!(email("a@b.nl").unwrap().as_deref(), Some("a@b.nl"));
        assert_eq!(email("  ").unwrap(), None);
        for bad in [
            "a", "a@b", "@b.nl", "a@b@c.nl", "a b@c.nl", "a@.nl", "a@b.", "a@b..nl",
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
        assert!(email(&format!("{}@b.nl", "a".repeat(EMAIL_MAX))).is_err());
    }

    #[test]
    fn languages_and_groups() {
        assert_eq!(language("NL").unwrap().as_deref(), Some("nl"));
        assert!(language("xx").is_err());
        assert_eq!(groups(&["b", "A", "a"]).unwrap(), vec!["A", "b"]);
        assert!(groups(&["a,b"]).is_err());
        assert!(groups(&[""]).is_err());
    }

    #[test]
    fn phones() {
        assert_eq!(
            phone("phone", "+31 20 794 8261", None).unwrap().as_deref(),
            Some("+31207948261")
        );
        assert_eq!(
            phone("phone", "020-794 8261", Some("NL"))
                .unwrap()
                .as_deref(),
            Some("+31207948261")
        );
        assert_eq!(
            phone("phone", "(201) 555-0123", Some("US"))
                .unwrap()
                .as_deref(),
            Some("+12015550123")
        );
        assert_eq!(phone("phone", " ", None).unwrap(), None);
        let e = phone("mobile_phone", "0612345678", None)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("mobile_phone") && e.contains("international"),
            "{e}"
        );
        for bad in [
            "+31 12",
            "+999 1234567",
            "call me",
            "+3120794826112345678901234567890123456789",
        ] {
            assert!(phone("phone", bad, Some("NL")).is_err(), "{bad}");
        }
        assert_eq!(extension("123").unwrap().as_deref(), Some("123"));
        assert!(extension("12a").is_err());
        assert!(extension("12345678901").is_err());
        assert!(is_country("NL") && !is_country("XX"));
    }

    #[test]
    fn passwords() {
        assert!(password("short").is_err());
        assert!(password("long enough").is_ok());
        assert!(password(&"x".repeat(PASSWORD_MAX_BYTES + 1)).is_err());
    }
}
