//! `SdkClient`: one typed method per `/sdk/v1` operation.

use reqwest::header::{HeaderValue, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use twofold_proto::link::{LinkRequest, LINK_PATH};
use twofold_proto::{
    AnswerRequest, AnswerResponse, AuditPage, AuthenticationStatus, BypassRequest, BypassResponse,
    CreateUserRequest, ErrorBody, LanguageRequest, MethodRequest, PasswordRequest, PhoneChoiceView,
    PinRequest, PrimaryRequest, PrimaryResponse, QuestionRequest, QuestionView, ResyncRequest,
    SettingValue, StartAuthenticationRequest, StartAuthenticationResponse, TestResponse,
    TokenRequest, TokenView, UpdateUserRequest, UserList, UserView, ValidateRequest,
    ValidateResponse, CLIENT_IP_HEADER,
};

use crate::tls::{client_config, Trust};
use crate::SdkError;

/// Every call gives up after this long (connect, TLS, request and answer).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the SDK is and how to trust and log in to it.
#[derive(Clone)]
pub struct ClientOptions {
    /// `https://host:port` (a path prefix is kept); `http://` is refused.
    pub url: String,
    pub username: String,
    pub password: String,
    pub trust: Trust,
    pub timeout: Duration,
    /// Connect from this local address (multi-homed hosts, tests).
    pub local_address: Option<IpAddr>,
}

impl ClientOptions {
    pub fn new(url: &str, username: &str, password: &str, trust: Trust) -> ClientOptions {
        ClientOptions {
            url: url.to_string(),
            username: username.to_string(),
            password: password.to_string(),
            trust,
            timeout: DEFAULT_TIMEOUT,
            local_address: None,
        }
    }
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientOptions")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("trust", &self.trust)
            .field("timeout", &self.timeout)
            .field("local_address", &self.local_address)
            .finish()
    }
}

/// Checks an SDK URL: HTTPS with a host, no credentials, query or fragment.
/// Returns the base without a trailing slash.
pub fn check_url(url: &str) -> Result<String, SdkError> {
    let url = url.trim();
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("http://") {
        return Err(SdkError::Config(
            "the SDK URL must use https://: credentials and sessions never travel unencrypted"
                .into(),
        ));
    }
    if !lower.starts_with("https://") {
        return Err(SdkError::Config(
            "the SDK URL must start with https://, e.g. https://mfa.example.com:8443".into(),
        ));
    }
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| SdkError::Config(format!("the SDK URL is not a valid URL: {e}")))?;
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(SdkError::Config("the SDK URL has no host".into()));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(SdkError::Config(
            "the SDK URL must not contain credentials; set the username and password separately"
                .into(),
        ));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(SdkError::Config(
            "the SDK URL must not have a query or fragment".into(),
        ));
    }
    Ok(parsed.as_str().trim_end_matches('/').to_string())
}

/// A typed client of the Web Service SDK. Cheap to clone (one connection
/// pool); `acting_for` gives a copy that reports an end user's address.
#[derive(Clone)]
pub struct SdkClient {
    http: reqwest::Client,
    base: Arc<str>,
    username: Arc<str>,
    password: Arc<str>,
    client_ip: Option<IpAddr>,
}

impl fmt::Debug for SdkClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SdkClient")
            .field("base", &self.base)
            .field("username", &self.username)
            .field("client_ip", &self.client_ip)
            .finish_non_exhaustive()
    }
}

fn seg(s: &str) -> String {
    urlencoding::encode(s).into_owned()
}

/// An error and everything it was caused by, without repeats.
fn chain(e: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

impl SdkClient {
    pub fn new(options: ClientOptions) -> Result<SdkClient, SdkError> {
        let base = check_url(&options.url)?;
        if options.username.is_empty() || options.username.contains(':') {
            return Err(SdkError::Config(
                "the SDK username must be set and contain no ':'".into(),
            ));
        }
        if options.password.is_empty() {
            return Err(SdkError::Config("the SDK password must be set".into()));
        }
        let tls = client_config(&options.trust)?;
        let mut builder = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .https_only(true)
            .timeout(options.timeout)
            .connect_timeout(CONNECT_TIMEOUT.min(options.timeout))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("twofold-sdk/", env!("CARGO_PKG_VERSION")));
        if let Some(addr) = options.local_address {
            builder = builder.local_address(addr);
        }
        let http = builder
            .build()
            .map_err(|e| SdkError::Config(format!("HTTP client: {}", chain(&e))))?;
        Ok(SdkClient {
            http,
            base: base.into(),
            username: options.username.into(),
            password: options.password.into(),
            client_ip: None,
        })
    }

    /// The SDK's base URL (without `/sdk/v1`).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub fn username(&self) -> &str {
        &self.username
    }

    /// A copy whose calls report `ip` as the end user's address
    /// (`X-Twofold-Client-Ip`): audited, throttled and matched against
    /// trusted IPs on the server instead of this client's own address.
    pub fn acting_for(&self, ip: Option<IpAddr>) -> SdkClient {
        SdkClient {
            client_ip: ip,
            ..self.clone()
        }
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.request_at(method, &format!("/sdk/v1{path}"))
    }

    fn request_at(&self, method: Method, path: &str) -> RequestBuilder {
        let mut rb = self
            .http
            .request(method, format!("{}{path}", self.base))
            .basic_auth(&*self.username, Some(&*self.password));
        if let Some(ip) = self.client_ip {
            if let Ok(v) = HeaderValue::from_str(&ip.to_string()) {
                rb = rb.header(CLIENT_IP_HEADER, v);
            }
        }
        rb
    }

    async fn send(&self, rb: RequestBuilder) -> Result<(StatusCode, Vec<u8>), SdkError> {
        let res = rb
            .send()
            .await
            .map_err(|e| SdkError::Transport(chain(&e)))?;
        let status = res.status();
        let retry_after = res
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let body = res
            .bytes()
            .await
            .map_err(|e| SdkError::Transport(chain(&e)))?
            .to_vec();
        if status.is_success() {
            return Ok((status, body));
        }
        let parsed = serde_json::from_slice::<ErrorBody>(&body).unwrap_or_else(|_| ErrorBody {
            error: status
                .canonical_reason()
                .unwrap_or("error")
                .to_ascii_lowercase()
                .replace(' ', "_"),
            message: format!("HTTP {}", status.as_u16()),
            field: None,
            reason: None,
        });
        Err(SdkError::Api {
            status: status.as_u16(),
            body: parsed,
            retry_after,
        })
    }

    async fn json<T: DeserializeOwned>(&self, rb: RequestBuilder) -> Result<T, SdkError> {
        let (_, body) = self.send(rb).await?;
        serde_json::from_slice(&body).map_err(|e| SdkError::Decode(e.to_string()))
    }

    async fn empty(&self, rb: RequestBuilder) -> Result<(), SdkError> {
        self.send(rb).await.map(|_| ())
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, SdkError> {
        self.json(self.request(Method::GET, path)).await
    }

    async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, SdkError> {
        self.json(self.request(Method::POST, path).json(body)).await
    }

    async fn post_empty<B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<(), SdkError> {
        self.empty(self.request(Method::POST, path).json(body))
            .await
    }

    // --- Applications ----------------------------------------------------------

    /// Proves TLS and credentials work; says which account the calls run as.
    pub async fn self_test(&self) -> Result<TestResponse, SdkError> {
        self.get("/test").await
    }

    pub async fn validate(
        &self,
        username: &str,
        passcode: &str,
    ) -> Result<ValidateResponse, SdkError> {
        self.post(
            "/validate",
            &ValidateRequest {
                username: username.into(),
                passcode: passcode.into(),
            },
        )
        .await
    }

    pub async fn primary(
        &self,
        username: &str,
        password: &str,
    ) -> Result<PrimaryResponse, SdkError> {
        self.post(
            "/primary",
            &PrimaryRequest {
                username: username.into(),
                password: password.into(),
            },
        )
        .await
    }

    /// Starts authenticating a user with their method: `pending` with an
    /// id to follow and answer, or `rejected` with the reason (nothing
    /// started).
    pub async fn start_authentication(
        &self,
        username: &str,
        phone: Option<PhoneChoiceView>,
    ) -> Result<StartAuthenticationResponse, SdkError> {
        self.post(
            "/authenticate",
            &StartAuthenticationRequest {
                username: username.into(),
                phone,
            },
        )
        .await
    }

    /// Where a challenge this account started stands; with `wait_seconds`
    /// (at most 60), answered once it is decided or that time has passed.
    pub async fn authentication_status(
        &self,
        id: &str,
        wait_seconds: Option<u32>,
    ) -> Result<AuthenticationStatus, SdkError> {
        match wait_seconds {
            // The server holds the request that long; the client waits for
            // it a little longer than its usual timeout.
            Some(w) => {
                let path = format!("/authenticate/{}?wait={w}", seg(id));
                let patience = Duration::from_secs(u64::from(w.min(60))) + DEFAULT_TIMEOUT;
                self.json(self.request(Method::GET, &path).timeout(patience))
                    .await
            }
            None => self.get(&format!("/authenticate/{}", seg(id))).await,
        }
    }

    /// Answers a challenge this account started with what the user typed.
    pub async fn answer_authentication(
        &self,
        id: &str,
        passcode: &str,
    ) -> Result<AnswerResponse, SdkError> {
        self.post(
            &format!("/authenticate/{}/answer", seg(id)),
            &AnswerRequest {
                passcode: passcode.into(),
            },
        )
        .await
    }

    /// The audit log, newest first.
    pub async fn audit(
        &self,
        limit: u32,
        before_id: Option<i64>,
        after_id: Option<i64>,
        subject: Option<&str>,
    ) -> Result<AuditPage, SdkError> {
        let mut q: Vec<(&str, String)> = vec![("limit", limit.to_string())];
        if let Some(v) = before_id {
            q.push(("before_id", v.to_string()));
        }
        if let Some(v) = after_id {
            q.push(("after_id", v.to_string()));
        }
        if let Some(v) = subject {
            q.push(("subject", v.to_string()));
        }
        self.json(self.request(Method::GET, "/audit").query(&q))
            .await
    }

    // --- Users -----------------------------------------------------------------

    pub async fn list_users(
        &self,
        prefix: Option<&str>,
        group: Option<&str>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<UserList, SdkError> {
        let mut q: Vec<(&str, String)> = vec![("limit", limit.to_string())];
        for (k, v) in [("prefix", prefix), ("group", group), ("after", after)] {
            if let Some(v) = v {
                q.push((k, v.to_string()));
            }
        }
        self.json(self.request(Method::GET, "/users").query(&q))
            .await
    }

    pub async fn create_user(&self, req: &CreateUserRequest) -> Result<UserView, SdkError> {
        self.post("/users", req).await
    }

    pub async fn user(&self, username: &str) -> Result<UserView, SdkError> {
        self.get(&format!("/users/{}", seg(username))).await
    }

    pub async fn update_user(
        &self,
        username: &str,
        req: &UpdateUserRequest,
    ) -> Result<UserView, SdkError> {
        self.json(
            self.request(Method::PATCH, &format!("/users/{}", seg(username)))
                .json(req),
        )
        .await
    }

    pub async fn delete_user(&self, username: &str) -> Result<(), SdkError> {
        self.empty(self.request(Method::DELETE, &format!("/users/{}", seg(username))))
            .await
    }

    pub async fn enable_user(&self, username: &str) -> Result<UserView, SdkError> {
        self.post(&format!("/users/{}/enable", seg(username)), &())
            .await
    }

    pub async fn disable_user(&self, username: &str) -> Result<UserView, SdkError> {
        self.post(&format!("/users/{}/disable", seg(username)), &())
            .await
    }

    pub async fn unblock_user(&self, username: &str) -> Result<UserView, SdkError> {
        self.post(&format!("/users/{}/unblock", seg(username)), &())
            .await
    }

    pub async fn set_password(&self, username: &str, password: &str) -> Result<(), SdkError> {
        self.empty(
            self.request(Method::PUT, &format!("/users/{}/password", seg(username)))
                .json(&PasswordRequest {
                    password: password.into(),
                }),
        )
        .await
    }

    pub async fn set_pin(&self, username: &str, pin: &str) -> Result<(), SdkError> {
        self.empty(
            self.request(Method::PUT, &format!("/users/{}/pin", seg(username)))
                .json(&PinRequest { pin: pin.into() }),
        )
        .await
    }

    /// `method` or `method:mode`.
    pub async fn set_method(&self, username: &str, method: &str) -> Result<UserView, SdkError> {
        self.json(
            self.request(Method::PUT, &format!("/users/{}/method", seg(username)))
                .json(&MethodRequest {
                    method: method.into(),
                }),
        )
        .await
    }

    pub async fn set_language(&self, username: &str, language: &str) -> Result<UserView, SdkError> {
        self.json(
            self.request(Method::PUT, &format!("/users/{}/language", seg(username)))
                .json(&LanguageRequest {
                    language: language.into(),
                }),
        )
        .await
    }

    /// An administrator's one-time bypass for the user's next sign-on.
    pub async fn grant_bypass(
        &self,
        username: &str,
        req: &BypassRequest,
    ) -> Result<BypassResponse, SdkError> {
        self.post(&format!("/users/{}/bypass", seg(username)), req)
            .await
    }

    // --- Tokens and questions ------------------------------------------------------

    pub async fn tokens(&self, username: &str) -> Result<Vec<TokenView>, SdkError> {
        self.get(&format!("/users/{}/tokens", seg(username))).await
    }

    pub async fn add_token(
        &self,
        username: &str,
        req: &TokenRequest,
    ) -> Result<TokenView, SdkError> {
        self.post(&format!("/users/{}/tokens", seg(username)), req)
            .await
    }

    pub async fn delete_token(&self, username: &str, id: i64) -> Result<(), SdkError> {
        self.empty(self.request(
            Method::DELETE,
            &format!("/users/{}/tokens/{id}", seg(username)),
        ))
        .await
    }

    pub async fn resync_token(
        &self,
        username: &str,
        id: i64,
        code1: &str,
        code2: &str,
    ) -> Result<(), SdkError> {
        self.post_empty(
            &format!("/users/{}/tokens/{id}/resync", seg(username)),
            &ResyncRequest {
                code1: code1.into(),
                code2: code2.into(),
            },
        )
        .await
    }

    pub async fn questions(&self, language: Option<&str>) -> Result<Vec<QuestionView>, SdkError> {
        let mut rb = self.request(Method::GET, "/questions");
        if let Some(l) = language {
            rb = rb.query(&[("language", l)]);
        }
        self.json(rb).await
    }

    pub async fn add_question(&self, language: &str, text: &str) -> Result<QuestionView, SdkError> {
        self.post(
            "/questions",
            &QuestionRequest {
                language: language.into(),
                text: text.into(),
            },
        )
        .await
    }

    pub async fn delete_question(&self, id: i64) -> Result<(), SdkError> {
        self.empty(self.request(Method::DELETE, &format!("/questions/{id}")))
            .await
    }

    // --- Settings --------------------------------------------------------------------

    /// Every runtime setting, as served: a JSON object of sections, each an
    /// object of keys and values (`{"pin": {"min_length": 4, ...}, ...}`).
    pub async fn settings(&self) -> Result<serde_json::Value, SdkError> {
        settings_object(self.get("/settings").await?)
    }

    pub async fn set_setting(
        &self,
        key: &str,
        value: serde_json::Value,
    ) -> Result<serde_json::Value, SdkError> {
        let v: serde_json::Value = self
            .json(
                self.request(Method::PUT, &format!("/settings/{}", seg(key)))
                    .json(&SettingValue { value }),
            )
            .await?;
        settings_object(v)
    }

    pub async fn reset_setting(&self, key: &str) -> Result<serde_json::Value, SdkError> {
        let v: serde_json::Value = self
            .json(self.request(Method::DELETE, &format!("/settings/{}", seg(key))))
            .await?;
        settings_object(v)
    }

    // --- The private portal link -------------------------------------------------------

    /// One operation on the private portal link (`POST /link/v1`), what a
    /// User Portal on a separate server speaks; needs an account of role
    /// `portal`. `R` is the operation's response type in
    /// `twofold_proto::link`.
    pub async fn link<R: DeserializeOwned>(&self, request: &LinkRequest) -> Result<R, SdkError> {
        self.json(self.request_at(Method::POST, LINK_PATH).json(request))
            .await
    }
}

/// The settings as served, once they are known to be a JSON object.
fn settings_object(v: serde_json::Value) -> Result<serde_json::Value, SdkError> {
    if v.is_object() {
        Ok(v)
    } else {
        Err(SdkError::Decode("settings are not a JSON object".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_https() {
        assert_eq!(
            check_url("https://mfa.example.com:8443/").unwrap(),
            "https://mfa.example.com:8443"
        );
        assert_eq!(
            check_url(" HTTPS://mfa.example.com/twofold/ ").unwrap(),
            "https://mfa.example.com/twofold"
        );
        let e = check_url("http://mfa.example.com").unwrap_err().to_string();
        assert!(e.contains("https://"), "{e}");
        for bad in [
            "mfa.example.com",
            "ftp://x",
            "https://",
            "https://u:p@mfa.example.com",
            "https://mfa.example.com/?a=b",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn settings_are_served_as_nested_json() {
        let v = serde_json::json!({
            "pin": {"min_length": 4},
            "portal": {"allow_bypass": true, "from_the_future": 1}
        });
        assert_eq!(settings_object(v.clone()).unwrap(), v);
        assert!(settings_object(serde_json::json!([])).is_err());
    }

    #[test]
    fn debug_never_shows_the_password() {
        let o = ClientOptions::new(
            "https://x",
            "portal",
            "hunter22-secret",
            Trust::Fingerprint([0; 32]),
        );
        assert!(!format!("{o:?}").contains("hunter22"));
        let c = SdkClient::new(o).unwrap();
        assert!(!format!("{c:?}").contains("hunter22"));
    }
}
