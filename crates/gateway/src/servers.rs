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

/// The metadata an add-only catalog write travels in to server-svc.
const ADD_ONLY_METADATA: &str = "x-vps-add-only";

/// `If-None-Match: *` on a catalog PUT: add the entry only if its id is free, never replace
/// one (RFC 9110, section 13.1.2), so two administrators adding the next id at once do not
/// overwrite each other.
#[derive(Clone, Copy, Debug)]
pub struct AddOnly(bool);

impl AddOnly {
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, ApiError> {
        match headers.get(axum::http::header::IF_NONE_MATCH) {
            None => Ok(Self(false)),
            Some(value) if value.as_bytes().trim_ascii() == b"*" => Ok(Self(true)),
            Some(_) => Err(ApiError::invalid(
                "If-None-Match",
                "If-None-Match takes only `*` here: add the entry only if it does not exist",
            )),
        }
    }

    pub fn request<T>(self, mut request: Request<T>) -> Request<T> {
        if self.0 {
            request
                .metadata_mut()
                .insert(ADD_ONLY_METADATA, MetadataValue::from_static("1"));
        }
        request
    }

    /// An add refused because the entry exists is a 412; any other failure as usual.
    pub fn error(self, status: &tonic::Status) -> ApiError {
        if self.0 && status.code() == tonic::Code::AlreadyExists {
            ApiError::new(
                axum::http::StatusCode::PRECONDITION_FAILED,
                status.message(),
            )
        } else {
            ApiError::from_status(status)
        }
    }
}

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

/// A server's status in our own words (the panel and Skyport show these as they are).
pub fn status_name(status: pb::ServerStatus) -> &'static str {
    match status {
        pb::ServerStatus::Creating => "creating",
        pb::ServerStatus::Running => "running",
        pb::ServerStatus::Stopped => "stopped",
        pb::ServerStatus::Starting => "starting",
        pb::ServerStatus::Stopping => "stopping",
        pb::ServerStatus::Rebooting => "rebooting",
        pb::ServerStatus::Restoring => "restoring",
        pb::ServerStatus::Deleting => "deleting",
        pb::ServerStatus::Suspended => "suspended",
        pb::ServerStatus::Terminated => "terminated",
        pb::ServerStatus::Error => "error",
        pb::ServerStatus::Unknown | pb::ServerStatus::Unspecified => "unknown",
    }
}

/// A task's kind in our own words.
pub fn task_kind_name(kind: pb::TaskKind) -> &'static str {
    match kind {
        pb::TaskKind::Create => "create",
        pb::TaskKind::Delete => "delete",
        pb::TaskKind::Resize => "resize",
        pb::TaskKind::Reinstall => "reinstall",
        pb::TaskKind::Start => "start",
        pb::TaskKind::Stop => "stop",
        pb::TaskKind::Reboot => "reboot",
        pb::TaskKind::Password => "password",
        pb::TaskKind::Suspend => "suspend",
        pb::TaskKind::Unsuspend => "unsuspend",
        pb::TaskKind::Snapshot => "snapshot",
        pb::TaskKind::SnapshotRestore => "snapshot_restore",
        pb::TaskKind::Backup => "backup",
        pb::TaskKind::BackupRestore => "backup_restore",
        pb::TaskKind::Unspecified => "unknown",
    }
}

/// A task's state in our own words.
pub fn task_state_name(state: pb::TaskState) -> &'static str {
    match state {
        pb::TaskState::Queued => "queued",
        pb::TaskState::Running | pb::TaskState::Unspecified => "running",
        pb::TaskState::Succeeded => "succeeded",
        pb::TaskState::Failed => "failed",
    }
}

/// Whether a task has ended, either way.
pub fn task_ended(task: &pb::Task) -> bool {
    match task.state() {
        pb::TaskState::Succeeded | pb::TaskState::Failed => true,
        pb::TaskState::Queued | pb::TaskState::Running | pb::TaskState::Unspecified => false,
    }
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

/// A usage read of one server, without history.
pub fn usage_of(id: i64) -> pb::UsageRequest {
    pb::UsageRequest {
        id,
        ..pb::UsageRequest::default()
    }
}

/// A server and its latest usage, asked for at once (server-svc checks on each that the
/// caller may see the server).
pub async fn server_and_usage(
    state: &AppState,
    caller: Caller,
    id: i64,
) -> Result<(pb::Server, pb::Usage), tonic::Status> {
    let (mut servers, mut usages) = (state.servers(), state.servers());
    let (server, usage) = tokio::try_join!(
        servers.get_server(caller.request(by_id(id))),
        usages.get_usage(caller.request(usage_of(id))),
    )?;
    Ok((server.into_inner(), usage.into_inner()))
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
        if task_ended(&task) {
            return Ok(task);
        }
        if tokio::time::Instant::now() + pause >= deadline {
            return Ok(task);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

/// Every page of a list RPC, followed from the first: `fetch` asks for the page after a
/// token and answers its rows and the next token. The dialects' lists are whole lists, so
/// the gateway walks the pages the services hand out (1000 rows at a time).
pub async fn all_pages<T, F, Fut>(mut fetch: F) -> Result<Vec<T>, tonic::Status>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, String), tonic::Status>>,
{
    let mut rows = Vec::new();
    let mut token = String::new();
    loop {
        let (page, next) = fetch(token).await?;
        rows.extend(page);
        if next.is_empty() {
            return Ok(rows);
        }
        token = next;
    }
}

/// The rows a page of a list asks the services for.
pub const PAGE: u32 = platform::page::MAX_LIMIT;

/// Every node (all pages).
pub async fn list_nodes(
    state: &AppState,
    caller: Caller,
) -> Result<Vec<proto::node::v1::Node>, tonic::Status> {
    all_pages(|page_token| {
        let request = caller.request(proto::node::v1::ListNodesRequest {
            limit: PAGE,
            page_token,
            ids: Vec::new(),
        });
        async {
            let reply = state.nodes().list_nodes(request).await?.into_inner();
            Ok((reply.nodes, reply.next_page_token))
        }
    })
    .await
}

/// Every server of a listing (all its pages).
pub async fn list_servers(
    state: &AppState,
    caller: Caller,
    request: pb::ListServersRequest,
) -> Result<Vec<pb::Server>, tonic::Status> {
    all_pages(|page_token| {
        let message = pb::ListServersRequest {
            limit: PAGE,
            page_token,
            ..request.clone()
        };
        async move {
            let reply = state
                .servers()
                .list_servers(caller.request(message))
                .await?
                .into_inner();
            Ok((reply.servers, reply.next_page_token))
        }
    })
    .await
}
