//! monitor-svc's error, mapped to a gRPC status only at the transport edge.

use platform::grpc::ServiceError;
use tonic::Code;

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("database error")]
    Database(#[source] sea_orm::DbErr),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

pub type Result<T, E = MonitorError> = std::result::Result<T, E>;

impl From<sea_orm::DbErr> for MonitorError {
    fn from(error: sea_orm::DbErr) -> Self {
        Self::Database(error)
    }
}

impl ServiceError for MonitorError {
    fn code(&self) -> Code {
        match self {
            Self::Invalid { .. } => Code::InvalidArgument,
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
