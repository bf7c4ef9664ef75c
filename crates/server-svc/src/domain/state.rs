//! The server state machine: every transition is decided here, once. Dialects only render
//! the result (VPS.org answers a refusal with 400 "already running", the others with 409).

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServerState {
    /// Being built by the create saga ("provisioning" in VPS.org).
    Creating,
    Running,
    Stopped,
    Starting,
    Stopping,
    Rebooting,
    Restoring,
    /// Being removed by the delete saga.
    Deleting,
    Suspended,
    Terminated,
    /// A saga failed and unwound; the reason is kept with the server.
    Error,
    /// The node did not answer; never reported as stopped.
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
    Reboot,
    Delete,
    Resize,
    Reinstall,
    SetPassword,
    Snapshot,
    Restore,
    Suspend,
    Unsuspend,
}

/// Why an action is wrong for the current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    AlreadyRunning,
    AlreadyStopped,
    NotRunning,
    Suspended,
    NotSuspended,
    /// Another task is under way.
    Busy(ServerState),
    /// A task that keeps the state (a password change, a resize) is still running.
    TaskUnderway,
    Terminated,
    /// The node's answer is awaited; try again.
    Unknown,
    /// The owner deleted the server; the delete runs when the current task ends.
    DeletePending,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AlreadyRunning => f.write_str("the server is already running"),
            Self::AlreadyStopped => f.write_str("the server is already stopped"),
            Self::NotRunning => f.write_str("the server is not running"),
            Self::Suspended => f.write_str("the server is suspended"),
            Self::NotSuspended => f.write_str("the server is not suspended"),
            Self::Busy(state) => write!(f, "the server is busy ({})", state.as_str()),
            Self::TaskUnderway => f.write_str("another task is under way on this server"),
            Self::Terminated => f.write_str("the server has been deleted"),
            Self::Unknown => f.write_str("the server's state is unknown; try again shortly"),
            Self::DeletePending => f.write_str("the server is being deleted"),
        }
    }
}

impl ServerState {
    pub const ALL: [Self; 12] = [
        Self::Creating,
        Self::Running,
        Self::Stopped,
        Self::Starting,
        Self::Stopping,
        Self::Rebooting,
        Self::Restoring,
        Self::Deleting,
        Self::Suspended,
        Self::Terminated,
        Self::Error,
        Self::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Creating => "creating",
            Self::Running => "running",
            Self::Stopped => "stopped",
            Self::Starting => "starting",
            Self::Stopping => "stopping",
            Self::Rebooting => "rebooting",
            Self::Restoring => "restoring",
            Self::Deleting => "deleting",
            Self::Suspended => "suspended",
            Self::Terminated => "terminated",
            Self::Error => "error",
            Self::Unknown => "unknown",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// Whether a task is under way.
    pub fn is_transitional(self) -> bool {
        matches!(
            self,
            Self::Creating
                | Self::Starting
                | Self::Stopping
                | Self::Rebooting
                | Self::Restoring
                | Self::Deleting
        )
    }

    /// The state an accepted action moves the server to while its task runs (the same
    /// state for actions that do not change power), or why it is refused.
    pub fn begin(self, action: Action) -> Result<Self, Refusal> {
        use Action as A;
        use ServerState as S;
        if self == S::Terminated {
            return Err(Refusal::Terminated);
        }
        if self.is_transitional() {
            return Err(Refusal::Busy(self));
        }
        match (action, self) {
            (A::Suspend, S::Suspended) => Err(Refusal::Suspended),
            (A::Suspend, S::Running | S::Stopped | S::Error | S::Unknown) => Ok(S::Suspended),
            (A::Unsuspend, S::Suspended) => Ok(S::Stopped),
            (A::Unsuspend, _) => Err(Refusal::NotSuspended),
            (A::Delete, _) => Ok(S::Deleting),
            (_, S::Suspended) => Err(Refusal::Suspended),
            (_, S::Unknown) => Err(Refusal::Unknown),
            (A::Start, S::Stopped | S::Error) => Ok(S::Starting),
            (A::Start, S::Running) => Err(Refusal::AlreadyRunning),
            (A::Stop, S::Running) => Ok(S::Stopping),
            (A::Stop, S::Stopped) => Err(Refusal::AlreadyStopped),
            (A::Reboot, S::Running) => Ok(S::Rebooting),
            (A::SetPassword, S::Running) => Ok(S::Running),
            (A::Stop | A::Reboot | A::SetPassword, _) => Err(Refusal::NotRunning),
            (A::Restore, S::Running | S::Stopped) => Ok(S::Restoring),
            (A::Resize | A::Snapshot, S::Running | S::Stopped) => Ok(self),
            (A::Reinstall, S::Running | S::Stopped | S::Error) => Ok(S::Creating),
            (A::Restore | A::Resize | A::Snapshot, _) => Err(Refusal::NotRunning),
            // Creating, Starting, ... were refused above as busy.
            (_, _) => Err(Refusal::Busy(self)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action as A;
    use ServerState as S;

    #[test]
    fn names_round_trip() {
        for state in S::ALL {
            assert_eq!(S::parse(state.as_str()), Some(state));
        }
        assert_eq!(S::parse("active"), None);
    }

    #[test]
    fn power_actions() {
        assert_eq!(S::Stopped.begin(A::Start), Ok(S::Starting));
        assert_eq!(S::Running.begin(A::Start), Err(Refusal::AlreadyRunning));
        assert_eq!(S::Running.begin(A::Stop), Ok(S::Stopping));
        assert_eq!(S::Stopped.begin(A::Stop), Err(Refusal::AlreadyStopped));
        assert_eq!(S::Running.begin(A::Reboot), Ok(S::Rebooting));
        assert_eq!(S::Stopped.begin(A::Reboot), Err(Refusal::NotRunning));
        assert_eq!(
            S::Error.begin(A::Start),
            Ok(S::Starting),
            "a failed server may be started again"
        );
    }

    #[test]
    fn busy_terminated_and_unknown_servers_refuse() {
        for state in S::ALL.into_iter().filter(|s| s.is_transitional()) {
            for action in [
                A::Start,
                A::Stop,
                A::Reboot,
                A::Delete,
                A::Resize,
                A::Suspend,
            ] {
                assert_eq!(
                    state.begin(action),
                    Err(Refusal::Busy(state)),
                    "{state:?} {action:?}"
                );
            }
        }
        assert_eq!(S::Terminated.begin(A::Delete), Err(Refusal::Terminated));
        assert_eq!(
            S::Unknown.begin(A::Stop),
            Err(Refusal::Unknown),
            "never treated as stopped"
        );
        assert_eq!(S::Unknown.begin(A::Delete), Ok(S::Deleting));
    }

    #[test]
    fn suspension() {
        assert_eq!(S::Running.begin(A::Suspend), Ok(S::Suspended));
        assert_eq!(
            S::Suspended.begin(A::Start),
            Err(Refusal::Suspended),
            "suspended servers refuse power actions"
        );
        assert_eq!(S::Suspended.begin(A::Reboot), Err(Refusal::Suspended));
        assert_eq!(S::Suspended.begin(A::Suspend), Err(Refusal::Suspended));
        assert_eq!(S::Suspended.begin(A::Unsuspend), Ok(S::Stopped));
        assert_eq!(S::Running.begin(A::Unsuspend), Err(Refusal::NotSuspended));
        assert_eq!(
            S::Suspended.begin(A::Delete),
            Ok(S::Deleting),
            "a suspended server can still be deleted"
        );
    }

    #[test]
    fn every_pair_has_an_answer_and_refusals_explain_themselves() {
        let actions = [
            A::Start,
            A::Stop,
            A::Reboot,
            A::Delete,
            A::Resize,
            A::Reinstall,
            A::SetPassword,
            A::Snapshot,
            A::Restore,
            A::Suspend,
            A::Unsuspend,
        ];
        for state in S::ALL {
            for action in actions {
                if let Err(refusal) = state.begin(action) {
                    assert!(!refusal.to_string().is_empty());
                }
            }
        }
        assert_eq!(S::Running.begin(A::SetPassword), Ok(S::Running));
        assert_eq!(S::Stopped.begin(A::Resize), Ok(S::Stopped));
        assert_eq!(S::Running.begin(A::Restore), Ok(S::Restoring));
    }
}
