//! argon2id for passwords (and later PINs and answers). Hashing is slow by
//! design, so it runs on the blocking pool, never on an async worker.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::OnceLock;

use crate::error::{Error, Result};

/// Cost of one hash. `Production` follows OWASP's argon2id guidance
/// (19 MiB, 2 passes); `Fast` exists so test suites that hash thousands of
/// times stay quick, and is chosen explicitly, never by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashCost {
    Production,
    Fast,
}

fn argon2(cost: HashCost) -> Argon2<'static> {
    let params = match cost {
        HashCost::Production => Params::new(19 * 1024, 2, 1, None),
        HashCost::Fast => Params::new(1024, 1, 1, None),
    }
    .expect("static argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

#[derive(Debug, Clone, Copy)]
pub struct SecretHasher {
    cost: HashCost,
}

impl SecretHasher {
    pub fn new(cost: HashCost) -> Self {
        Self { cost }
    }

    pub fn hash_blocking(&self, secret: &str) -> Result<String> {
        let salt = SaltString::generate(&mut OsRng);
        argon2(self.cost)
            .hash_password(secret.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| Error::Internal(format!("hashing failed: {e}")))
    }

    /// Verifies against any stored argon2 hash (its own parameters are read
    /// from the PHC string). Comparison is constant-time inside `argon2`.
    pub fn verify_blocking(secret: &str, phc: &str) -> bool {
        match PasswordHash::new(phc) {
            Ok(parsed) => Argon2::default()
                .verify_password(secret.as_bytes(), &parsed)
                .is_ok(),
            Err(_) => false,
        }
    }

    pub async fn hash(&self, secret: String) -> Result<String> {
        let me = *self;
        tokio::task::spawn_blocking(move || me.hash_blocking(&secret))
            .await
            .map_err(|e| Error::Internal(format!("hash task failed: {e}")))?
    }

    pub async fn verify(&self, secret: String, phc: String) -> bool {
        tokio::task::spawn_blocking(move || Self::verify_blocking(&secret, &phc))
            .await
            .unwrap_or(false)
    }

    /// Spends the same time as a real check when there is nothing to check
    /// against (unknown user), so timing does not reveal who exists.
    pub async fn verify_dummy(&self, secret: String) {
        let phc = self.dummy_hash().to_string();
        let _ = self.verify(secret, phc).await;
    }

    fn dummy_hash(self) -> &'static str {
        static PRODUCTION: OnceLock<String> = OnceLock::new();
        static FAST: OnceLock<String> = OnceLock::new();
        let cell = match self.cost {
            HashCost::Production => &PRODUCTION,
            HashCost::Fast => &FAST,
        };
        cell.get_or_init(|| {
            self.hash_blocking("twofold-dummy-password")
                .unwrap_or_default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_and_verify_off_thread() {
        let h = SecretHasher::new(HashCost::Fast);
        let phc = h.hash("correct horse".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(h.verify("correct horse".into(), phc.clone()).await);
        assert!(!h.verify("wrong horse".into(), phc).await);
        assert!(!h.verify("x".into(), "not a hash".into()).await);
    }

    #[test]
    fn production_cost_is_owasp() {
        let h = SecretHasher::new(HashCost::Production);
        let phc = h.hash_blocking("pw").unwrap();
        assert!(phc.contains("m=19456,t=2,p=1"), "{phc}");
        assert!(SecretHasher::verify_blocking("pw", &phc));
    }
}
