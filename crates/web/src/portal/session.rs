//! Portal sessions: a random id in a `__Host-` cookie, the data server-side
//! (through `PortalService`, so every portal node sees every session), stored
//! under the id's SHA-256 so the table holds no usable ids. The id changes at
//! every authentication step. Each session carries its CSRF token.
//!
//! Only a session past the password is stored. An anonymous visitor's
//! session (its CSRF token, chosen language and one-shot messages) travels
//! in the cookie itself, `a.TOKEN[.STATE]`, and the form's CSRF field must
//! equal that TOKEN (a double-submit check): otherwise every cookie-less
//! request would cost a row, and anyone could fill the table with them.
//! The `__Host-` prefix and `SameSite=Strict` keep other sites and sibling
//! hosts from setting or sending the cookie, so they cannot know the token.

use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use twofold_core::challenge::Prompt;
use twofold_core::mobile::ActivationOffer;
use twofold_core::passed::{PassedVia, RETURN_MAX};
use twofold_core::portal::{PendingOath, PhoneSlot, SecondStep};
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
        /// A call or text message under way for the second step.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        phone: Option<PhoneWait>,
    },
    Enroll {
        username: String,
        method: Option<MethodKind>,
        pending: Option<PendingOath>,
        confirmed: Option<String>,
        /// The phone being proved for a phone call or text message.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        phone: Option<EnrollPhoneStep>,
    },
    SignedIn {
        username: String,
        expires_at: i64,
        token_setup: Option<PendingOath>,
    },
    /// Verified by the code alone because the user's mode needs a PIN they
    /// have not chosen: they choose it before the account opens.
    ChoosePin { username: String, expires_at: i64 },
}

/// A call placed or a text sent for the second step: the challenge to ask
/// about (a bearer id, kept server-side in the session), what the user does
/// with it, and the number, masked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhoneWait {
    pub challenge: String,
    pub prompt: Prompt,
    pub phone: Option<String>,
    /// Mobile app: the number the user picks in the app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<u8>,
}

/// A new number for `slot`, proved by the call or text `wait`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhoneChange {
    pub slot: PhoneSlot,
    pub wait: PhoneWait,
}

/// The wizard's phone step: the call or text under way, the accepted
/// challenge once the phone is proved, and the backup phone as typed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EnrollPhoneStep {
    pub wait: Option<PhoneWait>,
    pub proved: Option<String>,
    pub backup_phone: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SessionData {
    pub csrf: String,
    pub lang: Option<String>,
    pub stage: Stage,
    pub notice: Option<Flash>,
    pub error: Option<Flash>,
    /// The language of the last user known in this browser: it outlives
    /// sign-out, so the sign-in page after it speaks the user's language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_lang: Option<String>,
    /// What the person typed into a refused form (never a password or a
    /// PIN), shown once so they need not type it again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub echo: Vec<(String, String)>,
    /// A new number being proved on the account page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_change: Option<PhoneChange>,
    /// The mobile app's activation code last generated (wizard or account
    /// page), shown until it expires or a device is activated. Server-side
    /// only, as the whole stored session is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation: Option<ShownActivation>,
    /// Where a protected site sent the browser from (`?rd=`), to send it
    /// back once signed in. The engine checks it against the protected
    /// sites before anyone is sent there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_to: Option<String>,
    /// How this session's sign-in was completed (what a passed session
    /// opened from it proves).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<PassedVia>,
    /// The passed session opened for this sign-in (its cookie's value),
    /// ended with it at sign-out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passed: Option<String>,
    /// Whether the portal has asked to open a passed session for this
    /// sign-in (they may be off: then there is none).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub passed_asked: bool,
    /// When the second step was last passed (unix seconds): the admin
    /// pages ask for a fresh one before their most sensitive actions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_at: Option<i64>,
    /// The sign-in was asked for by the admin pages: back there after it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub to_admin: bool,
}

/// An activation code shown to the user, and the devices they had when it
/// was made: a device beyond those was activated with it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShownActivation {
    pub offer: ActivationOffer,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
}

pub struct Session {
    /// The stored session's id; `None` while nothing is stored.
    id: Option<String>,
    /// An anonymous session that came with the request's cookie, whose
    /// token a form must repeat.
    presented: bool,
    rotate: bool,
    pub data: SessionData,
}

/// Marks an anonymous session's cookie; stored sessions' ids are bare.
const ANONYMOUS_PREFIX: &str = "a.";
/// The largest anonymous state accepted from a cookie (base64 of JSON; a
/// browser keeps at most 4096 bytes per cookie).
const ANONYMOUS_STATE_MAX: usize = 3800;
/// The longest username an anonymous cookie echoes back.
const ECHO_USERNAME_MAX: usize = 256;

/// What an anonymous session keeps, in its cookie.
#[derive(Debug, Default, Serialize, Deserialize)]
struct AnonymousState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lang: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    notice: Option<Flash>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<Flash>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user_lang: Option<String>,
    /// The username of a refused sign-in, for the form to show again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    /// The protected site's address to return to after sign-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rd: Option<String>,
    /// Back to the admin pages after sign-in.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    admin: bool,
}

impl AnonymousState {
    /// The state as the client sent it, keeping only what could have come
    /// from us: a supported language, message keys and a numeric argument.
    /// (The client can only change what its own page says.)
    fn parse(encoded: &str) -> AnonymousState {
        let Some(state) = (encoded.len() <= ANONYMOUS_STATE_MAX)
            .then(|| B64.decode(encoded).ok())
            .flatten()
            .and_then(|json| serde_json::from_slice::<AnonymousState>(&json).ok())
        else {
            return AnonymousState::default();
        };
        let flash = |f: Option<Flash>| {
            f.filter(|f| {
                is_name(&f.key, 64)
                    && f.arg.as_ref().is_none_or(|(name, value)| {
                        is_name(name, 32)
                            && !value.is_empty()
                            && value.len() <= 10
                            && value.bytes().all(|b| b.is_ascii_digit())
                    })
            })
        };
        let supported = |l: &String| super::LANGUAGES.iter().any(|(code, _)| code == l);
        AnonymousState {
            lang: state.lang.filter(supported),
            notice: flash(state.notice),
            error: flash(state.error),
            user_lang: state.user_lang.filter(supported),
            // Echoed into a form field: escaped there, and never a control
            // character (they never reach output raw).
            username: state
                .username
                .filter(|u| u.len() <= ECHO_USERNAME_MAX && !u.chars().any(char::is_control)),
            // Checked again by the engine before anyone is sent there.
            rd: state.rd.filter(|rd| is_return_address(rd)),
            admin: state.admin,
        }
    }
}

/// A return address worth keeping until the engine judges it: not empty,
/// not too long, no spaces or control characters.
pub fn is_return_address(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= RETURN_MAX
        && !s.chars().any(|c| c.is_control() || c.is_whitespace())
}

fn is_name(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
}

fn is_token(v: &str) -> bool {
    v.len() == 43
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    B64.encode(bytes)
}

fn id_hash(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// What the request's cookie holds.
#[derive(Debug, PartialEq, Eq)]
enum Cookie {
    /// A stored session's id.
    Stored(String),
    /// An anonymous session: its CSRF token and the encoded state.
    Anonymous(String, Option<String>),
}

fn cookie_value(headers: &HeaderMap) -> Option<Cookie> {
    let value = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value)?;
    if let Some(rest) = value.strip_prefix(ANONYMOUS_PREFIX) {
        let (token, state) = match rest.split_once('.') {
            Some((t, s)) => (t, Some(s.to_string())),
            None => (rest, None),
        };
        return is_token(token).then(|| Cookie::Anonymous(token.to_string(), state));
    }
    is_token(value).then(|| Cookie::Stored(value.to_string()))
}

impl Session {
    /// The request's session, or a fresh anonymous one. An anonymous
    /// session costs no lookup: it is all in its cookie.
    pub async fn load(
        service: &dyn PortalService,
        ctx: &Ctx,
        headers: &HeaderMap,
    ) -> Result<Session> {
        match cookie_value(headers) {
            Some(Cookie::Stored(id)) => {
                if let Some(json) = service.session_load(ctx, &id_hash(&id)).await? {
                    if let Ok(data) = serde_json::from_str::<SessionData>(&json) {
                        return Ok(Session {
                            id: Some(id),
                            presented: false,
                            rotate: false,
                            data,
                        });
                    }
                }
            }
            Some(Cookie::Anonymous(token, state)) => {
                let state = state
                    .as_deref()
                    .map(AnonymousState::parse)
                    .unwrap_or_default();
                return Ok(Session {
                    id: None,
                    presented: true,
                    rotate: false,
                    data: SessionData {
                        csrf: token,
                        lang: state.lang,
                        stage: Stage::Anonymous,
                        notice: state.notice,
                        error: state.error,
                        user_lang: state.user_lang,
                        echo: state
                            .username
                            .map(|u| vec![("username".to_string(), u)])
                            .unwrap_or_default(),
                        phone_change: None,
                        activation: None,
                        return_to: state.rd,
                        via: None,
                        passed: None,
                        passed_asked: false,
                        verified_at: None,
                        to_admin: state.admin,
                    },
                });
            }
            None => {}
        }
        Ok(Session::fresh())
    }

    pub fn fresh() -> Session {
        Session {
            id: None,
            presented: false,
            rotate: false,
            data: SessionData {
                csrf: random_token(),
                ..Default::default()
            },
        }
    }

    /// True when the form's token matches the token of the session the
    /// request came with (stored, or anonymous in its cookie).
    pub fn csrf_ok(&self, token: &str) -> bool {
        (self.id.is_some() || self.presented)
            && bool::from(self.data.csrf.as_bytes().ct_eq(token.as_bytes()))
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

    /// Stores the session and returns the cookie to set. An anonymous
    /// session is not stored (a stored one that became anonymous is
    /// dropped): its cookie carries it.
    pub async fn save(
        mut self,
        service: &dyn PortalService,
        ctx: &Ctx,
        now: i64,
    ) -> Result<HeaderValue> {
        if matches!(self.data.stage, Stage::Anonymous) {
            if let Some(old) = self.id.take() {
                service.session_drop(ctx, &id_hash(&old)).await?;
            }
            return Ok(self.anonymous_cookie());
        }
        let ttl = match &self.data.stage {
            Stage::SignedIn { expires_at, .. } | Stage::ChoosePin { expires_at, .. } => {
                IDLE_TTL.min(*expires_at - now).max(1)
            }
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

    /// The cookie of an anonymous session: its CSRF token and, when it has
    /// any, its language and messages.
    fn anonymous_cookie(self) -> HeaderValue {
        let SessionData {
            csrf,
            lang,
            notice,
            error,
            user_lang,
            echo,
            return_to,
            to_admin,
            ..
        } = self.data;
        let username = echo
            .into_iter()
            .find_map(|(name, value)| (name == "username").then_some(value));
        let state = AnonymousState {
            lang,
            notice,
            error,
            user_lang,
            username,
            rd: return_to,
            admin: to_admin,
        };
        let mut value = format!("{ANONYMOUS_PREFIX}{csrf}");
        if state.lang.is_some()
            || state.notice.is_some()
            || state.error.is_some()
            || state.user_lang.is_some()
            || state.username.is_some()
            || state.rd.is_some()
            || state.admin
        {
            if let Ok(json) = serde_json::to_vec(&state) {
                value.push('.');
                value.push_str(&B64.encode(json));
            }
        }
        HeaderValue::from_str(&format!(
            "{COOKIE_NAME}={value}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={PENDING_TTL}"
        ))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
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

/// How far a browser's portal session has signed in, for the admin pages.
pub enum PortalSignIn {
    /// With the second step, passed at this time (unix seconds).
    Full(String, i64),
    /// Signed in some other way (a bypass, a trusted IP, enrollment), or
    /// still at a step: not enough for the admin pages.
    Partial,
    /// Not signed in.
    None,
}

/// The user a browser's portal session has signed in with their second
/// step, and when that step was passed: who may open the admin pages.
pub async fn portal_sign_in(
    service: &dyn PortalService,
    ctx: &Ctx,
    headers: &HeaderMap,
    now: i64,
) -> Result<PortalSignIn> {
    let session = Session::load(service, ctx, headers).await?;
    Ok(match (&session.data.stage, session.data.via) {
        (
            Stage::SignedIn {
                username,
                expires_at,
                ..
            },
            Some(PassedVia::SecondStep),
        ) if *expires_at > now => {
            PortalSignIn::Full(username.clone(), session.data.verified_at.unwrap_or(0))
        }
        (Stage::Anonymous, _) => PortalSignIn::None,
        (Stage::SignedIn { expires_at, .. } | Stage::ChoosePin { expires_at, .. }, _)
            if *expires_at <= now =>
        {
            PortalSignIn::None
        }
        _ => PortalSignIn::Partial,
    })
}

/// Starts the portal's sign-in over for the admin pages (ending the
/// browser's portal session, keeping its language): after the second
/// step the portal sends the browser back to `/admin`. Returns the
/// portal's cookie to set.
pub async fn sign_in_for_admin(
    service: &dyn PortalService,
    ctx: &Ctx,
    headers: &HeaderMap,
) -> Result<HeaderValue> {
    let old = Session::load(service, ctx, headers).await?;
    let mut fresh = Session::fresh();
    fresh.data.lang.clone_from(&old.data.lang);
    fresh.data.user_lang.clone_from(&old.data.user_lang);
    fresh.data.to_admin = true;
    old.destroy(service, ctx).await?;
    Ok(fresh.anonymous_cookie())
}

pub fn set_cookie(headers: &mut HeaderMap, value: HeaderValue) {
    headers.append(SET_COOKIE, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cookie(value: &str) -> Option<Cookie> {
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_str(&format!("a=b; {COOKIE_NAME}={value}; c=d")).unwrap(),
        );
        cookie_value(&h)
    }

    #[test]
    fn cookie_parsing_takes_only_well_formed_ids() {
        let good = random_token();
        assert_eq!(cookie(&good), Some(Cookie::Stored(good.clone())));
        assert_eq!(cookie("short"), None);
        assert_eq!(
            cookie(&format!("a.{good}")),
            Some(Cookie::Anonymous(good.clone(), None))
        );
        assert_eq!(
            cookie(&format!("a.{good}.e30")),
            Some(Cookie::Anonymous(good, Some("e30".into())))
        );
        assert_eq!(cookie("a.short.e30"), None);
        assert_eq!(id_hash("x").len(), 64);
    }

    #[test]
    fn anonymous_state_round_trips_and_keeps_only_what_we_could_have_set() {
        let mut s = Session::fresh();
        s.data.lang = Some("nl".into());
        s.data.error = Some(Flash::with("err-rate-limited", "seconds", &42));
        let csrf = s.data.csrf.clone();
        let header = s.anonymous_cookie();
        let value = header.to_str().unwrap();
        assert!(value.contains("HttpOnly") && value.contains("SameSite=Strict"));
        let cookie_pair = value.split(';').next().unwrap();
        let Some(Cookie::Anonymous(token, Some(state))) =
            cookie(cookie_pair.split_once('=').unwrap().1)
        else {
            panic!("an anonymous cookie: {value}");
        };
        assert_eq!(token, csrf);
        let state = AnonymousState::parse(&state);
        assert_eq!(state.lang.as_deref(), Some("nl"));
        assert_eq!(state.error.unwrap().arg.unwrap().1, "42");

        let forged = B64.encode(
            br#"{"lang":"xx","notice":{"key":"<b>","arg":null},"error":{"key":"err-x","arg":["seconds","<script>"]}}"#,
        );
        let state = AnonymousState::parse(&forged);
        assert!(state.lang.is_none() && state.notice.is_none() && state.error.is_none());
        assert!(AnonymousState::parse("!!").lang.is_none());
    }
}
