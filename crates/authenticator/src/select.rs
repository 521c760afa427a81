//! Which stored accounts `--account` names: an index as `list` prints it,
//! `username@account`, an account name or a username.

use crate::store::Account;
use crate::text::clean;
use crate::Error;

const HOW: &str = "name it with --account (index as `list` prints it, username@account, account name or username)";

/// The indexes of the accounts `selector` names, in store order.
///
/// `username@account` is tried first (a username may itself contain `@`),
/// then an index, then account names and usernames.
pub fn matching(accounts: &[Account], selector: &str) -> Vec<usize> {
    let selector = selector.trim();
    let by_label: Vec<usize> = (0..accounts.len())
        .filter(|&i| accounts[i].label() == selector)
        .collect();
    if !by_label.is_empty() {
        return by_label;
    }
    if let Ok(i) = selector.parse::<usize>() {
        if i < accounts.len() {
            return vec![i];
        }
    }
    (0..accounts.len())
        .filter(|&i| accounts[i].account == selector || accounts[i].username == selector)
        .collect()
}

/// The accounts a command that may act on several works on: all of them
/// without a selector, else every match.
pub fn select_many(accounts: &[Account], selector: Option<&str>) -> Result<Vec<usize>, Error> {
    if accounts.is_empty() {
        return Err(no_accounts());
    }
    match selector {
        None => Ok((0..accounts.len()).collect()),
        Some(s) => {
            let found = matching(accounts, s);
            if found.is_empty() {
                Err(Error::Usage(format!(
                    "no account matches {:?}; `list` shows them",
                    clean(s)
                )))
            } else {
                Ok(found)
            }
        }
    }
}

/// The one account a command that acts on one account works on: the only
/// one there is, or the one the selector names unambiguously.
pub fn select_one(accounts: &[Account], selector: Option<&str>) -> Result<usize, Error> {
    let found = select_many(accounts, selector)?;
    match found.as_slice() {
        [one] => Ok(*one),
        several => {
            let names: Vec<String> = several
                .iter()
                .map(|&i| format!("{i} ({})", clean(&accounts[i].label())))
                .collect();
            let what = if selector.is_some() {
                "that names several accounts"
            } else {
                "there are several accounts"
            };
            Err(Error::Usage(format!("{what}: {}; {HOW}", names.join(", "))))
        }
    }
}

fn no_accounts() -> Error {
    Error::Usage("no accounts yet: activate one with `twofold-authenticator activate URI`".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sample_account;

    fn accounts() -> Vec<Account> {
        let mut a = vec![sample_account(1), sample_account(2), sample_account(3)];
        // Two users on one server, and a user named like an index.
        a[1].account = "mfa1.example.org".into();
        a[2].username = "0".into();
        a
    }

    #[test]
    fn selectors_name_accounts() {
        let a = accounts();
        assert_eq!(matching(&a, "user1@mfa1.example.org"), vec![0]);
        assert_eq!(matching(&a, "user2@mfa1.example.org"), vec![1]);
        assert_eq!(matching(&a, "mfa1.example.org"), vec![0, 1]);
        assert_eq!(matching(&a, "user2"), vec![1]);
        assert_eq!(matching(&a, "2"), vec![2]);
        // An index wins over a username that looks like one...
        assert_eq!(matching(&a, "0"), vec![0]);
        // ...and username@account reaches that user anyway.
        assert_eq!(matching(&a, "0@mfa3.example.org"), vec![2]);
        assert!(matching(&a, "3").is_empty());
        assert!(matching(&a, "nobody").is_empty());
    }

    #[test]
    fn usernames_with_at_signs() {
        let mut a = accounts();
        a[0].username = "jan@example.org".into();
        assert_eq!(matching(&a, "jan@example.org"), vec![0]);
        assert_eq!(matching(&a, "jan@example.org@mfa1.example.org"), vec![0]);
    }

    #[test]
    fn one_or_many() {
        let a = accounts();
        assert_eq!(select_many(&a, None).unwrap(), vec![0, 1, 2]);
        assert_eq!(
            select_many(&a, Some("mfa1.example.org")).unwrap(),
            vec![0, 1]
        );
        assert!(select_many(&a, Some("nobody")).is_err());
        assert_eq!(select_one(&a, Some("user2")).unwrap(), 1);
        let err = select_one(&a, Some("mfa1.example.org")).unwrap_err();
        assert!(err.to_string().contains("several"), "{err}");
        assert!(select_one(&a, None).is_err());
        assert_eq!(select_one(&a[..1], None).unwrap(), 0);
        assert!(select_one(&[], None)
            .unwrap_err()
            .to_string()
            .contains("no accounts"));
        assert_eq!(select_one(&a, None).unwrap_err().exit_code(), 2);
    }
}
