//! The `local` directory: users and argon2id password hashes in Twofold's
//! own store. The LDAP/AD and RADIUS directories implement the same port
//! (`ports::Directory`) in the crate `directory`.

use async_trait::async_trait;
use std::sync::Arc;

use crate::error::Result;
use crate::password::SecretHasher;
use crate::ports::{Directory, DirectoryEntry, Store};
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

    async fn check_password(
        &self,
        _username: &str,
        local: Option<&User>,
        password: String,
    ) -> Result<bool> {
        let hash = match local {
            Some(u) => self.store.password_hash(u.id).await?,
            None => None,
        };
        Ok(if let Some(h) = hash {
            self.hasher.verify(password, h).await
        } else {
            // Unknown users (and users without a local password) cost the
            // same hash as real ones.
            self.hasher.verify_dummy(password).await;
            false
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
            }))
    }
}
