//! Typed ids: what one service's rows are called by others. A `ServerId` is not a `UserId`,
//! so a signature says which it takes and the compiler keeps them apart. On the wire (and
//! in every dialect) they are the plain numbers and strings they wrap.

use std::fmt;

macro_rules! numeric_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize,
            serde::Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(i64);

        impl $name {
            /// The id a caller sent: positive, or none at all.
            pub fn new(raw: i64) -> Option<Self> {
                (raw > 0).then_some(Self(raw))
            }

            /// An id read from the owning service's own store.
            pub const fn stored(raw: i64) -> Self {
                Self(raw)
            }

            pub const fn get(self) -> i64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

numeric_id!(
    /// An account (identity-svc).
    UserId
);
numeric_id!(
    /// A virtual server (server-svc).
    ServerId
);
numeric_id!(
    /// A hypervisor node (node-svc).
    NodeId
);

/// A task: an opaque string (server-svc makes them).
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct TaskId(String);

impl TaskId {
    /// A task id a caller sent: trimmed, not empty, at most 64 characters.
    pub fn new(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        (!raw.is_empty() && raw.len() <= 64).then(|| Self(raw.to_owned()))
    }

    /// A task id read from the owning service's own store, or made there.
    pub fn stored(raw: impl Into<String>) -> Self {
        Self(raw.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_from_callers_are_positive_and_travel_as_plain_values() {
        assert_eq!(ServerId::new(0), None);
        assert_eq!(ServerId::new(-3), None);
        assert_eq!(ServerId::new(7).map(ServerId::get), Some(7));
        assert_eq!(
            serde_json::to_string(&UserId::stored(5)).ok().as_deref(),
            Some("5")
        );
        assert_eq!(TaskId::new("  "), None);
        assert_eq!(
            TaskId::new(" t1 ").map(|t| t.to_string()).as_deref(),
            Some("t1")
        );
    }
}
