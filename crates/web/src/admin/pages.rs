//! The admin pages as askama templates (`templates/admin/*.html`). Every
//! page carries the same chrome: translator, title, CSRF token, who is
//! signed in, the messages, and which links to offer.

use askama::Template;
use twofold_core::principal::Permissions;
use twofold_core::user::Permission;

use super::extract::AdminReq;
use super::i18n::AdminTr;
use super::session::Flash;

pub struct Chrome {
    pub t: AdminTr,
    pub title: String,
    pub csrf: String,
    pub username: String,
    pub notice: Option<String>,
    pub error: Option<String>,
    pub can_add: bool,
    pub can_settings: bool,
    pub can_admins: bool,
    pub can_audit: bool,
    pub can_tokens: bool,
    pub can_accounts: bool,
}

impl Chrome {
    /// The chrome of a page titled `title_key`, taking the session's
    /// one-time messages.
    pub fn take(req: &mut AdminReq, title_key: &str) -> Chrome {
        let t = req.tr.clone();
        let text = |f: Option<Flash>| {
            f.map(|f| match f.detail {
                Some(d) => format!("{} {d}", t.t(&f.key)),
                None => t.t(&f.key),
            })
        };
        Chrome {
            title: t.t(title_key),
            csrf: req.session.data.csrf.clone(),
            username: req.session.data.username.clone(),
            notice: text(req.session.data.notice.take()),
            error: text(req.session.data.error.take()),
            can_add: req.may(Permission::AddUsers),
            can_settings: req.may(Permission::ManageSettings),
            can_admins: req.may(Permission::ManageAdministrators),
            can_audit: req.may(Permission::ViewAuditLog),
            can_tokens: req.may(Permission::ManageOathTokens),
            can_accounts: req.may(Permission::ManageServiceAccounts),
            t,
        }
    }
}

/// The administrator's permissions, in words.
pub fn permission_names(t: &AdminTr, p: Permissions) -> Vec<String> {
    p.to_vec()
        .into_iter()
        .map(|p| t.t(&format!("perm-{}", p.as_str().replace('_', "-"))))
        .collect()
}

#[derive(Template)]
#[template(path = "admin/message.html")]
pub struct MessagePage<'a> {
    pub t: &'a AdminTr,
    pub title: &'a str,
    pub text: &'a str,
}

#[derive(Template)]
#[template(path = "admin/home.html")]
pub struct HomePage<'a> {
    pub c: &'a Chrome,
    pub permissions: Vec<String>,
    pub scope: String,
    pub idle_minutes: u32,
}

/// One row of the user list.
pub struct UserRow {
    pub username: String,
    /// The username as a URL path segment.
    pub path: String,
    pub name: String,
    pub email: String,
    pub groups: String,
    pub status: String,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
pub struct UsersPage<'a> {
    pub c: &'a Chrome,
    pub q: &'a str,
    pub group: &'a str,
    pub text: &'a str,
    pub status: &'a str,
    pub rows: Vec<UserRow>,
    /// The link to the next page, when there may be one.
    pub next: Option<String>,
}

pub struct TokenRow {
    pub id: i64,
    pub label: String,
    pub kind: String,
}

pub struct DeviceRow {
    pub id: String,
    pub name: String,
}

/// What the user page offers: one flag per permission the administrator
/// holds (the engine decides anyway).
pub struct Offers {
    pub edit: bool,
    pub phones: bool,
    pub pin: bool,
    pub answers: bool,
    pub method: bool,
    pub tokens: bool,
    pub devices: bool,
    pub bypass: bool,
    pub enable: bool,
    pub unblock: bool,
    pub delete: bool,
}

impl Offers {
    pub fn of(req: &AdminReq) -> Offers {
        Offers {
            edit: req.may(Permission::EditUsers),
            phones: req.may(Permission::ChangePhone),
            pin: req.may(Permission::ResetPin),
            answers: req.may(Permission::ResetSecurityQuestions),
            method: req.may(Permission::ChangeMethod),
            tokens: req.may(Permission::ManageOathTokens),
            devices: req.may(Permission::ManageDevices),
            bypass: req.may(Permission::GrantBypass),
            enable: req.may(Permission::EnableDisable),
            unblock: req.may(Permission::Unblock),
            delete: req.may(Permission::DeleteUsers),
        }
    }
}

#[derive(Template)]
#[template(path = "admin/user.html")]
pub struct UserPage<'a> {
    pub c: &'a Chrome,
    pub user: &'a twofold_core::user::User,
    /// The user's name in paths (escaped for a URL path segment).
    pub path: String,
    pub status: String,
    pub enabled: bool,
    pub blocked: bool,
    pub method: String,
    pub groups: String,
    pub tokens: Vec<TokenRow>,
    pub devices: Vec<DeviceRow>,
    pub offers: Offers,
}

#[derive(Template)]
#[template(path = "admin/user_new.html")]
pub struct NewUserPage<'a> {
    pub c: &'a Chrome,
    pub echo: &'a std::collections::HashMap<String, String>,
}

impl NewUserPage<'_> {
    /// What the administrator typed into the refused form.
    pub fn typed(&self, name: &str) -> &str {
        self.echo.get(name).map_or("", String::as_str)
    }
}

/// One setting on the settings page.
pub struct SettingRow {
    pub key: &'static str,
    /// The key as an HTML id (`portal-allow_login`).
    pub anchor: String,
    pub help: &'static str,
    /// The values it takes, in words.
    pub rule: String,
    pub value: String,
    pub secret: bool,
    pub secret_set: bool,
    pub boolean: bool,
    pub multiline: bool,
    pub choices: Vec<&'static str>,
    /// Why the last value typed was refused.
    pub error: Option<String>,
}

pub struct SettingsSection {
    pub name: String,
    pub rows: Vec<SettingRow>,
}

#[derive(Template)]
#[template(path = "admin/settings.html")]
pub struct SettingsPage<'a> {
    pub c: &'a Chrome,
    pub sections: Vec<SettingsSection>,
    /// A second step recent enough to change settings.
    pub fresh: bool,
    pub may_change: bool,
}

pub struct AdminRow {
    pub username: String,
    pub path: String,
    pub permissions: String,
    pub scope: String,
}

/// A permission's checkbox on the grant form.
pub struct PermissionBox {
    pub name: &'static str,
    pub label: String,
    /// The granting administrator holds it (only those can be granted).
    pub mine: bool,
}

#[derive(Template)]
#[template(path = "admin/admins.html")]
pub struct AdminsPage<'a> {
    pub c: &'a Chrome,
    pub rows: Vec<AdminRow>,
    pub boxes: Vec<PermissionBox>,
    pub fresh: bool,
    pub may_change: bool,
}

pub struct AuditRow {
    pub at: String,
    pub actor: String,
    pub subject: String,
    pub event: String,
    pub method: String,
    pub result: String,
    pub source: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
pub struct AuditPage<'a> {
    pub c: &'a Chrome,
    pub user: &'a str,
    pub rows: Vec<AuditRow>,
    pub next: Option<String>,
}

pub struct InventoryRow {
    pub serial: String,
    pub path: String,
    pub manufacturer: String,
    pub model: String,
    pub kind: String,
}

#[derive(Template)]
#[template(path = "admin/tokens.html")]
pub struct TokensPage<'a> {
    pub c: &'a Chrome,
    pub serial: &'a str,
    pub rows: Vec<InventoryRow>,
    pub report: Option<super::session::ImportSummary>,
}

pub struct QuestionRow {
    pub id: i64,
    pub text: String,
}

#[derive(Template)]
#[template(path = "admin/questions.html")]
pub struct QuestionsPage<'a> {
    pub c: &'a Chrome,
    pub lang: &'static str,
    pub languages: &'static [&'static str],
    pub rows: Vec<QuestionRow>,
    pub may_change: bool,
}

pub struct ActivityLine {
    pub bucket: String,
    pub event: String,
    pub method: String,
    pub result: String,
    pub count: u64,
}

pub struct ReportLine {
    pub username: String,
    pub name: String,
    pub groups: String,
    pub since: String,
    pub why: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "admin/report.html")]
pub struct ReportPage<'a> {
    pub c: &'a Chrome,
    pub report: &'a str,
    pub reports: &'static [&'static str],
    pub title: String,
    /// The period's query string, for the chart and the export.
    pub query: &'a str,
    pub days: u16,
    pub hourly: bool,
    /// The report covers a period (else: as of now).
    pub periodic: bool,
    pub activity: Vec<ActivityLine>,
    pub users: Vec<ReportLine>,
}

impl ReportPage<'_> {
    pub fn report_title(&self, r: &str) -> String {
        self.c.t.t(&format!("report-{r}"))
    }
}

pub struct AccountRow {
    pub name: String,
    pub path: String,
    pub role: &'static str,
    /// An admin account's permissions and scope, in words.
    pub rights: String,
    pub created: String,
    pub rotated: String,
    pub last_used: String,
}

#[derive(Template)]
#[template(path = "admin/accounts.html")]
pub struct AccountsPage<'a> {
    pub c: &'a Chrome,
    pub rows: Vec<AccountRow>,
    pub boxes: Vec<PermissionBox>,
    pub fresh: bool,
    pub may_change: bool,
}
