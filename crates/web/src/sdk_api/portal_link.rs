//! The server's end of the private portal link (`POST /link/v1`): one
//! route, a request tagged by `op`, answered in the link's own wire types
//! (`twofold_proto::link`) — never the engine's, so a portal and its server
//! can be upgraded one after the other within `v1`.
//!
//! Each operation is one `PortalService` call; the engine refuses callers
//! without the `portal` grant (403 `forbidden`, audited). Operations for an
//! end user run as that user *via* the calling account
//! (`Ctx::relayed_for`), at the address the portal reports in
//! `X-Twofold-Client-Ip`.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use twofold_core::challenge::PhoneChoice;
use twofold_core::passed::PassedVia;
use twofold_core::portal::{ChangePhone, EnrollPhone, FinishEnrollment, ImportOath};
use twofold_core::Error;
use twofold_link::convert::{
    answers_from_wire, named, time_text, to_account, to_enrollment_options, to_pending,
    to_phone_started, to_sign_in, to_token, to_user, to_verified,
};
use twofold_proto::link::{
    Bypass, Confirmed, Done, LinkCookieDomain, LinkPassed, LinkRequest, PortalSettings, Ready,
    SessionData,
};

use super::{ApiJson, ApiResult, Caller, SdkState};

/// Session ids are stored as the hex SHA-256 of the cookie value.
fn session_id(id: String) -> Result<String, Error> {
    if id.len() != 64
        || !id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(Error::invalid(
            "session",
            "the id must be 64 lower-case hex digits (SHA-256)",
        ));
    }
    Ok(id)
}

fn json<T: serde::Serialize>(v: T) -> Response {
    Json(v).into_response()
}

pub(super) async fn link(
    State(s): State<SdkState>,
    Caller(ctx): Caller,
    ApiJson(req): ApiJson<LinkRequest>,
) -> ApiResult<Response> {
    let e = &s.engine;
    tracing::debug!(op = req.op(), caller = %ctx.actor, "portal link");
    Ok(match req {
        LinkRequest::Ready => {
            let r = e.ready(&ctx).await?;
            json(Ready {
                status: "ready".into(),
                directory: r.directory.map(|d| twofold_proto::link::DirectoryStatus {
                    kind: d.kind.as_str().into(),
                    status: if d.reachable {
                        "reachable"
                    } else {
                        "unreachable"
                    }
                    .into(),
                    error: d.error,
                }),
            })
        }
        LinkRequest::Settings => {
            let c = e.portal_settings(&ctx).await?;
            json(PortalSettings {
                allow_login: c.allow_login,
                logging: c.logging,
                languages: c.languages,
                time_zone: Some(c.time_zone),
            })
        }
        LinkRequest::User { username } => {
            let u = e
                .portal_user(&ctx.relayed_for(&username), &username)
                .await?;
            json(to_user(&u))
        }
        LinkRequest::SessionLoad { id_hash } => json(SessionData {
            data: e.session_load(&ctx, &session_id(id_hash)?).await?,
        }),
        LinkRequest::SessionSave {
            id_hash,
            data,
            ttl_seconds,
        } => {
            e.session_save(&ctx, &session_id(id_hash)?, data, ttl_seconds)
                .await?;
            json(Done {})
        }
        LinkRequest::SessionDrop { id_hash } => {
            e.session_drop(&ctx, &session_id(id_hash)?).await?;
            json(Done {})
        }
        LinkRequest::PassSession {
            username,
            via,
            return_to,
        } => {
            let via = PassedVia::parse(&via)
                .ok_or_else(|| Error::invalid("via", format!("{via:?} is not a way to sign in")))?;
            let ticket = e
                .pass_session(&ctx.relayed_for(&username), &username, via, return_to)
                .await?;
            json(match ticket {
                None => LinkPassed {
                    enabled: false,
                    token: String::new(),
                    cookie_domain: None,
                    max_age_seconds: 0,
                    return_to: None,
                    refused: None,
                },
                Some(t) => LinkPassed {
                    enabled: true,
                    token: t.token,
                    cookie_domain: t.cookie_domain,
                    max_age_seconds: t.max_age_seconds,
                    return_to: t.return_to,
                    refused: t.refused.map(|r| r.as_str().to_string()),
                },
            })
        }
        LinkRequest::EndPassedSession { token } => {
            let cookie_domain = e.end_passed_session(&ctx, &token).await?;
            json(LinkCookieDomain { cookie_domain })
        }
        LinkRequest::SignIn { username, password } => {
            let r = e
                .begin_sign_in(&ctx.relayed_for(&username), &username, password)
                .await?;
            json(to_sign_in(&r))
        }
        LinkRequest::Verify {
            username,
            proof,
            code,
            answers,
        } => {
            let proof = named("proof", &proof).map_err(|_| {
                Error::invalid("proof", "method, security_questions or oath_fallback")
            })?;
            let r = e
                .verify(
                    &ctx.relayed_for(&username),
                    &username,
                    proof,
                    code,
                    answers_from_wire(answers),
                )
                .await?;
            json(to_verified(&r))
        }
        LinkRequest::CallOrText { username, phone } => {
            let phone = match phone.as_deref() {
                None => PhoneChoice::Primary,
                Some(p) => {
                    named("phone", p).map_err(|_| Error::invalid("phone", "primary or backup"))?
                }
            };
            let a = e
                .call_or_text(&ctx.relayed_for(&username), &username, phone)
                .await?;
            json(to_phone_started(&a))
        }
        LinkRequest::VerifyPhone {
            username,
            challenge,
            code,
            wait_seconds,
        } => {
            let wait = wait_seconds.map(|s| std::time::Duration::from_secs(u64::from(s.min(8))));
            let r = e
                .verify_phone(
                    &ctx.relayed_for(&username),
                    &username,
                    &challenge,
                    code,
                    wait,
                )
                .await?;
            json(to_verified(&r))
        }
        LinkRequest::ChangePhone {
            username,
            slot,
            phone,
            extension,
        } => {
            let slot = named("slot", &slot)
                .map_err(|_| Error::invalid("slot", "phone, backup or mobile"))?;
            let a = e
                .change_phone(
                    &ctx.relayed_for(&username),
                    &username,
                    ChangePhone {
                        slot,
                        phone,
                        extension,
                    },
                )
                .await?;
            json(to_phone_started(&a))
        }
        LinkRequest::ChangePhoneStatus {
            username,
            challenge,
            slot,
            code,
            wait_seconds,
        } => {
            let slot = named("slot", &slot)
                .map_err(|_| Error::invalid("slot", "phone, backup or mobile"))?;
            let wait = wait_seconds.map(|s| std::time::Duration::from_secs(u64::from(s.min(8))));
            let a = e
                .change_phone_status(
                    &ctx.relayed_for(&username),
                    &username,
                    &challenge,
                    slot,
                    code,
                    wait,
                )
                .await?;
            json(to_phone_started(&a))
        }
        LinkRequest::EnrollmentPhone {
            username,
            method,
            phone,
            extension,
            pin,
        } => {
            let method = method.parse()?;
            let a = e
                .enrollment_phone(
                    &ctx.relayed_for(&username),
                    &username,
                    EnrollPhone {
                        method,
                        phone,
                        extension,
                        pin,
                    },
                )
                .await?;
            json(to_phone_started(&a))
        }
        LinkRequest::EnrollmentPhoneStatus {
            username,
            challenge,
            code,
            wait_seconds,
        } => {
            let wait = wait_seconds.map(|s| std::time::Duration::from_secs(u64::from(s.min(8))));
            let a = e
                .enrollment_phone_status(
                    &ctx.relayed_for(&username),
                    &username,
                    &challenge,
                    code,
                    wait,
                )
                .await?;
            json(to_phone_started(&a))
        }
        LinkRequest::EnrollmentOptions { username } => {
            let o = e
                .enrollment_options(&ctx.relayed_for(&username), &username)
                .await?;
            json(to_enrollment_options(&o))
        }
        LinkRequest::NewOathSecret { username } => {
            let p = e
                .new_oath_secret(&ctx.relayed_for(&username), &username)
                .await?;
            json(to_pending(&p))
        }
        LinkRequest::ImportOathSecret {
            username,
            secret_base32,
            kind,
            digits,
        } => {
            let kind = named("kind", &kind).map_err(|_| Error::invalid("kind", "totp or hotp"))?;
            let p = e
                .import_oath_secret(
                    &ctx.relayed_for(&username),
                    &username,
                    ImportOath {
                        secret_base32,
                        kind,
                        digits,
                    },
                )
                .await?;
            json(to_pending(&p))
        }
        LinkRequest::ConfirmOath {
            username,
            pending,
            code,
        } => {
            let confirmed = e
                .confirm_oath(&ctx.relayed_for(&username), &username, pending, code)
                .await?;
            json(Confirmed { confirmed })
        }
        LinkRequest::FinishEnrollment {
            username,
            method,
            oath,
            pin,
            answers,
            phone_challenge,
            backup_phone,
        } => {
            let method = method.parse()?;
            let u = e
                .finish_enrollment(
                    &ctx.relayed_for(&username),
                    &username,
                    FinishEnrollment {
                        method,
                        oath,
                        pin,
                        answers: answers_from_wire(answers),
                        phone_challenge,
                        backup_phone,
                    },
                )
                .await?;
            json(to_user(&u))
        }
        LinkRequest::Account { username } => {
            let a = e.account(&ctx.relayed_for(&username), &username).await?;
            json(to_account(&a))
        }
        LinkRequest::ActivationCode { username } => {
            let a = e
                .activation_code(&ctx.relayed_for(&username), &username)
                .await?;
            json(twofold_link::convert::to_activation(&a))
        }
        LinkRequest::RemoveDevice {
            username,
            device_id,
        } => {
            e.remove_device(&ctx.relayed_for(&username), &username, &device_id)
                .await?;
            json(Done {})
        }
        LinkRequest::ChangePin { username, pin } => {
            e.change_pin(&ctx.relayed_for(&username), &username, pin)
                .await?;
            json(Done {})
        }
        LinkRequest::ChangeAnswers { username, answers } => {
            e.change_answers(
                &ctx.relayed_for(&username),
                &username,
                answers_from_wire(answers),
            )
            .await?;
            json(Done {})
        }
        LinkRequest::AddToken {
            username,
            confirmed,
            label,
        } => {
            let t = e
                .add_oath_token(&ctx.relayed_for(&username), &username, confirmed, label)
                .await?;
            json(to_token(&t))
        }
        LinkRequest::DeleteToken { username, token_id } => {
            e.delete_oath_token(&ctx.relayed_for(&username), &username, token_id)
                .await?;
            json(Done {})
        }
        LinkRequest::ChangeLanguage { username, language } => {
            let u = e
                .change_language(&ctx.relayed_for(&username), &username, language)
                .await?;
            json(to_user(&u))
        }
        LinkRequest::ChangeMethod { username, method } => {
            let method = method.parse()?;
            let u = e
                .change_method(&ctx.relayed_for(&username), &username, method)
                .await?;
            json(to_user(&u))
        }
        LinkRequest::StartBypass { username, seconds } => {
            let until = e
                .start_bypass(&ctx.relayed_for(&username), &username, seconds)
                .await?;
            json(Bypass {
                until: time_text(until),
            })
        }
    })
}
