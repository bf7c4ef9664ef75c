//! A server and a task as server-svc's rules hand them out. The store maps its rows onto
//! these; callers never see a row.

use proto::ids::{NodeId, ServerId, TaskId, UserId};

use super::state::ServerState;
use super::task::{TaskKind, TaskState};

#[derive(Debug, Clone)]
pub struct Server {
    pub id: ServerId,
    pub uuid: String,
    pub owner: UserId,
    pub name: String,
    pub hostname: String,
    pub plan_id: i64,
    pub image_id: i64,
    pub location: String,
    pub node: Option<NodeId>,
    /// The guest's name on the hypervisor.
    pub guest_name: String,
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
    pub status: ServerState,
    /// Why the server is in `error` or `suspended`.
    pub status_reason: String,
    pub cores: u32,
    pub memory_mb: u64,
    pub disk_gb: u64,
    pub backups: bool,
    pub ports: String,
    pub primary_port: String,
    /// A JSON object.
    pub variables: String,
    pub traffic_combined: bool,
    pub traffic_limit_bytes: u64,
    pub traffic_in_bytes: u64,
    pub traffic_out_bytes: u64,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// The last task that changed the server.
    pub task: Option<TaskId>,
}

#[derive(Debug, Clone)]
pub struct Task {
    pub id: TaskId,
    pub server: ServerId,
    pub owner: UserId,
    /// `None` for a kind this build does not know.
    pub kind: Option<TaskKind>,
    pub state: Option<TaskState>,
    /// The step under way or last done.
    pub step: String,
    pub steps_done: Vec<String>,
    pub error: String,
    /// A `vps.common.v1.Reason` name.
    pub error_reason: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}
