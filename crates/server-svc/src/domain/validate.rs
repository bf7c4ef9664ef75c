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
}
