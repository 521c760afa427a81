//! Portal sessions: a random id in a `__Host-` cookie, the data server-side
//! (through `PortalService`, so every portal node sees every session), stored
//! under the id's SHA-256 so the table holds no usable ids. The id changes at
//! every authentication step. Each session carries its CSRF token.

use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use twofold_core::portal::{PendingOath, SecondStep};
use twofold_core::user::MethodKind;
use twofold_core::{Ctx, PortalService, Result};

pub const COOKIE_NAME: &str = "__Host-twofold";
/// Unauthenticated steps (sign-in form, second step, wizard) expire sooner.
const PENDING_TTL: i64 = 15 * 60;
/// A signed-in session ends after this much idle time...
const IDLE_TTL: i64 = 30 * 60;
/// ...and at the latest this long after sign-in.
pub const MAX_SIGNED_IN_SECONDS: i64 = 8 * 3600;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flash {
    pub key: String,
    pub arg: Option<(String, String)>,
}

impl Flash {
    pub fn new(key: &str) -> Self {
        Flash {
            key: key.into(),
            arg: None,
        }
    }
    pub fn with(key: &str, name: &str, value: &impl ToString) -> Self {
        Flash {
            key: key.into(),
            arg: Some((name.into(), value.to_string())),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum Stage {
    #[default]
    Anonymous,
    Verify {
        username: String,
        step: SecondStep,
    },
    Enroll {
        username: String,
        method: Option<MethodKind>,
        pending: Option<PendingOath>,
        confirmed: Option<String>,
    },
    SignedIn {
        username: String,
        expires_at: i64,
        token_setup: Option<PendingOath>,
    },
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SessionData {
    pub csrf: String,
    pub lang: Option<String>,
    pub stage: Stage,
    pub notice: Option<Flash>,
    pub error: Option<Flash>,
}

pub struct Session {
    id: Option<String>,
    rotate: bool,
    pub data: SessionData,
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    B64.encode(bytes)
}

fn id_hash(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
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

impl Session {
    /// The request's session, or a fresh anonymous one.
    pub async fn load(
        service: &dyn PortalService,
        ctx: &Ctx,
        headers: &HeaderMap,
    ) -> Result<Session> {
        if let Some(id) = cookie_value(headers) {
            if let Some(json) = service.session_load(ctx, &id_hash(&id)).await? {
                if let Ok(data) = serde_json::from_str::<SessionData>(&json) {
                    return Ok(Session {
                        id: Some(id),
                        rotate: false,
                        data,
                    });
                }
            }
        }
        Ok(Session::fresh())
    }

    pub fn fresh() -> Session {
        Session {
            id: None,
            rotate: false,
            data: SessionData {
                csrf: random_token(),
                ..Default::default()
            },
        }
    }

    /// True when the form's token matches this (stored) session's token.
    pub fn csrf_ok(&self, token: &str) -> bool {
        self.id.is_some() && bool::from(self.data.csrf.as_bytes().ct_eq(token.as_bytes()))
    }

    /// Gives the session a new id (and CSRF token) when it is saved: after
    /// every authentication step, so a planted id never gains rights.
    pub fn rotate(&mut self) {
        self.rotate = true;
        self.data.csrf = random_token();
    }

    pub fn signed_in_user(&self, now: i64) -> Option<&str> {
        match &self.data.stage {
            Stage::SignedIn {
                username,
                expires_at,
                ..
            } if *expires_at > now => Some(username),
            _ => None,
        }
    }

    /// Stores the session and returns the cookie to set.
    pub async fn save(
        mut self,
        service: &dyn PortalService,
        ctx: &Ctx,
        now: i64,
    ) -> Result<HeaderValue> {
        let ttl = match &self.data.stage {
            Stage::SignedIn { expires_at, .. } => IDLE_TTL.min(*expires_at - now).max(1),
            _ => PENDING_TTL,
        };
        if self.rotate || self.id.is_none() {
            if let Some(old) = self.id.take() {
                service.session_drop(ctx, &id_hash(&old)).await?;
            }
            self.id = Some(random_token());
        }
        let id = self.id.clone().unwrap_or_default();
        let json = serde_json::to_string(&self.data)
            .map_err(|e| twofold_core::Error::Internal(e.to_string()))?;
        service.session_save(ctx, &id_hash(&id), json, ttl).await?;
        Ok(HeaderValue::from_str(&format!(
            "{COOKIE_NAME}={id}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={ttl}"
        ))
        .unwrap_or_else(|_| HeaderValue::from_static("")))
    }

    /// Ends the session; returns a cookie that clears it in the browser.
    pub async fn destroy(self, service: &dyn PortalService, ctx: &Ctx) -> Result<HeaderValue> {
        if let Some(id) = &self.id {
            service.session_drop(ctx, &id_hash(id)).await?;
        }
        Ok(HeaderValue::from_static(
            "__Host-twofold=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0",
        ))
    }
}

pub fn set_cookie(headers: &mut HeaderMap, value: HeaderValue) {
    headers.append(SET_COOKIE, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_parsing_takes_only_well_formed_ids() {
        let good = random_token();
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_str(&format!("a=b; {COOKIE_NAME}={good}; c=d")).unwrap(),
        );
        assert_eq!(cookie_value(&h), Some(good));
        h.insert(
            COOKIE,
            HeaderValue::from_str(&format!("{COOKIE_NAME}=short")).unwrap(),
        );
        assert_eq!(cookie_value(&h), None);
        assert_eq!(id_hash("x").len(), 64);
    }
}
