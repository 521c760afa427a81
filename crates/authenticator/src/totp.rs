//! TOTP codes (RFC 6238 over RFC 4226 HOTP) of the account's OATH secret:
//! the fallback the user types when the phone cannot reach the server.

use ring::hmac;
use twofold_proto::mobile::OathSeed;

use crate::Error;

/// The HMAC of a TOTP secret. SHA-1 is what Twofold issues; the other two
/// are RFC 6238's and cost nothing to support.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn parse(name: &str) -> Result<Algorithm, Error> {
        match name.to_ascii_uppercase().replace('-', "").as_str() {
            "SHA1" => Ok(Algorithm::Sha1),
            "SHA256" => Ok(Algorithm::Sha256),
            "SHA512" => Ok(Algorithm::Sha512),
            _ => Err(Error::Other(format!(
                "unsupported TOTP algorithm {}",
                crate::text::clean(name)
            ))),
        }
    }

    fn ring(self) -> hmac::Algorithm {
        match self {
            // RFC 6238's default; HMAC-SHA-1 is not broken the way SHA-1
            // collisions are.
            Algorithm::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            Algorithm::Sha256 => hmac::HMAC_SHA256,
            Algorithm::Sha512 => hmac::HMAC_SHA512,
        }
    }
}

/// A decoded TOTP secret with its parameters.
#[derive(Clone)]
pub struct Totp {
    secret: Vec<u8>,
    algorithm: Algorithm,
    digits: u32,
    period: u64,
}

impl std::fmt::Debug for Totp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Totp")
            .field("secret", &"<redacted>")
            .field("algorithm", &self.algorithm)
            .field("digits", &self.digits)
            .field("period", &self.period)
            .finish()
    }
}

/// A code and how long it stays current.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Code {
    pub code: String,
    pub seconds_left: u64,
}

impl Totp {
    pub fn new(
        secret: Vec<u8>,
        algorithm: Algorithm,
        digits: u32,
        period: u64,
    ) -> Result<Totp, Error> {
        if secret.is_empty() {
            return Err(Error::Other("the TOTP secret is empty".into()));
        }
        // 10 digits is the most a 31-bit truncated HMAC can fill.
        if !(6..=10).contains(&digits) {
            return Err(Error::Other(format!(
                "TOTP codes of {digits} digits are not supported"
            )));
        }
        if period == 0 {
            return Err(Error::Other("the TOTP period is 0 seconds".into()));
        }
        Ok(Totp {
            secret,
            algorithm,
            digits,
            period,
        })
    }

    /// The seed as the server sent it at activation (base32 secret).
    pub fn from_seed(seed: &OathSeed) -> Result<Totp, Error> {
        Totp::new(
            decode_base32(&seed.secret)?,
            Algorithm::parse(&seed.algorithm)?,
            seed.digits,
            u64::from(seed.period),
        )
    }

    /// The RFC 4226 code of a counter value.
    pub fn hotp(&self, counter: u64) -> String {
        let key = hmac::Key::new(self.algorithm.ring(), &self.secret);
        let tag = hmac::sign(&key, &counter.to_be_bytes());
        let mac = tag.as_ref();
        let offset = usize::from(mac[mac.len() - 1] & 0x0f);
        let binary = u32::from_be_bytes([
            mac[offset],
            mac[offset + 1],
            mac[offset + 2],
            mac[offset + 3],
        ]) & 0x7fff_ffff;
        let value = u64::from(binary) % 10u64.pow(self.digits);
        format!("{value:0width$}", width = self.digits as usize)
    }

    /// The code at `unix_time` and the seconds until the next one.
    pub fn at(&self, unix_time: u64) -> Code {
        Code {
            code: self.hotp(unix_time / self.period),
            seconds_left: self.period - unix_time % self.period,
        }
    }
}

/// Base32 (RFC 4648) as people and servers write it: any case, with or
/// without padding and spaces.
pub fn decode_base32(text: &str) -> Result<Vec<u8>, Error> {
    let cleaned: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '=' && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    data_encoding::BASE32_NOPAD
        .decode(cleaned.as_bytes())
        .map_err(|e| Error::Other(format!("the stored TOTP secret is not base32: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B: the time and the expected 8-digit code.
    const VECTORS: [(u64, &str, &str, &str); 6] = [
        (59, "94287082", "46119246", "90693936"),
        (1_111_111_109, "07081804", "68084774", "25091201"),
        (1_111_111_111, "14050471", "67062674", "99943326"),
        (1_234_567_890, "89005924", "91819424", "93441116"),
        (2_000_000_000, "69279037", "90698825", "38618901"),
        (20_000_000_000, "65353130", "77737706", "47863826"),
    ];

    fn seed(len: usize) -> Vec<u8> {
        b"1234567890".iter().copied().cycle().take(len).collect()
    }

    #[test]
    fn rfc6238_sha1_vectors() {
        let totp = Totp::new(seed(20), Algorithm::Sha1, 8, 30).unwrap();
        for (t, sha1, _, _) in VECTORS {
            assert_eq!(totp.at(t).code, sha1, "T = {t}");
        }
    }

    #[test]
    fn rfc6238_sha256_and_sha512_vectors() {
        let sha256 = Totp::new(seed(32), Algorithm::Sha256, 8, 30).unwrap();
        let sha512 = Totp::new(seed(64), Algorithm::Sha512, 8, 30).unwrap();
        for (t, _, a, b) in VECTORS {
            assert_eq!(sha256.at(t).code, a, "SHA-256, T = {t}");
            assert_eq!(sha512.at(t).code, b, "SHA-512, T = {t}");
        }
    }

    #[test]
    fn six_digit_codes_from_a_base32_seed() {
        // The RFC's SHA-1 key, base32-encoded as the server sends it.
        let seed = OathSeed {
            secret: data_encoding::BASE32_NOPAD.encode(b"12345678901234567890"),
            algorithm: "SHA1".into(),
            digits: 6,
            period: 30,
        };
        let totp = Totp::from_seed(&seed).unwrap();
        assert_eq!(
            totp.at(59),
            Code {
                code: "287082".into(),
                seconds_left: 1
            }
        );
        assert_eq!(totp.at(1_111_111_109).code, "081804");
        assert_eq!(totp.at(60).seconds_left, 30);
        // RFC 4226 appendix D: HOTP values of the same key.
        assert_eq!(totp.hotp(0), "755224");
        assert_eq!(totp.hotp(9), "520489");
    }

    #[test]
    fn base32_is_read_leniently_and_checked() {
        assert_eq!(
            decode_base32("jbsw y3dp ehpk 3pxp").unwrap(),
            b"Hello!\xde\xad\xbe\xef"
        );
        assert_eq!(
            decode_base32("JBSWY3DPEHPK3PXP====").unwrap(),
            b"Hello!\xde\xad\xbe\xef"
        );
        assert!(decode_base32("not base32!").is_err());
        assert!(Algorithm::parse("MD5").is_err());
        assert_eq!(Algorithm::parse("sha-256").unwrap(), Algorithm::Sha256);
        assert!(Totp::new(vec![1], Algorithm::Sha1, 5, 30).is_err());
        assert!(Totp::new(vec![1], Algorithm::Sha1, 6, 0).is_err());
        assert!(Totp::new(vec![], Algorithm::Sha1, 6, 30).is_err());
    }
}
