//! The admin pages (issue 13, first slice): reached after the portal's
//! full sign-in, in a session of their own; each permission needed for
//! its action — on the page and with a crafted POST — and a group-scoped
//! administrator held to their group.

mod common;

use common::{Browser, Portal, PASSWORD};
use twofold_core::factors::OathParams;
use twofold_core::principal::{Permissions, Scope};
use twofold_core::user::Permission;
use twofold_core::{AdminService, Ctx};
use twofold_testkit::db::Backend;

twofold_testkit::both_backends!(
    the_admin_pages_need_the_full_sign_in_and_a_grant,
    each_action_needs_its_permission,
    a_group_administrator_stays_in_their_group,
    users_are_found_and_added,
    settings_change_one_at_a_time_and_keep_secrets,
    administrators_are_granted_and_revoked_on_the_page,
    hardware_tokens_are_imported_and_given_out,
    security_questions_per_language,
    reports_chart_and_export_the_same_rows,
    service_accounts_on_the_page,
    global_pages_need_their_permission,
);

const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

/// An action on a user's page, the permission it needs and its form.
type Case = (
    &'static str,
    Permission,
    &'static [(&'static str, &'static str)],
);

/// A user with a password and a TOTP token, signed in at the portal with
/// both in `b`.
async fn signed_in(p: &Portal, name: &str, groups: &[&str]) -> Browser {
    let u = p.user(name).await;
    if !groups.is_empty() {
        p.engine
            .update_user(
                &Ctx::cli(),
                &u.username,
                twofold_core::user::UserPatch {
                    groups: Some(groups.iter().map(ToString::to_string).collect()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }
    p.engine
        .add_token(&Ctx::cli(), name, SECRET, OathParams::default(), "app")
        .await
        .unwrap();
    let mut b = p.browser();
    b.sign_in(name, PASSWORD).await;
    assert!(b.has("name=\"code\""), "{}", b.page);
    let code = p.totp(SECRET, 0);
    b.submit("/portal/verify", &[("proof", "method"), ("code", &code)])
        .await;
    b
}

async fn grant(p: &Portal, name: &str, perms: Permissions, scope: Scope) {
    p.engine
        .grant_admin(&Ctx::cli(), name, perms, scope)
        .await
        .unwrap();
}

/// Opens `/admin` (which opens the admin session on the first visit).
async fn enter(b: &mut Browser) -> u16 {
    let res = b
        .client
        .get(format!("{}/admin", b.base))
        .send()
        .await
        .unwrap();
    if res.status() != 303 {
        return res.status().as_u16();
    }
    let again = b
        .client
        .get(format!("{}/admin", b.base))
        .send()
        .await
        .unwrap();
    again.status().as_u16()
}

async fn status_of(b: &Browser, path: &str) -> (u16, String) {
    let res = b
        .client
        .get(format!("{}{path}", b.base))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.text().await.unwrap())
}

async fn the_admin_pages_need_the_full_sign_in_and_a_grant(backend: Backend) {
    let p = Portal::start(backend).await;
    // Nobody signed in: to the portal's sign-in, and back here after it.
    p.user("ann").await;
    p.engine
        .add_token(&Ctx::cli(), "ann", SECRET, OathParams::default(), "app")
        .await
        .unwrap();
    grant(&p, "ann", Permissions::all(), Scope::All).await;
    let mut ann = p.browser();
    let res = ann
        .client
        .get(format!("{}/admin", ann.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/portal");
    ann.open("/portal").await;
    ann.submit(
        "/portal/sign-in",
        &[("username", "ann"), ("password", PASSWORD)],
    )
    .await;
    let code = p.totp(SECRET, 0);
    let posted = ann
        .post("/portal/verify", &[("proof", "method"), ("code", &code)])
        .await;
    assert_eq!(posted.location, "/portal");
    let res = ann
        .client
        .get(format!("{}/portal", ann.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["location"], "/admin");
    assert_eq!(enter(&mut ann).await, 200);
    // A user who is no administrator.
    let mut jan = signed_in(&p, "jan", &[]).await;
    assert_eq!(enter(&mut jan).await, 403);
    // Password alone (second step pending) is not enough.
    p.user("helen").await;
    p.engine
        .add_token(&Ctx::cli(), "helen", SECRET, OathParams::default(), "app")
        .await
        .unwrap();
    grant(&p, "helen", Permissions::all(), Scope::All).await;
    let mut half = p.browser();
    half.sign_in("helen", PASSWORD).await;
    assert_eq!(enter(&mut half).await, 401);

    // Signed in with the second step: the admin session opens, in its own
    // cookie, with the administrator's rights on the page.
    let code = p.totp(SECRET, 0);
    half.submit("/portal/verify", &[("proof", "method"), ("code", &code)])
        .await;
    let res = half
        .client
        .get(format!("{}/admin", half.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("__Host-twofold-admin="), "{cookie}");
    assert!(
        cookie.contains("Max-Age=900") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let (status, page) = status_of(&half, "/admin").await;
    assert_eq!(status, 200);
    assert!(page.contains("manage administrators"), "{page}");
    assert!(!page.contains("<script"), "no script on admin pages");

    // Rights revoked: the next click ends the admin session.
    p.user("root").await;
    grant(&p, "root", Permissions::all(), Scope::All).await;
    p.engine.revoke_admin(&Ctx::cli(), "helen").await.unwrap();
    let (status, _) = status_of(&half, "/admin/users").await;
    assert_eq!(status, 303, "sent back to /admin");
    assert_eq!(enter(&mut half).await, 403);
    let audit = p.audit_results("helen").await;
    assert!(audit.iter().any(|r| r == "FAILED_NOT_ALLOWED"), "{audit:?}");
}

/// Posts `action` on `target`'s page with the admin session's token.
async fn act(b: &mut Browser, target: &str, action: &str, fields: &[(&str, &str)]) -> String {
    b.open(&format!("/admin/users/{target}")).await;
    let csrf = common::field_value(&b.page, "csrf").expect("a CSRF token on the admin page");
    let mut form: Vec<(&str, &str)> = vec![("csrf", &csrf)];
    form.extend_from_slice(fields);
    let posted = b
        .post_raw(&format!("/admin/users/{target}/{action}"), &form)
        .await;
    assert_eq!(posted.status, 303, "{action}");
    b.open(&posted.location).await.to_string()
}

async fn each_action_needs_its_permission(backend: Backend) {
    let p = Portal::start(backend).await;
    let cases: &[Case] = &[
        ("disable", Permission::EnableDisable, &[]),
        ("unblock", Permission::Unblock, &[]),
        ("pin", Permission::ResetPin, &[("pin", "8264")]),
        ("reset-answers", Permission::ResetSecurityQuestions, &[]),
        (
            "bypass",
            Permission::GrantBypass,
            &[("seconds", "600"), ("reason", "lost phone")],
        ),
        (
            "edit",
            Permission::EditUsers,
            &[
                ("display_name", "Jan de Vries"),
                ("email", "jan@example.com"),
                ("groups", ""),
                ("language", "nl"),
            ],
        ),
        (
            "phones",
            Permission::ChangePhone,
            &[
                ("phone", "+31207948261"),
                ("phone_extension", ""),
                ("backup_phone", ""),
                ("mobile_phone", ""),
            ],
        ),
        (
            "method",
            Permission::ChangeMethod,
            &[("method", "oath_token:oath_pin")],
        ),
        (
            "token-add",
            Permission::ManageOathTokens,
            &[
                ("secret", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"),
                ("kind", "hotp"),
                ("label", "fob"),
            ],
        ),
        ("delete", Permission::DeleteUsers, &[("confirm", "TARGET")]),
    ];
    for (i, (action, permission, fields)) in cases.iter().enumerate() {
        let target = format!("target{i}");
        p.user(&target).await;
        let fields: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (*k, if *v == "TARGET" { target.as_str() } else { *v }))
            .collect();
        let before = p.engine.get_user(&Ctx::cli(), &target).await.unwrap();
        let events_before = p.audit_results(&target).await.len();

        // Every permission but this one: no form for it, and a crafted
        // POST is refused and changes nothing.
        let without = format!("without{i}");
        let mut b = signed_in(&p, &without, &[]).await;
        grant(
            &p,
            &without,
            Permission::ALL
                .into_iter()
                .filter(|q| q != permission)
                .collect(),
            Scope::All,
        )
        .await;
        assert_eq!(enter(&mut b).await, 200);
        b.open(&format!("/admin/users/{target}")).await;
        assert!(
            !b.has(&format!("/admin/users/{target}/{action}\"")),
            "{action}: the form is offered without {permission:?}"
        );
        let page = act(&mut b, &target, action, &fields).await;
        assert!(page.contains("You may not do this"), "{action}: {page}");
        let after = p.engine.get_user(&Ctx::cli(), &target).await.unwrap();
        assert_eq!(after.version, before.version, "{action} changed the user");
        let refused = p.audit_results(&target).await;
        assert!(
            refused.len() > events_before && refused.iter().any(|r| r == "FAILED_NOT_ALLOWED"),
            "{action}: {refused:?}"
        );

        // This permission alone: the form is there and the action is done.
        let with = format!("with{i}");
        let mut b = signed_in(&p, &with, &[]).await;
        grant(&p, &with, [*permission].into_iter().collect(), Scope::All).await;
        assert_eq!(enter(&mut b).await, 200);
        b.open(&format!("/admin/users/{target}")).await;
        assert!(
            b.has(&format!("/admin/users/{target}/{action}\"")),
            "{action}: no form with {permission:?}: {}",
            b.page
        );
        let page = act(&mut b, &target, action, &fields).await;
        assert!(!page.contains("class=\"error\""), "{action}: {page}");
        let results = p.audit_results(&target).await;
        let expected = match *action {
            "disable" => "SUCCESS_USER_DISABLED",
            "unblock" => "SUCCESS_USER_UNLOCKED",
            "pin" => "SUCCESS_PIN_CHANGED",
            "reset-answers" => "SUCCESS_ANSWERS_CHANGED",
            "bypass" => "SUCCESS_BYPASS_STARTED",
            "edit" | "phones" | "method" => "SUCCESS_USER_UPDATED",
            "token-add" => "SUCCESS_TOKEN_ADDED",
            "delete" => "SUCCESS_USER_DELETED",
            other => panic!("{other}"),
        };
        assert!(
            results.iter().any(|r| r == expected),
            "{action}: {results:?}"
        );
        let events = p
            .engine
            .audit_events(
                &Ctx::cli(),
                twofold_core::audit::AuditQuery {
                    limit: 500,
                    subject: Some(target.clone()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert!(
            events
                .iter()
                .any(|e| e.actor == format!("admin:{with}") && e.result.as_str() == expected),
            "{action}: audited as the administrator"
        );
    }
}

async fn a_group_administrator_stays_in_their_group(backend: Backend) {
    let p = Portal::start(backend).await;
    for (name, group) in [("jan", "Sales"), ("piet", "Ops")] {
        let u = p.user(name).await;
        p.engine
            .update_user(
                &Ctx::cli(),
                &u.username,
                twofold_core::user::UserPatch {
                    groups: Some(vec![group.into()]),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }
    let mut b = signed_in(&p, "sales-lead", &["Sales"]).await;
    let perms: Permissions = Permission::ALL
        .into_iter()
        .filter(|q| {
            !matches!(
                q,
                Permission::ManageSettings
                    | Permission::ManageAdministrators
                    | Permission::ManageServiceAccounts
            )
        })
        .collect();
    grant(&p, "sales-lead", perms, Scope::Group("Sales".into())).await;
    assert_eq!(enter(&mut b).await, 200);

    // Search: only the group.
    b.open("/admin/users?q=*").await;
    assert!(b.has(">jan</a>") && !b.has(">piet</a>"), "{}", b.page);
    // Direct URL: as if piet did not exist.
    let (status, _) = status_of(&b, "/admin/users/piet").await;
    assert_eq!(status, 303);
    b.open("/admin/users").await;
    assert!(b.has("No such user"), "{}", b.page);
    // Crafted POST: refused, piet unchanged.
    let csrf = common::field_value(&b.page, "csrf").unwrap();
    let posted = b
        .post_raw("/admin/users/piet/disable", &[("csrf", &csrf)])
        .await;
    assert_eq!(posted.status, 303);
    assert!(
        p.engine
            .get_user(&Ctx::cli(), "piet")
            .await
            .unwrap()
            .enabled
    );
    // Inside the group, it works.
    let page = act(&mut b, "jan", "disable", &[]).await;
    assert!(page.contains("The user is disabled"), "{page}");
    assert!(!p.engine.get_user(&Ctx::cli(), "jan").await.unwrap().enabled);
    // A form without its token changes nothing.
    let posted = b.post_raw("/admin/users/jan/enable", &[]).await;
    assert_eq!(posted.refusal.as_deref(), Some("csrf"));
    assert!(!p.engine.get_user(&Ctx::cli(), "jan").await.unwrap().enabled);

    // The audit log: one user of the group at a time, nobody outside it.
    b.open("/admin/audit?user=jan").await;
    assert!(
        b.has("SUCCESS_USER_DISABLED") && b.has("admin:sales-lead"),
        "{}",
        b.page
    );
    b.open("/admin/audit?user=piet").await;
    assert!(
        b.has("You may not do this") && !b.has("SUCCESS_USER_CREATED"),
        "{}",
        b.page
    );
    b.open("/admin/audit").await;
    assert!(b.has("You may not do this"), "{}", b.page);
}

async fn users_are_found_and_added(backend: Backend) {
    let p = Portal::start(backend).await;
    for name in ["anna", "annabel", "bert"] {
        p.user(name).await;
    }
    let mut b = signed_in(&p, "helen", &[]).await;
    grant(&p, "helen", Permissions::all(), Scope::All).await;
    assert_eq!(enter(&mut b).await, 200);
    b.open("/admin/users?q=ann*").await;
    assert!(
        b.has(">anna</a>") && b.has(">annabel</a>") && !b.has(">bert</a>"),
        "{}",
        b.page
    );
    b.open("/admin/users?q=anna").await;
    assert!(b.has(">anna</a>") && !b.has(">annabel</a>"), "{}", b.page);
    // By name, e-mail or phone, and by status.
    p.engine
        .update_user(
            &Ctx::cli(),
            "bert",
            twofold_core::user::UserPatch {
                display_name: Some("Bert Jansen".into()),
                phone: Some("+31207948261".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    p.engine
        .set_user_enabled(&Ctx::cli(), "annabel", false)
        .await
        .unwrap();
    b.open("/admin/users?text=jansen").await;
    assert!(b.has(">bert</a>") && !b.has(">anna</a>"), "{}", b.page);
    b.open("/admin/users?text=020%20794%208261").await;
    assert!(
        !b.has(">bert</a>"),
        "the national form has a 0 the stored number lacks"
    );
    b.open("/admin/users?text=794%208261").await;
    assert!(b.has(">bert</a>"), "{}", b.page);
    b.open("/admin/users?status=disabled").await;
    assert!(b.has(">annabel</a>") && !b.has(">anna</a>"), "{}", b.page);
    b.open("/admin/users?q=ann*&status=enabled").await;
    assert!(b.has(">anna</a>") && !b.has(">annabel</a>"), "{}", b.page);

    // A refused new user keeps what was typed, with the rule that failed.
    b.open("/admin/users/new").await;
    let csrf = common::field_value(&b.page, "csrf").unwrap();
    let posted = b
        .post_raw(
            "/admin/users/new",
            &[
                ("csrf", &csrf),
                ("username", "bad name\u{7}"),
                ("display_name", "Bad Name"),
                ("email", "bad@example.com"),
            ],
        )
        .await;
    assert_eq!(posted.location, "/admin/users/new");
    b.open("/admin/users/new").await;
    assert!(b.has("Not saved: username"), "{}", b.page);
    assert!(b.has("value=\"Bad Name\""), "{}", b.page);
    let csrf = common::field_value(&b.page, "csrf").unwrap();
    let posted = b
        .post_raw(
            "/admin/users/new",
            &[
                ("csrf", &csrf),
                ("username", "carla"),
                ("display_name", "Carla Jansen"),
                ("email", "carla@example.com"),
                ("groups", "Sales, VPN"),
                ("language", "nl"),
                ("phone", "+31 20 794 8261"),
                ("phone_extension", "42"),
                ("mobile_phone", "+31 6 12345678"),
                ("method", "oath_token:oath_pin"),
            ],
        )
        .await;
    assert_eq!(posted.location, "/admin/users/carla");
    let carla = p.engine.get_user(&Ctx::cli(), "carla").await.unwrap();
    assert_eq!(carla.groups, vec!["Sales", "VPN"]);
    assert_eq!(carla.language.as_deref(), Some("nl"));
    assert_eq!(carla.phone.as_deref(), Some("+31207948261"));
    assert_eq!(carla.phone_extension.as_deref(), Some("42"));
    assert_eq!(
        carla.default_method.map(|m| m.to_string()).as_deref(),
        Some("oath_token:oath_pin")
    );
    // Dutch for a Dutch administrator.
    p.engine
        .update_user(
            &Ctx::cli(),
            "helen",
            twofold_core::user::UserPatch {
                language: Some("nl".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    b.open("/admin/users").await;
    assert!(b.has("<h1>Gebruikers</h1>"), "{}", b.page);
}

async fn settings_change_one_at_a_time_and_keep_secrets(backend: Backend) {
    let p = Portal::start(backend).await;
    // Someone without "manage settings" gets no link and no change.
    let mut viewer = signed_in(&p, "viewer", &[]).await;
    grant(
        &p,
        "viewer",
        [Permission::ViewAuditLog].into_iter().collect(),
        Scope::All,
    )
    .await;
    assert_eq!(enter(&mut viewer).await, 200);
    assert!(!viewer.has("/admin/settings\""), "{}", viewer.page);
    viewer.open("/admin/settings").await;
    let csrf = common::field_value(&viewer.page, "csrf").unwrap();
    viewer
        .post_raw(
            "/admin/settings/portal.allow_bypass",
            &[("csrf", &csrf), ("value", "true")],
        )
        .await;
    assert!(
        !p.engine
            .settings(&Ctx::cli())
            .await
            .unwrap()
            .portal
            .allow_bypass
    );

    let mut b = signed_in(&p, "helen", &[]).await;
    grant(&p, "helen", Permissions::all(), Scope::All).await;
    assert_eq!(enter(&mut b).await, 200);
    b.open("/admin/settings").await;
    assert!(
        b.has("portal.allow_bypass") && b.has("passed_sessions.rules"),
        "every key is there"
    );
    assert!(
        !b.has("Confirm it is you"),
        "a second step just now is fresh"
    );
    let csrf = common::field_value(&b.page, "csrf").unwrap();

    // A valid change applies at once.
    let posted = b
        .post_raw(
            "/admin/settings/portal.allow_bypass",
            &[("csrf", &csrf), ("value", "true")],
        )
        .await;
    assert_eq!(posted.location, "/admin/settings#portal-allow_bypass");
    assert!(
        p.engine
            .settings(&Ctx::cli())
            .await
            .unwrap()
            .portal
            .allow_bypass
    );
    let events = p
        .engine
        .audit_events(
            &Ctx::cli(),
            twofold_core::audit::AuditQuery {
                limit: 50,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        events.iter().any(|e| e.event == "settings.set"
            && e.actor == "admin:helen"
            && e.detail.as_deref() == Some("portal.allow_bypass=true (was false)")),
        "{events:?}"
    );

    // An invalid one: the rule next to the field, the typed value kept,
    // nothing changed.
    b.post_raw(
        "/admin/settings/portal.bypass_default_seconds",
        &[("csrf", &csrf), ("value", "0")],
    )
    .await;
    b.open("/admin/settings").await;
    assert!(b.has("out of range"), "{}", b.page);
    assert!(b.has("aria-invalid=\"true\""), "{}", b.page);
    assert_eq!(
        p.engine
            .settings(&Ctx::cli())
            .await
            .unwrap()
            .portal
            .bypass_default_seconds,
        300
    );

    // A secret is written, never shown back.
    let csrf = common::field_value(&b.page, "csrf").unwrap();
    b.post_raw(
        "/admin/settings/sms_gateway.authorization",
        &[("csrf", &csrf), ("value", "Bearer s3cr3t-value")],
    )
    .await;
    b.open("/admin/settings").await;
    assert!(!b.has("s3cr3t-value"), "the secret came back");
    assert!(b.has("write-only"), "{}", b.page);
    assert_eq!(
        p.engine
            .settings(&Ctx::cli())
            .await
            .unwrap()
            .sms_gateway
            .authorization
            .reveal(),
        "Bearer s3cr3t-value"
    );

    // Re-authentication: the portal's sign-in once more, then back here
    // with the admin session kept.
    let csrf = common::field_value(&b.page, "csrf").unwrap();
    let posted = b.post_raw("/admin/reauth", &[("csrf", &csrf)]).await;
    assert_eq!(posted.location, "/portal");
    p.advance(30);
    b.sign_in("helen", PASSWORD).await;
    let code = p.totp(SECRET, 0);
    let posted = b
        .post("/portal/verify", &[("proof", "method"), ("code", &code)])
        .await;
    assert_eq!(posted.location, "/portal");
    let res = b
        .client
        .get(format!("{}/portal", b.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["location"], "/admin");
    assert_eq!(status_of(&b, "/admin").await.0, 200);
}

async fn administrators_are_granted_and_revoked_on_the_page(backend: Backend) {
    let p = Portal::start(backend).await;
    p.user("piet").await;
    let mut b = signed_in(&p, "helen", &[]).await;
    grant(&p, "helen", Permissions::all(), Scope::All).await;
    assert_eq!(enter(&mut b).await, 200);
    b.open("/admin/administrators").await;
    let csrf = common::field_value(&b.page, "csrf").unwrap();
    let posted = b
        .post_raw(
            "/admin/administrators",
            &[
                ("csrf", &csrf),
                ("username", "piet"),
                ("perm-reset_pin", "on"),
                ("perm-unblock", "on"),
                ("scope", "group"),
                ("group", "Sales"),
            ],
        )
        .await;
    assert_eq!(posted.location, "/admin/administrators");
    let admins = p.engine.admins(&Ctx::cli()).await.unwrap();
    let piet = admins
        .iter()
        .find(|a| a.username == "piet")
        .expect("piet is an administrator");
    assert_eq!(
        piet.permissions,
        vec![Permission::ResetPin, Permission::Unblock]
    );
    assert_eq!(piet.scope_group.as_deref(), Some("Sales"));
    b.open("/admin/administrators").await;
    assert!(b.has("group:Sales"), "{}", b.page);

    // A delegated administrator of administrators cannot grant more than
    // they hold.
    let mut lead = signed_in(&p, "lead", &[]).await;
    grant(
        &p,
        "lead",
        [Permission::ManageAdministrators, Permission::ResetPin]
            .into_iter()
            .collect(),
        Scope::All,
    )
    .await;
    assert_eq!(enter(&mut lead).await, 200);
    lead.open("/admin/administrators").await;
    let csrf = common::field_value(&lead.page, "csrf").unwrap();
    lead.post_raw(
        "/admin/administrators",
        &[
            ("csrf", &csrf),
            ("username", "piet"),
            ("perm-delete_users", "on"),
            ("scope", "all"),
        ],
    )
    .await;
    lead.open("/admin/administrators").await;
    assert!(lead.has("You may not do this"), "{}", lead.page);
    let admins = p.engine.admins(&Ctx::cli()).await.unwrap();
    assert!(!admins
        .iter()
        .find(|a| a.username == "piet")
        .unwrap()
        .permissions
        .contains(&Permission::DeleteUsers));

    // Revoking.
    let csrf = common::field_value(&b.page, "csrf").unwrap();
    b.post_raw("/admin/administrators/piet/revoke", &[("csrf", &csrf)])
        .await;
    assert!(!p
        .engine
        .admins(&Ctx::cli())
        .await
        .unwrap()
        .iter()
        .any(|a| a.username == "piet"));
}

async fn upload(b: &Browser, file: &str, name: &str, key: (&str, &str), csrf: &str) -> String {
    let form = reqwest::multipart::Form::new()
        .text("csrf", csrf.to_string())
        .text("key_kind", key.0.to_string())
        .text("key", key.1.to_string())
        .part(
            "file",
            reqwest::multipart::Part::bytes(file.as_bytes().to_vec()).file_name(name.to_string()),
        );
    let res = b
        .client
        .post(format!("{}/admin/tokens/import", b.base))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    res.headers()["location"].to_str().unwrap().to_string()
}

async fn hardware_tokens_are_imported_and_given_out(backend: Backend) {
    let p = Portal::start(backend).await;
    p.user("jan").await;
    let pskc = include_str!("../../core/tests/pskc/rfc6030-figure6.pskcxml");
    let mut b = signed_in(&p, "helen", &[]).await;
    grant(&p, "helen", Permissions::all(), Scope::All).await;
    assert_eq!(enter(&mut b).await, 200);
    b.open("/admin/tokens").await;
    let csrf = common::field_value(&b.page, "csrf").unwrap();

    // A wrong key opens nothing and imports nothing.
    upload(
        &b,
        pskc,
        "vendor.pskcxml",
        ("hex", "00112233445566778899aabbccddeeff"),
        &csrf,
    )
    .await;
    b.open("/admin/tokens").await;
    assert!(b.has("does not open this file"), "{}", b.page);
    assert!(b.has("No tokens in the inventory"), "{}", b.page);
    // Without the form's token: refused.
    upload(
        &b,
        pskc,
        "vendor.pskcxml",
        ("hex", "12345678901234567890123456789012"),
        "wrong",
    )
    .await;
    assert!(p
        .engine
        .inventory(&Ctx::cli(), None, 10)
        .await
        .unwrap()
        .is_empty());
    // The right key.
    b.open("/admin/tokens").await;
    let csrf = common::field_value(&b.page, "csrf").unwrap();
    upload(
        &b,
        pskc,
        "vendor.pskcxml",
        ("hex", "12345678901234567890123456789012"),
        &csrf,
    )
    .await;
    b.open("/admin/tokens").await;
    assert!(b.has("Imported: 1") && b.has("987654321"), "{}", b.page);
    // A CSV with a bad line: reported by line, the good one imported.
    let csv = "serial,secret,manufacturer,model,time interval\nCSV-1,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,Feitian,c200,30\nCSV-2,not base32!,Feitian,c200,30\n";
    let csrf = common::field_value(&b.page, "csrf").unwrap();
    upload(&b, csv, "tokens.csv", ("none", ""), &csrf).await;
    b.open("/admin/tokens").await;
    assert!(b.has("Imported: 1") && b.has("line 3"), "{}", b.page);

    // Given to jan by serial.
    let csrf = common::field_value(&b.page, "csrf").unwrap();
    let posted = b
        .post_raw(
            "/admin/tokens/assign",
            &[
                ("csrf", &csrf),
                ("serial", "987654321"),
                ("username", "jan"),
                ("label", ""),
            ],
        )
        .await;
    assert_eq!(posted.location, "/admin/tokens");
    let tokens = p.engine.tokens(&Ctx::cli(), "jan").await.unwrap();
    assert_eq!(tokens.len(), 1);
    let left = p.engine.inventory(&Ctx::cli(), None, 10).await.unwrap();
    assert_eq!(
        left.iter().map(|t| t.serial.as_str()).collect::<Vec<_>>(),
        vec!["CSV-1"]
    );
}

async fn security_questions_per_language(backend: Backend) {
    let p = Portal::start(backend).await;
    let mut b = signed_in(&p, "helen", &[]).await;
    grant(&p, "helen", Permissions::all(), Scope::All).await;
    assert_eq!(enter(&mut b).await, 200);
    b.open("/admin/questions?lang=nl").await;
    let csrf = common::field_value(&b.page, "csrf").unwrap();
    let posted = b
        .post_raw(
            "/admin/questions",
            &[
                ("csrf", &csrf),
                ("lang", "nl"),
                ("text", "Wat was de naam van uw eerste huisdier?"),
            ],
        )
        .await;
    assert_eq!(posted.location, "/admin/questions?lang=nl");
    let nl = p.engine.questions(&Ctx::cli(), Some("nl")).await.unwrap();
    assert_eq!(nl.len(), 1);
    assert!(p
        .engine
        .questions(&Ctx::cli(), Some("en"))
        .await
        .unwrap()
        .is_empty());
    b.open("/admin/questions?lang=nl").await;
    assert!(b.has("eerste huisdier"), "{}", b.page);

    // Without "manage settings": no form, and a crafted POST changes nothing.
    let mut viewer = signed_in(&p, "viewer", &[]).await;
    grant(
        &p,
        "viewer",
        [Permission::ResetPin].into_iter().collect(),
        Scope::All,
    )
    .await;
    assert_eq!(enter(&mut viewer).await, 200);
    viewer.open("/admin/questions?lang=nl").await;
    assert!(
        !viewer.has("action=\"/admin/questions\""),
        "{}",
        viewer.page
    );
    let csrf = common::field_value(&viewer.page, "csrf").unwrap();
    let id = nl[0].id.to_string();
    viewer
        .post_raw(
            &format!("/admin/questions/{id}/delete"),
            &[("csrf", &csrf), ("lang", "nl")],
        )
        .await;
    assert_eq!(
        p.engine
            .questions(&Ctx::cli(), Some("nl"))
            .await
            .unwrap()
            .len(),
        1
    );

    // Order: a second question, moved above the first.
    let csrf = common::field_value(&b.page, "csrf").unwrap();
    b.post_raw(
        "/admin/questions",
        &[
            ("csrf", &csrf),
            ("lang", "nl"),
            ("text", "In welke stad bent u geboren?"),
        ],
    )
    .await;
    let second = p.engine.questions(&Ctx::cli(), Some("nl")).await.unwrap()[1].id;
    b.post_raw(
        &format!("/admin/questions/{second}/move"),
        &[("csrf", &csrf), ("lang", "nl"), ("dir", "up")],
    )
    .await;
    let order: Vec<i64> = p
        .engine
        .questions(&Ctx::cli(), Some("nl"))
        .await
        .unwrap()
        .iter()
        .map(|q| q.id)
        .collect();
    assert_eq!(order, vec![second, nl[0].id]);
    b.post_raw(
        &format!("/admin/questions/{second}/delete"),
        &[("csrf", &csrf), ("lang", "nl")],
    )
    .await;
    let csrf = common::field_value(&b.page, "csrf").unwrap();
    b.post_raw(
        &format!("/admin/questions/{id}/delete"),
        &[("csrf", &csrf), ("lang", "nl")],
    )
    .await;
    assert!(p
        .engine
        .questions(&Ctx::cli(), Some("nl"))
        .await
        .unwrap()
        .is_empty());
}

async fn get_text(b: &Browser, path: &str) -> (u16, String, String) {
    let res = b
        .client
        .get(format!("{}{path}", b.base))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let kind = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, kind, res.text().await.unwrap())
}

/// The number in `attr="N"` of the SVG's root.
fn svg_total(svg: &str) -> u64 {
    let at = svg.find("data-total=\"").expect("data-total") + 12;
    svg[at..at + svg[at..].find('"').unwrap()].parse().unwrap()
}

async fn reports_chart_and_export_the_same_rows(backend: Backend) {
    let p = Portal::start(backend).await;
    p.user("jan").await; // no method yet: not enrolled
    let mut b = signed_in(&p, "helen", &[]).await;
    grant(&p, "helen", Permissions::all(), Scope::All).await;
    // A wrong password: a failure in the activity.
    let mut other = p.browser();
    other.sign_in("jan", "wrong password").await;
    assert_eq!(enter(&mut b).await, 200);

    let (status, _, page) = get_text(&b, "/admin/reports/activity").await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("primary.password") && page.contains("FAILED_PASSWORD_WRONG"),
        "{page}"
    );
    let (status, kind, svg) = get_text(&b, "/admin/reports/activity.svg?days=7&bucket=day").await;
    assert_eq!(
        (status, kind.as_str()),
        (200, "image/svg+xml; charset=utf-8")
    );
    assert!(
        svg.starts_with("<svg") && !svg.contains("<script") && !svg.contains("style="),
        "{svg}"
    );
    let (status, kind, csv) = get_text(&b, "/admin/reports/activity.csv?days=7&bucket=day").await;
    assert_eq!((status, kind.as_str()), (200, "text/csv; charset=utf-8"));
    // The chart's total is the export's sum, which is the table's.
    let sum: u64 = csv
        .lines()
        .skip(1)
        .map(|l| l.rsplit(',').next().unwrap().trim().parse::<u64>().unwrap())
        .sum();
    assert!(sum >= 3, "{csv}");
    assert_eq!(svg_total(&svg), sum, "{svg}\n{csv}");

    // Users not enrolled: jan, in the page and the export.
    let (_, _, page) = get_text(&b, "/admin/reports/unenrolled").await;
    assert!(page.contains("<td>jan</td>"), "{page}");
    let (_, _, csv) = get_text(&b, "/admin/reports/unenrolled.csv").await;
    assert!(csv.lines().any(|l| l.starts_with("jan,")), "{csv}");

    // A group-scoped auditor may not see everyone's activity.
    let mut lead = signed_in(&p, "lead", &["Sales"]).await;
    grant(
        &p,
        "lead",
        [Permission::ViewAuditLog].into_iter().collect(),
        Scope::Group("Sales".into()),
    )
    .await;
    assert_eq!(enter(&mut lead).await, 200);
    let (status, _, _) = get_text(&lead, "/admin/reports/activity.svg").await;
    assert_eq!(status, 403);
    let (_, _, page) = get_text(&lead, "/admin/reports/activity").await;
    assert!(page.contains("You may not do this"), "{page}");
    // And someone without the permission gets nothing at all.
    let mut pin_only = signed_in(&p, "pinner", &[]).await;
    grant(
        &p,
        "pinner",
        [Permission::ResetPin].into_iter().collect(),
        Scope::All,
    )
    .await;
    assert_eq!(enter(&mut pin_only).await, 200);
    assert_eq!(
        get_text(&pin_only, "/admin/reports/unenrolled.csv").await.0,
        403
    );
}

async fn service_accounts_on_the_page(backend: Backend) {
    let p = Portal::start(backend).await;
    let mut b = signed_in(&p, "helen", &[]).await;
    grant(&p, "helen", Permissions::all(), Scope::All).await;
    assert_eq!(enter(&mut b).await, 200);
    b.open("/admin/service-accounts").await;
    let csrf = common::field_value(&b.page, "csrf").unwrap();
    let posted = b
        .post_raw(
            "/admin/service-accounts",
            &[
                ("csrf", &csrf),
                ("name", "helpdesk-tool"),
                ("role", "admin"),
                ("perm-reset_pin", "on"),
                ("scope", "group"),
                ("group", "Sales"),
            ],
        )
        .await;
    assert_eq!(posted.location, "/admin/service-accounts");
    b.open("/admin/service-accounts").await;
    // The secret is shown once, then never again.
    let notice = b.notice().expect("the new secret");
    let secret = notice.rsplit(" — ").next().unwrap().trim().to_string();
    assert!(secret.len() >= 20, "{notice}");
    assert!(
        b.has("helpdesk-tool") && b.has("group:Sales") && b.has("never"),
        "{}",
        b.page
    );
    b.open("/admin/service-accounts").await;
    assert!(!b.has(&secret));
    let accounts = p.engine.service_accounts(&Ctx::cli()).await.unwrap();
    let acc = accounts.iter().find(|a| a.name == "helpdesk-tool").unwrap();
    assert_eq!(acc.permissions, vec![Permission::ResetPin]);
    // Rotate and delete.
    let csrf = common::field_value(&b.page, "csrf").unwrap();
    b.post_raw(
        "/admin/service-accounts/helpdesk-tool/rotate",
        &[("csrf", &csrf)],
    )
    .await;
    b.open("/admin/service-accounts").await;
    assert!(
        b.notice().is_some_and(|n| !n.contains(&secret)),
        "{}",
        b.page
    );
    let csrf = common::field_value(&b.page, "csrf").unwrap();
    b.post_raw(
        "/admin/service-accounts/helpdesk-tool/delete",
        &[("csrf", &csrf)],
    )
    .await;
    assert!(p
        .engine
        .service_accounts(&Ctx::cli())
        .await
        .unwrap()
        .iter()
        .all(|a| a.name != "helpdesk-tool"));
}

/// The pages about everyone: without their permission, no link in the
/// header, and a crafted POST changes nothing.
async fn global_pages_need_their_permission(backend: Backend) {
    let p = Portal::start(backend).await;
    p.user("jan").await;
    let mut b = signed_in(&p, "helpdesk", &[]).await;
    let only: Permissions = [Permission::ResetPin, Permission::Unblock]
        .into_iter()
        .collect();
    grant(&p, "helpdesk", only, Scope::All).await;
    assert_eq!(enter(&mut b).await, 200);
    b.open("/admin").await;
    for link in [
        "/admin/users/new\"",
        "/admin/settings\"",
        "/admin/administrators\"",
        "/admin/service-accounts\"",
        "/admin/tokens\"",
        "/admin/audit\"",
        "/admin/reports/activity\"",
    ] {
        assert!(!b.has(link), "{link} offered: {}", b.page);
    }
    let csrf = common::field_value(&b.page, "csrf").unwrap();
    for (path, form) in [
        ("/admin/users/new", vec![("username", "mallory")]),
        (
            "/admin/settings/portal.allow_bypass",
            vec![("value", "true")],
        ),
        (
            "/admin/administrators",
            vec![
                ("username", "helpdesk"),
                ("perm-delete_users", "on"),
                ("scope", "all"),
            ],
        ),
        (
            "/admin/service-accounts",
            vec![("name", "backdoor"), ("role", "validate")],
        ),
        (
            "/admin/tokens/assign",
            vec![("serial", "X"), ("username", "jan")],
        ),
        (
            "/admin/questions",
            vec![("lang", "en"), ("text", "Favourite colour?")],
        ),
    ] {
        let mut f: Vec<(&str, &str)> = vec![("csrf", &csrf)];
        f.extend(form);
        let posted = b.post_raw(path, &f).await;
        assert_eq!(posted.status, 303, "{path}");
    }
    let cli = Ctx::cli();
    assert!(p.engine.get_user(&cli, "mallory").await.is_err());
    assert!(!p.engine.settings(&cli).await.unwrap().portal.allow_bypass);
    let me = p.engine.admins(&cli).await.unwrap();
    assert!(!me
        .iter()
        .find(|a| a.username == "helpdesk")
        .unwrap()
        .permissions
        .contains(&Permission::DeleteUsers));
    assert!(p.engine.service_accounts(&cli).await.unwrap().is_empty());
    assert!(p
        .engine
        .questions(&cli, Some("en"))
        .await
        .unwrap()
        .is_empty());
    let refusals = p
        .engine
        .audit_events(
            &cli,
            twofold_core::audit::AuditQuery {
                limit: 200,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.actor == "admin:helpdesk" && e.result.as_str() == "FAILED_NOT_ALLOWED")
        .count();
    assert!(refusals >= 5, "each refusal is audited: {refusals}");
    // Reading the settings page at all needs some administrative right,
    // which a helpdesk administrator has; changing needs "manage settings".
    b.open("/admin/settings").await;
    assert!(
        !b.has("<button type=\"submit\" class=\"plain\">Save</button>"),
        "{}",
        b.page
    );
}
