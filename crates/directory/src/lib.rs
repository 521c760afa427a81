//! Directory adapters behind the `ports::Directory` port: LDAP / Active
//! Directory (crate `ldap3`) and RADIUS (PAP with Message-Authenticator).
//! The engine picks one by the setting `portal.primary_auth`; each is
//! configured per process (`[ldap]`, `[radius]`).

pub mod ldap;
pub mod radius;

pub use ldap::{LdapConfig, LdapDirectory, Preset};
pub use radius::{RadiusConfig, RadiusDirectory};
