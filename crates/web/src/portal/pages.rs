//! The portal's pages as askama templates. Every page carries the same
//! chrome (translator, title, CSRF token, messages) so the layout can render.

use askama::Template;
use twofold_core::factors::{OathKind, SecurityQuestion};
use twofold_core::portal::{Account, PendingOath, SecondStep};
use twofold_core::user::MethodKind;

use super::i18n::Tr;

macro_rules! page {
    ($name:ident, $path:literal { $($field:ident : $ty:ty),* $(,)? }) => {
        #[derive(Template)]
        #[template(path = $path)]
        pub struct $name<'a> {
            pub t: &'a Tr,
            pub title: &'a str,
            pub csrf: &'a str,
            pub signed_in: bool,
            pub notice: Option<String>,
            pub error: Option<String>,
            pub languages: &'static [(&'static str, &'static str)],
            $(pub $field: $ty,)*
        }
    };
}

page!(SignInPage, "signin.html" { login_allowed: bool });
page!(VerifyPage, "verify.html" { username: &'a str, step: &'a SecondStep });
page!(EnrollPage, "enroll.html" { stage: EnrollStage<'a> });
page!(AccountPage, "account.html" { a: &'a Account, method_key: &'a str, bypass_until: Option<String>, view: QuestionsView<'a> });
page!(TokenPage, "token.html" { view: OathView });
page!(MessagePage, "message.html" { body: &'a str });

pub enum EnrollStage<'a> {
    Method(Vec<MethodKind>),
    Oath(OathView),
    Final(FinalView<'a>),
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
}

pub struct FinalView<'a> {
    pub needs_pin: bool,
    pub pin_min: u32,
    pub questions: &'a [SecurityQuestion],
}

pub struct QuestionsView<'a> {
    pub questions: &'a [SecurityQuestion],
}

impl PendingView {
    pub fn new(p: &PendingOath) -> PendingView {
        use base64::Engine as _;
        let svg = qrcode::QrCode::new(p.uri.as_bytes())
            .map(|code| {
                code.render::<qrcode::render::svg::Color<'_>>()
                    .min_dimensions(240, 240)
                    .quiet_zone(true)
                    .build()
            })
            .unwrap_or_default();
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
        }
    }
}
