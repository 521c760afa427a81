//! The admin pages' own session: a random id in `__Host-twofold-admin`,
//! its data server-side through `PortalService::session_*` (every node
//! sees it), stored under SHA-256 of `admin:` and the id — so a portal
//! session's id can never open it, nor the other way round. It ends after
//! `admin.idle_minutes` without a request (15 by default, shorter than the
//! portal's 30) and at the latest eight hours after it began.

use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use twofold_core::{Ctx, PortalService, Result};

pub const COOKIE_NAME: &str = "__Host-twofold-admin";
/// The longest an admin session lasts, however active.
const MAX_SECONDS: i64 = 8 * 3600;

/// A message for the next page: a text key, and a detail (the engine's
/// own words for a refused value, or a one-time value to show).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flash {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Flash {
    pub fn new(key: &str) -> Flash {
        Flash {
            key: key.into(),
            detail: None,
        }
    }

    pub fn with(key: &str, detail: impl Into<String>) -> Flash {
        Flash {
            key: key.into(),
            detail: Some(detail.into()),
        }
    }
}

/// What a token import did, for the page after it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImportSummary {
    pub dry_run: bool,
    pub imported: usize,
    pub duplicates: Vec<String>,
    pub refused: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdminSessionData {
    pub username: String,
    pub csrf: String,
    pub started_at: i64,
    /// When the administrator last passed their second step at the portal.
    #[serde(default)]
    pub verified_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<Flash>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Flash>,
    /// The field (a setting's key) the error is about, shown beside it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_field: Option<String>,
    /// The last token import's summary, shown once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import: Option<ImportSummary>,
    /// What the administrator typed into a refused form, shown once.
    #[serde(default, skip_serializing_if = "std::collections::HashMap::is_empty")]
    pub echo: std::collections::HashMap<String, String>,
}

pub struct AdminSession {
    id: String,
    pub data: AdminSessionData,
}

pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    B64.encode(bytes)
}

fn id_hash(id: &str) -> String {
    hex::encode(Sha256::digest(format!("admin:{id}").as_bytes()))
}

fn cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.to_string())
        .filter(|v| {
            v.len() == 43
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

impl AdminSession {
    /// A new session for `username` (not stored until `save`).
    pub fn begin(username: &str, verified_at: i64, now: i64) -> AdminSession {
        AdminSession {
            id: random_token(),
            data: AdminSessionData {
                username: username.to_string(),
                csrf: random_token(),
                started_at: now,
                verified_at,
                notice: None,
                error: None,
                error_field: None,
                import: None,
                echo: std::collections::HashMap::new(),
            },
        }
    }

    /// The request's admin session, unless it is missing or over.
    pub async fn load(
        service: &dyn PortalService,
        ctx: &Ctx,
        headers: &HeaderMap,
        now: i64,
    ) -> Result<Option<AdminSession>> {
        let Some(id) = cookie_value(headers) else {
            return Ok(None);
        };
        let Some(json) = service.session_load(ctx, &id_hash(&id)).await? else {
            return Ok(None);
        };
        Ok(serde_json::from_str::<AdminSessionData>(&json)
            .ok()
            .filter(|d| now - d.started_at < MAX_SECONDS)
            .map(|data| AdminSession { id, data }))
    }

    pub fn csrf_ok(&self, token: &str) -> bool {
        bool::from(self.data.csrf.as_bytes().ct_eq(token.as_bytes()))
    }

    /// Stores the session for `idle_minutes` more (never past its end) and
    /// returns its cookie.
    pub async fn save(
        &self,
        service: &dyn PortalService,
        ctx: &Ctx,
        idle_minutes: u32,
        now: i64,
    ) -> Result<HeaderValue> {
        let ttl = (i64::from(idle_minutes) * 60)
            .min(self.data.started_at + MAX_SECONDS - now)
            .max(1);
        let json = serde_json::to_string(&self.data)
            .map_err(|e| twofold_core::Error::Internal(e.to_string()))?;
        service
            .session_save(ctx, &id_hash(&self.id), json, ttl)
            .await?;
        Ok(HeaderValue::from_str(&format!(
            "{COOKIE_NAME}={}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={ttl}",
            self.id
        ))
        .unwrap_or_else(|_| HeaderValue::from_static("")))
    }

    /// Ends the session; returns the cookie that clears it.
    pub async fn end(self, service: &dyn PortalService, ctx: &Ctx) -> Result<HeaderValue> {
        service.session_drop(ctx, &id_hash(&self.id)).await?;
        Ok(clear_cookie())
    }
}

/// How recent a second step the most sensitive actions (settings,
/// administrators) need.
pub const FRESH_SECONDS: i64 = 5 * 60;

impl AdminSession {
    /// Whether the administrator passed their second step recently enough
    /// for a sensitive action.
    pub fn fresh(&self, now: i64) -> bool {
        now - self.data.verified_at <= FRESH_SECONDS
    }
}

pub fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static(
        "__Host-twofold-admin=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0",
    )
}

/// Ends the admin session the request carries, if any (signing out of the
/// portal signs out of the admin pages too); returns the clearing cookie.
pub async fn end_carried(
    service: &dyn PortalService,
    ctx: &Ctx,
    headers: &HeaderMap,
) -> Option<HeaderValue> {
    let id = cookie_value(headers)?;
    if let Err(e) = service.session_drop(ctx, &id_hash(&id)).await {
        tracing::warn!(error = %e, "could not end the admin session");
    }
    Some(clear_cookie())
}

pub fn set_cookie(headers: &mut HeaderMap, value: HeaderValue) {
    headers.append(SET_COOKIE, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_and_portal_ids_hash_apart() {
        let id = random_token();
        assert_ne!(id_hash(&id), hex::encode(Sha256::digest(id.as_bytes())));
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_str(&format!("x=1; {COOKIE_NAME}={id}")).unwrap(),
        );
        assert_eq!(cookie_value(&h), Some(id));
        h.insert(
            COOKIE,
            HeaderValue::from_static("__Host-twofold-admin=short"),
        );
        assert_eq!(cookie_value(&h), None);
    }
}
