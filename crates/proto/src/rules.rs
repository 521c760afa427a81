//! The rules the server checks strings against, as OpenAPI schemas, so the
//! document says what a request must look like. Each schema is exactly as
//! strict as the server or looser, never stricter: a request the document
//! refuses is refused by the server too. Rules the schema language cannot
//! say (usernames under RFC 8265 with one script, PIN rules from the
//! settings, real phone numbers) are in the descriptions, and the server
//! answers 422 when they are broken.

use utoipa::openapi::schema::{Array, ArrayBuilder, Object, ObjectBuilder, SchemaType, Type};

/// No control characters (Unicode category Cc): no name or id may hold one.
pub const NO_CONTROL: &str = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$";
/// A group name: not blank, no comma, no control character.
const GROUP: &str = "^[^,\\u0000-\\u001F\\u007F-\\u009F]*[^,\\s\\u0000-\\u001F\\u007F-\\u009F][^,\\u0000-\\u001F\\u007F-\\u009F]*$";

pub const USERNAME_MAX: usize = 128;
pub const PASSWORD_MIN: usize = 8;
pub const PASSWORD_MAX: usize = 1024;
pub const LABEL_MAX: usize = 64;
pub const PASSCODE_MAX: usize = 64;

fn string(nullable: bool) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(if nullable {
        SchemaType::from_iter([Type::String, Type::Null])
    } else {
        SchemaType::Type(Type::String)
    })
}

fn text(max: Option<usize>, nullable: bool, description: &str) -> Object {
    string(nullable)
        .max_length(max)
        .pattern(Some(NO_CONTROL))
        .description(Some(description))
        .build()
}

/// A user named in a request, to be looked up.
pub fn username() -> Object {
    text(
        Some(USERNAME_MAX),
        false,
        "At most 128 characters, no control characters.",
    )
}

/// A new user's name.
pub fn new_username() -> Object {
    string(false)
        .min_length(Some(1))
        .max_length(Some(USERNAME_MAX))
        .pattern(Some(NO_CONTROL))
        .description(Some(
            "1 to 128 characters: letters and digits of one script (Latin may go with Han, \
             Hiragana, Katakana, Bopomofo or Hangul) and `. _ - @ \\ + '`. Normalised as \
             RFC 8265 (UsernameCasePreserved) and unique regardless of case; surrounding \
             spaces are dropped.",
        ))
        .build()
}

/// A username as a primary sign-in takes it: any length (an overlong name is
/// just wrong credentials), no control characters.
pub fn sign_in_name() -> Object {
    text(None, false, "No control characters.")
}

/// A new user's local password, which users of a directory go without.
pub fn new_password_or_null() -> Object {
    password(
        true,
        "A local password: at least 8 characters and at most 1,024 bytes (UTF-8). \
         Leave out for users of a directory.",
    )
}

pub fn new_password() -> Object {
    password(
        false,
        "At least 8 characters and at most 1,024 bytes (UTF-8).",
    )
}

fn password(nullable: bool, description: &str) -> Object {
    string(nullable)
        .min_length(Some(PASSWORD_MIN))
        .max_length(Some(PASSWORD_MAX))
        .description(Some(description))
        .build()
}

/// What a user typed to answer: a code, or the PIN followed by the code.
pub fn passcode() -> Object {
    string(false)
        .max_length(Some(PASSCODE_MAX))
        .description(Some(
            "The OTP, or the PIN followed by the OTP when the user's mode needs a PIN; \
             at most 64 characters.",
        ))
        .build()
}

pub fn display_name() -> Object {
    text(
        Some(128),
        true,
        "At most 128 characters, no control characters; \"\" clears.",
    )
}

pub fn email() -> Object {
    text(
        Some(254),
        true,
        "An address with one `@` and a dotted domain, at most 254 characters; \"\" clears.",
    )
}

pub fn group() -> Object {
    string(false)
        .min_length(Some(1))
        .max_length(Some(128))
        .pattern(Some(GROUP))
        .description(Some(
            "A group name: not blank, at most 128 characters, no commas or control characters.",
        ))
        .build()
}

/// A user's groups; a name given twice (in any case) counts once.
pub fn groups() -> Array {
    group_list(false)
}

pub fn groups_or_null() -> Array {
    group_list(true)
}

fn group_list(nullable: bool) -> Array {
    ArrayBuilder::new()
        .schema_type(if nullable {
            SchemaType::from_iter([Type::Array, Type::Null])
        } else {
            SchemaType::Type(Type::Array)
        })
        .items(group())
        .description(Some(
            "At most 200 groups; a name given twice (in any case) counts once.",
        ))
        .build()
}

/// How many digits a code has.
pub fn digits() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .enum_values(Some([6, 8]))
        .build()
}

pub fn digits_or_null() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
        .enum_values(Some([
            serde_json::Value::from(6),
            serde_json::Value::from(8),
            serde_json::Value::Null,
        ]))
        .description(Some("6 (the default) or 8."))
        .build()
}

/// A language Twofold ships text for, or "" for none.
pub fn language_or_null() -> Object {
    language(true)
}

pub fn language_or_empty() -> Object {
    language(false)
}

/// `en`, `nl`, `de`, `fr` or `es`, optionally with a region (`de-AT`), or
/// empty.
const LANGUAGE_PATTERN: &str = "^((en|nl|de|fr|es)([-_]([A-Za-z]{2}|[0-9]{3}))?)?$";

fn language(nullable: bool) -> Object {
    string(nullable)
        .pattern(Some(LANGUAGE_PATTERN))
        .description(Some(
            "`en`, `nl`, `de`, `fr` or `es`, optionally with a region as directories carry it (`de-AT`: German text); \"\" for none (the browser's language).",
        ))
        .build()
}

/// A language a question is written in.
pub fn question_language() -> Object {
    string(false)
        .enum_values(Some(["en", "nl", "de", "fr", "es"]))
        .description(Some("`en`, `nl`, `de`, `fr` or `es`."))
        .build()
}

pub fn pin() -> Object {
    string(false)
        .min_length(Some(1))
        .max_length(Some(16))
        .pattern(Some("^[0-9]*$"))
        .description(Some(
            "Digits only, at most 16; the PIN rules of the settings (`pin.*`: minimum length, \
             no weak PINs, history) apply.",
        ))
        .build()
}

pub fn phone_extension() -> Object {
    string(true)
        .pattern(Some("^[0-9]{0,10}$"))
        .description(Some("1 to 10 digits; \"\" clears."))
        .build()
}

pub fn label() -> Object {
    text(
        Some(LABEL_MAX),
        true,
        "At most 64 characters, no control characters.",
    )
}

pub fn secret() -> Object {
    string(false)
        .min_length(Some(16))
        .pattern(Some("^[A-Za-z2-7=\\s-]*$"))
        .description(Some(
            "The seed in base32 (letters A-Z and digits 2-7; case, spaces, dashes and `=` \
             padding at the end are ignored): 80 to 1,024 bits.",
        ))
        .build()
}

/// An instant, as RFC 3339.
pub fn timestamp() -> Object {
    string(false)
        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
            utoipa::openapi::KnownFormat::DateTime,
        )))
        .build()
}

pub fn timestamp_or_null() -> Object {
    string(true)
        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
            utoipa::openapi::KnownFormat::DateTime,
        )))
        .build()
}

/// Why a bypass was granted, for the audit log.
pub fn reason() -> Object {
    text(
        Some(256),
        true,
        "At most 256 characters, no control characters.",
    )
}

/// A security question's text.
pub fn question_text() -> Object {
    string(false)
        .min_length(Some(5))
        .max_length(Some(200))
        .pattern(Some(NO_CONTROL))
        .description(Some(
            "5 to 200 characters without the spaces around them, no control characters.",
        ))
        .build()
}

/// Whole numbers as JSON writes them: `300`, and also `300.0` or `3e2`,
/// which JSON (and JSON Schema's `integer`) count as the same number.
pub mod whole {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer};

    pub fn option_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
            return Ok(None);
        };
        n.as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(f))
                    .map(exact)
            })
            .map(Some)
            .ok_or_else(|| {
                D::Error::custom(format!(
                    "expected a whole number from 0 to {}, not {n}",
                    u32::MAX
                ))
            })
    }

    /// `f`, whole and within `u32` (checked by the caller), as a `u32`.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    fn exact(f: f64) -> u32 {
        f as u32
    }

    #[cfg(test)]
    mod tests {
        #[derive(serde::Deserialize)]
        struct T {
            #[serde(default, deserialize_with = "super::option_u32")]
            n: Option<u32>,
        }

        fn n(json: &str) -> Result<Option<u32>, String> {
            serde_json::from_str::<T>(json)
                .map(|t| t.n)
                .map_err(|e| e.to_string())
        }

        #[test]
        fn whole_numbers_in_any_notation() {
            assert_eq!(n(r#"{"n": 300}"#), Ok(Some(300)));
            assert_eq!(n(r#"{"n": 300.0}"#), Ok(Some(300)));
            assert_eq!(n(r#"{"n": 3e2}"#), Ok(Some(300)));
            assert_eq!(n(r#"{"n": null}"#), Ok(None));
            assert_eq!(n("{}"), Ok(None));
            for bad in [
                r#"{"n": 1.5}"#,
                r#"{"n": -1}"#,
                r#"{"n": 4294967296}"#,
                r#"{"n": "3"}"#,
            ] {
                assert!(n(bad).is_err(), "{bad}");
            }
        }
    }
}
