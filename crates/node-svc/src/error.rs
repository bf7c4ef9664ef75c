//! node-svc's error, mapped to a gRPC status only at the transport edge.

use platform::grpc::ServiceError;
use tonic::Code;

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("invalid, used or expired console ticket")]
    BadTicket,
    #[error("{0}")]
    TooManySessions(String),
    #[error("no node has capacity for this server")]
    NoCapacity,
    #[error("no free address in any pool for this node")]
    NoAddress,
    #[error("node {node} is unreachable")]
    Unreachable {
        node: String,
        #[source]
        source: anyhow::Error,
    },
    #[error("the hypervisor refused: {0}")]
    Hypervisor(String),
    #[error("database error")]
    Database(#[source] sea_orm::DbErr),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

pub type Result<T, E = NodeError> = std::result::Result<T, E>;

impl NodeError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }
}

impl From<sea_orm::DbErr> for NodeError {
    fn from(error: sea_orm::DbErr) -> Self {
        Self::Database(error)
    }
}

impl ServiceError for NodeError {
    fn code(&self) -> Code {
        match self {
            Self::Invalid { .. } => Code::InvalidArgument,
            Self::Forbidden(_) => Code::PermissionDenied,
            Self::BadTicket => Code::Unauthenticated,
            Self::TooManySessions(_) => Code::ResourceExhausted,
            Self::NotFound(_) => Code::NotFound,
            Self::Conflict(_) => Code::FailedPrecondition,
            Self::NoCapacity | Self::NoAddress => Code::ResourceExhausted,
            Self::Unreachable { .. } => Code::Unavailable,
            Self::Hypervisor(_) => Code::Aborted,
            Self::Database(error) => platform::db::status_code(error),
            Self::Internal(_) => Code::Internal,
        }
    }

    fn client_message(&self) -> String {
        self.to_string()
    }

    fn field(&self) -> Option<&str> {
        match self {
            Self::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }

    fn reason(&self) -> Option<platform::grpc::Reason> {
        use platform::grpc::Reason;
        match self {
            Self::NoCapacity | Self::NoAddress => Some(Reason::NoCapacity),
            Self::Unreachable { .. } => Some(Reason::NodeUnreachable),
            _ => None,
        }
    }
}
