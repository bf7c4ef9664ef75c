//! snapshot-svc's error, mapped to a gRPC status only at the transport edge.

use platform::grpc::{Reason, ServiceError};
use tonic::Code;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A per-server limit: how many, and of what.
    #[error("this server already has {limit} {what}, its limit")]
    LimitReached { limit: u32, what: &'static str },
    /// The server (or the snapshot or backup) cannot do this now.
    #[error("{0}")]
    WrongState(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the archive does not match its manifest: {0}")]
    Corrupt(String),
    /// A call to another service failed; its status is passed on.
    #[error("{}", .0.message())]
    Upstream(tonic::Status),
    #[error("backup target: {0}")]
    Target(String),
    #[error("database error")]
    Database(#[source] sea_orm::DbErr),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

pub type Result<T, E = SnapshotError> = std::result::Result<T, E>;

impl SnapshotError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }
}

impl From<sea_orm::DbErr> for SnapshotError {
    fn from(error: sea_orm::DbErr) -> Self {
        Self::Database(error)
    }
}

impl From<tonic::Status> for SnapshotError {
    fn from(status: tonic::Status) -> Self {
        // server-svc refusing a hold is the client's answer: the server's state.
        if platform::grpc::error_reason(&status) == Some(Reason::WrongState) {
            return Self::WrongState(status.message().to_owned());
        }
        Self::Upstream(status)
    }
}

impl ServiceError for SnapshotError {
    fn code(&self) -> Code {
        match self {
            Self::Invalid { .. } => Code::InvalidArgument,
            Self::NotFound(_) => Code::NotFound,
            Self::LimitReached { .. } | Self::WrongState(_) | Self::Conflict(_) => {
                Code::FailedPrecondition
            }
            // A refusal, not a fault of ours: the gateway shows it as 422.
            Self::Corrupt(_) => Code::FailedPrecondition,
            Self::Upstream(status) => match status.code() {
                // Another service's fault is ours to report, not the client's.
                Code::InvalidArgument | Code::NotFound | Code::PermissionDenied => Code::Internal,
                code => code,
            },
            Self::Target(_) => Code::Unavailable,
            Self::Database(error) => platform::db::status_code(error),
            Self::Internal(_) => Code::Internal,
        }
    }

    fn client_message(&self) -> String {
        if self.code() == Code::Internal {
            return "internal error".to_owned();
        }
        self.to_string()
    }

    fn field(&self) -> Option<&str> {
        match self {
            Self::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }

    fn reason(&self) -> Option<Reason> {
        match self {
            Self::WrongState(_) => Some(Reason::WrongState),
            Self::LimitReached { .. } => Some(Reason::LimitReached),
            Self::Corrupt(_) => Some(Reason::ArchiveCorrupt),
            Self::Upstream(status) => platform::grpc::error_reason(status)
                .filter(|r| matches!(r, Reason::NodeUnreachable)),
            _ => None,
        }
    }

    fn facts(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::LimitReached { limit, .. } => vec![("limit", limit.to_string())],
            _ => Vec::new(),
        }
    }
}
