//! `/admin/tokens`: hardware OATH tokens. Seed files from the vendor (CSV,
//! or PSKC — RFC 6030 — unencrypted, with a pre-shared key or a password)
//! go into the inventory; a token is given to a user later by its serial.
//! Needs "manage OATH tokens" (importing and removing: over all users).

use askama::Template;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Extension;
use serde::Deserialize;
use twofold_core::token_import::{self, ImportedTokens, PskcKey, MAX_FILE_BYTES};
use twofold_core::Error;
use zeroize::Zeroizing;

use super::extract::{AdminGet, AdminPost, AdminReq};
use super::pages::{Chrome, InventoryRow, TokensPage};
use super::session::{Flash, ImportSummary};
use super::{failure, finish, refused, AdminState};
use crate::client_ip::ClientIp;

/// The upload's size limit: the largest seed file and the form around it.
pub const MAX_UPLOAD: usize = MAX_FILE_BYTES + 64 * 1024;
/// Inventory tokens listed per page.
const LIST: u32 = 200;
/// Refused entries kept for the page (all are in the audit detail and the
/// CLI's `--json`).
const REFUSED_SHOWN: usize = 50;
const BACK: &str = "/admin/tokens";

#[derive(Debug, Default, Deserialize)]
pub(super) struct Filter {
    #[serde(default)]
    serial: String,
}

pub(super) async fn page(
    State(state): State<AdminState>,
    Query(filter): Query<Filter>,
    AdminGet(mut req): AdminGet,
) -> Response {
    let serial = filter.serial.trim().to_string();
    let prefix = Some(serial.trim_end_matches('*')).filter(|s| !s.is_empty());
    let tokens = match state.admin.inventory(req.ctx(), prefix, LIST).await {
        Ok(t) => t,
        Err(e @ (Error::Unavailable(_) | Error::Internal(_))) => return failure(&e),
        Err(e) => {
            req.session.data.error = super::flash_for(&e);
            Vec::new()
        }
    };
    let rows = tokens
        .into_iter()
        .map(|t| InventoryRow {
            path: urlencoding::encode(&t.serial).into_owned(),
            kind: match t.params.kind {
                twofold_core::factors::OathKind::Totp => format!("TOTP {}s", t.params.period),
                twofold_core::factors::OathKind::Hotp => "HOTP".into(),
            },
            serial: t.serial,
            manufacturer: t.manufacturer,
            model: t.model,
        })
        .collect();
    let report = req.session.data.import.take();
    let chrome = Chrome::take(&mut req, "title-tokens");
    let rendered = TokensPage {
        c: &chrome,
        serial: &serial,
        rows,
        report,
    }
    .render();
    super::render(&state, &req, rendered).await
}

/// The import form's fields, read from the multipart body.
#[derive(Default)]
struct Upload {
    csrf: String,
    file_name: String,
    file: Vec<u8>,
    /// `none`, `hex` or `password`.
    key_kind: String,
    key: Zeroizing<String>,
    dry_run: bool,
}

async fn read_upload(mut multipart: Multipart) -> Result<Upload, Error> {
    let bad = |why: &str| Error::invalid("file", why.to_string());
    let mut up = Upload::default();
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|_| bad("the upload could not be read (too large, or cut off)"))?
    {
        let name = field.name().unwrap_or_default().to_string();
        if name == "file" {
            up.file_name = field.file_name().unwrap_or_default().to_string();
            up.file = field
                .bytes()
                .await
                .map_err(|_| bad("the file could not be read (at most 10 MiB)"))?
                .to_vec();
            continue;
        }
        let text = field
            .text()
            .await
            .map_err(|_| bad("a form field could not be read"))?;
        match name.as_str() {
            "csrf" => up.csrf = text,
            "key_kind" => up.key_kind = text,
            "key" => up.key = Zeroizing::new(text),
            "dry_run" => up.dry_run = !text.is_empty(),
            _ => {}
        }
    }
    Ok(up)
}

/// Parses the seed file (off the async threads: PBKDF2 and decryption are
/// real work).
async fn parse(up: Upload) -> Result<(ImportedTokens, bool), Error> {
    let dry_run = up.dry_run;
    tokio::task::spawn_blocking(move || {
        let text = String::from_utf8(up.file)
            .map_err(|_| Error::invalid("file", "the file is not UTF-8 text"))?;
        if text.trim().is_empty() {
            return Err(Error::invalid("file", "choose a seed file (CSV or PSKC)"));
        }
        let key = match up.key_kind.as_str() {
            "hex" => Some(PskcKey::from_hex(&up.key)?),
            "password" => Some(PskcKey::Password(Zeroizing::new(up.key.to_string()))),
            _ => None,
        };
        let ext = std::path::Path::new(&up.file_name)
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let xml = match ext.as_deref() {
            Some("xml" | "pskc" | "pskcxml") => true,
            Some("csv" | "txt") => false,
            _ => text
                .trim_start_matches('\u{feff}')
                .trim_start()
                .starts_with('<'),
        };
        if xml {
            token_import::parse_pskc(&text, key.as_ref())
        } else {
            token_import::parse_csv(&text)
        }
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))?
    .map(|t| (t, dry_run))
}

/// `POST /admin/tokens/import` (multipart: the file, the key, dry run).
pub(super) async fn import(
    State(state): State<AdminState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
    multipart: Multipart,
) -> Response {
    let mut req = match AdminReq::load(&state, &headers, ip, None).await {
        Ok(r) => r,
        Err(res) => return res,
    };
    let up = match read_upload(multipart).await {
        Ok(u) => u,
        Err(e) => return refused(&state, req, &e, BACK).await,
    };
    if !req.session.csrf_ok(&up.csrf) {
        req.session.data.error = Some(Flash::new("err-session"));
        let mut res = finish(&state, req, "/admin").await;
        res.headers_mut().insert(
            "x-twofold-refusal",
            axum::http::HeaderValue::from_static("csrf"),
        );
        return res;
    }
    let (tokens, dry_run) = match parse(up).await {
        Ok(t) => t,
        Err(e) => return refused(&state, req, &e, BACK).await,
    };
    match state.admin.import_tokens(req.ctx(), tokens, dry_run).await {
        Ok(report) => {
            req.session.data.import = Some(ImportSummary {
                dry_run: report.dry_run,
                imported: report.imported.len(),
                duplicates: report.duplicates.into_iter().take(REFUSED_SHOWN).collect(),
                refused: report
                    .refused
                    .into_iter()
                    .take(REFUSED_SHOWN)
                    .map(|r| {
                        let serial = if r.serial.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", r.serial)
                        };
                        format!("{}{serial}: {}", r.at, r.reason)
                    })
                    .collect(),
            });
            finish(&state, req, BACK).await
        }
        Err(e) => refused(&state, req, &e, BACK).await,
    }
}

/// `POST /admin/tokens/assign`: the token `serial` to `username`.
pub(super) async fn assign(
    State(state): State<AdminState>,
    AdminPost(mut req): AdminPost,
) -> Response {
    let username = req.field("username").trim().to_string();
    let serial = req.field("serial").trim().to_string();
    let label = req.field("label").trim().to_string();
    match state
        .admin
        .assign_token(req.ctx(), &username, &serial, &label)
        .await
    {
        Ok(_) => {
            req.session.data.notice = Some(Flash::with(
                "ok-token-assigned",
                format!("{serial} → {username}"),
            ));
            finish(&state, req, BACK).await
        }
        Err(e) => refused(&state, req, &e, BACK).await,
    }
}

/// `POST /admin/tokens/{serial}/delete`: lost, broken or returned.
pub(super) async fn delete(
    State(state): State<AdminState>,
    Path(serial): Path<String>,
    AdminPost(mut req): AdminPost,
) -> Response {
    match state.admin.delete_inventory_token(req.ctx(), &serial).await {
        Ok(()) => {
            req.session.data.notice = Some(Flash::with("ok-inventory-removed", serial));
            finish(&state, req, BACK).await
        }
        Err(e) => refused(&state, req, &e, BACK).await,
    }
}
