//! What a text message says and what a call says, in the user's language
//! (their base language; English when there is no text in it). Spoken
//! texts spell "pound" for `#`, as phone menus do. Placeholders: `{code}`
//! (the one-time code), `{fraud}` (the fraud code), `{minutes}`.

/// One language's texts.
pub struct PhoneTexts {
    pub language: &'static str,
    /// The voice's language tag (the provider's `Say language=`).
    pub voice: &'static str,
    /// One-way text message: type the code.
    pub sms_type: &'static str,
    /// Two-way text message: reply with the code.
    pub sms_reply: &'static str,
    /// Two-way with PIN: reply with the code and the PIN.
    pub sms_reply_pin: &'static str,
    pub call_standard: &'static str,
    pub call_pin: &'static str,
    /// Said after the prompt when fraud may be reported.
    pub call_fraud_hint: &'static str,
    pub call_wrong_key: &'static str,
    pub call_wrong_pin: &'static str,
    pub call_accepted: &'static str,
    pub call_refused: &'static str,
    pub call_fraud_reported: &'static str,
    pub call_no_keys: &'static str,
    pub call_not_waiting: &'static str,
}

const TEXTS: &[PhoneTexts] = &[
    PhoneTexts {
        language: "en",
        voice: "en-US",
        sms_type: "Your sign-in code is {code}. It is valid for {minutes} minutes. If you did not try to sign in, ignore this message.",
        sms_reply: "To sign in, reply to this message with the code {code}. If you did not try to sign in, do not reply.",
        sms_reply_pin: "To sign in, reply to this message with the code {code} followed by your PIN. If you did not try to sign in, do not reply.",
        call_standard: "This is your sign-in verification. To sign in, press the pound key.",
        call_pin: "This is your sign-in verification. To sign in, enter your PIN followed by the pound key.",
        call_fraud_hint: "If you did not try to sign in, press {fraud} followed by the pound key to report fraud.",
        call_wrong_key: "That key was not recognised.",
        call_wrong_pin: "That PIN is not correct.",
        call_accepted: "You are signed in. Goodbye.",
        call_refused: "The sign-in was refused. Goodbye.",
        call_fraud_reported: "Thank you. The sign-in was refused and reported as fraud. Goodbye.",
        call_no_keys: "No key was pressed. The sign-in was refused. Goodbye.",
        call_not_waiting: "This sign-in is no longer waiting. Goodbye.",
    },
    PhoneTexts {
        language: "nl",
        voice: "nl-NL",
        sms_type: "Uw aanmeldcode is {code}. De code is {minutes} minuten geldig. Hebt u niet geprobeerd u aan te melden? Negeer dan dit bericht.",
        sms_reply: "Beantwoord dit bericht met de code {code} om u aan te melden. Hebt u niet geprobeerd u aan te melden? Antwoord dan niet.",
        sms_reply_pin: "Beantwoord dit bericht met de code {code} gevolgd door uw pincode om u aan te melden. Hebt u niet geprobeerd u aan te melden? Antwoord dan niet.",
        call_standard: "Dit is de verificatie van uw aanmelding. Druk op het hekje om u aan te melden.",
        call_pin: "Dit is de verificatie van uw aanmelding. Toets uw pincode gevolgd door het hekje om u aan te melden.",
        call_fraud_hint: "Hebt u niet geprobeerd u aan te melden? Toets dan {fraud} gevolgd door het hekje om fraude te melden.",
        call_wrong_key: "Die toets werd niet herkend.",
        call_wrong_pin: "Die pincode is niet juist.",
        call_accepted: "U bent aangemeld. Tot ziens.",
        call_refused: "De aanmelding is geweigerd. Tot ziens.",
        call_fraud_reported: "Dank u. De aanmelding is geweigerd en als fraude gemeld. Tot ziens.",
        call_no_keys: "Er is geen toets ingedrukt. De aanmelding is geweigerd. Tot ziens.",
        call_not_waiting: "Deze aanmelding wacht niet meer. Tot ziens.",
    },
    PhoneTexts {
        language: "de",
        voice: "de-DE",
        sms_type: "Ihr Anmeldecode lautet {code}. Er ist {minutes} Minuten gültig. Wenn Sie sich nicht anmelden wollten, ignorieren Sie diese Nachricht.",
        sms_reply: "Antworten Sie auf diese Nachricht mit dem Code {code}, um sich anzumelden. Wenn Sie sich nicht anmelden wollten, antworten Sie nicht.",
        sms_reply_pin: "Antworten Sie auf diese Nachricht mit dem Code {code} und danach Ihrer PIN, um sich anzumelden. Wenn Sie sich nicht anmelden wollten, antworten Sie nicht.",
        call_standard: "Dies ist die Bestätigung Ihrer Anmeldung. Drücken Sie zum Anmelden die Rautetaste.",
        call_pin: "Dies ist die Bestätigung Ihrer Anmeldung. Geben Sie zum Anmelden Ihre PIN ein, gefolgt von der Rautetaste.",
        call_fraud_hint: "Wenn Sie sich nicht anmelden wollten, drücken Sie {fraud} und die Rautetaste, um einen Betrug zu melden.",
        call_wrong_key: "Diese Taste wurde nicht erkannt.",
        call_wrong_pin: "Diese PIN ist nicht richtig.",
        call_accepted: "Sie sind angemeldet. Auf Wiederhören.",
        call_refused: "Die Anmeldung wurde abgelehnt. Auf Wiederhören.",
        call_fraud_reported: "Vielen Dank. Die Anmeldung wurde abgelehnt und als Betrug gemeldet. Auf Wiederhören.",
        call_no_keys: "Es wurde keine Taste gedrückt. Die Anmeldung wurde abgelehnt. Auf Wiederhören.",
        call_not_waiting: "Diese Anmeldung wartet nicht mehr. Auf Wiederhören.",
    },
    PhoneTexts {
        language: "fr",
        voice: "fr-FR",
        sms_type: "Votre code de connexion est {code}. Il est valable {minutes} minutes. Si vous n'avez pas essayé de vous connecter, ignorez ce message.",
        sms_reply: "Pour vous connecter, répondez à ce message avec le code {code}. Si vous n'avez pas essayé de vous connecter, ne répondez pas.",
        sms_reply_pin: "Pour vous connecter, répondez à ce message avec le code {code} suivi de votre code PIN. Si vous n'avez pas essayé de vous connecter, ne répondez pas.",
        call_standard: "Ceci est la vérification de votre connexion. Pour vous connecter, appuyez sur la touche dièse.",
        call_pin: "Ceci est la vérification de votre connexion. Pour vous connecter, saisissez votre code PIN suivi de la touche dièse.",
        call_fraud_hint: "Si vous n'avez pas essayé de vous connecter, appuyez sur {fraud} puis sur la touche dièse pour signaler une fraude.",
        call_wrong_key: "Cette touche n'a pas été reconnue.",
        call_wrong_pin: "Ce code PIN n'est pas correct.",
        call_accepted: "Vous êtes connecté. Au revoir.",
        call_refused: "La connexion a été refusée. Au revoir.",
        call_fraud_reported: "Merci. La connexion a été refusée et signalée comme fraude. Au revoir.",
        call_no_keys: "Aucune touche n'a été pressée. La connexion a été refusée. Au revoir.",
        call_not_waiting: "Cette connexion n'est plus en attente. Au revoir.",
    },
    PhoneTexts {
        language: "es",
        voice: "es-ES",
        sms_type: "Su código de inicio de sesión es {code}. Es válido durante {minutes} minutos. Si no ha intentado iniciar sesión, ignore este mensaje.",
        sms_reply: "Para iniciar sesión, responda a este mensaje con el código {code}. Si no ha intentado iniciar sesión, no responda.",
        sms_reply_pin: "Para iniciar sesión, responda a este mensaje con el código {code} seguido de su PIN. Si no ha intentado iniciar sesión, no responda.",
        call_standard: "Esta es la verificación de su inicio de sesión. Para iniciar sesión, pulse la tecla almohadilla.",
        call_pin: "Esta es la verificación de su inicio de sesión. Para iniciar sesión, introduzca su PIN seguido de la tecla almohadilla.",
        call_fraud_hint: "Si no ha intentado iniciar sesión, pulse {fraud} seguido de la tecla almohadilla para notificar un fraude.",
        call_wrong_key: "No se ha reconocido esa tecla.",
        call_wrong_pin: "Ese PIN no es correcto.",
        call_accepted: "Ha iniciado sesión. Adiós.",
        call_refused: "Se ha rechazado el inicio de sesión. Adiós.",
        call_fraud_reported: "Gracias. Se ha rechazado el inicio de sesión y se ha notificado como fraude. Adiós.",
        call_no_keys: "No se ha pulsado ninguna tecla. Se ha rechazado el inicio de sesión. Adiós.",
        call_not_waiting: "Este inicio de sesión ya no está en espera. Adiós.",
    },
];

/// The texts of `language` (a user's language tag, or none).
pub fn texts(language: Option<&str>) -> &'static PhoneTexts {
    let base = language
        .and_then(crate::validate::base_language)
        .unwrap_or("en");
    TEXTS
        .iter()
        .find(|t| t.language == base)
        .unwrap_or(&TEXTS[0])
}

/// Digits spoken one by one ("1 2 3"), so a voice does not read a number.
pub fn spoken_digits(digits: &str) -> String {
    digits
        .chars()
        .map(String::from)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_of_the_portal_has_phone_texts() {
        for lang in crate::validate::SUPPORTED_LANGUAGES {
            assert_eq!(texts(Some(lang)).language, *lang);
        }
        assert_eq!(texts(Some("de-AT")).voice, "de-DE");
        assert_eq!(texts(None).language, "en");
        for t in TEXTS {
            assert!(t.sms_type.contains("{code}") && t.sms_type.contains("{minutes}"));
            assert!(t.sms_reply.contains("{code}") && t.sms_reply_pin.contains("{code}"));
            assert!(t.call_fraud_hint.contains("{fraud}"), "{}", t.language);
            // A text message of one GSM segment pair at most.
            for sms in [t.sms_type, t.sms_reply, t.sms_reply_pin] {
                assert!(sms.chars().count() <= 200, "{sms}");
            }
        }
        assert_eq!(spoken_digits("0"), "0");
        assert_eq!(spoken_digits("123"), "1 2 3");
    }
}
