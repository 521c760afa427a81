//! A generic HTTP SMS gateway (a local appliance or a provider without its
//! own adapter): one request per text message, as the `sms_gateway.*`
//! settings describe it — URL, method, a body template with `{to}` and
//! `{text}` filled in escaped for its format (form fields or JSON), an
//! optional `Authorization` header, and the status that means sent.
//!
//! Plain http is refused except to a loopback address (the Authorization
//! header and the codes would cross the network in clear); redirects are
//! not followed; the gateway's answer goes to the log, never to the person.

use async_trait::async_trait;
use std::time::Duration;
use twofold_core::ports::{Delivery, GatewayRequest, Outgoing};
use twofold_core::{Error, Result};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const LOGGED_BODY_MAX: usize = 300;

pub struct HttpGateway {
    http: reqwest::Client,
}

impl HttpGateway {
    pub fn new() -> Result<HttpGateway> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Internal(format!("HTTP client: {e}")))?;
        Ok(HttpGateway { http })
    }
}

/// `value` escaped for a body of this format: percent-encoded in form
/// fields, a JSON string's content (without its quotes) in JSON.
fn escaped(value: &str, json: bool) -> String {
    if json {
        let quoted = serde_json::Value::String(value.to_string()).to_string();
        quoted[1..quoted.len() - 1].to_string()
    } else {
        urlencoding::encode(value).into_owned()
    }
}

/// The request body: the template with `{to}` and `{text}` filled in.
pub fn body(gateway: &GatewayRequest, to: &str, text: &str) -> String {
    // One pass, so a `{text}` inside the number (or the reverse) is not
    // filled in again.
    let mut out = String::with_capacity(gateway.template.len() + text.len());
    let mut rest = gateway.template.as_str();
    while let Some(at) = rest.find('{') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(r) = tail.strip_prefix("{to}") {
            out.push_str(&escaped(to, gateway.json));
            rest = r;
        } else if let Some(r) = tail.strip_prefix("{text}") {
            out.push_str(&escaped(text, gateway.json));
            rest = r;
        } else {
            out.push('{');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

fn loopback(url: &reqwest::Url) -> bool {
    url.host_str().is_some_and(|h| {
        h == "localhost"
            || h.trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    })
}

fn shown(body: &str) -> String {
    body.chars()
        .take(LOGGED_BODY_MAX)
        .collect::<String>()
        .escape_default()
        .to_string()
}

#[async_trait]
impl Delivery for HttpGateway {
    fn name(&self) -> &'static str {
        "gateway"
    }

    async fn send(&self, message: &Outgoing) -> Result<String> {
        let Outgoing::GatewaySms { gateway, to, text } = message else {
            return Err(Error::Internal(
                "the SMS gateway delivers text messages only".into(),
            ));
        };
        let url = reqwest::Url::parse(&gateway.url)
            .map_err(|_| Error::Unavailable("sms_gateway.url is not a URL".into()))?;
        if url.scheme() != "https" && !(url.scheme() == "http" && loopback(&url)) {
            return Err(Error::Unavailable(
                "sms_gateway.url must be https:// (plain http only to a loopback address)".into(),
            ));
        }
        let method = if gateway.method == "PUT" {
            reqwest::Method::PUT
        } else {
            reqwest::Method::POST
        };
        let content_type = if gateway.json {
            "application/json"
        } else {
            "application/x-www-form-urlencoded"
        };
        let mut req = self
            .http
            .request(method, url)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body(gateway, to, text));
        if let Some(auth) = gateway.authorization.as_deref().filter(|a| !a.is_empty()) {
            req = req.header(reqwest::header::AUTHORIZATION, auth);
        }
        let res = req.send().await.map_err(|e| {
            tracing::warn!(error = %e, "SMS gateway unreachable");
            Error::Unavailable("the SMS gateway did not answer".into())
        })?;
        let status = res.status();
        let answer = res.text().await.unwrap_or_default();
        let sent = if gateway.success_status == 0 {
            status.is_success()
        } else {
            status.as_u16() == gateway.success_status
        };
        if !sent {
            tracing::warn!(status = status.as_u16(), body = %shown(&answer), "SMS gateway refused");
            return Err(Error::Unavailable(format!(
                "the SMS gateway refused the message (HTTP {})",
                status.as_u16()
            )));
        }
        Ok(format!("HTTP {}", status.as_u16()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gateway(json: bool, template: &str) -> GatewayRequest {
        GatewayRequest {
            url: "https://sms.example.org/send".into(),
            method: "POST".into(),
            json,
            template: template.into(),
            authorization: None,
            success_status: 0,
        }
    }

    #[test]
    fn bodies_are_escaped_for_their_format() {
        let text = "Code 123456 & \"more\" {to}\n";
        assert_eq!(
            body(&gateway(false, "to={to}&text={text}"), "+31612345678", text),
            "to=%2B31612345678&text=Code%20123456%20%26%20%22more%22%20%7Bto%7D%0A"
        );
        let json = body(
            &gateway(true, r#"{"to":"{to}","message":"{text}","x":"{y}"}"#),
            "+31612345678",
            text,
        );
        assert_eq!(
            json,
            r#"{"to":"+31612345678","message":"Code 123456 & \"more\" {to}\n","x":"{y}"}"#
        );
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["message"], text);
    }
}
