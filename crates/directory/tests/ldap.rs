//! The LDAP adapter against a real OpenLDAP slapd (`twofold_testkit::slapd`).
//! Each test starts its own slapd; without slapd installed they fail.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use twofold_core::ports::{Directory, DirectoryEntry, PasswordCheck};
use twofold_core::settings::PrimaryAuth;
use twofold_core::Error;
use twofold_directory::{LdapConfig, LdapDirectory, Preset};
use twofold_testkit::slapd::{
    self, Slapd, SlapdOptions, ALICE_PASSWORD, BASE_DN, BOB_PASSWORD, CAROL_PASSWORD,
    DAVE_PASSWORD, DOMAIN, SERVICE_DN, SERVICE_PASSWORD,
};
use zeroize::Zeroizing;

const TIMEOUT: Duration = Duration::from_secs(2);

fn config(slapd: &Slapd, preset: Preset) -> LdapConfig {
    LdapConfig {
        url: slapd.url(),
        starttls: false,
        ca_file: None,
        bind_dn: SERVICE_DN.to_string(),
        bind_password: Zeroizing::new(SERVICE_PASSWORD.to_string()),
        base_dn: BASE_DN.to_string(),
        preset,
        user_filter: None,
        group_attribute: None,
        timeout: TIMEOUT,
        pool_size: 2,
    }
}

fn directory(slapd: &Slapd, preset: Preset) -> LdapDirectory {
    LdapDirectory::new(config(slapd, preset)).expect("valid LDAP configuration")
}

fn groups(check: &PasswordCheck) -> Vec<String> {
    match check {
        PasswordCheck::Accepted {
            groups: Some(groups),
        } => {
            let mut groups = groups.clone();
            groups.sort();
            groups
        }
        other => panic!("expected Accepted with groups, got {other:?}"),
    }
}

fn assert_unavailable<T: std::fmt::Debug>(result: twofold_core::Result<T>, needle: &str) -> String {
    match result {
        Err(Error::Unavailable(message)) => {
            assert!(
                message.contains(needle),
                "message {message:?} should mention {needle:?}"
            );
            message
        }
        other => panic!("expected Unavailable ({needle}), got {other:?}"),
    }
}

fn invalid_field<T: std::fmt::Debug>(result: twofold_core::Result<T>) -> (String, String) {
    match result {
        Err(Error::InvalidInput { field, message }) => (field, message),
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

async fn check(dir: &LdapDirectory, user: &str, password: &str) -> PasswordCheck {
    dir.check_password(user, None, password.to_string())
        .await
        .unwrap_or_else(|e| panic!("check_password({user:?}): {e}"))
}

#[tokio::test]
async fn right_password_is_accepted_with_the_groups() {
    let slapd = Slapd::with_people(SlapdOptions::default());
    for preset in [Preset::ActiveDirectory, Preset::OpenLdap] {
        let dir = directory(&slapd, preset);
        assert_eq!(dir.kind(), PrimaryAuth::Ldap);
        assert_eq!(
            groups(&check(&dir, "alice", ALICE_PASSWORD).await),
            ["vpn-users"]
        );
        assert_eq!(
            groups(&check(&dir, "bob", BOB_PASSWORD).await),
            ["twofold-admins", "vpn-users"]
        );
        assert!(groups(&check(&dir, "carol", CAROL_PASSWORD).await).is_empty());
        // The pooled connections stay the service account's: a search after
        // a person's bind still sees everyone.
        assert_eq!(
            dir.search(None, None).await.unwrap().len(),
            3 + usize::from(preset == Preset::OpenLdap)
        );
        dir.probe().await.expect("probe");
    }
}

#[tokio::test]
async fn wrong_empty_and_nul_passwords_are_rejected() {
    let slapd = Slapd::with_people(SlapdOptions::default());
    let dir = directory(&slapd, Preset::ActiveDirectory);
    for password in ["wrong", "", "alice-password\0", "\0", "ALICE-PASSWORD"] {
        assert_eq!(
            check(&dir, "alice", password).await,
            PasswordCheck::Rejected,
            "password {password:?}"
        );
    }
    // Another person's password opens nothing either.
    assert_eq!(
        check(&dir, "alice", BOB_PASSWORD).await,
        PasswordCheck::Rejected
    );
}

#[tokio::test]
async fn unknown_people_are_rejected_and_not_resolved() {
    let slapd = Slapd::with_people(SlapdOptions::default());
    for preset in [Preset::ActiveDirectory, Preset::OpenLdap] {
        let dir = directory(&slapd, preset);
        assert_eq!(dir.resolve("mallory").await.unwrap(), None);
        assert_eq!(dir.resolve("").await.unwrap(), None);
        assert_eq!(dir.resolve("   ").await.unwrap(), None);
        assert_eq!(dir.lookup("mallory").await.unwrap(), None);
        assert_eq!(
            check(&dir, "mallory", "whatever").await,
            PasswordCheck::Rejected
        );
        // The service account is no person.
        assert_eq!(dir.resolve("twofold").await.unwrap(), None);
        assert_eq!(
            check(&dir, "twofold", SERVICE_PASSWORD).await,
            PasswordCheck::Rejected
        );
    }
}

#[tokio::test]
async fn active_directory_sign_in_names() {
    let slapd = Slapd::with_people(SlapdOptions::default());
    let dir = directory(&slapd, Preset::ActiveDirectory);
    for login in [
        "alice".to_string(),
        "ALICE".to_string(),
        " alice ".to_string(),
        format!("{DOMAIN}\\alice"),
        "example\\alice".to_string(),
        "alice@example.org".to_string(),
        "Alice@Example.org".to_string(),
    ] {
        assert_eq!(
            dir.resolve(&login).await.unwrap().as_deref(),
            Some("alice"),
            "login {login:?}"
        );
    }
    assert_eq!(dir.resolve("EXAMPLE\\").await.unwrap(), None);
    assert_eq!(dir.resolve("\\").await.unwrap(), None);
    assert_eq!(dir.resolve("bob@example.com").await.unwrap(), None);
    // OpenLDAP-only people (no sAMAccountName) are not Active Directory users.
    assert_eq!(dir.resolve("dave").await.unwrap(), None);
    assert!(check(&dir, &format!("{DOMAIN}\\alice"), ALICE_PASSWORD)
        .await
        .accepted());
    assert!(check(&dir, "alice@example.org", ALICE_PASSWORD)
        .await
        .accepted());
}

#[tokio::test]
async fn openldap_preset_uses_uid_and_group_search() {
    let slapd = Slapd::with_people(SlapdOptions::default());
    let dir = directory(&slapd, Preset::OpenLdap);
    assert_eq!(
        dir.resolve("alice").await.unwrap().as_deref(),
        Some("alice")
    );
    assert_eq!(dir.resolve("dave").await.unwrap().as_deref(), Some("dave"));
    // No userPrincipalName or DOMAIN\ forms here.
    assert_eq!(dir.resolve("alice@example.org").await.unwrap(), None);
    assert_eq!(dir.resolve("EXAMPLE\\alice").await.unwrap(), None);
    // dave has no memberOf: his groups come from a group search (memberUid).
    assert_eq!(
        groups(&check(&dir, "dave", DAVE_PASSWORD).await),
        ["legacy-users"]
    );
    let dave = dir.lookup("dave").await.unwrap().expect("dave");
    assert_eq!(dave.groups, ["legacy-users"]);
    assert_eq!(dave.display_name.as_deref(), Some("Dave Davis"));
    assert_eq!(dave.dn, "uid=dave,ou=people,dc=example,dc=org");
}

#[tokio::test]
async fn injection_attempts_find_nobody() {
    let slapd = Slapd::with_people(SlapdOptions::default());
    let hostile = [
        "*",
        "a*",
        "*alice*",
        ")(uid=*",
        "alice)(|(uid=*",
        "alice)(uid=*))(|(uid=*",
        "*)(objectClass=*",
        "\\",
        "\\2a",
        "alice\\",
        "\0",
        "alice\0",
        "alice\0)(uid=*",
        "EXAMPLE\\*",
        "*@example.org",
        "(uid=alice)",
    ];
    let mut filtered = config(&slapd, Preset::OpenLdap);
    filtered.user_filter = Some("(&(objectClass=inetOrgPerson)(uid={username}))".to_string());
    let dirs = [
        directory(&slapd, Preset::ActiveDirectory),
        directory(&slapd, Preset::OpenLdap),
        LdapDirectory::new(filtered).unwrap(),
    ];
    for dir in &dirs {
        for login in hostile {
            assert_eq!(dir.resolve(login).await.unwrap(), None, "resolve {login:?}");
            assert_eq!(dir.lookup(login).await.unwrap(), None, "lookup {login:?}");
            for password in [ALICE_PASSWORD, BOB_PASSWORD] {
                assert_eq!(
                    check(dir, login, password).await,
                    PasswordCheck::Rejected,
                    "check_password {login:?}"
                );
            }
        }
    }
}

#[tokio::test]
async fn an_ambiguous_sign_in_name_is_nobody() {
    let slapd = Slapd::with_people(SlapdOptions::default());
    slapd.add_ldif(
        "\
dn: uid=twin1,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
objectClass: twofoldADUser
uid: twin1
cn: Twin One
sn: One
sAMAccountName: twin
userPassword: twin-password

dn: uid=twin2,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
objectClass: twofoldADUser
uid: twin2
cn: Twin Two
sn: Two
sAMAccountName: twin2
userPrincipalName: twin
userPassword: twin-password
",
    );
    let dir = directory(&slapd, Preset::ActiveDirectory);
    assert_eq!(dir.resolve("twin").await.unwrap(), None);
    assert_eq!(dir.lookup("twin").await.unwrap(), None);
    assert_eq!(
        check(&dir, "twin", "twin-password").await,
        PasswordCheck::Rejected
    );
    // Unambiguous via DOMAIN\ (sAMAccountName only).
    assert_eq!(
        dir.resolve("EXAMPLE\\twin").await.unwrap().as_deref(),
        Some("twin")
    );
}

#[tokio::test]
async fn groups_follow_member_of() {
    let slapd = Slapd::with_people(SlapdOptions::default());
    let dir = directory(&slapd, Preset::ActiveDirectory);
    assert!(dir
        .lookup("carol")
        .await
        .unwrap()
        .unwrap()
        .groups
        .is_empty());
    slapd.modify_ldif(
        "\
dn: cn=twofold-admins,ou=groups,dc=example,dc=org
changetype: modify
add: member
member: uid=carol,ou=people,dc=example,dc=org
",
    );
    assert_eq!(
        dir.lookup("carol").await.unwrap().unwrap().groups,
        ["twofold-admins"]
    );
    assert_eq!(
        groups(&check(&dir, "carol", CAROL_PASSWORD).await),
        ["twofold-admins"]
    );
    // A custom group attribute: a person's `seeAlso` DNs.
    slapd.modify_ldif(
        "\
dn: uid=carol,ou=people,dc=example,dc=org
changetype: modify
add: seeAlso
seeAlso: cn=Smith\\2C Team,ou=groups,dc=example,dc=org
",
    );
    let mut custom = config(&slapd, Preset::ActiveDirectory);
    custom.group_attribute = Some("seeAlso".to_string());
    let dir = LdapDirectory::new(custom).unwrap();
    assert_eq!(
        dir.lookup("carol").await.unwrap().unwrap().groups,
        ["Smith, Team"]
    );
}

#[tokio::test]
async fn lookup_maps_the_attributes() {
    let slapd = Slapd::with_people(SlapdOptions::default());
    let dir = directory(&slapd, Preset::ActiveDirectory);
    let alice = dir.lookup("alice").await.unwrap().expect("alice");
    assert_eq!(
        alice,
        DirectoryEntry {
            username: "alice".to_string(),
            display_name: Some("Alice Adams".to_string()),
            email: Some("alice@example.org".to_string()),
            groups: vec!["vpn-users".to_string()],
            language: Some("nl".to_string()),
            phone: Some("+31 20 555 0101x204".to_string()),
            mobile_phone: Some("+31 6 12345678".to_string()),
            dn: "uid=alice,ou=people,dc=example,dc=org".to_string(),
        }
    );
    let carol = dir.lookup("CAROL").await.unwrap().expect("carol");
    assert_eq!(carol.username, "carol");
    // No displayName: cn.
    assert_eq!(carol.display_name.as_deref(), Some("Carol Clark"));
    assert_eq!(carol.phone, None);
    assert_eq!(carol.mobile_phone, None);
    assert_eq!(carol.language, None);
    let bob = dir.lookup("bob@example.org").await.unwrap().expect("bob");
    assert_eq!(bob.language.as_deref(), Some("en"));
    let mut bob_groups = bob.groups.clone();
    bob_groups.sort();
    assert_eq!(bob_groups, ["twofold-admins", "vpn-users"]);
}

fn names(people: &[DirectoryEntry]) -> Vec<&str> {
    people.iter().map(|p| p.username.as_str()).collect()
}

#[tokio::test]
async fn search_lists_people_by_filter_and_group() {
    let slapd = Slapd::with_people(SlapdOptions::default());
    let ad = directory(&slapd, Preset::ActiveDirectory);
    let open = directory(&slapd, Preset::OpenLdap);

    let all = ad.search(None, None).await.unwrap();
    assert_eq!(names(&all), ["alice", "bob", "carol"]);
    assert_eq!(all[0].phone.as_deref(), Some("+31 20 555 0101x204"));
    assert_eq!(
        names(&open.search(None, None).await.unwrap()),
        ["alice", "bob", "carol", "dave"]
    );

    // Filters, with and without their parentheses.
    for filter in [
        "(preferredLanguage=nl)",
        "preferredLanguage=nl",
        " (mail=alice@*) ",
    ] {
        assert_eq!(
            names(&ad.search(Some(filter), None).await.unwrap()),
            ["alice"],
            "{filter}"
        );
    }
    assert_eq!(
        names(
            &ad.search(Some("(|(uid=bob)(uid=carol))"), None)
                .await
                .unwrap()
        ),
        ["bob", "carol"]
    );
    assert!(ad
        .search(Some("(uid=nobody)"), None)
        .await
        .unwrap()
        .is_empty());

    // Groups: by name or DN, for both presets.
    for dir in [&ad, &open] {
        assert_eq!(
            names(&dir.search(None, Some("vpn-users")).await.unwrap()),
            ["alice", "bob"]
        );
        assert_eq!(
            names(&dir.search(None, Some("twofold-admins")).await.unwrap()),
            ["bob"]
        );
        assert_eq!(
            names(
                &dir.search(None, Some("cn=twofold-admins,ou=groups,dc=example,dc=org"))
                    .await
                    .unwrap()
            ),
            ["bob"]
        );
        assert_eq!(
            names(
                &dir.search(Some("(preferredLanguage=nl)"), Some("vpn-users"))
                    .await
                    .unwrap()
            ),
            ["alice"]
        );
        let (field, _) = invalid_field(dir.search(None, Some("no-such-group")).await);
        assert_eq!(field, "group");
    }
    // OpenLDAP without memberOf: the posixGroup's memberUid.
    let legacy = open.search(None, Some("legacy-users")).await.unwrap();
    assert_eq!(names(&legacy), ["dave"]);
    assert_eq!(legacy[0].groups, ["legacy-users"]);

    // Bad filters.
    for bad in [
        "(uid=alice",
        "(&(uid=a)",
        "uid=a)(",
        "((",
        "(uid=a))(|(x=y)",
    ] {
        let (field, message) = invalid_field(ad.search(Some(bad), None).await);
        assert_eq!(field, "filter", "{bad}: {message}");
    }
}

#[tokio::test]
async fn search_pages_through_many_entries() {
    let slapd = Slapd::with_people(SlapdOptions::default());
    let mut ldif = String::new();
    for i in 0..1200 {
        let _ = write!(
            ldif,
            "dn: uid=user{i:04},ou=people,dc=example,dc=org\nobjectClass: inetOrgPerson\n\
             uid: user{i:04}\ncn: User {i}\nsn: {i}\n\n"
        );
    }
    slapd.add_ldif(&ldif);
    let dir = directory(&slapd, Preset::OpenLdap);
    let people = dir.search(Some("(uid=user*)"), None).await.unwrap();
    assert_eq!(people.len(), 1200);
}

#[tokio::test]
async fn user_filter_replaces_the_preset_filter() {
    let slapd = Slapd::with_people(SlapdOptions::default());
    let mut cfg = config(&slapd, Preset::OpenLdap);
    cfg.user_filter = Some("(&(objectClass=inetOrgPerson)(mail={username}@example.org))".into());
    let dir = LdapDirectory::new(cfg).unwrap();
    assert_eq!(
        dir.resolve("alice").await.unwrap().as_deref(),
        Some("alice")
    );
    assert_eq!(dir.resolve("dave").await.unwrap(), None);
    assert!(check(&dir, "bob", BOB_PASSWORD).await.accepted());
    assert_eq!(
        names(&dir.search(None, None).await.unwrap()),
        ["alice", "bob", "carol"]
    );

    let mut cfg = config(&slapd, Preset::OpenLdap);
    cfg.user_filter = Some("(uid=alice)".into());
    let (field, message) = invalid_field(LdapDirectory::new(cfg));
    assert_eq!(field, "ldap.user_filter");
    assert!(message.contains("{username}"), "{message}");

    let mut cfg = config(&slapd, Preset::OpenLdap);
    cfg.user_filter = Some("(&(uid={username})".into());
    assert_eq!(invalid_field(LdapDirectory::new(cfg)).0, "ldap.user_filter");
}

#[tokio::test]
async fn starttls_and_ldaps_with_the_generated_ca() {
    let slapd = Slapd::with_people(SlapdOptions {
        tls: true,
        ldaps: true,
    });
    for (url, starttls) in [
        (slapd.url(), true),
        (slapd.localhost_url(), true),
        (slapd.ldaps_url(), false),
    ] {
        let mut cfg = config(&slapd, Preset::ActiveDirectory);
        cfg.url = url.clone();
        cfg.starttls = starttls;
        cfg.ca_file = Some(slapd.ca_file().to_path_buf());
        let dir = LdapDirectory::new(cfg).unwrap();
        assert!(
            check(&dir, "alice", ALICE_PASSWORD).await.accepted(),
            "{url}"
        );
        assert_eq!(check(&dir, "alice", "wrong").await, PasswordCheck::Rejected);
        dir.probe().await.expect("probe over TLS");
    }
}

#[tokio::test]
async fn a_wrong_ca_makes_the_directory_unavailable() {
    let slapd = Slapd::with_people(SlapdOptions {
        tls: true,
        ldaps: true,
    });
    let wrong = tempfile::tempdir().unwrap();
    let wrong_ca = wrong.path().join("wrong-ca.pem");
    std::fs::write(&wrong_ca, slapd::unrelated_ca_pem()).unwrap();
    for (url, starttls) in [(slapd.url(), true), (slapd.ldaps_url(), false)] {
        let mut cfg = config(&slapd, Preset::ActiveDirectory);
        cfg.url = url;
        cfg.starttls = starttls;
        cfg.ca_file = Some(wrong_ca.clone());
        let dir = LdapDirectory::new(cfg).unwrap();
        let message = assert_unavailable(
            dir.check_password("alice", None, ALICE_PASSWORD.to_string())
                .await,
            "certificate",
        );
        assert!(!message.contains(ALICE_PASSWORD));
        assert_unavailable(dir.probe().await, "certificate");
        assert_unavailable(dir.resolve("alice").await, "certificate");
    }
}

#[tokio::test]
async fn new_checks_the_configuration() {
    let slapd = Slapd::start(SlapdOptions::default());
    let base = config(&slapd, Preset::ActiveDirectory);
    let with = |change: &dyn Fn(&mut LdapConfig)| {
        let mut cfg = base.clone();
        change(&mut cfg);
        LdapDirectory::new(cfg)
    };
    // Plain ldap:// only to a loopback address.
    let (field, message) = invalid_field(with(&|c| c.url = "ldap://dc1.example.org".into()));
    assert_eq!(field, "ldap.starttls");
    assert!(message.contains("loopback"), "{message}");
    assert!(message.contains("starttls"), "{message}");
    invalid_field(with(&|c| c.url = "ldap://10.0.0.5:389/".into()));
    assert!(with(&|c| c.url = "ldap://localhost:389".into()).is_ok());
    assert!(with(&|c| c.url = "ldap://[::1]:389".into()).is_ok());
    assert!(with(&|c| {
        c.url = "ldap://dc1.example.org".into();
        c.starttls = true;
    })
    .is_ok());
    assert!(with(&|c| c.url = "ldaps://dc1.example.org:636".into()).is_ok());
    for url in [
        "http://dc1.example.org",
        "dc1.example.org",
        "ldap://",
        "ldapi:///run/slapd",
    ] {
        assert_eq!(
            invalid_field(with(&|c| c.url = url.into())).0,
            "ldap.url",
            "{url}"
        );
    }
    // The CA file must be readable and hold certificates.
    let (field, message) = invalid_field(with(&|c| {
        c.url = "ldaps://dc1.example.org".into();
        c.ca_file = Some("/nonexistent/ca.pem".into());
    }));
    assert_eq!(field, "ldap.ca_file");
    assert!(message.contains("/nonexistent/ca.pem"), "{message}");
    let junk = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(junk.path(), "not a certificate").unwrap();
    assert_eq!(
        invalid_field(with(&|c| {
            c.url = "ldaps://dc1.example.org".into();
            c.ca_file = Some(junk.path().to_path_buf());
        }))
        .0,
        "ldap.ca_file"
    );
    // An empty service password would be an anonymous bind.
    assert_eq!(
        invalid_field(with(&|c| c.bind_password = Zeroizing::new(String::new()))).0,
        "ldap.bind_password"
    );
    assert_eq!(
        invalid_field(with(&|c| c.bind_dn = String::new())).0,
        "ldap.bind_dn"
    );
    assert_eq!(
        invalid_field(with(&|c| c.base_dn = " ".into())).0,
        "ldap.base_dn"
    );
    assert_eq!(
        invalid_field(with(&|c| c.pool_size = 0)).0,
        "ldap.pool_size"
    );
    assert_eq!(
        invalid_field(with(&|c| c.group_attribute = Some("memberOf)(x".into()))).0,
        "ldap.group_attribute"
    );
}

#[tokio::test]
async fn a_directory_that_is_down_is_unavailable_and_the_pool_recovers() {
    let mut slapd = Slapd::with_people(SlapdOptions::default());
    let mut cfg = config(&slapd, Preset::ActiveDirectory);
    cfg.timeout = Duration::from_secs(1);
    let dir = LdapDirectory::new(cfg).unwrap();
    // Fill the pool.
    assert!(check(&dir, "alice", ALICE_PASSWORD).await.accepted());
    dir.probe().await.unwrap();

    slapd.stop();
    let limit = Duration::from_secs(1) + Duration::from_secs(2);
    let started = Instant::now();
    assert_unavailable(
        dir.check_password("alice", None, ALICE_PASSWORD.to_string())
            .await,
        "LDAP directory",
    );
    assert_unavailable(dir.resolve("alice").await, "LDAP directory");
    assert_unavailable(dir.lookup("alice").await, "LDAP directory");
    assert_unavailable(dir.search(None, None).await, "LDAP directory");
    assert_unavailable(dir.probe().await, "LDAP directory");
    assert!(
        started.elapsed() < limit * 5,
        "took {:?}",
        started.elapsed()
    );

    slapd.restart();
    dir.probe().await.expect("probe after restart");
    assert!(check(&dir, "alice", ALICE_PASSWORD).await.accepted());
    assert_eq!(dir.resolve("bob").await.unwrap().as_deref(), Some("bob"));
}

#[tokio::test]
async fn a_directory_that_does_not_answer_times_out() {
    // Accepts connections but never says a word.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let dir = LdapDirectory::new(LdapConfig {
        url: format!("ldap://127.0.0.1:{port}"),
        starttls: false,
        ca_file: None,
        bind_dn: SERVICE_DN.to_string(),
        bind_password: Zeroizing::new(SERVICE_PASSWORD.to_string()),
        base_dn: BASE_DN.to_string(),
        preset: Preset::ActiveDirectory,
        user_filter: None,
        group_attribute: None,
        timeout: Duration::from_secs(1),
        pool_size: 1,
    })
    .unwrap();
    let limit = Duration::from_secs(1 + 2);
    let started = Instant::now();
    assert_unavailable(
        dir.check_password("alice", None, ALICE_PASSWORD.to_string())
            .await,
        "LDAP directory",
    );
    assert!(
        started.elapsed() < limit,
        "check_password took {:?}",
        started.elapsed()
    );
    let started = Instant::now();
    assert_unavailable(dir.resolve("alice").await, "LDAP directory");
    assert!(
        started.elapsed() < limit,
        "resolve took {:?}",
        started.elapsed()
    );
    let started = Instant::now();
    assert_unavailable(dir.probe().await, "LDAP directory");
    assert!(
        started.elapsed() < limit,
        "probe took {:?}",
        started.elapsed()
    );
    silent.abort();
}

#[tokio::test]
async fn each_operation_when_down_returns_within_the_timeout() {
    let mut slapd = Slapd::with_people(SlapdOptions::default());
    let mut cfg = config(&slapd, Preset::OpenLdap);
    cfg.timeout = Duration::from_secs(1);
    let dir = LdapDirectory::new(cfg).unwrap();
    dir.probe().await.unwrap();
    slapd.stop();
    let limit = Duration::from_secs(1 + 2);
    let started = Instant::now();
    assert_unavailable(
        dir.check_password("alice", None, ALICE_PASSWORD.to_string())
            .await,
        "LDAP directory",
    );
    assert!(
        started.elapsed() < limit,
        "check_password took {:?}",
        started.elapsed()
    );
    let started = Instant::now();
    assert_unavailable(dir.resolve("alice").await, "LDAP directory");
    assert!(
        started.elapsed() < limit,
        "resolve took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_wrong_service_password_is_unavailable_with_a_clear_message() {
    let slapd = Slapd::with_people(SlapdOptions::default());
    let mut cfg = config(&slapd, Preset::ActiveDirectory);
    cfg.bind_password = Zeroizing::new("not-the-service-secret".to_string());
    let dir = LdapDirectory::new(cfg).unwrap();
    let message = assert_unavailable(
        dir.check_password("alice", None, ALICE_PASSWORD.to_string())
            .await,
        "service account",
    );
    assert!(message.contains("bind_password"), "{message}");
    assert!(!message.contains("not-the-service-secret"), "{message}");
    assert!(!message.contains(ALICE_PASSWORD), "{message}");
    assert_unavailable(dir.probe().await, "service account");
    assert_unavailable(dir.resolve("alice").await, "service account");
    assert_unavailable(dir.search(None, None).await, "service account");
}

#[tokio::test]
async fn binds_are_made_only_when_they_should_be() {
    let slapd = Slapd::with_people(SlapdOptions::default());
    let dir = directory(&slapd, Preset::ActiveDirectory);
    let alice = "uid=alice,ou=people,dc=example,dc=org";
    let decoy = "cn=twofold-no-such-person,dc=example,dc=org";
    dir.probe().await.unwrap();
    assert_eq!(slapd.binds_as(alice), 0);

    // An empty password never reaches the directory (it would be an
    // unauthenticated bind, which succeeds).
    assert_eq!(check(&dir, "alice", "").await, PasswordCheck::Rejected);
    assert_eq!(slapd.binds_as(alice), 0);
    assert_eq!(slapd.binds_as(decoy), 0);

    // The person's own bind checks the password.
    assert!(check(&dir, "alice", ALICE_PASSWORD).await.accepted());
    assert_eq!(check(&dir, "alice", "wrong").await, PasswordCheck::Rejected);
    assert_eq!(slapd.binds_as(alice), 2);

    // Somebody unknown costs a bind too (no enumeration by timing), as
    // nobody real.
    assert_eq!(
        check(&dir, "mallory", "guess").await,
        PasswordCheck::Rejected
    );
    assert_eq!(
        check(&dir, "*", ALICE_PASSWORD).await,
        PasswordCheck::Rejected
    );
    assert_eq!(slapd.binds_as(decoy), 2);
    assert_eq!(slapd.binds_as(alice), 2);

    // The service account binds once per pooled connection, not per call.
    let service_binds = slapd.binds_as(SERVICE_DN);
    for _ in 0..5 {
        dir.resolve("bob").await.unwrap();
    }
    assert_eq!(slapd.binds_as(SERVICE_DN), service_binds);
    assert!(
        service_binds <= 2,
        "{service_binds} service binds for a pool of 2"
    );
}
