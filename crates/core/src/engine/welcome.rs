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

/// The welcome mail in each language with text: subject and body, with
/// `{name}` and `{portal_url}` to fill in. Lines stay under 76 characters.
const WELCOME: &[(&str, &str, &str)] = &[
    (
        "en",
        "Welcome: set up your two-step verification",
        "Hello {name},\n\nYou have been added to your organisation's two-step verification.\nSign in to the User Portal to set up how you verify:\n\n{portal_url}\n\nUse your usual username and password.\nQuestions? Ask your administrator.\n",
    ),
    (
        "nl",
        "Welkom: stel uw verificatie in twee stappen in",
        "Hallo {name},\n\nU bent toegevoegd aan de verificatie in twee stappen van uw\norganisatie. Meld u aan op het gebruikersportaal om in te stellen hoe\nu zich verifieert:\n\n{portal_url}\n\nGebruik uw gewone gebruikersnaam en wachtwoord.\nVragen? Neem contact op met uw beheerder.\n",
    ),
    (
        "de",
        "Willkommen: Richten Sie die Bestätigung in zwei Schritten ein",
        "Guten Tag {name},\n\nIhre Organisation hat für Sie die Bestätigung in zwei Schritten\neingerichtet. Melden Sie sich im Benutzerportal an und legen Sie fest,\nwie Sie Ihre Anmeldung bestätigen möchten:\n\n{portal_url}\n\nVerwenden Sie dazu Ihren gewohnten Benutzernamen und Ihr Passwort.\nFragen? Wenden Sie sich an Ihren Administrator.\n",
    ),
    (
        "fr",
        "Bienvenue : configurez votre vérification en deux étapes",
        "Bonjour {name},\n\nLa vérification en deux étapes de votre organisation a été activée\npour votre compte. Connectez-vous au portail utilisateur pour choisir\nvotre méthode de vérification :\n\n{portal_url}\n\nUtilisez votre nom d'utilisateur et votre mot de passe habituels.\nDes questions ? Adressez-vous à votre administrateur.\n",
    ),
    (
        "es",
        "Le damos la bienvenida: configure su verificación en dos pasos",
        "Hola, {name}:\n\nSe le ha dado de alta en la verificación en dos pasos de su organización.\nInicie sesión en el portal de usuario para configurar su verificación:\n\n{portal_url}\n\nUse su nombre de usuario y contraseña habituales.\n¿Tiene alguna duda? Consulte a su administrador.\n",
    ),
];

/// Subject and body of the welcome mail in `language` (its base language
/// for a regional tag; English when the mail has no text in it).
fn welcome_text(language: Option<&str>, name: &str, portal_url: &str) -> (String, String) {
    let base = language
        .and_then(crate::validate::base_language)
        .unwrap_or("en");
    let (_, subject, body) = WELCOME
        .iter()
        .find(|(l, _, _)| *l == base)
        .unwrap_or(&WELCOME[0]);
    (
        (*subject).to_string(),
        body.replace("{name}", name)
            .replace("{portal_url}", portal_url),
    )
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
        let (s, b) = welcome_text(Some("de-AT"), "Jan", "https://x/portal");
        assert!(s.starts_with("Willkommen"), "{s}");
        assert!(b.contains("Jan") && b.contains("https://x/portal"));
        let (s, _) = welcome_text(Some("pt"), "Jan", "https://x/portal");
        assert!(s.starts_with("Welcome"));
        for (lang, subject, body) in WELCOME {
            assert!(!subject.is_empty(), "{lang}");
            assert!(
                body.contains("{name}") && body.contains("{portal_url}"),
                "{lang}"
            );
            assert!(body.lines().all(|l| l.chars().count() < 76), "{lang}");
        }
    }
}
