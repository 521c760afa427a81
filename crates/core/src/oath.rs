//! OATH one-time passwords: HOTP (RFC 4226) and TOTP (RFC 6238), the base32
//! form secrets are shown and typed in, and the `otpauth://` URI that
//! authenticator apps scan. Pure functions: no I/O, no clock, no store.
//!
//! Verification compares codes in constant time and computes every candidate
//! step or counter before answering, so the time taken does not tell which
//! candidate (if any) matched.

use data_encoding::{DecodeKind, BASE32_NOPAD};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha1::Sha1;
use sha2::{Sha256, Sha512};
use std::fmt::Write as _;
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

use crate::error::{Error, Result};
use crate::factors::{OathAlgorithm, OathKind, OathParams};

/// Shortest secret accepted: RFC 4226 requires at least 128 bits and
/// recommends 160, but many deployed tokens use 80; refuse anything below.
pub const SECRET_MIN_BYTES: usize = 10;
/// Longest secret accepted (one SHA-512 block is 128 bytes).
pub const SECRET_MAX_BYTES: usize = 128;
/// Most candidates one verification computes, whatever window or look-ahead
/// is asked for; bounds the work a single request can cause.
pub const MAX_CANDIDATES: u32 = 10_000;
/// Code lengths a token may have.
pub const ALLOWED_DIGITS: [u32; 2] = [6, 8];
pub const PERIOD_MIN: u32 = 15;
pub const PERIOD_MAX: u32 = 300;

/// The 31-bit truncated value has at most 10 decimal digits.
const MAX_DIGITS: u32 = 10;

fn hmac_digest<M: Mac + hmac::digest::KeyInit>(secret: &[u8], message: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length (long keys are hashed, short ones padded),
    // so this never fails.
    let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(secret)
        .expect("HMAC accepts keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// The HOTP value for `counter` (RFC 4226 section 5.3), zero-padded to
/// `digits` characters. `digits` above 10 is treated as 10.
pub fn hotp(secret: &[u8], counter: u64, algorithm: OathAlgorithm, digits: u32) -> String {
    let message = counter.to_be_bytes();
    let digest = match algorithm {
        OathAlgorithm::Sha1 => hmac_digest::<Hmac<Sha1>>(secret, &message),
        OathAlgorithm::Sha256 => hmac_digest::<Hmac<Sha256>>(secret, &message),
        OathAlgorithm::Sha512 => hmac_digest::<Hmac<Sha512>>(secret, &message),
    };
    // Dynamic truncation: the low nibble of the last byte picks an offset; the
    // digests are 20, 32 or 64 bytes, so offset + 4 is always in range.
    let offset = usize::from(digest.last().copied().unwrap_or(0) & 0x0f);
    let word = match digest.get(offset..offset + 4) {
        Some(&[a, b, c, d]) => u32::from_be_bytes([a & 0x7f, b, c, d]),
        _ => 0,
    };
    let digits = digits.min(MAX_DIGITS);
    let value = u64::from(word) % 10u64.pow(digits);
    format!("{value:0width$}", width = digits as usize)
}

/// The TOTP time step `unix_seconds` falls in (T0 = 0). A `period` of 0 is
/// treated as 1.
pub fn totp_step(unix_seconds: i64, period: u32) -> i64 {
    unix_seconds.div_euclid(i64::from(period.max(1)))
}

/// A fresh random secret as long as the algorithm's output: 20 bytes for
/// SHA-1, 32 for SHA-256, 64 for SHA-512.
pub fn generate_secret(algorithm: OathAlgorithm) -> Vec<u8> {
    let len = match algorithm {
        OathAlgorithm::Sha1 => 20,
        OathAlgorithm::Sha256 => 32,
        OathAlgorithm::Sha512 => 64,
    };
    let mut secret = vec![0u8; len];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    secret
}

/// RFC 4648 base32, uppercase, without `=` padding.
pub fn encode_base32(bytes: &[u8]) -> String {
    BASE32_NOPAD.encode(bytes)
}

/// Parses a secret as people type it: any case, spaces or dashes between
/// groups, optional trailing `=` padding.
pub fn parse_base32_secret(input: &str) -> Result<Vec<u8>> {
    let bad = |message: String| Error::invalid("secret", message);
    let mut cleaned = String::with_capacity(input.len());
    for c in input.chars() {
        if c.is_whitespace() || c == '-' {
            continue;
        }
        cleaned.push(c.to_ascii_uppercase());
    }
    let unpadded = cleaned.trim_end_matches('=');
    if unpadded.is_empty() {
        return Err(bad("must not be empty".into()));
    }
    if let Some(c) = unpadded
        .chars()
        .find(|c| !matches!(c, 'A'..='Z' | '2'..='7'))
    {
        let what = if c == '=' {
            "\"=\" padding may only come at the end".to_string()
        } else {
            format!("contains {c:?}")
        };
        return Err(bad(format!(
            "{what}; a base32 secret uses letters A-Z and digits 2-7 only"
        )));
    }
    // Refuse over-long input before decoding it; 8 characters carry 5 bytes.
    if unpadded.len() > SECRET_MAX_BYTES.div_ceil(5) * 8 {
        return Err(bad(format!(
            "is too long: at most {SECRET_MAX_BYTES} bytes ({} characters)",
            (SECRET_MAX_BYTES * 8).div_ceil(5)
        )));
    }
    let bytes = BASE32_NOPAD
        .decode(unpadded.as_bytes())
        .map_err(|e| match e.kind {
            DecodeKind::Length => bad(format!(
                "has {} characters, a length no base32 secret has; check for a missing or extra character",
                unpadded.len()
            )),
            DecodeKind::Trailing => bad(
                "the last character does not end a base32 secret; check for a typo".into(),
            ),
            _ => bad("is not valid base32; use letters A-Z and digits 2-7 only".into()),
        })?;
    if bytes.len() < SECRET_MIN_BYTES {
        return Err(bad(format!(
            "is too short: at least {} bits ({} characters) are needed",
            SECRET_MIN_BYTES * 8,
            (SECRET_MIN_BYTES * 8).div_ceil(5)
        )));
    }
    if bytes.len() > SECRET_MAX_BYTES {
        return Err(bad(format!(
            "is too long: at most {SECRET_MAX_BYTES} bytes ({} characters)",
            (SECRET_MAX_BYTES * 8).div_ceil(5)
        )));
    }
    Ok(bytes)
}

/// A code as typed, with spaces removed; it must be exactly `digits` ASCII
/// digits.
pub fn normalize_code(input: &str, digits: u32) -> Result<String> {
    let code: String = input.chars().filter(|c| !c.is_whitespace()).collect();
    if code.is_empty() {
        return Err(Error::invalid("code", "must not be empty"));
    }
    if !code.chars().all(|c| c.is_ascii_digit()) {
        return Err(Error::invalid("code", "must contain digits only"));
    }
    if code.len() != digits as usize {
        return Err(Error::invalid(
            "code",
            format!("must be {digits} digits, not {}", code.len()),
        ));
    }
    Ok(code)
}

/// Counter values `start..start+count` that are valid (non-negative), at most
/// `MAX_CANDIDATES` of them.
fn candidates(start: i64, count: u32) -> impl Iterator<Item = (i64, u64)> {
    let end = start.saturating_add(i64::from(count.min(MAX_CANDIDATES)));
    (start..end).filter_map(|c| u64::try_from(c).ok().map(|u| (c, u)))
}

fn code_matches(secret: &[u8], params: &OathParams, counter: u64, code: &str) -> Choice {
    hotp(secret, counter, params.algorithm, params.digits)
        .as_bytes()
        .ct_eq(code.as_bytes())
}

/// Checks a TOTP code against steps `now-window..=now+window`, skipping steps
/// at or before `last_used_step` (replay guard). Returns the step that
/// matched; the caller stores it as the new `last_used_step`. When the code
/// is valid for more than one step the latest is returned, so it cannot be
/// replayed for the later one.
pub fn verify_totp(
    secret: &[u8],
    params: &OathParams,
    code: &str,
    now_unix: i64,
    window: u32,
    last_used_step: i64,
) -> Option<i64> {
    let code = normalize_code(code, params.digits).ok()?;
    let window = window.min(MAX_CANDIDATES / 2);
    let now = totp_step(now_unix, params.period);
    let first = now.saturating_sub(i64::from(window));
    let mut found = Choice::from(0);
    let mut matched = 0i64;
    for (step, counter) in candidates(first, 2 * window + 1) {
        let fresh = Choice::from(u8::from(step > last_used_step));
        let hit = code_matches(secret, params, counter, &code) & fresh;
        // Later steps overwrite earlier ones: the latest match wins.
        matched.conditional_assign(&step, hit);
        found |= hit;
    }
    bool::from(found).then_some(matched)
}

/// Checks an HOTP code against counters `next_counter..next_counter+look_ahead`.
/// Returns the counter that matched (the earliest, if several); the caller
/// stores `matched + 1` as the next counter.
pub fn verify_hotp(
    secret: &[u8],
    params: &OathParams,
    code: &str,
    next_counter: i64,
    look_ahead: u32,
) -> Option<i64> {
    let code = normalize_code(code, params.digits).ok()?;
    let mut found = Choice::from(0);
    let mut matched = 0i64;
    for (c, counter) in candidates(next_counter, look_ahead) {
        let hit = code_matches(secret, params, counter, &code);
        matched.conditional_assign(&c, hit & !found);
        found |= hit;
    }
    bool::from(found).then_some(matched)
}

/// Resynchronises a drifted HOTP token from two consecutive codes: finds `c`
/// in `next_counter..next_counter+range` with `code1 = hotp(c)` and
/// `code2 = hotp(c+1)`, and returns `c + 2`, the new next counter.
pub fn resync_hotp(
    secret: &[u8],
    params: &OathParams,
    code1: &str,
    code2: &str,
    next_counter: i64,
    range: u32,
) -> Option<i64> {
    let code1 = normalize_code(code1, params.digits).ok()?;
    let code2 = normalize_code(code2, params.digits).ok()?;
    let mut found = Choice::from(0);
    let mut matched = 0i64;
    // hotp(c) is computed once and reused as the "previous" code of c+1.
    let mut previous: Option<(i64, Choice)> = None;
    for (c, counter) in candidates(next_counter, range.saturating_add(1)) {
        let first_hit = code_matches(secret, params, counter, &code1);
        let second_hit = code_matches(secret, params, counter, &code2);
        if let Some((p, p_first_hit)) = previous {
            if p + 1 == c {
                let hit = p_first_hit & second_hit;
                let next = c.saturating_add(1);
                matched.conditional_assign(&next, hit & !found);
                found |= hit;
            }
        }
        previous = Some((c, first_hit));
    }
    bool::from(found).then_some(matched)
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            // Writing to a `String` cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn algorithm_name(algorithm: OathAlgorithm) -> &'static str {
    match algorithm {
        OathAlgorithm::Sha1 => "SHA1",
        OathAlgorithm::Sha256 => "SHA256",
        OathAlgorithm::Sha512 => "SHA512",
    }
}

/// The Key Uri Format URI authenticator apps scan, e.g.
/// `otpauth://totp/Contoso:alice?secret=…&issuer=Contoso&algorithm=SHA1&digits=6&period=30`.
/// Label and values are percent-encoded. An empty issuer is left out. HOTP
/// URIs carry `counter=0` (a new secret starts at counter 0) instead of
/// `period`.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8], params: &OathParams) -> String {
    let kind = match params.kind {
        OathKind::Totp => "totp",
        OathKind::Hotp => "hotp",
    };
    let mut uri = format!("otpauth://{kind}/");
    if !issuer.is_empty() {
        uri.push_str(&percent_encode(issuer));
        uri.push(':');
    }
    uri.push_str(&percent_encode(account));
    uri.push_str("?secret=");
    uri.push_str(&encode_base32(secret));
    if !issuer.is_empty() {
        uri.push_str("&issuer=");
        uri.push_str(&percent_encode(issuer));
    }
    uri.push_str("&algorithm=");
    uri.push_str(algorithm_name(params.algorithm));
    // Writing to a `String` cannot fail.
    let _ = write!(uri, "&digits={}", params.digits);
    match params.kind {
        OathKind::Totp => {
            let _ = write!(uri, "&period={}", params.period);
        }
        OathKind::Hotp => uri.push_str("&counter=0"),
    }
    uri
}

/// Checks a token's parameters: 6 or 8 digits; a TOTP period of 15 to 300
/// seconds.
pub fn validate_params(params: &OathParams) -> Result<()> {
    if !ALLOWED_DIGITS.contains(&params.digits) {
        return Err(Error::invalid(
            "digits",
            format!("must be 6 or 8, not {}", params.digits),
        ));
    }
    if params.kind == OathKind::Totp && !(PERIOD_MIN..=PERIOD_MAX).contains(&params.period) {
        return Err(Error::invalid(
            "period",
            format!(
                "must be {PERIOD_MIN} to {PERIOD_MAX} seconds, not {}",
                params.period
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC4226_SECRET: &[u8] = b"12345678901234567890";
    const SEED_SHA1: &[u8] = b"12345678901234567890";
    const SEED_SHA256: &[u8] = b"12345678901234567890123456789012";
    const SEED_SHA512: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";

    fn totp6() -> OathParams {
        OathParams::default()
    }

    fn hotp6() -> OathParams {
        OathParams {
            kind: OathKind::Hotp,
            ..OathParams::default()
        }
    }

    fn err_of<T: std::fmt::Debug>(r: Result<T>) -> (String, String) {
        match r.unwrap_err() {
            Error::InvalidInput { field, message } => (field, message),
            other => panic!("unexpected error {other:?}"),
        }
    }

    #[test]
    fn rfc4226_appendix_d() {
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (counter, want) in expected.iter().enumerate() {
            assert_eq!(
                hotp(RFC4226_SECRET, counter as u64, OathAlgorithm::Sha1, 6),
                *want,
                "counter {counter}"
            );
        }
    }

    #[test]
    fn rfc6238_appendix_b() {
        let vectors: [(i64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1_111_111_109, "07081804", "68084774", "25091201"),
            (1_111_111_111, "14050471", "67062674", "99943326"),
            (1_234_567_890, "89005924", "91819424", "93441116"),
            (2_000_000_000, "69279037", "90698825", "38618901"),
            (20_000_000_000, "65353130", "77737706", "47863826"),
        ];
        for (time, sha1, sha256, sha512) in vectors {
            for (algorithm, seed, want) in [
                (OathAlgorithm::Sha1, SEED_SHA1, sha1),
                (OathAlgorithm::Sha256, SEED_SHA256, sha256),
                (OathAlgorithm::Sha512, SEED_SHA512, sha512),
            ] {
                let step = totp_step(time, 30);
                let got = hotp(seed, u64::try_from(step).unwrap(), algorithm, 8);
                assert_eq!(got, want, "{algorithm:?} at {time}");
                let params = OathParams {
                    kind: OathKind::Totp,
                    algorithm,
                    digits: 8,
                    period: 30,
                };
                assert_eq!(
                    verify_totp(seed, &params, want, time, 0, -1),
                    Some(step),
                    "{algorithm:?} at {time}"
                );
            }
        }
    }

    #[test]
    fn steps_and_odd_digits() {
        assert_eq!(totp_step(0, 30), 0);
        assert_eq!(totp_step(29, 30), 0);
        assert_eq!(totp_step(30, 30), 1);
        assert_eq!(totp_step(-1, 30), -1);
        assert_eq!(totp_step(5, 0), 5);
        // Truncation keeps 31 bits: the full value for counter 0 is 1284755224.
        assert_eq!(
            hotp(RFC4226_SECRET, 0, OathAlgorithm::Sha1, 10),
            "1284755224"
        );
        assert_eq!(
            hotp(RFC4226_SECRET, 0, OathAlgorithm::Sha1, 99),
            "1284755224"
        );
        assert_eq!(hotp(RFC4226_SECRET, 0, OathAlgorithm::Sha1, 0), "0");
        assert_eq!(hotp(b"", 0, OathAlgorithm::Sha512, 6).len(), 6);
    }

    #[test]
    fn totp_window_both_sides() {
        let p = totp6();
        let now = 1_700_000_000;
        let step = totp_step(now, 30);
        let code_at = |s: i64| hotp(SEED_SHA1, u64::try_from(s).unwrap(), OathAlgorithm::Sha1, 6);
        assert_eq!(
            verify_totp(SEED_SHA1, &p, &code_at(step), now, 1, 0),
            Some(step)
        );
        assert_eq!(
            verify_totp(SEED_SHA1, &p, &code_at(step - 1), now, 1, 0),
            Some(step - 1)
        );
        assert_eq!(
            verify_totp(SEED_SHA1, &p, &code_at(step + 1), now, 1, 0),
            Some(step + 1)
        );
        assert_eq!(
            verify_totp(SEED_SHA1, &p, &code_at(step - 2), now, 1, 0),
            None
        );
        assert_eq!(
            verify_totp(SEED_SHA1, &p, &code_at(step + 2), now, 1, 0),
            None
        );
        assert_eq!(
            verify_totp(SEED_SHA1, &p, &code_at(step + 2), now, 2, 0),
            Some(step + 2)
        );
        // Window 0: only the current step.
        assert_eq!(
            verify_totp(SEED_SHA1, &p, &code_at(step - 1), now, 0, 0),
            None
        );
        // Spaces are tolerated, garbage is not.
        let spaced = format!("{} {}", &code_at(step)[..3], &code_at(step)[3..]);
        assert_eq!(verify_totp(SEED_SHA1, &p, &spaced, now, 1, 0), Some(step));
        assert_eq!(verify_totp(SEED_SHA1, &p, "12345", now, 1, 0), None);
        assert_eq!(verify_totp(SEED_SHA1, &p, "ÿÿÿÿÿÿ", now, 1, 0), None);
        // Huge windows are bounded, not a panic or an endless loop.
        assert_eq!(
            verify_totp(SEED_SHA1, &p, &code_at(step), now, u32::MAX, 0),
            Some(step)
        );
        assert_eq!(
            verify_totp(SEED_SHA1, &p, "000000", i64::MIN, 3, i64::MIN),
            None
        );
    }

    #[test]
    fn totp_replay_is_refused() {
        let p = totp6();
        let now = 1_700_000_000;
        let step = totp_step(now, 30);
        let code = hotp(
            SEED_SHA1,
            u64::try_from(step).unwrap(),
            OathAlgorithm::Sha1,
            6,
        );
        assert_eq!(
            verify_totp(SEED_SHA1, &p, &code, now, 1, step - 1),
            Some(step)
        );
        assert_eq!(verify_totp(SEED_SHA1, &p, &code, now, 1, step), None);
        assert_eq!(verify_totp(SEED_SHA1, &p, &code, now, 1, step + 1), None);
        // An earlier step's code after a later one was used.
        let earlier = hotp(
            SEED_SHA1,
            u64::try_from(step - 1).unwrap(),
            OathAlgorithm::Sha1,
            6,
        );
        assert_eq!(verify_totp(SEED_SHA1, &p, &earlier, now, 1, step), None);
    }

    #[test]
    fn hotp_look_ahead() {
        let p = hotp6();
        let code = |c: u64| hotp(RFC4226_SECRET, c, OathAlgorithm::Sha1, 6);
        assert_eq!(verify_hotp(RFC4226_SECRET, &p, &code(0), 0, 10), Some(0));
        assert_eq!(verify_hotp(RFC4226_SECRET, &p, &code(9), 0, 10), Some(9));
        // Beyond the look-ahead.
        assert_eq!(verify_hotp(RFC4226_SECRET, &p, &code(10), 0, 10), None);
        // Already used counters.
        assert_eq!(verify_hotp(RFC4226_SECRET, &p, &code(3), 4, 10), None);
        assert_eq!(verify_hotp(RFC4226_SECRET, &p, "755224", 0, 1), Some(0));
        assert_eq!(verify_hotp(RFC4226_SECRET, &p, "287082", 0, 1), None);
        assert_eq!(verify_hotp(RFC4226_SECRET, &p, "755224", 0, 0), None);
        assert_eq!(
            verify_hotp(RFC4226_SECRET, &p, "755224", i64::MAX, 10),
            None
        );
        assert_eq!(verify_hotp(RFC4226_SECRET, &p, "755224", -5, 10), Some(0));
        assert_eq!(verify_hotp(RFC4226_SECRET, &p, "abcdef", 0, 10), None);
    }

    #[test]
    fn hotp_resync() {
        let p = hotp6();
        let code = |c: u64| hotp(RFC4226_SECRET, c, OathAlgorithm::Sha1, 6);
        // Token drifted to 50, well past a look-ahead of 10.
        assert_eq!(verify_hotp(RFC4226_SECRET, &p, &code(50), 0, 10), None);
        assert_eq!(
            resync_hotp(RFC4226_SECRET, &p, &code(50), &code(51), 0, 100),
            Some(52)
        );
        // The last counter in range may start the pair.
        assert_eq!(
            resync_hotp(RFC4226_SECRET, &p, &code(99), &code(100), 0, 100),
            Some(101)
        );
        // Beyond the range.
        assert_eq!(
            resync_hotp(RFC4226_SECRET, &p, &code(100), &code(101), 0, 100),
            None
        );
        // Codes out of order or not consecutive.
        assert_eq!(
            resync_hotp(RFC4226_SECRET, &p, &code(51), &code(50), 0, 100),
            None
        );
        assert_eq!(
            resync_hotp(RFC4226_SECRET, &p, &code(50), &code(52), 0, 100),
            None
        );
        assert_eq!(
            resync_hotp(RFC4226_SECRET, &p, &code(50), &code(50), 0, 100),
            None
        );
        // Counters already used.
        assert_eq!(
            resync_hotp(RFC4226_SECRET, &p, &code(5), &code(6), 10, 100),
            None
        );
        assert_eq!(resync_hotp(RFC4226_SECRET, &p, "x", "y", 0, 100), None);
        assert_eq!(
            resync_hotp(
                RFC4226_SECRET,
                &p,
                &code(0),
                &code(1),
                i64::MAX - 1,
                u32::MAX
            ),
            None
        );
    }

    #[test]
    fn base32_round_trip() {
        for alg in [
            OathAlgorithm::Sha1,
            OathAlgorithm::Sha256,
            OathAlgorithm::Sha512,
        ] {
            let s = generate_secret(alg);
            let text = encode_base32(&s);
            assert!(!text.contains('='));
            assert_eq!(text, text.to_ascii_uppercase());
            assert_eq!(parse_base32_secret(&text).unwrap(), s);
        }
        assert_eq!(generate_secret(OathAlgorithm::Sha1).len(), 20);
        assert_eq!(generate_secret(OathAlgorithm::Sha256).len(), 32);
        assert_eq!(generate_secret(OathAlgorithm::Sha512).len(), 64);
        assert_ne!(
            generate_secret(OathAlgorithm::Sha1),
            generate_secret(OathAlgorithm::Sha1)
        );
        assert_eq!(
            encode_base32(RFC4226_SECRET),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
        for typed in [
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
            "gezdgnbvgy3tqojqgezdgnbvgy3tqojq",
            "gezd gnbv gy3t qojq gezd gnbv gy3t qojq",
            "GEZD-GNBV-GY3T-QOJQ-GEZD-GNBV-GY3T-QOJQ",
            "  GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ  ",
        ] {
            assert_eq!(
                parse_base32_secret(typed).unwrap(),
                RFC4226_SECRET,
                "{typed}"
            );
        }
        // 11 bytes: 18 characters, padded to 24 with "=".
        let eleven = b"hello world";
        let padded = data_encoding::BASE32.encode(eleven);
        assert!(padded.ends_with("======"));
        assert_eq!(parse_base32_secret(&padded).unwrap(), eleven);
        // Exactly the minimum and the maximum.
        assert_eq!(
            parse_base32_secret(&encode_base32(&[7u8; 10])).unwrap(),
            [7u8; 10]
        );
        assert_eq!(
            parse_base32_secret(&encode_base32(&[7u8; 128])).unwrap(),
            [7u8; 128]
        );
    }

    #[test]
    fn base32_refusals() {
        let cases: Vec<(String, &str)> = vec![
            (String::new(), "empty"),
            ("   ".into(), "empty"),
            ("====".into(), "empty"),
            ("- -".into(), "empty"),
            ("GEZDGNBVGY3TQOJ1".into(), "'1'"),
            ("GEZDGNBVGY3TQOJ0".into(), "'0'"),
            ("GEZDGNBVGY3TQOJÉ".into(), "'É'"),
            ("GEZDGNBV😀GY3TQOJQ".into(), "contains"),
            ("GEZD=GNBVGY3TQOJQ".into(), "only come at the end"),
            ("GEZDGNBV".into(), "too short"),
            (encode_base32(&[1u8; 9]), "too short"),
            (encode_base32(&[1u8; 129]), "too long"),
            ("A".repeat(100_000), "too long"),
            ("GEZDGNBVGY3TQOJQG".into(), "length"),
            // 16 bytes end in 26 characters whose last carries 2 spare bits.
            ("GEZDGNBVGY3TQOJQGEZDGNBVG7".into(), "typo"),
        ];
        for (input, needle) in cases {
            let (field, message) = err_of(parse_base32_secret(&input));
            assert_eq!(field, "secret");
            assert!(
                message.contains(needle),
                "{input:?}: {message:?} lacks {needle:?}"
            );
        }
    }

    #[test]
    fn codes_are_normalized() {
        assert_eq!(normalize_code("123456", 6).unwrap(), "123456");
        assert_eq!(normalize_code(" 123 456 ", 6).unwrap(), "123456");
        assert_eq!(normalize_code("12345678", 8).unwrap(), "12345678");
        for (input, digits, needle) in [
            ("", 6, "empty"),
            ("   ", 6, "empty"),
            ("12a456", 6, "digits only"),
            ("abcdef", 6, "digits only"),
            ("１２３４５６", 6, "digits only"),
            ("١٢٣٤٥٦", 6, "digits only"),
            ("12345", 6, "6 digits"),
            ("1234567", 6, "6 digits"),
            ("123456", 8, "8 digits"),
            ("-12345", 6, "digits only"),
        ] {
            let (field, message) = err_of(normalize_code(input, digits));
            assert_eq!(field, "code");
            assert!(message.contains(needle), "{input:?}: {message}");
        }
    }

    #[test]
    fn uri_exact() {
        let uri = otpauth_uri("Contoso", "alice@contoso.com", RFC4226_SECRET, &totp6());
        assert_eq!(
            uri,
            "otpauth://totp/Contoso:alice%40contoso.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=Contoso&algorithm=SHA1&digits=6&period=30"
        );
        let p = OathParams {
            kind: OathKind::Hotp,
            algorithm: OathAlgorithm::Sha256,
            digits: 8,
            period: 30,
        };
        assert_eq!(
            otpauth_uri("Big Co & Sons", "jan de vries", RFC4226_SECRET, &p),
            "otpauth://hotp/Big%20Co%20%26%20Sons:jan%20de%20vries\
             ?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=Big%20Co%20%26%20Sons&algorithm=SHA256&digits=8&counter=0"
        );
        assert_eq!(
            otpauth_uri("", "bob", b"1234567890", &totp6()),
            "otpauth://totp/bob?secret=GEZDGNBVGY3TQOJQ&algorithm=SHA1&digits=6&period=30"
        );
        assert_eq!(
            percent_encode("a:b/é?=&~-._"),
            "a%3Ab%2F%C3%A9%3F%3D%26~-._"
        );
    }

    #[test]
    fn params() {
        assert!(validate_params(&totp6()).is_ok());
        for digits in [6, 8] {
            assert!(validate_params(&OathParams { digits, ..totp6() }).is_ok());
        }
        for digits in [0, 5, 7, 9, 10] {
            let (field, _) = err_of(validate_params(&OathParams { digits, ..totp6() }));
            assert_eq!(field, "digits");
        }
        for period in [15, 60, 300] {
            assert!(validate_params(&OathParams { period, ..totp6() }).is_ok());
        }
        for period in [0, 14, 301] {
            let (field, message) = err_of(validate_params(&OathParams { period, ..totp6() }));
            assert_eq!(field, "period");
            assert!(message.contains("15 to 300"), "{message}");
        }
        // HOTP ignores the period.
        assert!(validate_params(&OathParams {
            period: 0,
            ..hotp6()
        })
        .is_ok());
    }
}
