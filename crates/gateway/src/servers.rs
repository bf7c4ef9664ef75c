//! What every dialect's server routes share: calls that carry the client's
//! `Idempotency-Key`, and waiting for a task where a dialect answers only when it is done.

use std::time::Duration;

use axum::http::HeaderMap;
use platform::grpc::Caller;
use proto::server::v1 as pb;
use tonic::Request;
use tonic::metadata::MetadataValue;

use crate::error::ApiError;
use crate::state::AppState;

/// The header clients send, and the metadata key it travels in to server-svc.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
const IDEMPOTENCY_METADATA: &str = "x-vps-idempotency-key";

/// A request carrying the caller and, when the client sent one, its idempotency key.
pub fn request<T>(caller: Caller, headers: &HeaderMap, message: T) -> Result<Request<T>, ApiError> {
    let mut request = caller.request(message);
    if let Some(key) = headers.get(IDEMPOTENCY_HEADER) {
        let bad = || {
            ApiError::invalid(
                "Idempotency-Key",
                "the Idempotency-Key header must be 1-255 visible ASCII characters",
            )
        };
        let text = key.to_str().map_err(|_| bad())?.trim();
        if text.is_empty() || text.len() > 255 {
            return Err(bad());
        }
        let value = MetadataValue::try_from(text).map_err(|_| bad())?;
        request.metadata_mut().insert(IDEMPOTENCY_METADATA, value);
    }
    Ok(request)
}

/// An action on a server by id.
pub fn action(id: i64, action: pb::Action) -> pb::ActRequest {
    pb::ActRequest {
        server: Some(pb::ServerRef {
            id,
            uuid: String::new(),
        }),
        action: action.into(),
        ..pb::ActRequest::default()
    }
}

pub fn by_id(id: i64) -> pb::ServerRef {
    pb::ServerRef {
        id,
        uuid: String::new(),
    }
}

/// Polls a task until it ends or `limit` passes (then the last reading, still running).
pub async fn wait_task(
    state: &AppState,
    caller: Caller,
    task_id: &str,
    limit: Duration,
) -> Result<pb::Task, ApiError> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut pause = Duration::from_millis(20);
    loop {
        let task = state
            .servers()
            .get_task(caller.request(pb::GetTaskRequest {
                id: task_id.to_owned(),
            }))
            .await?
            .into_inner();
        if task.state == "succeeded" || task.state == "failed" {
            return Ok(task);
        }
        if tokio::time::Instant::now() + pause >= deadline {
            return Ok(task);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}
