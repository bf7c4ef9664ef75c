//! Tasks: what kind of work a task is and where it stands. Stored as their names; a name
//! this build does not know is an error, never a default.

use std::fmt;

/// The kinds of task, one saga each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskKind {
    Create,
    Delete,
    Resize,
    Reinstall,
    Start,
    Stop,
    Reboot,
    Password,
    Suspend,
    Unsuspend,
    /// Held for snapshot-svc, whose sagas do the work: taking a snapshot, rolling one
    /// back, taking a backup, restoring one.
    Snapshot,
    SnapshotRestore,
    Backup,
    BackupRestore,
}

impl TaskKind {
    pub const ALL: [Self; 14] = [
        Self::Create,
        Self::Delete,
        Self::Resize,
        Self::Reinstall,
        Self::Start,
        Self::Stop,
        Self::Reboot,
        Self::Password,
        Self::Suspend,
        Self::Unsuspend,
        Self::Snapshot,
        Self::SnapshotRestore,
        Self::Backup,
        Self::BackupRestore,
    ];

    /// The kinds snapshot-svc holds a server for: no saga of server-svc's drives them.
    pub const HELD: [Self; 4] = [
        Self::Snapshot,
        Self::SnapshotRestore,
        Self::Backup,
        Self::BackupRestore,
    ];

    pub fn is_held(self) -> bool {
        Self::HELD.contains(&self)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Delete => "delete",
            Self::Resize => "resize",
            Self::Reinstall => "reinstall",
            Self::Start => "start",
            Self::Stop => "stop",
            Self::Reboot => "reboot",
            Self::Password => "password",
            Self::Suspend => "suspend",
            Self::Unsuspend => "unsuspend",
            Self::Snapshot => "snapshot",
            Self::SnapshotRestore => "snapshot_restore",
            Self::Backup => "backup",
            Self::BackupRestore => "backup_restore",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }
}

impl fmt::Display for TaskKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskState {
    /// A delete waiting for the task before it to end.
    Queued,
    Running,
    /// A step failed; its saga is undoing the steps done.
    Unwinding,
    Succeeded,
    Failed,
}

impl TaskState {
    pub const ALL: [Self; 5] = [
        Self::Queued,
        Self::Running,
        Self::Unwinding,
        Self::Succeeded,
        Self::Failed,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Unwinding => "unwinding",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// Whether the task's saga is still at work (the server takes no other task).
    pub const fn is_open(self) -> bool {
        matches!(self, Self::Running | Self::Unwinding)
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for kind in TaskKind::ALL {
            assert_eq!(TaskKind::parse(kind.as_str()), Some(kind));
        }
        for state in TaskState::ALL {
            assert_eq!(TaskState::parse(state.as_str()), Some(state));
        }
        assert_eq!(TaskKind::parse("Create"), None);
        assert_eq!(TaskState::parse(""), None);
    }
}
