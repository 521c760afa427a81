//! Field rules shared by every way in (CLI, portal, SDK). Each refusal names
//! the field and says what is wrong, so callers can show it as it is.

use std::borrow::Cow;

use precis_profiles::precis_core::profile::PrecisFastInvocation;
use precis_profiles::{UsernameCaseMapped, UsernameCasePreserved};
use unicode_script::{Script, UnicodeScript};

use crate::error::{Error, Result};
use crate::ports::UserQuery;

pub const USERNAME_MAX: usize = 128;
pub const DISPLAY_NAME_MAX: usize = 128;
pub const EMAIL_MAX: usize = 254;
pub const GROUP_MAX: usize = 128;
pub const LABEL_MAX: usize = 64;
pub const GROUPS_MAX: usize = 200;
pub const PASSWORD_MIN: usize = 8;
/// argon2 takes any length, but an unbounded input is a denial-of-service lever.
pub const PASSWORD_MAX_BYTES: usize = 1024;

/// Languages Twofold ships text for.
pub const SUPPORTED_LANGUAGES: &[&str] = &["en", "nl", "de", "fr", "es"];

/// The supported language a tag speaks: `de-AT` → `de`; `None` when its
/// base language has no text here.
pub fn base_language(tag: &str) -> Option<&'static str> {
    let base = tag.split(['-', '_']).next()?.to_ascii_lowercase();
    SUPPORTED_LANGUAGES.iter().copied().find(|l| *l == base)
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// Usernames keep the case they were entered with but are unique regardless of
/// case; `username_key` is the form they are compared in.
///
/// A new name is normalised with the PRECIS `UsernameCasePreserved` profile
/// (RFC 8265: full-width letters mapped to their usual width, NFC, no
/// spaces, symbols or compatibility characters), so `ｊａｎ` becomes `jan`
/// and meets the existing `jan` as a duplicate. It must then use letters,
/// digits and `. _ - @ \ + '` only, and the letters of one script (see
/// `single_script`), so `jаn` with a Cyrillic `а` is not created beside `jan`.
pub fn username(raw: &str) -> Result<String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(Error::invalid("username", "must not be empty"));
    }
    if has_control(name) {
        return Err(Error::invalid(
            "username",
            "must not contain control characters",
        ));
    }
    let too_long = || {
        Error::invalid(
            "username",
            format!("must be at most {USERNAME_MAX} characters"),
        )
    };
    if name.chars().count() > USERNAME_MAX {
        return Err(too_long());
    }
    let name = UsernameCasePreserved::enforce(name).map_err(|e| match e {
        precis_profiles::precis_core::Error::BadCodepoint(info) => {
            bad_username_char(char::from_u32(info.cp).unwrap_or(char::REPLACEMENT_CHARACTER))
        }
        _ => Error::invalid(
            "username",
            "is not a valid username (RFC 8265): mixed writing directions or nothing left",
        ),
    })?;
    if name.chars().count() > USERNAME_MAX {
        return Err(too_long());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '\\' | '+' | '\'')))
    {
        return Err(bad_username_char(c));
    }
    single_script(&name)?;
    Ok(name.into_owned())
}

fn bad_username_char(c: char) -> Error {
    Error::invalid(
        "username",
        format!("contains {c:?}; use letters, digits and . _ - @ \\ + ' only"),
    )
}

/// Scripts that are written together: UTS #39's "highly restrictive" level
/// allows Latin with the scripts of Japanese, Chinese (Bopomofo) or Korean.
const SCRIPT_MIXES: &[&[Script]] = &[
    &[
        Script::Latin,
        Script::Han,
        Script::Hiragana,
        Script::Katakana,
    ],
    &[Script::Latin, Script::Han, Script::Bopomofo],
    &[Script::Latin, Script::Han, Script::Hangul],
];

/// Refuses a name whose letters come from scripts not written together —
/// in practice Latin with Cyrillic or Greek, whose look-alikes (`а`/`a`,
/// `ο`/`o`) make one user's name pass for another's. Digits and punctuation
/// belong to no script and count for none. Whole-script look-alikes (a name
/// entirely in Cyrillic letters that reads as a Latin one) need UTS #39's
/// confusables table and are not caught here.
fn single_script(name: &str) -> Result<()> {
    let mut scripts: Vec<Script> = Vec::new();
    for c in name.chars().filter(|c| c.is_alphabetic()) {
        let s = c.script();
        if !matches!(s, Script::Common | Script::Inherited | Script::Unknown)
            && !scripts.contains(&s)
        {
            scripts.push(s);
        }
    }
    let allowed = scripts.len() <= 1
        || SCRIPT_MIXES
            .iter()
            .any(|mix| scripts.iter().all(|s| mix.contains(s)));
    if allowed {
        return Ok(());
    }
    let names: Vec<&str> = scripts.iter().map(|s| s.full_name()).collect();
    Err(Error::invalid(
        "username",
        format!(
            "mixes {} letters, which can make it look like another name; use one script",
            names.join(" and ")
        ),
    ))
}

/// The form usernames are unique and looked up in: PRECIS
/// `UsernameCaseMapped` (RFC 8265), i.e. the normalisation of `username`
/// plus lower case. Total, because any text may be looked up: what the
/// profile refuses (no user can have such a name since it was introduced)
/// is lower-cased as before.
pub fn username_key(name: &str) -> String {
    let name = name.trim();
    UsernameCaseMapped::enforce(name).map_or_else(|_| name.to_lowercase(), Cow::into_owned)
}

/// A name or id that something is looked up by (a user, a service account,
/// a group, a session): refused for its shape only, never for whether it
/// exists, so the answer tells nobody who exists. Control characters are
/// never part of a name — NUL is not even storable in PostgreSQL text, and
/// escapes or newlines would travel into audit lines and terminals — so
/// both backends refuse them here alike, before any query.
pub fn identifier(field: &str, raw: &str) -> Result<()> {
    if has_control(raw) {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(())
}

/// The filters of a user listing, each an `identifier`.
pub fn user_query(query: &UserQuery) -> Result<()> {
    for (field, value) in [
        ("prefix", &query.prefix),
        ("group", &query.group),
        ("after", &query.after),
        ("text", &query.text),
    ] {
        identifier(field, value.as_deref().unwrap_or_default())?;
    }
    Ok(())
}

/// Free text that is stored as it is (a portal session's data): PostgreSQL
/// text cannot hold NUL, so it is refused here on both backends alike.
pub fn storable_text(field: &str, raw: &str) -> Result<()> {
    if raw.contains('\0') {
        return Err(Error::invalid(field, "must not contain NUL characters"));
    }
    Ok(())
}

/// `identifier` for a username, which also cannot be longer than any user's
/// name. Primary sign-ins skip the length rule on purpose: there an
/// oversized name is just wrong credentials (`Engine::primary_check`).
pub fn username_lookup(raw: &str) -> Result<()> {
    identifier("username", raw)?;
    if raw.trim().chars().count() > USERNAME_MAX {
        return Err(Error::invalid(
            "username",
            format!("must be at most {USERNAME_MAX} characters"),
        ));
    }
    Ok(())
}

/// An OATH token's label: at most `LABEL_MAX` characters, no control
/// characters; each refusal says which rule it broke. Returned trimmed.
pub fn token_label(raw: &str) -> Result<&str> {
    let label = raw.trim();
    identifier("label", label)?;
    if label.chars().count() > LABEL_MAX {
        return Err(Error::invalid(
            "label",
            format!("must be at most {LABEL_MAX} characters"),
        ));
    }
    Ok(label)
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

/// A user's language: a supported language, optionally with a region as
/// directories carry it (`de-AT`, kept so; its text is `de`'s).
pub fn language(raw: &str) -> Result<Option<String>> {
    let v = raw.trim();
    if v.is_empty() {
        return Ok(None);
    }
    let (base, region) = match v.split_once(['-', '_']) {
        Some((base, region)) => (base, Some(region)),
        None => (v, None),
    };
    let region_ok = region.is_none_or(|r| {
        (r.len() == 2 && r.chars().all(|c| c.is_ascii_alphabetic()))
            || (r.len() == 3 && r.chars().all(|c| c.is_ascii_digit()))
    });
    let region = region.unwrap_or("");
    let base = base.to_ascii_lowercase();
    if region_ok && SUPPORTED_LANGUAGES.contains(&base.as_str()) {
        Ok(Some(if region.is_empty() {
            base
        } else {
            format!("{base}-{}", region.to_ascii_uppercase())
        }))
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
    fn usernames_are_normalised_and_single_script() {
        // Full width is mapped, composed forms are composed (RFC 8265).
        assert_eq!(username("ｊａｎ").unwrap(), "jan");
        assert_eq!(username("Ｊan").unwrap(), "Jan");
        assert_eq!(username("Rene\u{301}").unwrap(), "René");
        assert_eq!(username_key("ＪＡＮ"), "jan");
        assert_eq!(username_key("René"), username_key("RENE\u{301}"));
        // One script per name, or the scripts Japanese, Chinese and Korean
        // are written in together with Latin.
        for ok in [
            "иван",
            "Ελένη",
            "田中たろう",
            "taro田中",
            "김민준",
            "jan.de.vries",
        ] {
            assert!(username(ok).is_ok(), "{ok}");
        }
        for bad in ["j\u{430}n", "p\u{3bf}rtal", "admin\u{456}", "иванivan"] {
            let e = username(bad).unwrap_err().to_string();
            assert!(e.starts_with("username: mixes"), "{bad}: {e}");
        }
        // Compatibility characters other than width are refused, not mapped.
        assert!(username("\u{fb01}le").is_err());
        assert!(username("a\u{200b}b").is_err());
    }

    #[test]
    fn control_characters_are_named() {
        for bad in ["a\u{0}b", "a\u{1b}[31mb", "a\nb"] {
            let e = username(bad).unwrap_err().to_string();
            assert_eq!(
                e, "username: must not contain control characters",
                "{bad:?}"
            );
            assert!(identifier("username", bad).is_err());
            assert!(username_lookup(bad).is_err());
        }
        assert!(identifier("username", "no such user, but a fine name").is_ok());
        assert!(username_lookup(&"a".repeat(USERNAME_MAX)).is_ok());
        assert!(username_lookup(&"a".repeat(USERNAME_MAX + 1)).is_err());
        assert!(storable_text("session", "{\"a\":\"\u{7f}\"}").is_ok());
        assert!(storable_text("session", "a\u{0}").is_err());
    }

    #[test]
    fn token_labels_say_which_rule() {
        assert_eq!(token_label("  phone ").unwrap(), "phone");
        for bad in ["a\nb", "a\u{0}"] {
            let e = token_label(bad).unwrap_err().to_string();
            assert_eq!(e, "label: must not contain control characters", "{bad:?}");
        }
        let e = token_label(&"x".repeat(LABEL_MAX + 1))
            .unwrap_err()
            .to_string();
        assert_eq!(e, format!("label: must be at most {LABEL_MAX} characters"));
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
        for (tag, kept) in [
            ("de", "de"),
            ("de-at", "de-AT"),
            ("fr_CA", "fr-CA"),
            ("es-419", "es-419"),
        ] {
            assert_eq!(language(tag).unwrap().as_deref(), Some(kept), "{tag}");
        }
        for bad in ["de-", "de-Austria", "xx-AT", "de-A1"] {
            assert!(language(bad).is_err(), "{bad}");
        }
        assert_eq!(base_language("de-AT"), Some("de"));
        assert_eq!(base_language("pt-BR"), None);
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
