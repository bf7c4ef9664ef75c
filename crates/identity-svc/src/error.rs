//! identity-svc's error: what went wrong in domain terms, mapped to a gRPC status only at the
//! transport edge.

use platform::grpc::ServiceError;
use tonic::Code;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("invalid or expired credentials")]
    Unauthenticated,
    /// A refresh token was reused: its session is revoked.
    #[error("invalid or expired credentials")]
    SessionRevoked { user_id: i64 },
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("insufficient credits: the balance is {balance}, {needed} needed")]
    InsufficientCredits { balance: i64, needed: i64 },
    #[error("too many wrong passwords; try again later")]
    TooManyAttempts { retry_after: std::time::Duration },
    #[error("too many logins at once; try again shortly")]
    Busy,
    #[error("database error")]
    Database(#[source] sea_orm::DbErr),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

pub type Result<T, E = IdentityError> = std::result::Result<T, E>;

impl IdentityError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }
}

impl From<sea_orm::DbErr> for IdentityError {
    fn from(error: sea_orm::DbErr) -> Self {
        Self::Database(error)
    }
}

impl ServiceError for IdentityError {
    fn code(&self) -> Code {
        match self {
            Self::Invalid { .. } => Code::InvalidArgument,
            Self::Unauthenticated | Self::SessionRevoked { .. } => Code::Unauthenticated,
            Self::Forbidden(_) => Code::PermissionDenied,
            Self::NotFound(_) => Code::NotFound,
            Self::Conflict(_) => Code::AlreadyExists,
            Self::InsufficientCredits { .. } => Code::FailedPrecondition,
            Self::TooManyAttempts { .. } => Code::ResourceExhausted,
            Self::Busy => Code::Unavailable,
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

    fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::TooManyAttempts { retry_after } => Some(*retry_after),
            _ => None,
        }
    }

    fn facts(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::SessionRevoked { user_id } => vec![("user_id", user_id.to_string())],
            _ => Vec::new(),
        }
    }

    fn reason(&self) -> Option<platform::grpc::Reason> {
        use platform::grpc::Reason;
        match self {
            Self::SessionRevoked { .. } => Some(Reason::SessionRevoked),
            Self::InsufficientCredits { .. } => Some(Reason::InsufficientCredits),
            _ => None,
        }
    }
}
