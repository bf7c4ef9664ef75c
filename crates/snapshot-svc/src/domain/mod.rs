//! snapshot-svc's rules free of I/O: names, statuses, when a schedule fires, and which
//! backups a retention keeps.

pub mod retention;
pub mod schedule;

use crate::error::{Result, SnapshotError};

/// Where a snapshot or backup stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    InProgress,
    Completed,
    Failed,
}

impl Status {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::InProgress, Self::Completed, Self::Failed]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }
}

/// A snapshot's or backup's name: 1-40 letters, digits, '-' or '_'.
pub fn check_name(field: &'static str, raw: &str) -> Result<String> {
    let name = raw.trim();
    if name.is_empty()
        || name.len() > 40
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(SnapshotError::invalid(
            field,
            "a name is 1-40 letters, digits, '-' or '_'",
        ));
    }
    Ok(name.to_owned())
}

/// A description: at most 255 characters, no control characters.
pub fn check_description(raw: &str) -> Result<String> {
    if raw.chars().count() > 255 {
        return Err(SnapshotError::invalid(
            "description",
            "a description is at most 255 characters",
        ));
    }
    if raw.chars().any(char::is_control) {
        return Err(SnapshotError::invalid(
            "description",
            "a description has no control characters",
        ));
    }
    Ok(raw.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            check_name("name", " before-update_1 ").unwrap(),
            "before-update_1"
        );
        for bad in ["", "a b", "x/y", "ünïcode", "a.b", &"a".repeat(41)] {
            assert!(check_name("name", bad).is_err(), "{bad:?}");
        }
        assert!(check_description(&"d".repeat(255)).is_ok());
        assert!(check_description(&"d".repeat(256)).is_err());
        assert!(check_description("line\nbreak").is_err());
    }

    #[test]
    fn statuses_round_trip() {
        for s in [Status::InProgress, Status::Completed, Status::Failed] {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        assert_eq!(Status::parse("done"), None);
    }
}
