//! The device key and the signatures of `docs/mobile-protocol.md` §2.
//!
//! The key is an Ed25519 key pair made by *ring* and kept as PKCS#8 in the
//! store. Every request is signed over
//! [`twofold_proto::mobile::signed_message`], the same function the server
//! verifies with, so the two cannot disagree on the bytes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::rand::{SecureRandom as _, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use twofold_proto::mobile::signed_message;

use crate::Error;

/// Random bytes per nonce: 24 bytes are 32 base64url characters, inside the
/// protocol's 16 to 64, and far too many to ever repeat.
const NONCE_BYTES: usize = 24;

/// A device's Ed25519 key pair.
pub struct DeviceKey {
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeviceKey({})", self.public_key_base64())
    }
}

/// The three signature headers of one request (the device header, when
/// there is one, is the stored device id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub timestamp: String,
    pub nonce: String,
    /// base64url without padding.
    pub signature: String,
}

impl DeviceKey {
    /// A new key and its PKCS#8 document (what the store keeps).
    pub fn generate() -> Result<(DeviceKey, Vec<u8>), Error> {
        let rng = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| Error::Other("cannot generate an Ed25519 key".into()))?;
        let key = DeviceKey::from_pkcs8(pkcs8.as_ref())?;
        Ok((key, pkcs8.as_ref().to_vec()))
    }

    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<DeviceKey, Error> {
        Ed25519KeyPair::from_pkcs8(pkcs8)
            .map(|pair| DeviceKey { pair })
            .map_err(|e| Error::Other(format!("the stored device key is unusable: {e}")))
    }

    /// The key as the store keeps it: PKCS#8, base64url without padding.
    pub fn from_stored(text: &str) -> Result<DeviceKey, Error> {
        let der = URL_SAFE_NO_PAD
            .decode(text.trim())
            .map_err(|e| Error::Other(format!("the stored device key is not base64url: {e}")))?;
        DeviceKey::from_pkcs8(&der)
    }

    /// The encoding of [`DeviceKey::from_stored`].
    pub fn encode_stored(pkcs8: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(pkcs8)
    }

    /// The 32 raw bytes of the public key.
    pub fn public_key(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    /// The public key as activation sends it: base64url without padding.
    pub fn public_key_base64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.public_key())
    }

    /// Signs one request with a fresh nonce. `path_and_query` must be
    /// exactly what goes on the request line, `body` exactly the bytes sent.
    pub fn sign(
        &self,
        method: &str,
        path_and_query: &str,
        body: &[u8],
        unix_time: u64,
    ) -> Result<Signature, Error> {
        let nonce = new_nonce()?;
        let timestamp = unix_time.to_string();
        let message = signed_message(method, path_and_query, &timestamp, &nonce, body);
        let signature = URL_SAFE_NO_PAD.encode(self.pair.sign(&message).as_ref());
        Ok(Signature {
            timestamp,
            nonce,
            signature,
        })
    }
}

/// A random nonce: 24 bytes from the system's CSPRNG, base64url (32
/// characters of `A-Za-z0-9-_`).
pub fn new_nonce() -> Result<String, Error> {
    let mut bytes = [0u8; NONCE_BYTES];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Error::Other("the system random generator failed".into()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{UnparsedPublicKey, ED25519};
    use twofold_proto::mobile::is_nonce;

    fn verifies(key: &DeviceKey, method: &str, pq: &str, body: &[u8], sig: &Signature) -> bool {
        let message = signed_message(method, pq, &sig.timestamp, &sig.nonce, body);
        let raw = URL_SAFE_NO_PAD.decode(&sig.signature).unwrap();
        UnparsedPublicKey::new(&ED25519, key.public_key())
            .verify(&message, &raw)
            .is_ok()
    }

    #[test]
    fn signatures_verify_over_the_protocol_message() {
        let (key, _) = DeviceKey::generate().unwrap();
        let body = br#"{"decision":"approve","number":42}"#;
        let pq = "/mobile/v1/requests/c0f3/answer";
        let sig = key.sign("POST", pq, body, 1_764_523_000).unwrap();
        assert_eq!(sig.timestamp, "1764523000");
        assert!(verifies(&key, "POST", pq, body, &sig));

        // A changed body, path, method, time or nonce does not verify.
        assert!(!verifies(
            &key,
            "POST",
            pq,
            br#"{"decision":"approve","number":43}"#,
            &sig
        ));
        assert!(!verifies(
            &key,
            "POST",
            "/mobile/v1/requests/c0f4/answer",
            body,
            &sig
        ));
        assert!(!verifies(&key, "GET", pq, body, &sig));
        let mut later = sig.clone();
        later.timestamp = "1764523001".into();
        assert!(!verifies(&key, "POST", pq, body, &later));
        let mut other_nonce = sig.clone();
        other_nonce.nonce = new_nonce().unwrap();
        assert!(!verifies(&key, "POST", pq, body, &other_nonce));

        // Another key's signature does not verify under this public key.
        let (other, _) = DeviceKey::generate().unwrap();
        let forged = other.sign("POST", pq, body, 1_764_523_000).unwrap();
        assert!(!verifies(&key, "POST", pq, body, &forged));
    }

    #[test]
    fn get_requests_sign_the_empty_body() {
        let (key, _) = DeviceKey::generate().unwrap();
        let sig = key
            .sign("GET", "/mobile/v1/requests?wait=60", b"", 1)
            .unwrap();
        assert!(verifies(
            &key,
            "GET",
            "/mobile/v1/requests?wait=60",
            b"",
            &sig
        ));
        assert!(!verifies(
            &key,
            "GET",
            "/mobile/v1/requests?wait=0",
            b"",
            &sig
        ));
    }

    #[test]
    fn nonces_are_protocol_nonces_and_differ() {
        let a = new_nonce().unwrap();
        let b = new_nonce().unwrap();
        assert_eq!(a.len(), 32);
        assert!(is_nonce(&a) && is_nonce(&b));
        assert_ne!(a, b);
    }

    #[test]
    fn keys_survive_the_store_encoding() {
        let (key, pkcs8) = DeviceKey::generate().unwrap();
        let stored = DeviceKey::encode_stored(&pkcs8);
        let again = DeviceKey::from_stored(&stored).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        assert_eq!(key.public_key().len(), 32);
        assert_eq!(key.public_key_base64().len(), 43);
        assert!(DeviceKey::from_stored("bm90IGEga2V5").is_err());
        assert!(DeviceKey::from_stored("!!").is_err());

        // A signature by the reloaded key verifies under the original.
        let sig = again.sign("POST", "/mobile/v1/deactivate", b"", 5).unwrap();
        assert!(verifies(&key, "POST", "/mobile/v1/deactivate", b"", &sig));
    }
}
