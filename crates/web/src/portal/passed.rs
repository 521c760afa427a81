//! Passed sessions, the portal's part: a protected site sends the browser
//! here with `?rd=` (its original address); once the sign-in is complete
//! the portal asks the engine to open a passed session, sets its cookie
//! for the configured domain and sends the browser back — only where the
//! engine allows (a protected site's `https` address, no open redirect).
//! Signing out ends the passed session, also for every site.

use axum::http::{HeaderMap, HeaderValue};
use twofold_core::passed::{PassedTicket, PassedVia, ReturnRefused, COOKIE_NAME, MAX_COOKIES};
use twofold_core::{Ctx, PortalService};

use super::extract::Req;
use super::session::{is_return_address, Flash};

/// Keeps the `rd` of the query for after the sign-in (the engine judges it
/// then). A new one replaces an older one.
pub(super) fn keep_return_address(req: &mut Req, query: Option<&str>) {
    let Some(query) = query else { return };
    let rd = serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .ok()
        .and_then(|pairs| {
            pairs
                .into_iter()
                .find_map(|(k, v)| (k == twofold_core::passed::RETURN_PARAM).then_some(v))
        });
    if let Some(rd) = rd.filter(|rd| is_return_address(rd)) {
        req.session.data.return_to = Some(rd);
        // A new visit from a protected site asks again.
        req.session.data.passed_asked = false;
    }
}

/// What the portal does after opening a passed session.
pub(super) struct Passed {
    /// The cookie to set.
    pub cookie: Option<HeaderValue>,
    /// Where to send the browser now.
    pub redirect: Option<String>,
}

/// Opens a passed session for the signed-in `username` when this sign-in
/// has none yet or a protected site asks to be returned to.
pub(super) async fn pass_on(service: &dyn PortalService, req: &mut Req, username: &str) -> Passed {
    let none = Passed {
        cookie: None,
        redirect: None,
    };
    if req.session.data.passed_asked {
        return none;
    }
    req.session.data.passed_asked = true;
    let return_to = req.session.data.return_to.take();
    // A sign-in from before passed sessions existed proves the least.
    let via = req.session.data.via.unwrap_or(PassedVia::Enrollment);
    let ctx = req.ctx(username);
    let ticket = match service.pass_session(&ctx, username, via, return_to).await {
        Ok(Some(t)) => t,
        Ok(None) => return none,
        Err(e) => {
            tracing::warn!(error = %e, "could not open a passed session");
            return none;
        }
    };
    // One passed session per portal sign-in: a newer one replaces it.
    if let Some(old) = req.session.data.passed.replace(ticket.token.clone()) {
        if let Err(e) = service.end_passed_session(&ctx, &old).await {
            tracing::warn!(error = %e, "could not end the earlier passed session");
        }
    }
    if let Some(why) = ticket.refused {
        req.session.data.notice = Some(Flash::new(match why {
            ReturnRefused::NotProtected => "passed-not-protected",
            ReturnRefused::NeedsSecondStep => "passed-needs-second-step",
            ReturnRefused::Denied => "passed-denied",
        }));
    }
    Passed {
        cookie: Some(cookie(&ticket)),
        redirect: ticket.return_to,
    }
}

/// `__Secure-twofold-passed` for the protected sites: `SameSite=Lax`, so a
/// link from elsewhere to a protected site still carries it (it only
/// reaches GET navigations across sites), `HttpOnly`, `Secure`.
fn cookie(ticket: &PassedTicket) -> HeaderValue {
    let domain = ticket
        .cookie_domain
        .as_deref()
        .map_or(String::new(), |d| format!("; Domain={d}"));
    HeaderValue::from_str(&format!(
        "{COOKIE_NAME}={}{domain}; Path=/; Max-Age={}; Secure; HttpOnly; SameSite=Lax",
        ticket.token, ticket.max_age_seconds
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Ends this browser's passed sessions (the one this sign-in opened and
/// any the browser still carries); returns the cookies that clear them.
pub(super) async fn end_all(
    service: &dyn PortalService,
    ctx: &Ctx,
    opened: Option<String>,
    headers: &HeaderMap,
) -> Vec<HeaderValue> {
    let mut tokens: Vec<String> = opened.into_iter().collect();
    for pair in headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
    {
        if let Some((COOKIE_NAME, value)) = pair.trim().split_once('=') {
            if !tokens.iter().any(|t| t == value) && tokens.len() < MAX_COOKIES + 1 {
                tokens.push(value.to_string());
            }
        }
    }
    let mut domains: Vec<Option<String>> = Vec::new();
    for token in &tokens {
        match service.end_passed_session(ctx, token).await {
            Ok(domain) => {
                if !domains.contains(&domain) {
                    domains.push(domain);
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not end a passed session"),
        }
    }
    // Clear the cookie on the configured domain and on this host alone
    // (where an earlier setting may have put it).
    if !tokens.is_empty() && !domains.contains(&None) {
        domains.push(None);
    }
    domains
        .into_iter()
        .filter_map(|d| {
            let domain = d.map_or(String::new(), |d| format!("; Domain={d}"));
            HeaderValue::from_str(&format!(
                "{COOKIE_NAME}={domain}; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Lax"
            ))
            .ok()
        })
        .collect()
}
