//! The accounts file: every activated account with its private key and
//! TOTP secret, as JSON.
//!
//! The file holds secrets, so it is only ever written through a temporary
//! file created with mode 0600 in the same directory (0700 when we create
//! it) and renamed over the old one: no moment exists where the secrets are
//! on disk with wider permissions, and a crash mid-write leaves the old
//! file whole. A file that group or others can read is refused rather than
//! used: its keys must be considered exposed.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::fs;
use std::io::{ErrorKind, Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use twofold_proto::mobile::OathSeed;

use crate::Error;

/// The store format; a file of another version is refused, not guessed at.
pub const STORE_VERSION: u32 = 1;

/// One activated account (one device registration on one server).
#[derive(Clone, Serialize, Deserialize)]
pub struct Account {
    /// The Mobile App Web Service URL, e.g. `https://mfa.example.org/mobile/v1`.
    pub service_url: String,
    /// SHA-256 of the server's certificate (64 lowercase hex) when pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// PEM certificates trusted for this server when nothing is pinned
    /// (absolute path); neither means the public web PKI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    pub device_id: String,
    pub device_name: String,
    /// The Ed25519 key, PKCS#8 v2 DER, base64url without padding.
    pub private_key: String,
    pub username: String,
    /// The name the server gives the account (`mobile_app.account_name`).
    pub account: String,
    pub oath: OathSeed,
    pub request_lifetime_seconds: u32,
    /// Unix seconds of the activation.
    #[serde(default)]
    pub activated_at: u64,
}

impl Account {
    /// `username@account`, the way accounts are named on screen.
    pub fn label(&self) -> String {
        format!("{}@{}", self.username, self.account)
    }
}

// Never print the private key or the TOTP secret by accident.
impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("service_url", &self.service_url)
            .field("fingerprint", &self.fingerprint)
            .field("ca_file", &self.ca_file)
            .field("device_id", &self.device_id)
            .field("device_name", &self.device_name)
            .field("private_key", &"<redacted>")
            .field("username", &self.username)
            .field("account", &self.account)
            .field("oath", &"<redacted>")
            .field("request_lifetime_seconds", &self.request_lifetime_seconds)
            .field("activated_at", &self.activated_at)
            .finish()
    }
}

#[derive(Serialize, Deserialize)]
struct StoreFile {
    version: u32,
    accounts: Vec<Account>,
}

/// The accounts file and its contents.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    pub accounts: Vec<Account>,
}

/// `$XDG_CONFIG_HOME/twofold-authenticator/accounts.json`, else
/// `$HOME/.config/twofold-authenticator/accounts.json`.
pub fn default_path() -> Result<PathBuf, Error> {
    default_path_from(
        std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from),
        std::env::var_os("HOME").map(PathBuf::from),
    )
}

fn default_path_from(xdg: Option<PathBuf>, home: Option<PathBuf>) -> Result<PathBuf, Error> {
    // The XDG spec says a relative value is invalid and to be ignored.
    let base = match (xdg.filter(|p| p.is_absolute()), home.filter(|p| p.is_absolute())) {
        (Some(xdg), _) => xdg,
        (None, Some(home)) => home.join(".config"),
        (None, None) => {
            return Err(Error::Usage(
                "neither XDG_CONFIG_HOME nor HOME is set: pass --store PATH or set TWOFOLD_AUTHENTICATOR_STORE"
                    .into(),
            ))
        }
    };
    Ok(base.join("twofold-authenticator").join("accounts.json"))
}

impl Store {
    /// Reads the store; a file that does not exist is an empty store (it is
    /// created by the first [`Store::save`]).
    pub fn load(path: &Path) -> Result<Store, Error> {
        let shown = path.display();
        let mut file = match fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Ok(Store {
                    path: path.to_path_buf(),
                    accounts: Vec::new(),
                })
            }
            Err(e) => return Err(Error::Store(format!("cannot open {shown}: {e}"))),
        };
        // The mode of the file actually opened, not of whatever the path
        // names a moment later.
        let meta = file
            .metadata()
            .map_err(|e| Error::Store(format!("cannot read {shown}: {e}")))?;
        if !meta.is_file() {
            return Err(Error::Store(format!("{shown} is not a regular file")));
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::Store(format!(
                "{shown} is accessible by group or others (mode {mode:04o}): its device keys may have \
                 been copied; if you are sure they were not, run `chmod 600 {shown}`, otherwise \
                 deactivate the devices on your account page and activate again"
            )));
        }
        let mut text = String::new();
        file.read_to_string(&mut text)
            .map_err(|e| Error::Store(format!("cannot read {shown}: {e}")))?;
        let parsed: StoreFile = serde_json::from_str(&text)
            .map_err(|e| Error::Store(format!("{shown} is not an accounts file: {e}")))?;
        if parsed.version != STORE_VERSION {
            return Err(Error::Store(format!(
                "{shown} is version {} of the accounts file; this program reads version {STORE_VERSION}",
                parsed.version
            )));
        }
        Ok(Store {
            path: path.to_path_buf(),
            accounts: parsed.accounts,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the whole store atomically: a 0600 temporary file in the same
    /// directory, flushed, then renamed over the old file.
    pub fn save(&self) -> Result<(), Error> {
        let shown = self.path.display();
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|e| Error::Store(format!("cannot create {}: {e}", dir.display())))?;
        }
        let json = serde_json::to_vec_pretty(&StoreFile {
            version: STORE_VERSION,
            accounts: self.accounts.clone(),
        })
        .map_err(|e| Error::Store(format!("cannot encode the accounts: {e}")))?;
        let write_err = |e: std::io::Error| Error::Store(format!("cannot write {shown}: {e}"));
        // tempfile creates the file 0600 with O_EXCL; the explicit chmod
        // states the requirement instead of relying on that.
        let mut tmp = tempfile::Builder::new()
            .prefix(".accounts-")
            .suffix(".tmp")
            .tempfile_in(&dir)
            .map_err(write_err)?;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(write_err)?;
        tmp.write_all(&json).map_err(write_err)?;
        tmp.write_all(b"\n").map_err(write_err)?;
        tmp.as_file().sync_all().map_err(write_err)?;
        tmp.persist(&self.path).map_err(|e| write_err(e.error))?;
        // The rename is durable once the directory is; failing to sync it
        // (some file systems refuse) loses nothing already written.
        if let Ok(d) = fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

/// A stored account for tests: odd ones trust a CA file, even ones a pin.
#[cfg(test)]
pub(crate) fn sample_account(n: u32) -> Account {
    let pinned = n & 1 == 0;
    Account {
        service_url: format!("https://mfa{n}.example.org/mobile/v1"),
        fingerprint: pinned.then(|| "ab".repeat(32)),
        ca_file: (!pinned).then(|| PathBuf::from("/etc/ssl/ca.pem")),
        device_id: format!("{n:032x}"),
        device_name: "phone".into(),
        private_key: "c2VjcmV0".into(),
        username: format!("user{n}"),
        account: format!("mfa{n}.example.org"),
        oath: OathSeed {
            secret: "JBSWY3DPEHPK3PXP".into(),
            algorithm: "SHA1".into(),
            digits: 6,
            period: 30,
        },
        request_lifetime_seconds: 60,
        activated_at: 1_764_523_000 + u64::from(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(accounts: &[Account]) -> serde_json::Value {
        serde_json::to_value(accounts).unwrap()
    }

    #[test]
    fn a_missing_file_is_an_empty_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::load(&dir.path().join("accounts.json")).unwrap();
        assert!(store.accounts.is_empty());
    }

    #[test]
    fn several_accounts_round_trip_with_private_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new").join("accounts.json");
        let mut store = Store::load(&path).unwrap();
        store.accounts = vec![sample_account(1), sample_account(2), sample_account(3)];
        store.save().unwrap();

        let file_mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(file_mode, 0o600);
        let dir_mode = fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700);

        let loaded = Store::load(&path).unwrap();
        assert_eq!(json(&loaded.accounts), json(&store.accounts));
        assert_eq!(loaded.accounts[1].label(), "user2@mfa2.example.org");
    }

    #[test]
    fn rewrites_are_atomic_renames() {
        use std::os::unix::fs::MetadataExt as _;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("accounts.json");
        let mut store = Store::load(&path).unwrap();
        store.accounts = vec![sample_account(1)];
        store.save().unwrap();
        let before = fs::metadata(&path).unwrap();

        store.accounts.push(sample_account(2));
        store.save().unwrap();
        let after = fs::metadata(&path).unwrap();

        // A new inode: the old file was replaced whole, not rewritten in place.
        assert_ne!(before.ino(), after.ino());
        assert_eq!(after.permissions().mode() & 0o777, 0o600);
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("accounts.json")]);
        assert_eq!(Store::load(&path).unwrap().accounts.len(), 2);
    }

    #[test]
    fn a_readable_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("accounts.json");
        let mut store = Store::load(&path).unwrap();
        store.accounts = vec![sample_account(1)];
        store.save().unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = Store::load(&path).unwrap_err().to_string();
        assert!(err.contains("mode 0644"), "{err}");
        assert!(err.contains("chmod 600"), "{err}");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        assert!(Store::load(&path).is_err());
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(Store::load(&path).is_ok());
    }

    #[test]
    fn other_versions_and_garbage_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("accounts.json");
        fs::write(&path, r#"{"version":2,"accounts":[]}"#).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(Store::load(&path)
            .unwrap_err()
            .to_string()
            .contains("version 2"));
        fs::write(&path, "not json").unwrap();
        assert!(Store::load(&path).is_err());
    }

    #[test]
    fn the_default_path_follows_xdg() {
        let p = default_path_from(Some("/x".into()), Some("/home/jan".into())).unwrap();
        assert_eq!(p, Path::new("/x/twofold-authenticator/accounts.json"));
        let p = default_path_from(Some("relative".into()), Some("/home/jan".into())).unwrap();
        assert_eq!(
            p,
            Path::new("/home/jan/.config/twofold-authenticator/accounts.json")
        );
        assert!(default_path_from(None, None).is_err());
    }

    #[test]
    fn debug_output_hides_the_secrets() {
        let text = format!("{:?}", sample_account(1));
        assert!(!text.contains("c2VjcmV0"));
        assert!(!text.contains("JBSWY3DPEHPK3PXP"));
    }
}
