use anyhow::Result;
use std::io::BufRead;
use twofold_core::factors::{OathAlgorithm, OathKind, OathParams};
use twofold_core::{AdminService, Ctx};

use super::output::{self, out};
use super::Naming;
use crate::cli::{TokenAlgorithm, TokenCommand, TokenType};

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
        TokenCommand::Delete { username, id } => {
            svc.delete_token(ctx, &username, id)
                .await
                .naming(&username)?;
            out!("deleted token {id} of {username}");
        }
    }
    Ok(())
}
