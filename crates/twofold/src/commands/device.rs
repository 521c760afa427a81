//! `twofold device`: mobile-app devices for the helpdesk — an activation
//! code a user types (or scans) into their app, the list of a user's
//! devices, and removing one.

use anyhow::Result;
use twofold_core::mobile::grouped_code;
use twofold_core::{AdminService, Ctx};

use super::output::{self, out};
use super::Naming;
use crate::cli::DeviceCommand;

fn loopback(url: &str) -> bool {
    let host = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or_default();
    host.starts_with("127.") || host.starts_with("localhost") || host.starts_with("[::1]")
}

pub async fn run(svc: &dyn AdminService, ctx: &Ctx, cmd: DeviceCommand) -> Result<()> {
    match cmd {
        DeviceCommand::ActivationCode { username, json, qr } => {
            let offer = svc
                .device_activation_code(ctx, &username)
                .await
                .naming(&username)?;
            if json {
                return output::json(&offer);
            }
            if loopback(&offer.url) {
                output::warn(format!(
                    "the service URL {} is a loopback address, which a phone cannot reach; set public_url (TWOFOLD_PUBLIC_URL) or the setting portal.url",
                    offer.url
                ));
            }
            out!("activation code  {}", grouped_code(&offer.code));
            out!("service URL      {}", offer.url);
            out!("activation URI   {}", offer.uri);
            out!("valid until      {} (once)", output::when(offer.expires_at));
            if qr {
                let code = qrcode::QrCode::new(offer.uri.as_bytes())
                    .map_err(|e| anyhow::anyhow!("QR code: {e}"))?;
                let art = code
                    .render::<qrcode::render::unicode::Dense1x2>()
                    .quiet_zone(true)
                    .build();
                output::raw(art);
            }
        }
        DeviceCommand::List { username, json } => {
            let devices = svc.mobile_devices(ctx, &username).await.naming(&username)?;
            if json {
                return output::json(&devices);
            }
            let rows: Vec<Vec<String>> = devices
                .iter()
                .map(|d| {
                    vec![
                        d.id.clone(),
                        d.name.clone(),
                        output::when(d.activated_at),
                        d.last_used_at.map_or_else(|| "-".into(), output::when),
                        d.push.map_or("-", |p| p.as_str()).to_string(),
                    ]
                })
                .collect();
            output::table(&["ID", "NAME", "ACTIVATED", "LAST USED", "PUSH"], &rows);
        }
        DeviceCommand::Remove { username, id } => {
            svc.remove_mobile_device(ctx, &username, &id)
                .await
                .naming(&username)?;
            out!("removed device {id} of {username}");
        }
    }
    Ok(())
}
