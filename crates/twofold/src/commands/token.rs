use anyhow::{Context, Result};
use std::io::{BufRead, Read};
use std::path::Path;
use twofold_core::factors::{OathAlgorithm, OathKind, OathParams};
use twofold_core::token_import::{self, PskcKey, TokenImportReport, MAX_FILE_BYTES};
use twofold_core::{AdminService, Ctx, Error};
use zeroize::Zeroizing;

use super::output::{self, out};
use super::Naming;
use crate::cli::{SeedFormat, TokenAlgorithm, TokenCommand, TokenType};

pub async fn run(svc: &dyn AdminService, ctx: &Ctx, cmd: TokenCommand) -> Result<()> {
    match cmd {
        TokenCommand::Add {
            username,
            kind,
            secret,
            secret_stdin,
            digits,
            period,
            algorithm,
            label,
        } => {
            let secret = match secret {
                Some(s) => s,
                None if secret_stdin => {
                    let mut line = String::new();
                    std::io::stdin().lock().read_line(&mut line)?;
                    line.trim().to_string()
                }
                None => String::new(),
            };
            let params = OathParams {
                kind: match kind {
                    TokenType::Totp => OathKind::Totp,
                    TokenType::Hotp => OathKind::Hotp,
                },
                algorithm: match algorithm {
                    TokenAlgorithm::Sha1 => OathAlgorithm::Sha1,
                    TokenAlgorithm::Sha256 => OathAlgorithm::Sha256,
                    TokenAlgorithm::Sha512 => OathAlgorithm::Sha512,
                },
                digits,
                period,
            };
            let added = svc
                .add_token(ctx, &username, &secret, params, &label)
                .await
                .naming(&username)?;
            let token = &added.token;
            out!("added token {} ({}) for {username}", token.id, token.label);
            if added.method_set {
                out!("{username} had no method; it is now oath_token, so they can sign in with this token");
            }
        }
        TokenCommand::List { username, json } => {
            let tokens = svc.tokens(ctx, &username).await.naming(&username)?;
            if json {
                return output::json(&tokens);
            }
            let rows: Vec<Vec<String>> = tokens
                .iter()
                .map(|t| {
                    let p = &t.params;
                    vec![
                        t.id.to_string(),
                        t.label.clone(),
                        format!("{:?}", p.kind).to_lowercase(),
                        format!("{:?}", p.algorithm).to_lowercase(),
                        p.digits.to_string(),
                        if p.kind == OathKind::Totp {
                            format!("{}s", p.period)
                        } else {
                            "-".into()
                        },
                        output::when(t.created_at),
                    ]
                })
                .collect();
            output::table(
                &[
                    "ID",
                    "LABEL",
                    "TYPE",
                    "ALGORITHM",
                    "DIGITS",
                    "PERIOD",
                    "ADDED",
                ],
                &rows,
            );
        }
        TokenCommand::Resync {
            username,
            id,
            code1,
            code2,
        } => {
            svc.resync_token(ctx, &username, id, &code1, &code2)
                .await
                .naming(&username)?;
            out!("token {id} of {username} is in step again");
        }
        TokenCommand::Import {
            file,
            format,
            key_hex,
            key_stdin,
            password_stdin,
            dry_run,
            json,
        } => {
            let key = if let Some(hex) = key_hex {
                Some(PskcKey::from_hex(&hex)?)
            } else if key_stdin {
                Some(PskcKey::from_hex(&stdin_line()?)?)
            } else if password_stdin {
                Some(PskcKey::Password(stdin_line()?))
            } else {
                None
            };
            let text = read_seed_file(&file)?;
            let tokens = match format.unwrap_or_else(|| seed_format(&file, &text)) {
                SeedFormat::Csv if key.is_some() => {
                    return Err(Error::invalid(
                        "key",
                        "a CSV seed file is not encrypted: give no key or password",
                    )
                    .into())
                }
                SeedFormat::Csv => token_import::parse_csv(&text)?,
                SeedFormat::Pskc => token_import::parse_pskc(&text, key.as_ref())?,
            };
            drop(text);
            let report = svc.import_tokens(ctx, tokens, dry_run).await?;
            if json {
                output::json(&report)?;
            } else {
                import_summary(&report);
            }
            if !report.refused.is_empty() {
                anyhow::bail!(
                    "{} entr{} refused",
                    report.refused.len(),
                    if report.refused.len() == 1 {
                        "y"
                    } else {
                        "ies"
                    }
                );
            }
        }
        TokenCommand::Inventory {
            serial,
            limit,
            json,
        } => {
            let tokens = svc.inventory(ctx, serial.as_deref(), limit).await?;
            if json {
                return output::json(&tokens);
            }
            let rows: Vec<Vec<String>> = tokens
                .iter()
                .map(|t| {
                    let p = &t.params;
                    vec![
                        t.serial.clone(),
                        t.manufacturer.clone(),
                        t.model.clone(),
                        format!("{:?}", p.kind).to_lowercase(),
                        format!("{:?}", p.algorithm).to_lowercase(),
                        p.digits.to_string(),
                        if p.kind == OathKind::Totp {
                            format!("{}s", p.period)
                        } else {
                            "-".into()
                        },
                        output::when(t.imported_at),
                    ]
                })
                .collect();
            output::table(
                &[
                    "SERIAL",
                    "MANUFACTURER",
                    "MODEL",
                    "TYPE",
                    "ALGORITHM",
                    "DIGITS",
                    "PERIOD",
                    "IMPORTED",
                ],
                &rows,
            );
        }
        TokenCommand::Assign {
            username,
            serial,
            label,
        } => {
            let added = svc
                .assign_token(ctx, &username, &serial, &label)
                .await
                .naming(&username)?;
            let token = &added.token;
            out!(
                "gave token {serial} to {username} as token {} ({})",
                token.id,
                token.label
            );
            if added.method_set {
                out!("{username} had no method; it is now oath_token, so they can sign in with this token");
            }
        }
        TokenCommand::InventoryDelete { serial } => {
            svc.delete_inventory_token(ctx, &serial).await?;
            out!("removed token {serial} from the inventory");
        }
        TokenCommand::Delete { username, id } => {
            svc.delete_token(ctx, &username, id)
                .await
                .naming(&username)?;
            out!("deleted token {id} of {username}");
        }
    }
    Ok(())
}

/// The first line of standard input, for a key or password that must not
/// appear in the process list.
fn stdin_line() -> Result<Zeroizing<String>> {
    let mut line = Zeroizing::new(String::new());
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading standard input")?;
    let trimmed = line.trim_end_matches(['\n', '\r']);
    Ok(Zeroizing::new(trimmed.to_string()))
}

/// The seed file (`-`: standard input), refused above `MAX_FILE_BYTES`
/// before it is read whole.
fn read_seed_file(file: &Path) -> Result<String> {
    let mut bytes = Vec::new();
    let limit = u64::try_from(MAX_FILE_BYTES).unwrap_or(u64::MAX) + 1;
    if file.as_os_str() == "-" {
        std::io::stdin()
            .take(limit)
            .read_to_end(&mut bytes)
            .context("reading standard input")?;
    } else {
        std::fs::File::open(file)
            .and_then(|f| f.take(limit).read_to_end(&mut bytes))
            .with_context(|| format!("reading {}", file.display()))?;
    }
    if bytes.len() > MAX_FILE_BYTES {
        return Err(Error::invalid(
            "file",
            format!(
                "larger than {} MiB: split the file",
                MAX_FILE_BYTES / (1024 * 1024)
            ),
        )
        .into());
    }
    String::from_utf8(bytes).map_err(|_| Error::invalid("file", "is not UTF-8 text").into())
}

/// The format a seed file is in: its extension, else whether it looks
/// like XML.
fn seed_format(file: &Path, text: &str) -> SeedFormat {
    match file
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("csv" | "txt") => SeedFormat::Csv,
        Some("xml" | "pskc" | "pskcxml") => SeedFormat::Pskc,
        _ if text
            .trim_start_matches('\u{feff}')
            .trim_start()
            .starts_with('<') =>
        {
            SeedFormat::Pskc
        }
        _ => SeedFormat::Csv,
    }
}

fn import_summary(r: &TokenImportReport) {
    let would = if r.dry_run { "would be " } else { "" };
    out!("{} token(s) {would}imported", r.imported.len());
    if !r.duplicates.is_empty() {
        out!(
            "{} already in the inventory ({would}kept as they are): {}",
            r.duplicates.len(),
            r.duplicates.join(", ")
        );
    }
    if !r.refused.is_empty() {
        out!("{} refused:", r.refused.len());
        let rows: Vec<Vec<String>> = r
            .refused
            .iter()
            .map(|e| vec![e.at.clone(), e.serial.clone(), e.reason.clone()])
            .collect();
        output::table(&["WHERE", "SERIAL", "REASON"], &rows);
    }
    if r.dry_run {
        out!("dry run: nothing was written");
    }
}
