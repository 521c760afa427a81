//! The command line, as clap types. Behaviour lives in `commands`.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "twofold",
    version,
    about = "Self-hosted multi-factor authentication server and user portal"
)]
pub struct Cli {
    /// Configuration file (TOML); see `twofold config example`.
    #[arg(long, global = true, env = "TWOFOLD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Act as this portal administrator, held to their permissions and
    /// scope (to try a delegation). Without it the CLI is a full
    /// administrator: whoever can read the configuration can read the
    /// database anyway.
    #[arg(long = "as", global = true, value_name = "USERNAME")]
    pub act_as: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: portal, API and health endpoints over HTTPS.
    Serve(ServeArgs),
    /// Run only the User Portal (no database), against a Twofold server's
    /// Web Service SDK (settings sdk.*): for a separate, internet-facing host.
    Portal(ServeArgs),
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Show and change runtime settings (stored in the database, shared by all nodes).
    #[command(subcommand)]
    Settings(SettingsCommand),
    /// Read the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Manage portal administrators.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Manage users' OATH tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage the security questions users choose from.
    #[command(subcommand)]
    Questions(QuestionsCommand),
    /// Manage users' mobile-app devices (twofold-authenticator or another app).
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Manage service accounts of the Web Service SDK.
    #[command(subcommand, name = "service-account")]
    ServiceAccount(ServiceAccountCommand),
    /// Add and update users from a CSV file or the LDAP / Active Directory.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Keep users in step with the LDAP / Active Directory: sync items, runs
    /// on a schedule (settings sync.*) or now, approval of held runs.
    #[command(subcommand)]
    Sync(SyncCommand),
    /// Print the Web Service SDK's OpenAPI document.
    Openapi,
}

#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Add a sync item: the people of the directory it selects become
    /// users, and users it added who are gone are disabled or deleted.
    Add {
        name: String,
        /// An LDAP filter, e.g. "(department=Sales)".
        #[arg(long)]
        filter: Option<String>,
        /// Members of this group only (its name or DN).
        #[arg(long)]
        group: Option<String>,
        /// The method new users get, e.g. oath_token or phone_call:pin.
        #[arg(long)]
        method: Option<String>,
        /// The language new users get when the directory has none.
        #[arg(long)]
        language: Option<String>,
        /// What happens to a user the item added once gone from the directory.
        #[arg(long, value_parser = ["disable", "delete"], default_value = "disable")]
        gone: String,
    },
    /// List the sync items.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a sync item (its users stay, no longer synchronised).
    Remove { name: String },
    /// Synchronise now.
    Now {
        /// Show what would change; change nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Let a held run (more removals than sync.threshold) disable or delete
    /// the users it named, and run it now.
    Approve {
        #[arg(long)]
        json: bool,
    },
    /// When the last run was, what it did, and whether one is held.
    Status {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// From a CSV file (`-` reads standard input). Columns, in this order
    /// or named by a header line: username, display_name, email, phone,
    /// extension, mobile, language, method, groups (separated by `;`). An
    /// empty cell leaves what an existing user has. Each user is one
    /// transaction; refused rows are listed by line and make the exit code
    /// non-zero.
    Csv {
        file: PathBuf,
        /// Show what would change; change nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// From the directory of [ldap] (ldap.url): everyone its person filter
    /// finds, or only those of --filter and --group. Maps names, mail,
    /// telephoneNumber (an `x` marks the extension), mobile,
    /// preferredLanguage and groups.
    Ldap {
        /// An LDAP filter, e.g. "(department=Sales)".
        #[arg(long)]
        filter: Option<String>,
        /// Members of this group only (its name or DN).
        #[arg(long)]
        group: Option<String>,
        /// Show what would change; change nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ServiceAccountCommand {
    /// Create an account; its secret is printed once, on the last line.
    Create {
        name: String,
        /// validate: check passwords and passcodes (test, validate,
        /// authenticate, primary); portal: relay a User Portal on a separate
        /// server; admin: manage users, tokens, settings and the audit log
        /// as far as --perm and --scope allow.
        #[arg(long, value_enum)]
        role: ServiceRole,
        /// Permissions of an admin account: `all`, or names separated by
        /// commas (see `twofold admin --help`); repeatable.
        #[arg(long = "perm", value_name = "P[,P...]")]
        perms: Vec<String>,
        /// Whom an admin account may manage: `all` or `group:NAME`.
        #[arg(long, value_name = "all|group:NAME")]
        scope: Option<String>,
    },
    /// List accounts.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Give an account a new secret (printed once); the old one stops working.
    Rotate { name: String },
    /// Delete an account.
    Delete { name: String },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ServiceRole {
    Validate,
    Portal,
    Admin,
}

impl From<ServiceRole> for twofold_core::Role {
    fn from(r: ServiceRole) -> Self {
        match r {
            ServiceRole::Validate => twofold_core::Role::Validate,
            ServiceRole::Portal => twofold_core::Role::Portal,
            ServiceRole::Admin => twofold_core::Role::Admin,
        }
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum TokenType {
    Totp,
    Hotp,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum TokenAlgorithm {
    Sha1,
    Sha256,
    Sha512,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Give a user an OATH token (hardware token or authenticator app).
    Add {
        username: String,
        #[arg(long = "type", value_enum)]
        kind: TokenType,
        /// The token's secret in base32 (visible in the process list; see --secret-stdin).
        #[arg(
            long,
            conflicts_with = "secret_stdin",
            required_unless_present = "secret_stdin"
        )]
        secret: Option<String>,
        /// Read the base32 secret from standard input.
        #[arg(long)]
        secret_stdin: bool,
        #[arg(long, default_value_t = 6)]
        digits: u32,
        /// TOTP time step in seconds.
        #[arg(long, default_value_t = 30)]
        period: u32,
        #[arg(long, value_enum, default_value = "sha1")]
        algorithm: TokenAlgorithm,
        /// A name to tell tokens apart.
        #[arg(long, default_value = "")]
        label: String,
    },
    /// List a user's tokens.
    List {
        username: String,
        #[arg(long)]
        json: bool,
    },
    /// Remove one of a user's tokens.
    Delete { username: String, id: i64 },
    /// Bring an event-based token that drifted back in step with two
    /// consecutive codes from it.
    Resync {
        username: String,
        id: i64,
        code1: String,
        code2: String,
    },
    /// Add hardware tokens from their vendor's seed file (CSV or PSKC) to
    /// the inventory, to assign later by serial number. CSV columns, in
    /// this order or named by a header line: serial, secret (base32),
    /// manufacturer, model, time_interval (30, 60 …; 0 or empty:
    /// event-based), digits, algorithm.
    Import {
        file: PathBuf,
        /// The file's format (default: from the extension, else its content).
        #[arg(long, value_enum)]
        format: Option<SeedFormat>,
        /// The PSKC file's pre-shared AES-128 key in hex (visible in the
        /// process list; see --key-stdin).
        #[arg(long, conflicts_with_all = ["key_stdin", "password_stdin"])]
        key_hex: Option<String>,
        /// Read the pre-shared key (hex) from standard input.
        #[arg(long, conflicts_with = "password_stdin")]
        key_stdin: bool,
        /// Read the PSKC file's password from standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Show what would be imported; change nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// List the inventory: tokens imported and not yet assigned.
    Inventory {
        /// Only serials starting with this (any case).
        #[arg(long)]
        serial: Option<String>,
        /// At most this many (up to 1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Give a user a token from the inventory by its serial number.
    Assign {
        username: String,
        serial: String,
        /// A name to tell tokens apart (default: manufacturer and serial).
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Remove a token from the inventory (lost, broken, returned).
    #[command(name = "inventory-delete")]
    InventoryDelete { serial: String },
}

/// What a seed file of hardware tokens is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SeedFormat {
    Csv,
    /// PSKC, RFC 6030 (XML).
    Pskc,
}

#[derive(Debug, Subcommand)]
pub enum QuestionsCommand {
    /// Add a question users can choose, in one language.
    Add {
        #[arg(long = "lang", value_name = "LANG")]
        language: String,
        text: String,
    },
    /// List questions.
    List {
        #[arg(long = "lang", value_name = "LANG")]
        language: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Remove a question (and every answer to it).
    Delete { id: i64 },
    /// Move a question one place up or down in its language's order
    /// (users see them in it; the first four are the defaults).
    Move {
        id: i64,
        #[arg(value_enum)]
        direction: Direction,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Direction {
    Up,
    Down,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Override `listen` (e.g. 0.0.0.0:443, 127.0.0.1:0 for any free port).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print a fully commented configuration file with every default.
    Example,
    /// Load the configuration and report problems.
    Check,
}

#[derive(Debug, Args)]
pub struct PasswordInput {
    /// Read the password from the first line of standard input.
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user.
    Add {
        username: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        display_name: Option<String>,
        /// Group membership (repeat for several).
        #[arg(long = "group", value_name = "GROUP")]
        groups: Vec<String>,
        /// Language: en, nl, de, fr or es (a region such as de-AT is kept).
        #[arg(long)]
        language: Option<String>,
        /// Give the user a local password, read from standard input.
        #[command(flatten)]
        password: PasswordInput,
    },
    /// List users.
    List {
        /// Only usernames starting with this (any case).
        #[arg(long)]
        prefix: Option<String>,
        /// Only members of this group.
        #[arg(long)]
        group: Option<String>,
        #[arg(long, default_value_t = 1000)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Show one user.
    Show {
        username: String,
        #[arg(long)]
        json: bool,
    },
    /// Change a user's profile; an empty value clears a field.
    Set {
        username: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        display_name: Option<String>,
        /// Replace all groups: comma-separated, empty for none.
        #[arg(long, value_name = "G1,G2")]
        groups: Option<String>,
        #[arg(long)]
        language: Option<String>,
        /// Default method: phone_call, text_message, mobile_app, oath_token, optionally `:mode`.
        #[arg(long)]
        method: Option<String>,
        /// Primary phone: +E.164, or national in `phone.default_country`.
        #[arg(long)]
        phone: Option<String>,
        /// Extension of the primary phone.
        #[arg(long)]
        extension: Option<String>,
        #[arg(long)]
        backup_phone: Option<String>,
        #[arg(long)]
        mobile_phone: Option<String>,
    },
    /// Allow the user to sign in again.
    Enable { username: String },
    /// Refuse every sign-in of the user until enabled.
    Disable { username: String },
    /// Lift a lockout or fraud block.
    Unblock { username: String },
    /// Delete the user and everything attached to them.
    Delete { username: String },
    /// Set the user's local password (prompted, or from standard input).
    Passwd {
        username: String,
        #[command(flatten)]
        password: PasswordInput,
    },
}

#[derive(Debug, Subcommand)]
pub enum SettingsCommand {
    /// Show every setting with its value.
    Show {
        #[arg(long)]
        json: bool,
    },
    /// Change one setting, e.g. `settings set portal.allow_bypass true`.
    /// A secret setting's value is best read from standard input (`-`),
    /// so it appears in no process list or shell history.
    Set {
        key: String,
        /// The value; `-` reads one line from standard input.
        value: String,
    },
    /// Return one setting to its default.
    Reset { key: String },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Show the newest events, oldest first.
    Tail {
        /// How many events.
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: u32,
        /// Only events about this user.
        #[arg(long)]
        user: Option<String>,
        /// Keep printing new events as they happen.
        #[arg(short, long)]
        follow: bool,
        #[arg(long)]
        json: bool,
    },
    /// Delete the events older than the setting `audit.retention_days` now
    /// (`twofold serve` does it every hour).
    Prune,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Make the first portal administrator (creates the user if needed).
    Bootstrap {
        username: String,
        #[command(flatten)]
        password: PasswordInput,
    },
    /// List portal administrators.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Make a user a portal administrator, or change what they may do.
    Grant {
        username: String,
        /// Permissions, comma-separated and repeatable: add_users,
        /// edit_users, change_phone, reset_pin, change_method,
        /// reset_security_questions, manage_oath_tokens, manage_devices,
        /// grant_bypass, enable_disable, unblock, delete_users,
        /// view_audit_log, manage_settings, manage_administrators,
        /// manage_service_accounts.
        #[arg(
            long = "perm",
            value_name = "P[,P...]",
            required_unless_present = "all",
            conflicts_with = "all"
        )]
        perms: Vec<String>,
        /// Every permission.
        #[arg(long)]
        all: bool,
        /// Whom they may manage: `all` users or the members of one group.
        #[arg(long, value_name = "all|group:NAME")]
        scope: String,
    },
    /// Take a user's administrator rights away.
    Revoke { username: String },
}

#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Issue a mobile-app activation code for a user (helpdesk): prints the
    /// code, the Mobile App Web Service URL and the activation URI
    /// (`twofold-authenticator activate URI`). Valid 10 minutes, once;
    /// refused when the user has `portal.max_mobile_devices` devices.
    #[command(name = "activation-code")]
    ActivationCode {
        username: String,
        /// Print {code, url, uri, fingerprint, expires_at} as JSON.
        #[arg(long)]
        json: bool,
        /// Also draw the URI as a QR code on the terminal.
        #[arg(long)]
        qr: bool,
    },
    /// List a user's activated devices.
    List {
        username: String,
        #[arg(long)]
        json: bool,
    },
    /// Remove a device (and the OATH secret the app shows codes of).
    Remove { username: String, id: String },
}
