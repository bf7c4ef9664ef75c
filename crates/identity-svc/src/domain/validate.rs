//! Validating newtypes for identity input: each parses at the edge of the domain and carries
//! a clear message naming the field.

use crate::error::{IdentityError, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self> {
        let len = raw.chars().count();
        let ok_chars = raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        let starts_ok = raw
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
        if !(3..=32).contains(&len) || !ok_chars || !starts_ok {
            return Err(IdentityError::invalid(
                "username",
                "username must be 3-32 characters of letters, digits, '_', '.' or '-', starting with a letter or digit",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email address, stored lower-cased so lookups are case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self> {
        let invalid = || {
            IdentityError::invalid(
                "email",
                "email must be a valid address like name@example.com",
            )
        };
        let raw = raw.trim();
        if raw.len() > 254 || raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid());
        }
        let (local, domain) = raw.split_once('@').ok_or_else(invalid)?;
        let domain_ok = domain.contains('.')
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if local.is_empty() || local.len() > 64 || local.contains('@') || !domain_ok {
            return Err(invalid());
        }
        Ok(Self(raw.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A new password: 8 to 128 characters, not only white space.
pub fn new_password(raw: &str) -> Result<()> {
    let len = raw.chars().count();
    if !(8..=128).contains(&len) || raw.trim().is_empty() {
        return Err(IdentityError::invalid(
            "password",
            "password must be 8-128 characters",
        ));
    }
    Ok(())
}

/// A client-supplied Skyport user id: 1-64 letters, digits, '-' or '_'.
pub fn skyport_id(raw: &str) -> Result<String> {
    let ok = (1..=64).contains(&raw.len())
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
    if !ok {
        return Err(IdentityError::invalid(
            "userId",
            "userId must be 1-64 letters, digits, '-' or '_'",
        ));
    }
    Ok(raw.to_owned())
}

/// A label chosen by the user (credential names, ledger reasons): trimmed, 1 to `max`
/// printable characters.
pub fn label(field: &'static str, raw: &str, max: usize) -> Result<String> {
    let trimmed = raw.trim();
    let len = trimmed.chars().count();
    if len == 0 || len > max || trimmed.chars().any(char::is_control) {
        return Err(IdentityError::invalid(
            field,
            format!("{field} must be 1-{max} printable characters"),
        ));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        for ok in ["bob", "alice_1", "a.b-c", "X23"] {
            assert!(Username::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "ab",
            "_bob",
            "bob smith",
            "bob@x",
            &"a".repeat(33),
            "böb",
        ] {
            assert!(Username::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails_are_checked_and_lower_cased() {
        assert_eq!(
            Email::parse(" Bob@Example.COM ").expect("valid").as_str(),
            "bob@example.com"
        );
        for bad in [
            "",
            "bob",
            "bob@",
            "@x.com",
            "bob@localhost",
            "a b@x.com",
            "bob@-x.com",
            "bob@x..com",
            "a@b@c.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_and_labels() {
        assert!(new_password("12345678").is_ok());
        assert!(new_password("1234567").is_err());
        assert!(new_password("        ").is_err());
        assert!(new_password(&"x".repeat(129)).is_err());
        assert_eq!(label("name", "  ci key ", 64).expect("valid"), "ci key");
        assert!(label("name", "   ", 64).is_err());
        assert!(label("name", "a\nb", 64).is_err());
        assert!(skyport_id("0d6d1c8e-user_1").is_ok());
        assert!(skyport_id("has space").is_err());
        assert!(skyport_id("").is_err());
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        proptest! {
            #[test]
            fn usernames_of_the_allowed_shape_parse_as_they_are(
                name in "[a-zA-Z0-9][a-zA-Z0-9_.-]{2,31}"
            ) {
                prop_assert_eq!(Username::parse(&name).expect("valid").as_str().to_owned(), name.as_str());
            }

            #[test]
            fn any_accepted_username_keeps_the_rules(raw in "\\PC{0,40}") {
                if let Ok(name) = Username::parse(&raw) {
                    let name = name.as_str();
                    prop_assert!((3..=32).contains(&name.chars().count()));
                    prop_assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)));
                    prop_assert!(name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric()));
                }
            }

            #[test]
            fn well_formed_emails_parse_lower_cased(
                local in "[A-Za-z0-9._+-]{1,30}",
                domain in "[A-Za-z0-9]([A-Za-z0-9-]{0,20}[A-Za-z0-9])?",
                tld in "[A-Za-z]{2,8}",
            ) {
                let raw = format!("{local}@{domain}.{tld}");
                let email = Email::parse(&raw).expect("valid");
                prop_assert_eq!(email.as_str(), raw.to_ascii_lowercase());
            }

            #[test]
            fn any_accepted_email_is_one_address(raw in "\\PC{0,80}") {
                if let Ok(email) = Email::parse(&raw) {
                    let email = email.as_str();
                    prop_assert_eq!(email.matches('@').count(), 1);
                    prop_assert!(email.len() <= 254);
                    prop_assert!(!email.chars().any(|c| c.is_whitespace() || c.is_control()));
                    prop_assert_eq!(email, email.to_ascii_lowercase());
                    // Parsing again changes nothing.
                    prop_assert_eq!(Email::parse(email).expect("still valid").as_str().to_owned(), email);
                }
            }
        }
    }
}
