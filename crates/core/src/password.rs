//! argon2id for every secret a person types: local passwords, PINs and
//! security answers.
//!
//! Every new hash is keyed with a server-side secret, the pepper (argon2's
//! own "secret" input), which lives outside the database: a copy of the
//! database alone then gives nothing to guess offline. That matters most for
//! PINs, whose four to eight digits would otherwise fall to a brute force of
//! the stolen hashes in minutes whatever argon2's cost. A peppered hash
//! carries the pepper's identifier as the PHC parameter `keyid`, which is
//! how it is told apart from the unpeppered hashes of earlier versions; those
//! still verify, and `verify_upgrading` hands back a peppered replacement
//! when one proves right, so they disappear as people sign in.
//!
//! Hashing is slow and takes memory (19 MiB a run) by design, so it runs on
//! the blocking pool, never on an async worker — and at most one run per
//! core at a time: tokio's blocking pool would start hundreds of threads for
//! a burst of PIN checks, each with its 19 MiB, which gains nothing on a
//! machine with a few cores but can exhaust its memory. Extra checks wait
//! for a turn instead.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, KeyId, Params, ParamsBuilder, Version};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::num::NonZeroUsize;
use std::sync::{Arc, OnceLock};
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Length of the pepper's identifier in the PHC string (argon2 allows 8).
const KEYID_LEN: usize = 8;

/// Cost of one hash. `Production` follows OWASP's argon2id guidance
/// (19 MiB, 2 passes); `Fast` exists so test suites that hash thousands of
/// times stay quick, and is chosen explicitly, never by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashCost {
    Production,
    Fast,
}

impl HashCost {
    /// (memory in KiB, passes, lanes).
    fn costs(self) -> (u32, u32, u32) {
        match self {
            HashCost::Production => (19 * 1024, 2, 1),
            HashCost::Fast => (1024, 1, 1),
        }
    }
}

/// The server-side key of every new hash. The server derives it from the
/// sealing key (`SealingKey::pepper`); tests make one from fixed bytes.
#[derive(Clone)]
pub struct Pepper {
    key: Zeroizing<[u8; 32]>,
    /// Names this pepper in the hashes it keys (`keyid=`): a one-way digest,
    /// so a hash names its pepper without revealing anything of it, and a
    /// hash keyed with another pepper (a node with another sealing key) is
    /// recognised as such instead of looking like a wrong PIN.
    id: [u8; KEYID_LEN],
}

impl std::fmt::Debug for Pepper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pepper(..)")
    }
}

impl Pepper {
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        let digest = Sha256::new()
            .chain_update(b"twofold-pepper-id-v1\0")
            .chain_update(bytes)
            .finalize();
        let mut id = [0u8; KEYID_LEN];
        id.copy_from_slice(&digest[..KEYID_LEN]);
        Pepper {
            key: Zeroizing::new(*bytes),
            id,
        }
    }

    /// A fresh random pepper (tests, benchmarks).
    pub fn random() -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(bytes.as_mut());
        Self::from_bytes(&bytes)
    }
}

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Verdict {
    /// The secret is right.
    pub matched: bool,
    /// Only when it is right and the stored hash is unpeppered or weaker
    /// than the current cost: a hash of the same secret to store in its
    /// place (compare-and-set on the old one).
    pub rehashed: Option<String>,
}

impl Verdict {
    const WRONG: Verdict = Verdict {
        matched: false,
        rehashed: None,
    };
}

struct Inner {
    cost: HashCost,
    pepper: Pepper,
    /// The hash `verify_dummy` checks against: made once, with this pepper
    /// and cost, so a dummy check costs what a real one does.
    dummy: OnceLock<String>,
}

/// Hashes and verifies secrets. Clones share the pepper and the turns
/// (one argon2 run per core at a time).
#[derive(Clone)]
pub struct SecretHasher {
    inner: Arc<Inner>,
    turns: Arc<Semaphore>,
}

impl std::fmt::Debug for SecretHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretHasher")
            .field("cost", &self.inner.cost)
            .finish_non_exhaustive()
    }
}

impl SecretHasher {
    /// At most as many argon2 runs at once as the machine has cores.
    pub fn new(cost: HashCost, pepper: Pepper) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        Self::with_parallelism(cost, pepper, cores)
    }

    /// `new` with an explicit number of argon2 runs at once (at least one).
    pub fn with_parallelism(cost: HashCost, pepper: Pepper, runs: usize) -> Self {
        SecretHasher {
            inner: Arc::new(Inner {
                cost,
                pepper,
                dummy: OnceLock::new(),
            }),
            turns: Arc::new(Semaphore::new(runs.max(1))),
        }
    }

    fn argon2(&self) -> Argon2<'_> {
        let (m, t, p) = self.inner.cost.costs();
        let params = ParamsBuilder::new()
            .m_cost(m)
            .t_cost(t)
            .p_cost(p)
            .keyid(KeyId::new(&self.inner.pepper.id).expect("the keyid fits"))
            .build()
            .expect("static argon2 parameters are valid");
        self.keyed(params)
    }

    /// Keyed with the pepper; the parameters are replaced by the stored
    /// hash's own when verifying.
    fn keyed(&self, params: Params) -> Argon2<'_> {
        Argon2::new_with_secret(
            self.inner.pepper.key.as_ref(),
            Algorithm::Argon2id,
            Version::V0x13,
            params,
        )
        .expect("a 32-byte secret is within argon2's limit")
    }

    /// A new peppered hash (on the calling thread, without waiting for a
    /// turn: for start-up work and benchmarks; async code uses `hash`).
    pub fn hash_blocking(&self, secret: &str) -> Result<String> {
        let salt = SaltString::generate(&mut OsRng);
        self.argon2()
            .hash_password(secret.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| Error::Internal(format!("hashing failed: {e}")))
    }

    /// Verifies against a peppered hash or an unpeppered one of an earlier
    /// version (its own parameters are read from the PHC string).
    /// Comparison is constant-time inside `argon2`.
    pub fn verify_blocking(&self, secret: &str, phc: &str) -> bool {
        self.check_blocking(secret, phc, false).matched
    }

    /// `verify_blocking`, and when the secret is right but the hash is
    /// unpeppered or weaker than the current cost, a new hash of it.
    pub fn verify_upgrading_blocking(&self, secret: &str, phc: &str) -> Verdict {
        self.check_blocking(secret, phc, true)
    }

    fn check_blocking(&self, secret: &str, phc: &str, upgrade: bool) -> Verdict {
        let Ok(parsed) = PasswordHash::new(phc) else {
            return Verdict::WRONG;
        };
        let Ok(params) = Params::try_from(&parsed) else {
            return Verdict::WRONG;
        };
        // The marker decides which key: an unpeppered hash never verifies
        // with the pepper, nor a peppered one without it.
        let peppered = !params.keyid().is_empty();
        let matched = if peppered {
            if params.keyid() != self.inner.pepper.id {
                // Still computed below, so the time taken says nothing.
                tracing::warn!(
                    "a stored hash was keyed with another pepper than this server's \
                     (another sealing key?); it cannot verify here"
                );
            }
            self.keyed(Params::default())
                .verify_password(secret.as_bytes(), &parsed)
                .is_ok()
        } else {
            Argon2::default()
                .verify_password(secret.as_bytes(), &parsed)
                .is_ok()
        };
        if !matched {
            return Verdict::WRONG;
        }
        let rehashed = if upgrade && self.is_outdated(&parsed, &params) {
            match self.hash_blocking(secret) {
                Ok(h) => Some(h),
                Err(e) => {
                    // The secret is still right; the upgrade waits for the
                    // next check.
                    tracing::warn!("could not rehash a verified secret: {e}");
                    None
                }
            }
        } else {
            None
        };
        Verdict {
            matched: true,
            rehashed,
        }
    }

    /// Unpeppered, another algorithm or version, or cheaper in any of
    /// memory, passes or lanes than the current cost. (A dearer hash stays:
    /// re-hashing it would weaken it.)
    fn is_outdated(&self, parsed: &PasswordHash<'_>, params: &Params) -> bool {
        let (m, t, p) = self.inner.cost.costs();
        params.keyid().is_empty()
            || parsed.algorithm != argon2::ARGON2ID_IDENT
            || parsed.version != Some(Version::V0x13.into())
            || params.m_cost() < m
            || params.t_cost() < t
            || params.p_cost() < p
    }

    /// Runs `work` on the blocking pool once a turn is free. The turn moves
    /// into the blocking task, so it is given back when the computation
    /// ends — even when the caller has stopped waiting for it.
    async fn on_turn<T: Send + 'static>(
        &self,
        work: impl FnOnce(&SecretHasher) -> T + Send + 'static,
    ) -> Result<T> {
        let turn = self
            .turns
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| Error::Internal(format!("hash turns closed: {e}")))?;
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let out = work(&me);
            drop(turn);
            out
        })
        .await
        .map_err(|e| Error::Internal(format!("hash task failed: {e}")))
    }

    pub async fn hash(&self, secret: String) -> Result<String> {
        let secret = Zeroizing::new(secret);
        self.on_turn(move |me| me.hash_blocking(&secret)).await?
    }

    pub async fn verify(&self, secret: String, phc: String) -> bool {
        let secret = Zeroizing::new(secret);
        self.on_turn(move |me| me.verify_blocking(&secret, &phc))
            .await
            .unwrap_or(false)
    }

    /// `verify`, with a replacement hash when the stored one is outdated
    /// (see `Verdict`). A wrong secret never yields one.
    pub async fn verify_upgrading(&self, secret: String, phc: String) -> Verdict {
        let secret = Zeroizing::new(secret);
        self.on_turn(move |me| me.verify_upgrading_blocking(&secret, &phc))
            .await
            .unwrap_or(Verdict::WRONG)
    }

    /// Spends the same time as a real check when there is nothing to check
    /// against (unknown user), so timing does not reveal who exists.
    pub async fn verify_dummy(&self, secret: String) {
        let secret = Zeroizing::new(secret);
        let _ = self
            .on_turn(move |me| {
                let phc = me.dummy_hash();
                me.verify_blocking(&secret, phc)
            })
            .await;
    }

    fn dummy_hash(&self) -> &str {
        self.inner.dummy.get_or_init(|| {
            self.hash_blocking("twofold-dummy-password")
                .unwrap_or_default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
    use base64::Engine as _;
    use std::time::Duration;

    fn fast() -> SecretHasher {
        SecretHasher::new(HashCost::Fast, Pepper::from_bytes(&[5; 32]))
    }

    /// As an earlier version stored it: argon2id without a key.
    fn unpeppered(secret: &str, m: u32, t: u32) -> String {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(m, t, 1, None).unwrap(),
        )
        .hash_password(secret.as_bytes(), &salt)
        .unwrap()
        .to_string()
    }

    #[tokio::test]
    async fn hash_and_verify_off_thread() {
        let h = fast();
        let phc = h.hash("correct horse".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(h.verify("correct horse".into(), phc.clone()).await);
        assert!(!h.verify("wrong horse".into(), phc).await);
        assert!(!h.verify("x".into(), "not a hash".into()).await);
    }

    #[test]
    fn production_cost_is_owasp() {
        let h = SecretHasher::new(HashCost::Production, Pepper::random());
        let phc = h.hash_blocking("pw").unwrap();
        assert!(phc.contains("m=19456,t=2,p=1,keyid="), "{phc}");
        assert!(h.verify_blocking("pw", &phc));
    }

    #[tokio::test]
    async fn peppered_hash_verifies_only_with_its_pepper() {
        let h = fast();
        let phc = h.hash("4826".into()).await.unwrap();
        // The marker: the pepper's identifier, never the pepper.
        let keyid = phc
            .split(['$', ','])
            .find_map(|part| part.strip_prefix("keyid="))
            .expect("marked");
        assert!(!keyid.is_empty());
        assert!(!phc.contains(&B64.encode([5u8; 32])));
        assert!(h.verify("4826".into(), phc.clone()).await);
        // A clone shares the pepper.
        assert!(h.clone().verify("4826".into(), phc.clone()).await);
        let same_bytes = SecretHasher::new(HashCost::Fast, Pepper::from_bytes(&[5; 32]));
        assert!(same_bytes.verify("4826".into(), phc.clone()).await);
        let other = SecretHasher::new(HashCost::Fast, Pepper::from_bytes(&[6; 32]));
        assert!(!other.verify("4826".into(), phc.clone()).await);
        // Without the key (an attacker with the database alone).
        let parsed = PasswordHash::new(&phc).unwrap();
        assert!(Argon2::default().verify_password(b"4826", &parsed).is_err());
        // A peppered hash needs no upgrade.
        let v = h.verify_upgrading("4826".into(), phc).await;
        assert_eq!(
            v,
            Verdict {
                matched: true,
                rehashed: None
            }
        );
    }

    #[tokio::test]
    async fn unpeppered_hash_verifies_and_is_upgraded() {
        let h = fast();
        let old = unpeppered("4826", 1024, 1);
        assert!(h.verify("4826".into(), old.clone()).await);
        let v = h.verify_upgrading("4826".into(), old.clone()).await;
        assert!(v.matched);
        let new = v.rehashed.expect("an unpeppered hash is upgraded");
        assert!(new.contains(",keyid="), "{new}");
        assert_ne!(new, old);
        assert!(h.verify("4826".into(), new.clone()).await);
        assert_eq!(h.verify_upgrading("4826".into(), new).await.rehashed, None);
    }

    #[tokio::test]
    async fn weaker_parameters_are_upgraded_stronger_ones_kept() {
        let production = SecretHasher::new(HashCost::Production, Pepper::from_bytes(&[5; 32]));
        let fast = fast();
        let cheap = fast.hash("pw".into()).await.unwrap();
        let v = production.verify_upgrading("pw".into(), cheap).await;
        assert!(v.matched);
        let dear = v.rehashed.expect("cheaper than production");
        assert!(dear.contains("m=19456,t=2,p=1,keyid="), "{dear}");
        let v = fast.verify_upgrading("pw".into(), dear).await;
        assert!(v.matched && v.rehashed.is_none(), "{v:?}");
    }

    #[tokio::test]
    async fn a_wrong_secret_never_upgrades() {
        let h = fast();
        let old = unpeppered("4826", 1024, 1);
        assert_eq!(h.verify_upgrading("4827".into(), old).await, Verdict::WRONG);
        let peppered = h.hash("4826".into()).await.unwrap();
        assert_eq!(
            h.verify_upgrading("4827".into(), peppered).await,
            Verdict::WRONG
        );
        assert_eq!(
            h.verify_upgrading("4826".into(), "garbage".into()).await,
            Verdict::WRONG
        );
    }

    #[tokio::test]
    async fn dummy_checks_use_this_hashers_pepper() {
        let h = fast();
        h.verify_dummy("anything".into()).await;
        let dummy = h.inner.dummy.get().expect("made on first use");
        assert!(h.verify_blocking("twofold-dummy-password", dummy));
    }

    #[tokio::test]
    async fn runs_beyond_the_limit_wait_for_a_turn() {
        let h = SecretHasher::with_parallelism(HashCost::Fast, Pepper::random(), 1);
        let phc = h.hash("pw".into()).await.unwrap();
        // Every turn taken (as by a long-running check): the next waits...
        let taken = h.turns.clone().acquire_owned().await.unwrap();
        let waiting = tokio::spawn({
            let h = h.clone();
            async move { h.verify("pw".into(), phc).await }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!waiting.is_finished(), "ran without a turn");
        // ...and runs once one is given back.
        drop(taken);
        assert!(waiting.await.unwrap());
        assert_eq!(h.turns.available_permits(), 1);
    }

    #[test]
    fn default_turns_follow_the_cores() {
        let h = SecretHasher::new(HashCost::Fast, Pepper::random());
        let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        assert_eq!(h.turns.available_permits(), cores);
    }
}
