//! One error type for every dialect, rendered in the dialect's own shape at the very edge.
//! The status-code policy is written down in docs/errors.md.

use std::marker::PhantomData;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tonic::Code;

use crate::dialects::{Dialect, DialectKind};

use platform::grpc::Reason;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub field: Option<String>,
    pub retry_after_secs: Option<u64>,
    /// The service's machine-readable reason, for dialects that render some differently.
    pub reason: Option<Reason>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            field: None,
            retry_after_secs: None,
            reason: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.to_owned()),
            ..Self::bad_request(message)
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("{what} not found"))
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    }

    /// Maps a service's gRPC status to HTTP per docs/errors.md. Server-side faults are
    /// logged here and shown to the client without detail.
    pub fn from_status(status: &tonic::Status) -> Self {
        // A connection that failed under the call (a replica restarting) passes too,
        // whatever code tonic gave the transport's error.
        if platform::grpc::failed_in_transport(status) {
            tracing::warn!(code = ?status.code(), message = status.message(), "service unreachable");
            return Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "service temporarily unavailable",
            );
        }
        let reason = platform::grpc::error_reason(status);
        let code = match status.code() {
            Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::PermissionDenied => StatusCode::FORBIDDEN,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
            Code::FailedPrecondition if reason == Some(Reason::InsufficientCredits) => {
                StatusCode::PAYMENT_REQUIRED
            }
            Code::FailedPrecondition if reason == Some(Reason::IdempotencyMismatch) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            // A backup archive that does not match its manifest: refused, nothing touched.
            Code::FailedPrecondition if reason == Some(Reason::ArchiveCorrupt) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Code::FailedPrecondition => StatusCode::CONFLICT,
            Code::ResourceExhausted if reason == Some(Reason::NoCapacity) => {
                StatusCode::INSUFFICIENT_STORAGE
            }
            Code::ResourceExhausted => {
                let mut error = Self::new(StatusCode::TOO_MANY_REQUESTS, status.message());
                error.retry_after_secs = platform::grpc::retry_after(status)
                    .map(|after| (after.as_secs() + u64::from(after.subsec_nanos() > 0)).max(1));
                return error;
            }
            Code::Unavailable if reason == Some(Reason::NodeUnreachable) => {
                return Self {
                    reason,
                    ..Self::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the server's node is unreachable; try again later",
                    )
                };
            }
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => {
                tracing::warn!(code = ?status.code(), message = status.message(), "service unavailable");
                return Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "service temporarily unavailable",
                );
            }
            _ => {
                tracing::error!(code = ?status.code(), message = status.message(), "service call failed");
                return Self::internal();
            }
        };
        Self {
            status: code,
            message: status.message().to_owned(),
            field: platform::grpc::violated_field(status),
            retry_after_secs: None,
            reason,
        }
    }

    /// Whether the service refused because the action is wrong for the server's state.
    pub fn is_wrong_state(&self) -> bool {
        self.reason == Some(Reason::WrongState)
    }

    /// Whether the service refused because a per-server limit is reached.
    pub fn is_limit_reached(&self) -> bool {
        self.reason == Some(Reason::LimitReached)
    }

    /// The status, headers and body in a dialect's shape.
    pub fn render_in<D: Dialect>(&self) -> Response {
        let mut response = (D::error_status(self), Json(D::error_body(self))).into_response();
        let headers = response.headers_mut();
        if let Some(secs) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        D::error_headers(self, headers);
        response
    }

    /// [`ApiError::render_in`] for a dialect known only at run time.
    pub fn render(&self, dialect: DialectKind) -> Response {
        dialect.render(self)
    }
}

impl From<tonic::Status> for ApiError {
    fn from(status: tonic::Status) -> Self {
        Self::from_status(&status)
    }
}

/// An [`ApiError`] bound to the dialect that renders it; what handlers and extractors return.
pub struct Failure<D> {
    pub error: ApiError,
    dialect: PhantomData<D>,
}

impl<D> std::fmt::Debug for Failure<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl<D: Dialect> From<ApiError> for Failure<D> {
    fn from(error: ApiError) -> Self {
        Self {
            error,
            dialect: PhantomData,
        }
    }
}

impl<D: Dialect> From<tonic::Status> for Failure<D> {
    fn from(status: tonic::Status) -> Self {
        ApiError::from_status(&status).into()
    }
}

impl<D: Dialect> IntoResponse for Failure<D> {
    fn into_response(self) -> Response {
        self.error.render_in::<D>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_codes_map_to_the_documented_http_statuses() {
        let cases = [
            (Code::InvalidArgument, StatusCode::BAD_REQUEST),
            (Code::Unauthenticated, StatusCode::UNAUTHORIZED),
            (Code::PermissionDenied, StatusCode::FORBIDDEN),
            (Code::NotFound, StatusCode::NOT_FOUND),
            (Code::AlreadyExists, StatusCode::CONFLICT),
            (Code::FailedPrecondition, StatusCode::CONFLICT),
            (Code::Unavailable, StatusCode::SERVICE_UNAVAILABLE),
            (Code::Internal, StatusCode::INTERNAL_SERVER_ERROR),
        ];
        for (code, http) in cases {
            assert_eq!(
                ApiError::from_status(&tonic::Status::new(code, "x")).status,
                http,
                "{code:?}"
            );
        }
    }

    #[test]
    fn internal_details_are_not_shown() {
        let error = ApiError::from_status(&tonic::Status::internal("db password=hunter2 failed"));
        assert_eq!(error.message, "internal error");
    }
}
