//! Secret sealing: AES-256-GCM with a key kept in a file outside the database,
//! so a copy of the database alone reveals no OATH seed.
//!
//! Sealed values read `v1:<base64(nonce || ciphertext+tag)>`. Every seal binds
//! an "associated data" label (for example `oath-seed:42`) so a sealed value
//! copied onto another row or purpose does not open.
//!
//! The same file also yields the pepper of password, PIN and answer hashes
//! (`pepper`), derived with HKDF-SHA256 under its own label, so the AES key
//! and the pepper are independent keys. Derived rather than kept in a second
//! file because the sealing key already is the one secret every node must
//! share and every backup must keep apart from the database: a second file
//! would be a second thing to lose, and a node started without it would
//! silently make its own pepper — PINs set there would then fail on every
//! other node. Replacing the sealing key already loses every sealed seed, so
//! tying the pepper to it loses nothing that was not lost anyway.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use rand::RngCore;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::password::Pepper;

const FILE_PREFIX: &str = "twofold-sealing-key-v1:";
const SEALED_PREFIX: &str = "v1:";
const NONCE_LEN: usize = 12;

pub struct SealingKey {
    cipher: Aes256Gcm,
    pepper: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(..)")
    }
}

impl SealingKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self {
            cipher: Aes256Gcm::new(bytes.into()),
            pepper: derive_pepper(bytes),
        }
    }

    /// The pepper of password, PIN and answer hashes: HKDF-SHA256 of this
    /// key with its own label (see the module's notes).
    pub fn pepper(&self) -> Pepper {
        Pepper::from_bytes(&self.pepper)
    }

    /// Loads the key file, or creates it (mode 0600, never overwriting) when it
    /// does not exist. Returns whether it was created.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool)> {
        match fs::metadata(path) {
            Ok(_) => Ok((Self::load(path)?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((Self::create(path)?, true)),
            Err(e) => Err(Error::Internal(format!(
                "cannot read sealing key {}: {e}",
                path.display()
            ))),
        }
    }

    fn create(path: &Path) -> Result<Self> {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(key.as_mut());
        let text = Zeroizing::new(format!("{FILE_PREFIX}{}\n", B64.encode(key.as_ref())));
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| Error::Internal(format!("cannot create {}: {e}", parent.display())))?;
        }
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| {
                Error::Internal(format!("cannot create sealing key {}: {e}", path.display()))
            })?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| {
                Error::Internal(format!("cannot write sealing key {}: {e}", path.display()))
            })?;
        Ok(Self::from_bytes(&key))
    }

    fn load(path: &Path) -> Result<Self> {
        let meta = fs::metadata(path).map_err(|e| {
            Error::Internal(format!("cannot read sealing key {}: {e}", path.display()))
        })?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::Internal(format!(
                "sealing key {} is readable by others (mode {mode:o}); run: chmod 600 {}",
                path.display(),
                path.display()
            )));
        }
        let text = Zeroizing::new(fs::read_to_string(path).map_err(|e| {
            Error::Internal(format!("cannot read sealing key {}: {e}", path.display()))
        })?);
        let bad = || Error::Internal(format!("sealing key {} is malformed", path.display()));
        let b64 = text.trim().strip_prefix(FILE_PREFIX).ok_or_else(bad)?;
        let bytes = Zeroizing::new(B64.decode(b64).map_err(|_| bad())?);
        let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| bad())?;
        let key = Zeroizing::new(key);
        Ok(Self::from_bytes(&key))
    }

    pub fn seal(&self, plaintext: &[u8], label: &str) -> Result<String> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: label.as_bytes(),
                },
            )
            .map_err(|_| Error::Internal("sealing failed".into()))?;
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(format!("{SEALED_PREFIX}{}", B64.encode(out)))
    }

    pub fn open(&self, sealed: &str, label: &str) -> Result<Zeroizing<Vec<u8>>> {
        let bad = || Error::Internal(format!("sealed value for {label} does not open"));
        let raw = B64
            .decode(sealed.strip_prefix(SEALED_PREFIX).ok_or_else(bad)?)
            .map_err(|_| bad())?;
        if raw.len() < NONCE_LEN + 16 {
            return Err(bad());
        }
        let (nonce, ct) = raw.split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: label.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| bad())
    }
}

/// HKDF-SHA256 (RFC 5869): no salt, the label as `info`. Changing the
/// label would make every peppered hash unverifiable.
fn derive_pepper(key: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    use ring::hkdf;
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &[]).extract(key);
    let mut out = Zeroizing::new([0u8; 32]);
    prk.expand(&[b"twofold-password-pepper-v1"], hkdf::HKDF_SHA256)
        .and_then(|okm| okm.fill(out.as_mut()))
        .expect("32 bytes is a valid HKDF-SHA256 length");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_is_created_private_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/sealing.key");
        let (k1, created) = SealingKey::load_or_create(&path).unwrap();
        assert!(created);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let sealed = k1.seal(b"JBSWY3DPEHPK3PXP", "oath-seed:1").unwrap();
        assert!(sealed.starts_with("v1:"));
        assert!(!sealed.contains("JBSWY3DPEHPK3PXP"));
        let (k2, created) = SealingKey::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(
            &*k2.open(&sealed, "oath-seed:1").unwrap(),
            b"JBSWY3DPEHPK3PXP"
        );
    }

    #[test]
    fn wrong_label_tamper_or_key_fails() {
        let k = SealingKey::from_bytes(&[7u8; 32]);
        let sealed = k.seal(b"secret", "a").unwrap();
        assert!(k.open(&sealed, "b").is_err());
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(k
            .open(std::str::from_utf8(&tampered).unwrap(), "a")
            .is_err());
        assert!(SealingKey::from_bytes(&[8u8; 32])
            .open(&sealed, "a")
            .is_err());
        assert!(k.open("v1:", "a").is_err());
        assert!(k.open("garbage", "a").is_err());
    }

    #[test]
    fn pepper_is_derived_apart_from_the_aes_key() {
        let key = [7u8; 32];
        let k = SealingKey::from_bytes(&key);
        // Stable: the same file gives the same pepper on every node and start.
        assert_eq!(*k.pepper, *SealingKey::from_bytes(&key).pepper);
        assert_ne!(*k.pepper, *SealingKey::from_bytes(&[8u8; 32]).pepper);
        // Not the AES key itself.
        assert_ne!(*k.pepper, key);
        // RFC 5869 HKDF-SHA256, pinned: a change here would lose every
        // peppered hash.
        // (Computed independently: HMAC(HMAC(0^32, key), label || 0x01).)
        assert_eq!(
            hex::encode(*derive_pepper(&[0u8; 32])),
            "db79ed4383e0949e9b1c732b55bac3193fcc8ee041e8d01f36d864fd1c7bf7fe"
        );
    }

    #[test]
    fn refuses_group_readable_or_malformed_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sealing.key");
        SealingKey::load_or_create(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = SealingKey::load_or_create(&path).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
        fs::write(&path, "nonsense").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(SealingKey::load_or_create(&path)
            .unwrap_err()
            .to_string()
            .contains("malformed"));
    }
}
