//! Hardware OATH tokens (key fobs) from their vendor's seed file, for the
//! token inventory: `twofold token import`. This module only reads files —
//! CSV or PSKC (RFC 6030) — into tokens and refused entries;
//! `engine::token_inventory` seals and stores them, and later assigns one
//! to a user by its serial number.
//!
//! The CSV layout, in this order when the file has no header line:
//!
//! | column | meaning |
//! |---|---|
//! | `serial` | required, the number printed on the token |
//! | `secret` | required, base32 |
//! | `manufacturer` | |
//! | `model` | |
//! | `time_interval` | seconds: 30, 60 … a time-based token (TOTP); 0 or empty an event-based one (HOTP) |
//! | `digits` | 6 (default) or 8 |
//! | `algorithm` | `sha1` (default), `sha256`, `sha512` |
//!
//! A first line whose first cell is a column name is a header (Azure MFA's
//! spellings such as `serial number`, `secret key`, `time interval` count).
//!
//! PSKC files are read with `roxmltree`, which refuses any DTD, so no entity
//! (external or otherwise) is ever expanded. Encrypted files are opened with
//! a pre-shared AES-128 key or a password (PBKDF2), and every encrypted
//! secret's MAC is checked before it is decrypted: a wrong key is refused
//! for the whole file, never turned into wrong secrets.

use std::fmt;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::factors::{OathAlgorithm, OathKind, OathParams};
use crate::oath;

/// Largest seed file read: vendors ship thousands of tokens in far less.
pub const MAX_FILE_BYTES: usize = 10 * 1024 * 1024;
/// Tokens (CSV rows, PSKC key packages) in one file.
pub const MAX_TOKENS: usize = 10_000;
/// Longest serial number.
pub const SERIAL_MAX: usize = 64;
/// Longest manufacturer or model name.
pub const NAME_MAX: usize = 128;
/// PBKDF2 iterations accepted: enough for any vendor, bounded so a file
/// cannot keep the command busy for hours.
pub const PBKDF2_MAX_ITERATIONS: u32 = 5_000_000;
/// XML nodes parsed at most: ~20 per key package, with room to spare.
const XML_NODES_MAX: u32 = 2_000_000;

/// The message for a key or password that does not open a file: a MAC
/// mismatch and a padding failure mean the same to the administrator.
pub const WRONG_KEY: &str = "the key or password does not open this file";

/// The CSV columns, in their order without a header.
pub const CSV_COLUMNS: [&str; 7] = [
    "serial",
    "secret",
    "manufacturer",
    "model",
    "time_interval",
    "digits",
    "algorithm",
];

/// One token read from a seed file. The secret never leaves this process
/// unsealed and is not printed by `Debug`.
pub struct ImportedToken {
    pub serial: String,
    pub manufacturer: String,
    pub model: String,
    pub params: OathParams,
    pub secret: Zeroizing<Vec<u8>>,
    /// Event-based tokens: the next counter value the token will use.
    pub counter: u64,
    /// Where it came from: "line 4", "key package 2".
    pub at: String,
}

impl fmt::Debug for ImportedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImportedToken")
            .field("serial", &self.serial)
            .field("manufacturer", &self.manufacturer)
            .field("model", &self.model)
            .field("params", &self.params)
            .field("secret", &"<redacted>")
            .field("counter", &self.counter)
            .field("at", &self.at)
            .finish()
    }
}

/// An entry of the file that cannot be imported, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedEntry {
    /// "line 4", "key package 2".
    pub at: String,
    /// The serial number when the entry has one.
    pub serial: String,
    pub reason: String,
}

/// What a seed file holds: the tokens to import and the entries refused.
#[derive(Debug, Default)]
pub struct ImportedTokens {
    pub tokens: Vec<ImportedToken>,
    pub refused: Vec<RefusedEntry>,
}

/// The summary of an inventory import (or, in a dry run, what it would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenImportReport {
    pub dry_run: bool,
    /// Serials added to the inventory.
    pub imported: Vec<String>,
    /// Serials already in the inventory (or twice in the file): left as
    /// they are, never overwritten.
    pub duplicates: Vec<String>,
    pub refused: Vec<RefusedEntry>,
}

/// A token of the inventory: delivered, not yet anyone's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryToken {
    pub id: i64,
    pub serial: String,
    pub manufacturer: String,
    pub model: String,
    pub params: OathParams,
    /// Never leaves the server; empty in a token read back from JSON.
    #[serde(skip_serializing, default)]
    pub sealed_secret: String,
    /// Event-based tokens: the next counter value expected.
    pub counter: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub imported_at: OffsetDateTime,
}

/// A token to add to the inventory, its seed sealed with
/// `inventory_seed_label(serial)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInventoryToken {
    pub serial: String,
    pub manufacturer: String,
    pub model: String,
    pub params: OathParams,
    pub sealed_secret: String,
    pub counter: i64,
}

/// The form of a serial number that is unique: serials differ in case
/// between a vendor's file and what is printed on the token.
pub fn serial_key(serial: &str) -> String {
    serial.trim().to_lowercase()
}

/// The sealing label of an inventory seed: bound to the serial, so a
/// sealed value cannot be moved to another row; assignment re-seals it
/// for its owner (`factors::oath_seed_label`).
pub fn inventory_seed_label(serial: &str) -> String {
    format!("oath-seed:inventory:{}", serial_key(serial))
}

/// A serial number as typed or read: trimmed, 1 to `SERIAL_MAX`
/// characters, no control characters.
pub fn serial(raw: &str) -> Result<&str> {
    let s = raw.trim();
    crate::validate::identifier("serial", s)?;
    if s.is_empty() {
        return Err(Error::invalid("serial", "must not be empty"));
    }
    if s.chars().count() > SERIAL_MAX {
        return Err(Error::invalid(
            "serial",
            format!("must be at most {SERIAL_MAX} characters"),
        ));
    }
    Ok(s)
}

fn name(field: &str, raw: &str) -> Result<String> {
    let s = raw.trim();
    crate::validate::identifier(field, s)?;
    if s.chars().count() > NAME_MAX {
        return Err(Error::invalid(
            field,
            format!("must be at most {NAME_MAX} characters"),
        ));
    }
    Ok(s.to_string())
}

fn secret_length(secret: &[u8]) -> Result<()> {
    if (oath::SECRET_MIN_BYTES..=oath::SECRET_MAX_BYTES).contains(&secret.len()) {
        Ok(())
    } else {
        Err(Error::invalid(
            "secret",
            format!(
                "is {} bytes; a token secret has {} to {} bytes",
                secret.len(),
                oath::SECRET_MIN_BYTES,
                oath::SECRET_MAX_BYTES
            ),
        ))
    }
}

fn algorithm_named(raw: &str) -> Option<OathAlgorithm> {
    let lower = raw.trim().to_ascii_lowercase().replace(['-', '_'], "");
    match lower.strip_prefix("hmac").unwrap_or(&lower) {
        "" | "sha1" => Some(OathAlgorithm::Sha1),
        "sha256" => Some(OathAlgorithm::Sha256),
        "sha512" => Some(OathAlgorithm::Sha512),
        _ => None,
    }
}

// --- CSV ---------------------------------------------------------------------

/// The column a header cell names, in any case, with spaces, `-` and `_`
/// ignored (so `Serial Number`, `secret_key`, `Time Interval` all count).
fn csv_column(cell: &str) -> Option<&'static str> {
    let key: String = cell
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '_'))
        .flat_map(char::to_lowercase)
        .collect();
    Some(match key.as_str() {
        "serial" | "serialno" | "serialnumber" => "serial",
        "secret" | "secretkey" | "seed" => "secret",
        "manufacturer" | "vendor" => "manufacturer",
        "model" => "model",
        "timeinterval" | "interval" | "period" | "timestep" => "time_interval",
        "digits" => "digits",
        "algorithm" => "algorithm",
        _ => return None,
    })
}

/// Tokens of a CSV seed file, and the lines refused while reading it (with
/// their line number as the file shows it). A header naming an unknown
/// column refuses the whole file.
pub fn parse_csv(text: &str) -> Result<ImportedTokens> {
    if text.len() > MAX_FILE_BYTES {
        return Err(too_large());
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let mut columns: Vec<&'static str> = CSV_COLUMNS.to_vec();
    let mut out = ImportedTokens::default();
    let mut first = true;
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e
                    .position()
                    .map_or(0, |p| crate::import::line_at(text, p.byte()));
                out.refused.push(RefusedEntry {
                    at: format!("line {line}"),
                    serial: String::new(),
                    reason: format!("not readable as CSV: {e}"),
                });
                continue;
            }
        };
        let line = record
            .position()
            .map_or(0, |p| crate::import::line_at(text, p.byte()));
        if record.iter().all(str::is_empty) {
            continue;
        }
        if first {
            first = false;
            if record.get(0).and_then(csv_column).is_some() {
                columns = csv_header(&record)?;
                continue;
            }
        }
        if out.tokens.len() + out.refused.len() >= MAX_TOKENS {
            return Err(too_many());
        }
        let at = format!("line {line}");
        match csv_row(&columns, &record) {
            Ok((serial, manufacturer, model, params, secret)) => {
                out.tokens.push(ImportedToken {
                    serial,
                    manufacturer,
                    model,
                    params,
                    secret,
                    counter: 0,
                    at,
                });
            }
            Err(reason) => out.refused.push(RefusedEntry {
                at,
                serial: record
                    .get(columns.iter().position(|c| *c == "serial").unwrap_or(0))
                    .map(crate::display::escape_control)
                    .map_or_else(String::new, |s| s.chars().take(SERIAL_MAX).collect()),
                reason,
            }),
        }
    }
    Ok(out)
}

fn csv_header(record: &csv::StringRecord) -> Result<Vec<&'static str>> {
    let mut columns = Vec::new();
    for cell in record {
        let known = csv_column(cell).ok_or_else(|| {
            Error::invalid(
                "file",
                format!(
                    "line 1: unknown column {:?}; the columns are {}",
                    crate::display::escape_control(cell),
                    CSV_COLUMNS.join(", ")
                ),
            )
        })?;
        if columns.contains(&known) {
            return Err(Error::invalid(
                "file",
                format!("line 1: column {known} appears twice"),
            ));
        }
        columns.push(known);
    }
    for needed in ["serial", "secret"] {
        if !columns.contains(&needed) {
            return Err(Error::invalid(
                "file",
                format!("line 1: the header has no {needed} column"),
            ));
        }
    }
    Ok(columns)
}

type CsvToken = (String, String, String, OathParams, Zeroizing<Vec<u8>>);

fn csv_row(
    columns: &[&'static str],
    record: &csv::StringRecord,
) -> std::result::Result<CsvToken, String> {
    if record.len() > columns.len() {
        return Err(format!(
            "{} cells; a row has at most {} ({})",
            record.len(),
            columns.len(),
            columns.join(", ")
        ));
    }
    let cell = |name: &str| {
        columns
            .iter()
            .position(|c| *c == name)
            .and_then(|i| record.get(i))
            .unwrap_or_default()
    };
    let text = |e: Error| e.to_string();
    let serial = serial(cell("serial")).map_err(text)?.to_string();
    if cell("secret").is_empty() {
        return Err("secret: missing".into());
    }
    let secret = Zeroizing::new(oath::parse_base32_secret(cell("secret")).map_err(text)?);
    let manufacturer = name("manufacturer", cell("manufacturer")).map_err(text)?;
    let model = name("model", cell("model")).map_err(text)?;
    let interval = cell("time_interval");
    let period: u32 = if interval.is_empty() {
        0
    } else {
        interval.parse().map_err(|_| {
            format!("time_interval: {interval:?} is not a number of seconds (0 for an event-based token)")
        })?
    };
    let digits = match cell("digits") {
        "" => 6,
        d => d
            .parse()
            .map_err(|_| format!("digits: {d:?} is not a number"))?,
    };
    let algorithm = algorithm_named(cell("algorithm")).ok_or_else(|| {
        format!(
            "algorithm: {:?} is not sha1, sha256 or sha512",
            crate::display::escape_control(cell("algorithm"))
        )
    })?;
    let params = OathParams {
        kind: if period == 0 {
            OathKind::Hotp
        } else {
            OathKind::Totp
        },
        algorithm,
        digits,
        period: if period == 0 { 30 } else { period },
    };
    oath::validate_params(&params).map_err(text)?;
    Ok((serial, manufacturer, model, params, secret))
}

fn too_large() -> Error {
    Error::invalid(
        "file",
        format!(
            "larger than {} MiB: split the file",
            MAX_FILE_BYTES / (1024 * 1024)
        ),
    )
}

fn too_many() -> Error {
    Error::invalid(
        "file",
        format!("more than {MAX_TOKENS} tokens: split the file"),
    )
}

// --- PSKC --------------------------------------------------------------------

/// What opens an encrypted PSKC file.
pub enum PskcKey {
    /// The pre-shared AES-128 key (16 bytes).
    PreShared(Zeroizing<Vec<u8>>),
    /// The password the file's key is derived from (PBKDF2).
    Password(Zeroizing<String>),
}

impl PskcKey {
    /// A pre-shared key typed as hex (spaces and colons allowed).
    pub fn from_hex(hex_text: &str) -> Result<Self> {
        let cleaned: String = hex_text
            .chars()
            .filter(|c| !c.is_whitespace() && *c != ':')
            .collect();
        let bytes =
            hex::decode(&cleaned).map_err(|_| Error::invalid("key", "is not hexadecimal"))?;
        if bytes.len() != AES_KEY_LEN {
            return Err(Error::invalid(
                "key",
                format!(
                    "is {} bytes; an AES-128 key has 16 (32 hex digits)",
                    bytes.len()
                ),
            ));
        }
        Ok(Self::PreShared(Zeroizing::new(bytes)))
    }
}

impl fmt::Debug for PskcKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::PreShared(_) => "PskcKey::PreShared(<redacted>)",
            Self::Password(_) => "PskcKey::Password(<redacted>)",
        })
    }
}

const AES_KEY_LEN: usize = 16;
const AES_BLOCK: usize = 16;
const AES128_CBC: &str = "http://www.w3.org/2001/04/xmlenc#aes128-cbc";
const HMAC_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#hmac-sha1";
const HMAC_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256";
const PBKDF2: &str = "http://www.rsasecurity.com/rsalabs/pkcs/schemas/pkcs-5v2-0#pbkdf2";

/// How the file's values are opened once the key is known.
struct Opener {
    key: Zeroizing<Vec<u8>>,
    mac: Option<(MacAlgorithm, Zeroizing<Vec<u8>>)>,
}

#[derive(Clone, Copy)]
enum MacAlgorithm {
    Sha1,
    Sha256,
}

/// Why one key package was not imported: only it (`Entry`), or — a wrong
/// key, a broken file — all of them (`File`).
enum Refusal {
    Entry(String),
    File(Error),
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Self {
        Self::Entry(e.to_string())
    }
}

fn wrong_key() -> Error {
    Error::invalid("key", WRONG_KEY)
}

/// Tokens of a PSKC (RFC 6030) file, and the key packages refused (by
/// their place, 1-based, and serial). `key` opens an encrypted file; a key
/// that does not open it refuses the whole file.
pub fn parse_pskc(xml: &str, key: Option<&PskcKey>) -> Result<ImportedTokens> {
    if xml.len() > MAX_FILE_BYTES {
        return Err(too_large());
    }
    let xml = xml.strip_prefix('\u{feff}').unwrap_or(xml);
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: XML_NODES_MAX,
        ..roxmltree::ParsingOptions::default()
    };
    let doc = roxmltree::Document::parse_with_options(xml, options)
        .map_err(|e| Error::invalid("file", format!("not a PSKC file: {e}")))?;
    let root = doc.root_element();
    if root.tag_name().name() != "KeyContainer" {
        return Err(Error::invalid(
            "file",
            format!(
                "not a PSKC file: the document is <{}>, not <KeyContainer>",
                root.tag_name().name()
            ),
        ));
    }
    if let Some(v) = root.attribute("Version") {
        if v.trim() != "1.0" {
            return Err(Error::invalid(
                "file",
                format!("PSKC version {v:?} is not supported (only 1.0)"),
            ));
        }
    }
    let packages: Vec<_> = children(root, "KeyPackage").collect();
    if packages.len() > MAX_TOKENS {
        return Err(too_many());
    }
    let encrypted = root
        .descendants()
        .any(|n| n.is_element() && n.tag_name().name() == "EncryptedValue");
    let opener = if encrypted {
        Some(opener(root, key)?)
    } else {
        None
    };
    let mut out = ImportedTokens::default();
    for (i, package) in packages.into_iter().enumerate() {
        let at = format!("key package {}", i + 1);
        let serial_seen = package_serial(package).unwrap_or_default();
        match key_package(package, opener.as_ref(), &at) {
            Ok(token) => out.tokens.push(token),
            Err(Refusal::Entry(reason)) => out.refused.push(RefusedEntry {
                at,
                serial: crate::display::escape_control(&serial_seen)
                    .chars()
                    .take(SERIAL_MAX)
                    .collect(),
                reason,
            }),
            Err(Refusal::File(e)) => return Err(e),
        }
    }
    Ok(out)
}

fn children<'a, 'i>(
    node: roxmltree::Node<'a, 'i>,
    local: &'static str,
) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> {
    node.children()
        .filter(move |n| n.is_element() && n.tag_name().name() == local)
}

/// The first child element named `local` (namespace prefixes vary between
/// vendors; PSKC names are unique enough by their local part).
fn child<'a, 'i>(
    node: roxmltree::Node<'a, 'i>,
    local: &'static str,
) -> Option<roxmltree::Node<'a, 'i>> {
    children(node, local).next()
}

fn path<'a, 'i>(
    node: roxmltree::Node<'a, 'i>,
    steps: &[&'static str],
) -> Option<roxmltree::Node<'a, 'i>> {
    steps.iter().try_fold(node, |n, step| child(n, step))
}

fn text(node: roxmltree::Node<'_, '_>) -> String {
    node.children()
        .filter(roxmltree::Node::is_text)
        .filter_map(|n| n.text())
        .collect::<String>()
        .trim()
        .to_string()
}

/// Base64 as PSKC files carry it: wrapped over lines, indented.
fn base64(field: &str, raw: &str) -> Result<Vec<u8>> {
    let cleaned: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(cleaned)
        .map_err(|_| Error::invalid(field, "is not valid base64"))
}

fn package_serial(package: roxmltree::Node<'_, '_>) -> Option<String> {
    path(package, &["DeviceInfo", "SerialNo"])
        .map(text)
        .filter(|s| !s.is_empty())
        .or_else(|| {
            child(package, "Key")
                .and_then(|k| k.attribute("Id"))
                .map(|s| s.trim().to_string())
        })
}

/// The key that opens the file's encrypted values, and its MAC key.
fn opener(root: roxmltree::Node<'_, '_>, key: Option<&PskcKey>) -> Result<Opener> {
    let key = key.ok_or_else(|| {
        Error::invalid(
            "key",
            "the file's secrets are encrypted: give the pre-shared key (--key-hex) \
             or the password (--password-stdin)",
        )
    })?;
    let derived = child(root, "EncryptionKey").and_then(|k| child(k, "DerivedKey"));
    let file_key = match key {
        PskcKey::PreShared(bytes) => bytes.clone(),
        PskcKey::Password(password) => {
            let derived = derived.ok_or_else(|| {
                Error::invalid(
                    "key",
                    "the file is encrypted with a pre-shared key, not a password: \
                     give it with --key-hex",
                )
            })?;
            derive_key(derived, password)?
        }
    };
    if file_key.len() != AES_KEY_LEN {
        return Err(Error::invalid("key", "an AES-128 key has 16 bytes"));
    }
    let mac = match child(root, "MACMethod") {
        None => None,
        Some(method) => {
            let algorithm = match method.attribute("Algorithm").map(str::trim) {
                Some(HMAC_SHA1) => MacAlgorithm::Sha1,
                Some(HMAC_SHA256) => MacAlgorithm::Sha256,
                other => {
                    return Err(Error::invalid(
                        "file",
                        format!(
                            "MAC algorithm {:?} is not supported (hmac-sha1, hmac-sha256)",
                            other.unwrap_or_default()
                        ),
                    ))
                }
            };
            let mac_key = child(method, "MACKey")
                .ok_or_else(|| Error::invalid("file", "the MACMethod has no MACKey"))?;
            let cipher = cipher_value(mac_key)?;
            let opened = aes128_cbc_decrypt(&file_key, &cipher).ok_or_else(wrong_key)?;
            if opened.is_empty() {
                return Err(Error::invalid("file", "the MAC key is empty"));
            }
            Some((algorithm, opened))
        }
    };
    Ok(Opener { key: file_key, mac })
}

/// PBKDF2 as the file's `DerivedKey` describes it (RFC 6030 §6.2).
fn derive_key(derived: roxmltree::Node<'_, '_>, password: &str) -> Result<Zeroizing<Vec<u8>>> {
    let bad = |m: &str| Error::invalid("file", format!("DerivedKey: {m}"));
    let method =
        child(derived, "KeyDerivationMethod").ok_or_else(|| bad("no KeyDerivationMethod"))?;
    if method.attribute("Algorithm").map(str::trim) != Some(PBKDF2) {
        return Err(bad("only PBKDF2 is supported"));
    }
    let params = child(method, "PBKDF2-params").ok_or_else(|| bad("no PBKDF2-params"))?;
    let salt = path(params, &["Salt", "Specified"]).ok_or_else(|| bad("no Salt/Specified"))?;
    let salt = base64("salt", &text(salt))?;
    let iterations: u32 = child(params, "IterationCount")
        .map(text)
        .and_then(|t| t.parse().ok())
        .filter(|n| (1..=PBKDF2_MAX_ITERATIONS).contains(n))
        .ok_or_else(|| {
            bad(&format!(
                "IterationCount must be a number from 1 to {PBKDF2_MAX_ITERATIONS}"
            ))
        })?;
    let length = match child(params, "KeyLength").map(text) {
        None => AES_KEY_LEN,
        Some(t) => t.parse().map_err(|_| bad("KeyLength is not a number"))?,
    };
    if length != AES_KEY_LEN {
        return Err(bad("KeyLength must be 16 (AES-128)"));
    }
    let prf = child(params, "PRF")
        .and_then(|p| p.attribute("Algorithm"))
        .map(str::trim);
    let mut key = Zeroizing::new(vec![0u8; AES_KEY_LEN]);
    match prf {
        None | Some(HMAC_SHA1) => {
            pbkdf2::pbkdf2_hmac::<sha1::Sha1>(password.as_bytes(), &salt, iterations, &mut key);
        }
        Some(HMAC_SHA256) => {
            pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password.as_bytes(), &salt, iterations, &mut key);
        }
        Some(other) => return Err(bad(&format!("PRF {other:?} is not supported"))),
    }
    Ok(key)
}

/// The `CipherData/CipherValue` of an encrypted element whose
/// `EncryptionMethod` is AES-128-CBC: the IV followed by the ciphertext.
fn cipher_value(node: roxmltree::Node<'_, '_>) -> Result<Vec<u8>> {
    let algorithm = child(node, "EncryptionMethod")
        .and_then(|m| m.attribute("Algorithm"))
        .map(str::trim);
    if algorithm != Some(AES128_CBC) {
        return Err(Error::invalid(
            "file",
            format!(
                "encryption {:?} is not supported (only aes128-cbc)",
                algorithm.unwrap_or_default()
            ),
        ));
    }
    let value = path(node, &["CipherData", "CipherValue"])
        .ok_or_else(|| Error::invalid("file", "an encrypted value has no CipherValue"))?;
    base64("CipherValue", &text(value))
}

/// AES-128-CBC with the IV first and PKCS#7 padding; `None` when the
/// padding is wrong — the usual sign of a wrong key.
fn aes128_cbc_decrypt(key: &[u8], data: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, KeyIvInit};
    if data.len() < 2 * AES_BLOCK || !data.len().is_multiple_of(AES_BLOCK) {
        return None;
    }
    let (iv, ciphertext) = data.split_at(AES_BLOCK);
    let decryptor = cbc::Decryptor::<aes::Aes128>::new_from_slices(key, iv).ok()?;
    let mut buf = Zeroizing::new(ciphertext.to_vec());
    let len = decryptor.decrypt_padded_mut::<Pkcs7>(&mut buf).ok()?.len();
    buf.truncate(len);
    Some(buf)
}

/// Checks a value's MAC over its ciphertext (IV included), then decrypts it.
fn open_value(
    opener: &Opener,
    encrypted: roxmltree::Node<'_, '_>,
    value_mac: Option<roxmltree::Node<'_, '_>>,
) -> std::result::Result<Zeroizing<Vec<u8>>, Refusal> {
    let cipher = cipher_value(encrypted)?;
    let Some((algorithm, mac_key)) = &opener.mac else {
        // Without a MAC a wrong key could pass the padding check and yield
        // a wrong secret; RFC 6030 §6.1.1 requires it with encryption.
        return Err(Refusal::File(Error::invalid(
            "file",
            "the secrets are encrypted but the file has no MACMethod to check them",
        )));
    };
    let Some(value_mac) = value_mac else {
        return Err(Refusal::Entry(
            "the encrypted secret has no ValueMAC to check it".into(),
        ));
    };
    let expected = base64("ValueMAC", &text(value_mac))?;
    let matches = match algorithm {
        MacAlgorithm::Sha1 => mac_matches::<Hmac<sha1::Sha1>>(mac_key, &cipher, &expected),
        MacAlgorithm::Sha256 => mac_matches::<Hmac<sha2::Sha256>>(mac_key, &cipher, &expected),
    };
    if !matches {
        return Err(Refusal::File(wrong_key()));
    }
    aes128_cbc_decrypt(&opener.key, &cipher).ok_or_else(|| Refusal::File(wrong_key()))
}

fn mac_matches<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8], expected: &[u8]) -> bool {
    let Ok(mut mac) = <M as hmac::digest::KeyInit>::new_from_slice(key) else {
        return false;
    };
    mac.update(data);
    mac.verify_slice(expected).is_ok()
}

const HOTP_URIS: [&str; 2] = [
    "urn:ietf:params:xml:ns:keyprov:pskc:hotp",
    "http://www.ietf.org/keyprov/pskc#hotp",
];
const TOTP_URIS: [&str; 2] = [
    "urn:ietf:params:xml:ns:keyprov:pskc:totp",
    "http://www.ietf.org/keyprov/pskc#totp",
];

/// A number held as `<X><PlainValue>n</PlainValue></X>` under `Data`.
fn data_number(
    data: Option<roxmltree::Node<'_, '_>>,
    name: &'static str,
) -> std::result::Result<Option<u64>, Refusal> {
    let Some(node) = data.and_then(|d| child(d, name)) else {
        return Ok(None);
    };
    let Some(plain) = child(node, "PlainValue") else {
        return Err(Refusal::Entry(format!(
            "{name}: only a PlainValue is supported"
        )));
    };
    let t = text(plain);
    t.parse()
        .map(Some)
        .map_err(|_| Refusal::Entry(format!("{name}: {t:?} is not a number")))
}

fn key_package(
    package: roxmltree::Node<'_, '_>,
    opener: Option<&Opener>,
    at: &str,
) -> std::result::Result<ImportedToken, Refusal> {
    let device = child(package, "DeviceInfo");
    let device_text = |name: &'static str| {
        device
            .and_then(|d| child(d, name))
            .map(text)
            .unwrap_or_default()
    };
    let key = child(package, "Key").ok_or_else(|| Refusal::Entry("no Key".into()))?;
    let serial = package_serial(package)
        .ok_or_else(|| Refusal::Entry("no serial number (DeviceInfo/SerialNo)".into()))?;
    let serial = self::serial(&serial)?.to_string();
    let manufacturer = name("manufacturer", &device_text("Manufacturer"))?;
    let model = name("model", &device_text("Model"))?;

    let algorithm = key.attribute("Algorithm").unwrap_or_default().trim();
    let kind = if HOTP_URIS.contains(&algorithm) {
        OathKind::Hotp
    } else if TOTP_URIS.contains(&algorithm) {
        OathKind::Totp
    } else {
        return Err(Refusal::Entry(format!(
            "algorithm {:?} is not supported (only HOTP and TOTP)",
            crate::display::escape_control(algorithm)
        )));
    };
    let parameters = child(key, "AlgorithmParameters");
    let format = parameters.and_then(|p| child(p, "ResponseFormat"));
    if let Some(encoding) = format.and_then(|f| f.attribute("Encoding")) {
        if !encoding.trim().eq_ignore_ascii_case("DECIMAL") {
            return Err(Refusal::Entry(format!(
                "response encoding {encoding:?} is not supported (only DECIMAL)"
            )));
        }
    }
    let digits = match format.and_then(|f| f.attribute("Length")) {
        None => 6,
        Some(l) => l
            .trim()
            .parse()
            .map_err(|_| Refusal::Entry(format!("ResponseFormat Length {l:?} is not a number")))?,
    };
    let hash = match parameters.and_then(|p| child(p, "Suite")).map(text) {
        None => OathAlgorithm::Sha1,
        Some(suite) => algorithm_named(&suite).ok_or_else(|| {
            Refusal::Entry(format!(
                "suite {suite:?} is not HMAC-SHA1, -SHA256 or -SHA512"
            ))
        })?,
    };

    let data = child(key, "Data");
    let secret = data
        .and_then(|d| child(d, "Secret"))
        .ok_or_else(|| Refusal::Entry("no secret (Data/Secret)".into()))?;
    let secret = if let Some(plain) = child(secret, "PlainValue") {
        Zeroizing::new(base64("secret", &text(plain))?)
    } else if let Some(encrypted) = child(secret, "EncryptedValue") {
        let Some(opener) = opener else {
            return Err(Refusal::File(Error::Internal(
                "an encrypted value without a key".into(),
            )));
        };
        open_value(opener, encrypted, child(secret, "ValueMAC"))?
    } else {
        return Err(Refusal::Entry(
            "the secret has neither a PlainValue nor an EncryptedValue".into(),
        ));
    };
    secret_length(&secret)?;

    let counter = data_number(data, "Counter")?.unwrap_or(0);
    if i64::try_from(counter).is_err() {
        return Err(Refusal::Entry("Counter is too large".into()));
    }
    let period = data_number(data, "TimeInterval")?.unwrap_or(30);
    // Twofold counts time steps from the Unix epoch (RFC 6238's T0 = 0);
    // a token that starts elsewhere would get codes that never match.
    if data_number(data, "Time")?.is_some_and(|t| t != 0) {
        return Err(Refusal::Entry(
            "Time other than 0 (a start time) is not supported".into(),
        ));
    }
    let params = OathParams {
        kind,
        algorithm: hash,
        digits,
        period: u32::try_from(period).unwrap_or(u32::MAX),
    };
    oath::validate_params(&params)?;
    Ok(ImportedToken {
        serial,
        manufacturer,
        model,
        params,
        secret,
        counter,
        at: at.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIGURE3: &str = include_str!("../tests/pskc/rfc6030-figure3.pskcxml");
    const FIGURE6: &str = include_str!("../tests/pskc/rfc6030-figure6.pskcxml");
    const FIGURE7: &str = include_str!("../tests/pskc/rfc6030-figure7.pskcxml");
    const MIXED: &str = include_str!("../tests/pskc/mixed.pskcxml");
    const RFC_SECRET: &[u8] = b"12345678901234567890";

    fn preshared() -> PskcKey {
        PskcKey::from_hex("12345678901234567890123456789012").unwrap()
    }

    #[test]
    fn plain_value_of_rfc6030_figure3() {
        let got = parse_pskc(FIGURE3, None).unwrap();
        assert!(got.refused.is_empty(), "{:?}", got.refused);
        let [t] = got.tokens.as_slice() else {
            panic!("one token expected: {got:?}")
        };
        assert_eq!(t.serial, "987654321");
        assert_eq!(t.manufacturer, "Manufacturer");
        assert_eq!(t.params.kind, OathKind::Hotp);
        assert_eq!(t.params.digits, 8);
        assert_eq!(t.counter, 0);
        assert_eq!(t.secret.as_slice(), RFC_SECRET);
        assert_eq!(
            hex::encode(t.secret.as_slice()),
            "3132333435363738393031323334353637383930"
        );
    }

    #[test]
    fn preshared_key_of_rfc6030_figure6_opens_and_checks_the_mac() {
        let got = parse_pskc(FIGURE6, Some(&preshared())).unwrap();
        let [t] = got.tokens.as_slice() else {
            panic!("one token expected: {got:?}")
        };
        assert_eq!(t.serial, "987654321");
        assert_eq!(t.params.digits, 8);
        assert_eq!(t.secret.as_slice(), RFC_SECRET);
    }

    #[test]
    fn password_of_rfc6030_figure7_opens_with_pbkdf2() {
        let password = PskcKey::Password(Zeroizing::new("qwerty".into()));
        let got = parse_pskc(FIGURE7, Some(&password)).unwrap();
        let [t] = got.tokens.as_slice() else {
            panic!("one token expected: {got:?}")
        };
        assert_eq!(t.manufacturer, "TokenVendorAcme");
        assert_eq!(t.secret.as_slice(), RFC_SECRET);
    }

    #[test]
    fn wrong_key_or_password_refuses_the_whole_file() {
        let wrong = PskcKey::from_hex("00112233445566778899aabbccddeeff").unwrap();
        let e = parse_pskc(FIGURE6, Some(&wrong)).unwrap_err();
        assert_eq!(e.to_string(), format!("key: {WRONG_KEY}"));
        let wrong = PskcKey::Password(Zeroizing::new("azerty".into()));
        let e = parse_pskc(FIGURE7, Some(&wrong)).unwrap_err();
        assert_eq!(e.to_string(), format!("key: {WRONG_KEY}"));
        // No key at all: the file says what it needs.
        let e = parse_pskc(FIGURE6, None).unwrap_err().to_string();
        assert!(e.contains("--key-hex"), "{e}");
        // A password for a file with a pre-shared key.
        let password = PskcKey::Password(Zeroizing::new("qwerty".into()));
        let e = parse_pskc(FIGURE6, Some(&password))
            .unwrap_err()
            .to_string();
        assert!(e.contains("pre-shared key"), "{e}");
    }

    #[test]
    fn a_tampered_ciphertext_fails_its_mac() {
        // One character of the secret's CipherValue changed: the MAC over
        // the ciphertext no longer matches, whatever the padding says.
        let tampered = FIGURE6.replace("AAECAwQFBgcICQoLDA0OD+cI", "AAECAwQFBgcICQoLDA0OD+cJ");
        assert_ne!(tampered, FIGURE6);
        let e = parse_pskc(&tampered, Some(&preshared())).unwrap_err();
        assert_eq!(e.to_string(), format!("key: {WRONG_KEY}"));
    }

    #[test]
    fn bad_key_packages_are_reported_and_the_rest_kept() {
        let got = parse_pskc(MIXED, None).unwrap();
        let serials: Vec<_> = got.tokens.iter().map(|t| t.serial.as_str()).collect();
        assert_eq!(serials, ["TOTP-0001", "HOTP-0002"]);
        let totp = &got.tokens[0];
        assert_eq!(totp.params.kind, OathKind::Totp);
        assert_eq!(totp.params.period, 60);
        assert_eq!(totp.params.digits, 6);
        assert_eq!(totp.model, "Fob 2");
        let hotp = &got.tokens[1];
        assert_eq!(hotp.counter, 42);
        assert_eq!(hotp.params.algorithm, OathAlgorithm::Sha256);
        let refused: Vec<_> = got
            .refused
            .iter()
            .map(|r| (r.at.as_str(), r.serial.as_str()))
            .collect();
        assert_eq!(
            refused,
            [
                ("key package 2", "OCRA-0003"),
                ("key package 4", "NOSECRET-0004"),
                ("key package 5", "SHORT-0005"),
            ]
        );
        assert!(
            got.refused[0].reason.contains("not supported"),
            "{:?}",
            got.refused[0]
        );
        assert!(
            got.refused[1].reason.contains("no secret"),
            "{:?}",
            got.refused[1]
        );
        assert!(
            got.refused[2].reason.contains("bytes"),
            "{:?}",
            got.refused[2]
        );
    }

    #[test]
    fn dtds_and_non_pskc_documents_are_refused() {
        let xxe = r#"<?xml version="1.0"?>
<!DOCTYPE KeyContainer [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<KeyContainer Version="1.0" xmlns="urn:ietf:params:xml:ns:keyprov:pskc">&x;</KeyContainer>"#;
        let e = parse_pskc(xxe, None).unwrap_err().to_string();
        assert!(e.starts_with("file: not a PSKC file"), "{e}");
        let e = parse_pskc("<html/>", None).unwrap_err().to_string();
        assert!(e.contains("not <KeyContainer>"), "{e}");
        let e = parse_pskc("serial,secret", None).unwrap_err().to_string();
        assert!(e.starts_with("file: not a PSKC file"), "{e}");
        let big = " ".repeat(MAX_FILE_BYTES + 1);
        assert!(parse_pskc(&big, None).is_err());
    }

    #[test]
    fn hex_keys_are_checked() {
        assert!(PskcKey::from_hex("12:34:56:78:90:12:34:56:78:90:12:34:56:78:90:12").is_ok());
        assert_eq!(
            PskcKey::from_hex("1234").unwrap_err().to_string(),
            "key: is 2 bytes; an AES-128 key has 16 (32 hex digits)"
        );
        assert!(PskcKey::from_hex("zz").is_err());
        assert_eq!(
            format!("{:?}", preshared()),
            "PskcKey::PreShared(<redacted>)"
        );
    }

    #[test]
    fn csv_rows_by_position_and_bad_lines_by_number() {
        let text = "\
A100,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,Acme,Fob,30
# a comment

A101,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,Acme,Fob,0,8,sha256
A102,not base32!,Acme,Fob,30
,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ
A104,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,Acme,Fob,7
A105,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,Acme,Fob,60,6,md5
A106,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,Acme,Fob,60,6,sha1,extra
A107,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ
";
        let got = parse_csv(text).unwrap();
        let tokens: Vec<_> = got
            .tokens
            .iter()
            .map(|t| {
                (
                    t.serial.as_str(),
                    t.at.as_str(),
                    t.params.kind,
                    t.params.period,
                )
            })
            .collect();
        assert_eq!(
            tokens,
            [
                ("A100", "line 1", OathKind::Totp, 30),
                ("A101", "line 4", OathKind::Hotp, 30),
                ("A107", "line 10", OathKind::Hotp, 30),
            ]
        );
        assert_eq!(got.tokens[0].secret.as_slice(), b"12345678901234567890");
        assert_eq!(got.tokens[1].params.digits, 8);
        assert_eq!(got.tokens[1].params.algorithm, OathAlgorithm::Sha256);
        let refused: Vec<_> = got
            .refused
            .iter()
            .map(|r| (r.at.as_str(), r.serial.as_str()))
            .collect();
        assert_eq!(
            refused,
            [
                ("line 5", "A102"),
                ("line 6", ""),
                ("line 7", "A104"),
                ("line 8", "A105"),
                ("line 9", "A106"),
            ]
        );
        assert!(
            got.refused[0].reason.starts_with("secret:"),
            "{:?}",
            got.refused[0]
        );
        assert_eq!(got.refused[1].reason, "serial: must not be empty");
        assert!(
            got.refused[2].reason.starts_with("period:"),
            "{:?}",
            got.refused[2]
        );
        assert!(
            got.refused[4].reason.contains("8 cells"),
            "{:?}",
            got.refused[4]
        );
    }

    #[test]
    fn csv_header_in_any_order_and_azure_spelling() {
        let text = "Serial Number,Secret Key,Time Interval,Manufacturer,Model\n\
                    S1,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,60,Acme,Fob 2\n";
        let got = parse_csv(text).unwrap();
        assert!(got.refused.is_empty(), "{:?}", got.refused);
        let t = &got.tokens[0];
        assert_eq!((t.serial.as_str(), t.at.as_str()), ("S1", "line 2"));
        assert_eq!((t.params.kind, t.params.period), (OathKind::Totp, 60));
        assert_eq!(
            (t.manufacturer.as_str(), t.model.as_str()),
            ("Acme", "Fob 2")
        );
        let e = parse_csv("serial,secret,colour\n").unwrap_err().to_string();
        assert!(e.contains("unknown column \"colour\""), "{e}");
        let e = parse_csv("serial,model\n").unwrap_err().to_string();
        assert!(e.contains("no secret column"), "{e}");
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let got = parse_pskc(FIGURE3, None).unwrap();
        let shown = format!("{got:?}");
        assert!(shown.contains("<redacted>"));
        assert!(!shown.contains("49, 50, 51"), "{shown}");
    }
}
