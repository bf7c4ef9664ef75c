//! Validation of node-svc input, each check naming its field.

use std::collections::BTreeMap;

use crate::error::{NodeError, Result};

fn ident_ok(raw: &str, max: usize) -> bool {
    (1..=max).contains(&raw.len())
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && raw
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
}

/// Node names and locations: 1-64 letters, digits, '-', '_', '.', starting alphanumeric.
pub fn name(field: &'static str, raw: &str) -> Result<String> {
    let trimmed = raw.trim();
    if !ident_ok(trimmed, 64) {
        return Err(NodeError::invalid(
            field,
            format!(
                "{field} must be 1-64 letters, digits, '-', '_' or '.', starting with a letter or digit"
            ),
        ));
    }
    Ok(trimmed.to_owned())
}

/// Tags: at most 16, each 1-32 characters, lower-cased, de-duplicated.
pub fn tags(raw: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for tag in raw
        .iter()
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
    {
        if !ident_ok(&tag, 32) {
            return Err(NodeError::invalid(
                "tags",
                "each tag must be 1-32 letters, digits, '-', '_' or '.'",
            ));
        }
        if !out.contains(&tag) {
            out.push(tag);
        }
    }
    if out.len() > 16 {
        return Err(NodeError::invalid("tags", "at most 16 tags"));
    }
    Ok(out)
}

/// A host name or an IP address.
pub fn address(raw: &str) -> Result<String> {
    let trimmed = raw.trim();
    let ip = trimmed.parse::<std::net::IpAddr>().is_ok();
    let host = (1..=253).contains(&trimmed.len())
        && trimmed.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if !(ip || host) {
        return Err(NodeError::invalid(
            "address",
            "address must be a host name or an IP address",
        ));
    }
    Ok(trimmed.to_owned())
}

/// Settings and credentials maps: short keys, bounded values.
pub fn map(field: &'static str, raw: &BTreeMap<String, String>) -> Result<()> {
    if raw.len() > 32
        || raw
            .iter()
            .any(|(k, v)| !ident_ok(k, 64) || v.len() > 4096 || v.chars().any(char::is_control))
    {
        return Err(NodeError::invalid(
            field,
            format!("{field} must be up to 32 short keys with printable values"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_tags_and_addresses() {
        assert!(name("name", "pve-01.fra").is_ok());
        assert!(name("name", "-bad").is_err());
        assert!(name("name", "").is_err());
        assert!(name("name", "a b").is_err());
        assert_eq!(
            tags(&["SSD".into(), "ssd".into(), " nvme ".into()]).expect("tags"),
            ["ssd", "nvme"]
        );
        assert!(tags(&["bad tag".into()]).is_err());
        assert!(tags(&(0..17).map(|i| format!("t{i}")).collect::<Vec<_>>()).is_err());
        for ok in ["127.0.0.1", "::1", "pve1.example.com", "node"] {
            assert!(address(ok).is_ok(), "{ok}");
        }
        for bad in ["", "http://x", "a..b", "-a.com", "a b"] {
            assert!(address(bad).is_err(), "{bad}");
        }
    }
}
