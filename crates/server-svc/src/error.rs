//! server-svc's error, mapped to a gRPC status only at the transport edge.

use platform::grpc::{Reason, ServiceError};
use tonic::Code;

use crate::domain::state::Refusal;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
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
    WrongState(Refusal),
    #[error("{0}")]
    Conflict(String),
    /// An add that would have replaced what is there (an add-only catalog write).
    #[error("{0} already exists")]
    AlreadyExists(&'static str),
    #[error("the balance does not cover the next hour ({needed} needed, {balance} available)")]
    InsufficientCredits { needed: i64, balance: i64 },
    #[error("no node has capacity for this server")]
    NoCapacity,
    #[error("quota exceeded: {0}")]
    QuotaExceeded(String),
    #[error("this idempotency key was used with a different request")]
    IdempotencyMismatch,
    #[error("a request with this idempotency key is still running")]
    IdempotencyInProgress,
    /// A call to another service failed; its status is passed on.
    #[error("{}", .0.message())]
    Upstream(tonic::Status),
    #[error("database error")]
    Database(#[source] sea_orm::DbErr),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

pub type Result<T, E = ServerError> = std::result::Result<T, E>;

impl ServerError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }

    /// The machine-readable reason of an upstream status, if any.
    pub fn upstream_reason(&self) -> Option<Reason> {
        match self {
            Self::Upstream(status) => platform::grpc::error_reason(status),
            _ => None,
        }
    }
}

impl From<sea_orm::DbErr> for ServerError {
    fn from(error: sea_orm::DbErr) -> Self {
        Self::Database(error)
    }
}

impl From<tonic::Status> for ServerError {
    fn from(status: tonic::Status) -> Self {
        Self::Upstream(status)
    }
}

impl ServiceError for ServerError {
    fn code(&self) -> Code {
        match self {
            Self::Invalid { .. } => Code::InvalidArgument,
            Self::Forbidden(_) => Code::PermissionDenied,
            Self::NotFound(_) => Code::NotFound,
            Self::WrongState(_) | Self::Conflict(_) => Code::FailedPrecondition,
            Self::InsufficientCredits { .. } | Self::IdempotencyMismatch => {
                Code::FailedPrecondition
            }
            Self::NoCapacity => Code::ResourceExhausted,
            Self::QuotaExceeded(_) => Code::PermissionDenied,
            Self::IdempotencyInProgress => Code::Aborted,
            Self::AlreadyExists(_) => Code::AlreadyExists,
            Self::Upstream(status) => match status.code() {
                // Another service's fault is ours to report, not the client's.
                Code::InvalidArgument | Code::NotFound | Code::PermissionDenied => Code::Internal,
                code => code,
            },
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
            Self::InsufficientCredits { .. } => Some(Reason::InsufficientCredits),
            Self::NoCapacity => Some(Reason::NoCapacity),
            Self::IdempotencyMismatch => Some(Reason::IdempotencyMismatch),
            Self::IdempotencyInProgress => Some(Reason::IdempotencyInProgress),
            // Passed on: the ones a client of ours acts on.
            Self::Upstream(status) => platform::grpc::error_reason(status).filter(|r| {
                matches!(
                    r,
                    Reason::NodeUnreachable | Reason::InsufficientCredits | Reason::NoCapacity
                )
            }),
            _ => None,
        }
    }
}
