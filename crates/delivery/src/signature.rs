//! `X-Twilio-Signature`: base64 of HMAC-SHA1, keyed with the account's auth
//! token, over the full URL the provider requested followed by every form
//! field's name and value, sorted by name. A webhook whose signature does
//! not match is a forgery (or a misconfigured public URL) and is refused.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

type HmacSha1 = Hmac<Sha1>;

/// The signature of a request to `url` with form `fields`.
pub fn sign(auth_token: &str, url: &str, fields: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = fields.iter().collect();
    // Stable: repeated names keep their order, as the provider sends them.
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut mac =
        HmacSha1::new_from_slice(auth_token.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    B64.encode(mac.finalize().into_bytes())
}

/// True when `presented` is the signature of this request (constant time).
pub fn verify(auth_token: &str, url: &str, fields: &[(String, String)], presented: &str) -> bool {
    let expected = sign(auth_token, url, fields);
    expected.len() == presented.len() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Vec<(String, String)> {
        [
            ("To", "+18005551212"),
            ("CallSid", "CA1234567890ABCDE"),
            ("Digits", "1234"),
            ("From", "+14158675310"),
            ("Caller", "+14158675310"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
    }

    /// The example of the provider's security documentation (and of its
    /// helper libraries' tests): token `12345`, this URL and these fields.
    #[test]
    fn matches_the_providers_published_example() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(
            sign("12345", url, &fields()),
            "GvWf1cFY/Q7PnoempGyD5oXAezc="
        );
        assert!(verify(
            "12345",
            url,
            &fields(),
            "GvWf1cFY/Q7PnoempGyD5oXAezc="
        ));
    }

    #[test]
    fn any_change_breaks_it() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let good = sign("12345", url, &fields());
        assert!(!verify("12346", url, &fields(), &good));
        assert!(!verify(
            "12345",
            "https://mycompany.com/myapp.php?foo=1",
            &fields(),
            &good
        ));
        let mut other = fields();
        other[2].1 = "0#".into();
        assert!(!verify("12345", url, &other, &good));
        assert!(!verify("12345", url, &fields(), ""));
        assert!(!verify("12345", url, &fields(), &good[1..]));
    }
}
