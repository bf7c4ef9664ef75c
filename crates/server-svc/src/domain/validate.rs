//! Validating newtypes for server input, parsed at the edge of the domain.

/// A fully qualified host name: two or more labels of letters, digits and inner hyphens,
/// at most 253 characters, stored lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hostname(String);

impl Hostname {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let name = raw.trim().trim_end_matches('.').to_ascii_lowercase();
        let labels: Vec<&str> = name.split('.').collect();
        let label_ok = |l: &&str| {
            (1..=63).contains(&l.len())
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        let tld_ok = labels
            .last()
            .is_some_and(|t| t.chars().any(|c| c.is_ascii_alphabetic()));
        if name.len() > 253 || labels.len() < 2 || !labels.iter().all(label_ok) || !tld_ok {
            return Err("hostname must be a fully qualified domain name like web01.example.com");
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A server's display name: 1-64 letters, digits and hyphens, starting with a letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerName(String);

impl ServerName {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let name = raw.trim();
        let ok = (1..=64).contains(&name.len())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
        if !ok {
            return Err("name must be 1-64 letters, digits or hyphens, starting with a letter");
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames() {
        assert_eq!(
            Hostname::parse("Web01.Example.COM.")
                .expect("valid")
                .as_str(),
            "web01.example.com"
        );
        for ok in [
            "a.io",
            "db-1.eu-west.example.org",
            &format!("{}.com", "a".repeat(63)),
        ] {
            assert!(Hostname::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "localhost",
            "-a.com",
            "a-.com",
            "a..com",
            "a b.com",
            "a_b.com",
            "1.2.3.4",
            &format!("{}.com", "a".repeat(64)),
        ] {
            assert!(Hostname::parse(bad).is_err(), "{bad}");
        }
        let long = vec!["abcdefghij"; 26].join(".");
        assert!(long.len() > 253 && Hostname::parse(&long).is_err());
    }

    #[test]
    fn server_names() {
        assert!(ServerName::parse("web-server-01").is_ok());
        for bad in [
            "",
            "-web",
            "1web",
            "web server",
            "web_server",
            &"a".repeat(65),
        ] {
            assert!(ServerName::parse(bad).is_err(), "{bad}");
        }
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        proptest! {
            #[test]
            fn well_formed_hostnames_parse_lower_cased(
                labels in proptest::collection::vec("[A-Za-z0-9]([A-Za-z0-9-]{0,20}[A-Za-z0-9])?", 1..4),
                tld in "[A-Za-z]{2,10}",
            ) {
                let raw = format!("{}.{tld}", labels.join("."));
                let host = Hostname::parse(&raw).expect("valid");
                prop_assert_eq!(host.as_str(), raw.to_ascii_lowercase());
            }

            #[test]
            fn any_accepted_hostname_keeps_the_rules(raw in "\\PC{0,80}") {
                if let Ok(host) = Hostname::parse(&raw) {
                    let host = host.as_str();
                    prop_assert!(host.len() <= 253);
                    prop_assert!(host.split('.').count() >= 2);
                    prop_assert!(host.split('.').all(|l| !l.is_empty() && l.len() <= 63
                        && !l.starts_with('-') && !l.ends_with('-')));
                    prop_assert!(host.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.'));
                    prop_assert_eq!(Hostname::parse(host).expect("still valid").as_str().to_owned(), host);
                }
            }

            #[test]
            fn any_accepted_server_name_keeps_the_rules(raw in "\\PC{0,80}") {
                if let Ok(name) = ServerName::parse(&raw) {
                    let name = name.as_str();
                    prop_assert!((1..=64).contains(&name.len()));
                    prop_assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
                    prop_assert!(name.chars().next().is_some_and(|c| c.is_ascii_alphabetic()));
                }
            }

            #[test]
            fn server_names_of_the_allowed_shape_parse(name in "[a-zA-Z][a-zA-Z0-9-]{0,63}") {
                prop_assert_eq!(ServerName::parse(&name).expect("valid").as_str().to_owned(), name.as_str());
            }
        }
    }
}
