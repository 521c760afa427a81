//! The welcome mail: a user added with an email address, while mail is
//! configured and the `portal.url` setting is set, is told in their
//! language where the User Portal is ("User Portal URL, included in emails
//! sent to imported users" in the original). A mail that cannot be sent
//! does not undo the user: it is audited and logged, and the administrator
//! can tell the user the address themselves.

use crate::audit::ResultCode;
use crate::error::Result;
use crate::ports::Outgoing;
use crate::service::Ctx;
use crate::user::User;

use super::Engine;

const EVENT: &str = "mail.welcome";

/// Subject and body of the welcome mail in `language` (English when the
/// mail has no text in it).
fn welcome_text(language: Option<&str>, name: &str, portal_url: &str) -> (String, String) {
    match language {
        Some("nl") => (
            "Welkom: stel uw verificatie in twee stappen in".to_string(),
            format!(
                "Hallo {name},\n\n\
                 U bent toegevoegd aan de verificatie in twee stappen van uw organisatie.\n\
                 Meld u aan op het gebruikersportaal om in te stellen hoe u zich verifieert:\n\n\
                 {portal_url}\n\n\
                 Gebruik uw gewone gebruikersnaam en wachtwoord. Vragen? Neem contact op met uw beheerder.\n"
            ),
        ),
        _ => (
            "Welcome: set up your two-step verification".to_string(),
            format!(
                "Hello {name},\n\n\
                 You have been added to your organisation's two-step verification.\n\
                 Sign in to the User Portal to set up how you verify:\n\n\
                 {portal_url}\n\n\
                 Use your usual username and password. Questions? Ask your administrator.\n"
            ),
        ),
    }
}

/// The portal's own page, whether the setting names the site or the page.
fn portal_page(url: &str) -> String {
    let url = url.trim_end_matches('/');
    if url.ends_with("/portal") {
        url.to_string()
    } else {
        format!("{url}/portal")
    }
}

impl Engine {
    pub(super) async fn welcome(&self, ctx: &Ctx, user: &User) -> Result<()> {
        let Some(mailer) = &self.mailer else {
            return Ok(());
        };
        let Some(to) = user.email.as_deref().filter(|e| !e.is_empty()) else {
            return Ok(());
        };
        let settings = self.settings_now().await?;
        if settings.portal.url.is_empty() {
            return Ok(());
        }
        let name = user.display_name.as_deref().unwrap_or(&user.username);
        let (subject, body) = welcome_text(
            user.language.as_deref(),
            name,
            &portal_page(&settings.portal.url),
        );
        let sent = mailer
            .send(&Outgoing::Mail {
                to: to.to_string(),
                subject,
                body,
            })
            .await;
        let (code, detail) = match sent {
            Ok(_) => (ResultCode::SuccessMailSent, format!("to {to}")),
            Err(e) => {
                tracing::warn!(user = %crate::display::escape_control(&user.username), error = %e, "welcome mail not sent");
                (ResultCode::FailedProviderError, format!("to {to}: {e}"))
            }
        };
        let mut ev = self.event(ctx, EVENT, Some(&user.username), code);
        ev.detail = Some(detail);
        self.store.append_audit(&ev).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_portal_page_whatever_the_setting_names() {
        assert_eq!(
            portal_page("https://mfa.example.org"),
            "https://mfa.example.org/portal"
        );
        assert_eq!(
            portal_page("https://mfa.example.org/"),
            "https://mfa.example.org/portal"
        );
        assert_eq!(
            portal_page("https://mfa.example.org/portal/"),
            "https://mfa.example.org/portal"
        );
    }

    #[test]
    fn in_the_users_language() {
        let (s, b) = welcome_text(Some("nl"), "Jan", "https://x/portal");
        assert!(s.starts_with("Welkom"));
        assert!(b.contains("Hallo Jan") && b.contains("https://x/portal"));
        let (s, _) = welcome_text(Some("de"), "Jan", "https://x/portal");
        assert!(s.starts_with("Welcome"));
    }
}
