//! The portal's pages as askama templates. Every page carries the same
//! chrome (translator, title, CSRF token, messages) so the layout can render.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::fmt::Write as _;
use time::OffsetDateTime;
use twofold_core::challenge::Prompt;
use twofold_core::factors::{OathKind, SecurityQuestion};
use twofold_core::mobile::{grouped_code, ActivationOffer};
use twofold_core::portal::{Account, PendingOath, SecondStep};
use twofold_core::questions::ANSWERS_REQUIRED_AT_ENROLLMENT;
use twofold_core::user::MethodKind;

use super::extract::PortalGet;
use super::html;
use super::i18n::Tr;
use super::session::{PhoneChange, PhoneWait};

macro_rules! page {
    ($name:ident, $path:literal { $($field:ident : $ty:ty),* $(,)? }) => {
        #[derive(Template)]
        #[template(path = $path)]
        pub struct $name<'a> {
            pub t: &'a Tr,
            pub title: &'a str,
            pub csrf: &'a str,
            pub signed_in: bool,
            pub notice: Option<Msg>,
            pub error: Option<Msg>,
            /// The field the error is about (it is shown beside it), or
            /// `None` for a message at the top of the page.
            pub error_field: Option<&'static str>,
            /// What the person typed into a refused form.
            #[allow(dead_code)]
            pub echo: &'a [(String, String)],
            pub languages: &'a [(&'static str, &'static str)],
            /// The header's language choice saves the account's language
            /// (a signed-in user who may change it): header and account
            /// setting then always agree.
            pub lang_saves: bool,
            $(pub $field: $ty,)*
        }

        // Every page has these helpers; no page uses all of them.
        #[allow(dead_code)]
        impl $name<'_> {
            /// The error is about `field`.
            pub fn bad(&self, field: &str) -> bool {
                self.error.is_some() && self.error_field == Some(field)
            }

            /// The error at the top of the page, when it is about no field.
            pub fn page_error(&self) -> Option<&Msg> {
                self.error.as_ref().filter(|_| self.error_field.is_none())
            }

            /// The error beside `field` (as HTML), when it is about it.
            pub fn error_for(&self, field: &str) -> String {
                match &self.error {
                    Some(m) if self.bad(field) => m.html(),
                    _ => String::new(),
                }
            }

            /// `aria-describedby` (help text, and the error when it is
            /// about `field`) and `aria-invalid`, as attributes.
            pub fn aria(&self, field: &str, help: &str) -> String {
                let mut ids = Vec::new();
                if self.bad(field) {
                    ids.push("form-error");
                }
                if !help.is_empty() {
                    ids.push(help);
                }
                let mut out = String::new();
                if self.bad(field) {
                    out.push_str(" aria-invalid=\"true\"");
                }
                if !ids.is_empty() {
                    let _ = write!(out, " aria-describedby=\"{}\"", ids.join(" "));
                }
                out
            }

            /// What was typed into `name` before the form was refused.
            pub fn typed(&self, name: &str) -> &str {
                self.echo
                    .iter()
                    .find(|(n, _)| n == name)
                    .map_or("", |(_, v)| v.as_str())
            }

            /// `typed` for the `n`th of a numbered field (`answer-2`).
            pub fn typed_n(&self, name: &str, n: &usize) -> &str {
                self.typed(&format!("{name}-{n}"))
            }

            /// Question `id` was chosen in the `n`th question field.
            pub fn picked(&self, n: &usize, id: &i64) -> bool {
                self.typed_n("question", n) == id.to_string()
            }

            /// The page shows a moment, which the script shows in local time.
            pub fn has_time(&self) -> bool {
                [&self.notice, &self.error]
                    .into_iter()
                    .flatten()
                    .any(|m| m.at.is_some())
            }
        }
    };
}

/// A message as a page shows it: its text and, when it names a moment, that
/// moment as a `<time>` the browser rewrites in the person's local time
/// (`static/portal.js`; without it, the time reads in UTC).
pub struct Msg {
    pub before: String,
    pub at: Option<At>,
    pub after: String,
}

pub struct At {
    /// RFC 3339, for `datetime`.
    pub iso: String,
    /// The moment as the server writes it: hours and minutes, UTC.
    pub text: String,
}

/// Stands where a message's moment goes; a private-use character no
/// translation contains.
const MOMENT: &str = "\u{E000}";

impl Msg {
    pub fn plain(text: String) -> Msg {
        Msg {
            before: text,
            at: None,
            after: String::new(),
        }
    }

    /// The message `key` with `args`, naming `until` as `$until`.
    pub fn at(t: &Tr, key: &str, args: &[(&str, String)], until: OffsetDateTime) -> Msg {
        let mut all: Vec<(&str, String)> = args.to_vec();
        all.push(("until", MOMENT.to_string()));
        let text = t.args(key, &all);
        let (before, after) = text.split_once(MOMENT).unwrap_or((&text, ""));
        let shown = t.time(until);
        let until = until.to_offset(time::UtcOffset::UTC);
        Msg {
            before: before.to_string(),
            after: after.to_string(),
            at: Some(At {
                iso: until
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
                text: shown,
            }),
        }
    }

    /// The message as HTML: its text escaped, its moment a `<time>`.
    pub fn html(&self) -> String {
        let mut out = escape(&self.before);
        if let Some(at) = &self.at {
            let _ = write!(
                out,
                "<time datetime=\"{}\" data-local>{}</time>",
                escape(&at.iso),
                escape(&at.text)
            );
        }
        out.push_str(&escape(&self.after));
        out
    }
}

/// HTML-escapes text (and drops control characters, which never reach
/// output raw).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Any other `/portal/...` path: a 404 in the portal's own style.
pub(super) async fn not_found(PortalGet(req): PortalGet) -> Response {
    let t = req.tr(None);
    message_page(&t, StatusCode::NOT_FOUND, "title-not-found", "not-found")
}

/// A page that only says something (not found, unavailable), with no form.
pub(super) fn message_page(t: &Tr, status: StatusCode, title: &str, body: &str) -> Response {
    let body = t.t(body);
    let page = MessagePage {
        t,
        title: &t.t(title),
        csrf: "",
        signed_in: false,
        notice: None,
        error: None,
        error_field: None,
        echo: &[],
        languages: &t.languages,
        lang_saves: false,
        body: &body,
    };
    (status, html(page.render())).into_response()
}

page!(SignInPage, "signin.html" { login_allowed: bool });
page!(VerifyPage, "verify.html" { step: &'a SecondStep, by_phone: bool, by_app: bool, phone: Option<&'a PhoneWait> });
page!(ChoosePinPage, "choose_pin.html" { pin_min: u32 });
page!(EnrollPage, "enroll.html" { stage: EnrollStage, step_n: usize, step_total: usize });
page!(AccountPage, "account.html" { a: &'a Account, name: &'a str, method_key: &'a str, bypass_until: Option<Msg>, bypass_minutes: Minutes, tokens: Vec<TokenRow>, view: QuestionsView, phone_change: Option<&'a PhoneChange>, app: AccountAppView });
page!(TokenPage, "token.html" { view: OathView });
page!(MessagePage, "message.html" { body: &'a str });

pub enum EnrollStage {
    Method(Vec<MethodKind>),
    Oath(OathView),
    Phone(PhoneView),
    App(AppView),
    Final(FinalView),
}

/// The wizard's mobile-app step: the activation code (once generated) and
/// "Authenticate Me Now" (with the PIN fields in a PIN mode), or the
/// request under way with its number.
pub struct AppView {
    pub needs_pin: bool,
    pub pin_min: u32,
    pub offer: Option<OfferView>,
    pub wait: Option<PhoneWait>,
}

/// The account page's mobile-app section.
pub struct AccountAppView {
    /// The section is shown (activation allowed, or devices to list).
    pub shown: bool,
    pub devices: Vec<DeviceRow>,
    /// "Generate Activation Code" is offered (allowed, and below the limit).
    pub can_activate: bool,
    /// Activation allowed but the limit reached: at most this many.
    pub limit: Option<u32>,
    pub offer: Option<OfferView>,
}

/// A device on the account page: its name, when it was activated and last
/// used (in the portal's time zone).
pub struct DeviceRow {
    pub id: String,
    pub name: String,
    pub activated: String,
    pub last_used: Option<String>,
}

/// An activation code as the page shows it: grouped, with the service URL,
/// the QR code of the activation URI (inline SVG: no script, no data URI)
/// and the URI itself to copy.
pub struct OfferView {
    pub code: String,
    pub url: String,
    pub uri: String,
    pub fingerprint: Option<String>,
    pub qr_svg: String,
    pub expires: Msg,
}

impl OfferView {
    pub fn new(t: &Tr, offer: &ActivationOffer) -> OfferView {
        OfferView {
            code: grouped_code(&offer.code),
            url: offer.url.clone(),
            uri: offer.uri.clone(),
            fingerprint: offer.fingerprint.clone(),
            qr_svg: inline_svg(&qr_svg(&offer.uri)),
            expires: Msg::at(t, "app-code-expires", &[], offer.expires_at),
        }
    }
}

/// `data` as a QR code in SVG.
fn qr_svg(data: &str) -> String {
    qrcode::QrCode::new(data.as_bytes())
        .map(|code| {
            code.render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(240, 240)
                .quiet_zone(true)
                .build()
        })
        .unwrap_or_default()
}

/// An SVG document as markup inside HTML: without its XML declaration, and
/// labelled for screen readers by the element around it.
fn inline_svg(svg: &str) -> String {
    svg.find("<svg")
        .map(|i| svg[i..].replacen("<svg ", "<svg aria-hidden=\"true\" focusable=\"false\" ", 1))
        .unwrap_or_default()
}

/// The wizard's phone step: the number (and PIN) form, or the call or
/// text under way.
pub struct PhoneView {
    pub call: bool,
    pub needs_pin: bool,
    pub pin_min: u32,
    pub ask_backup: bool,
    pub wait: Option<PhoneWait>,
}

pub struct OathView {
    pub pending: Option<PendingView>,
    /// Form actions are `{action}/new`, `{action}/import`, `{action}/confirm`.
    pub action: &'static str,
    pub allow_import: bool,
    pub with_label: bool,
}

pub struct PendingView {
    pub qr_data_uri: String,
    pub secret_grouped: String,
    pub digits: u32,
    /// The `otpauth://` address: on a phone, a link opens the app with it.
    pub uri: String,
    pub time_based: bool,
}

pub struct FinalView {
    /// The phone was proved (rather than an authenticator confirmed).
    pub phone: bool,
    /// The mobile app was activated and approved a request.
    pub app: bool,
    pub needs_pin: bool,
    pub pin_min: u32,
    pub questions: Vec<SecurityQuestion>,
}

pub struct QuestionsView {
    pub questions: Vec<SecurityQuestion>,
}

/// The questions to offer in `lang`: that language's when there are enough
/// to choose from, else English's, else all the engine offered.
pub fn questions_in(all: &[SecurityQuestion], lang: &str) -> Vec<SecurityQuestion> {
    for l in [lang, "en"] {
        let these: Vec<SecurityQuestion> =
            all.iter().filter(|q| q.language == l).cloned().collect();
        if these.len() >= ANSWERS_REQUIRED_AT_ENROLLMENT {
            return these;
        }
    }
    all.to_vec()
}

/// The one-time bypass in minutes, as the person chooses it.
pub struct Minutes {
    pub default: u32,
    pub max: u32,
}

/// A token on the account page: its name, when it was added, what it is.
pub struct TokenRow {
    pub id: i64,
    pub label: String,
    pub added: String,
    pub kind: OathKind,
}

impl PendingView {
    pub fn new(p: &PendingOath) -> PendingView {
        use base64::Engine as _;
        let svg = qr_svg(&p.uri);
        let grouped = p
            .secret_base32
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        PendingView {
            qr_data_uri: format!(
                "data:image/svg+xml;base64,{}",
                base64::engine::general_purpose::STANDARD.encode(svg)
            ),
            secret_grouped: grouped,
            digits: p.params.digits,
            uri: p.uri.clone(),
            time_based: p.params.kind == OathKind::Totp,
        }
    }
}
