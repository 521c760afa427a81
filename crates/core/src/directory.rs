//! The `local` directory: users and argon2id password hashes in Twofold's
//! own store. The LDAP/AD and RADIUS directories implement the same port
//! (`ports::Directory`) in the crate `directory`.

use async_trait::async_trait;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::password::SecretHasher;
use crate::ports::{Directory, DirectoryEntry, PasswordCheck, Store};
use crate::settings::PrimaryAuth;
use crate::user::User;

pub struct LocalDirectory {
    store: Arc<dyn Store>,
    hasher: SecretHasher,
}

impl LocalDirectory {
    pub fn new(store: Arc<dyn Store>, hasher: SecretHasher) -> Self {
        LocalDirectory { store, hasher }
    }
}

#[async_trait]
impl Directory for LocalDirectory {
    fn kind(&self) -> PrimaryAuth {
        PrimaryAuth::Local
    }

    async fn resolve(&self, login: &str) -> Result<Option<String>> {
        Ok(Some(login.trim().to_string()))
    }

    async fn check_password(
        &self,
        _username: &str,
        local: Option<&User>,
        password: String,
    ) -> Result<PasswordCheck> {
        let hash = match local {
            Some(u) => self.store.password_hash(u.id).await?,
            None => None,
        };
        let matched = if let (Some(h), Some(u)) = (hash, local) {
            let verified = self.hasher.verify_upgrading(password, h.clone()).await;
            if let Some(new) = verified.rehashed {
                // Compare-and-set on the old hash: a password changed
                // meanwhile stays. A failed write never fails the sign-in.
                if let Err(e) = self.store.rehash_password(u.id, &h, &new).await {
                    tracing::warn!(
                        error = %e,
                        user = %u.username,
                        "could not store the upgraded password hash; it is tried again at the next sign-in"
                    );
                }
            }
            verified.matched
        } else {
            // Unknown users (and users without a local password) cost the
            // same hash as real ones.
            self.hasher.verify_dummy(password).await;
            false
        };
        Ok(if matched {
            PasswordCheck::Accepted { groups: None }
        } else {
            PasswordCheck::Rejected
        })
    }

    async fn lookup(&self, username: &str) -> Result<Option<DirectoryEntry>> {
        Ok(self
            .store
            .find_user(username)
            .await?
            .map(|u| DirectoryEntry {
                username: u.username,
                display_name: u.display_name,
                email: u.email,
                groups: u.groups,
                language: u.language,
                phone: u.phone,
                mobile_phone: u.mobile_phone,
                dn: String::new(),
            }))
    }

    async fn search(
        &self,
        _filter: Option<&str>,
        _group: Option<&str>,
    ) -> Result<Vec<DirectoryEntry>> {
        Err(Error::invalid(
            "directory",
            "the local directory is Twofold's own user list: there is nothing to import from it",
        ))
    }

    async fn probe(&self) -> Result<()> {
        Ok(())
    }
}

/// How `/readyz` sees the primary directory when it is not the local one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryHealth {
    pub kind: PrimaryAuth,
    pub reachable: bool,
    /// Why not, when it is not.
    pub error: Option<String>,
}

/// What `ready` reports beyond "the database answers".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Readiness {
    /// The LDAP or RADIUS directory behind `portal.primary_auth`; a
    /// directory that is down is reported, not a reason to leave the load
    /// balancer (the portal still serves users of trusted addresses and
    /// bypasses, and the SDK's passcode checks).
    pub directory: Option<DirectoryHealth>,
}
