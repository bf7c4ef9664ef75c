//! notify-svc's error, mapped to a gRPC status only at the transport edge.

use platform::grpc::ServiceError;
use tonic::Code;

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    WrongState(String),
    #[error("a service this needs is unavailable")]
    Unavailable(#[source] tonic::Status),
    #[error("database error")]
    Database(#[source] sea_orm::DbErr),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

pub type Result<T, E = NotifyError> = std::result::Result<T, E>;

impl NotifyError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }
}

impl From<sea_orm::DbErr> for NotifyError {
    fn from(error: sea_orm::DbErr) -> Self {
        Self::Database(error)
    }
}

impl ServiceError for NotifyError {
    fn code(&self) -> Code {
        match self {
            Self::Invalid { .. } => Code::InvalidArgument,
            Self::NotFound(_) => Code::NotFound,
            Self::WrongState(_) => Code::FailedPrecondition,
            Self::Unavailable(_) => Code::Unavailable,
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
}
