//! Rows onto the domain's types: the one place that knows both.

use proto::ids::{NodeId, ServerId, TaskId, UserId};

use super::entity::{server, task};
use crate::domain::server::{Server, Task};
use crate::domain::state::ServerState;
use crate::domain::task::{TaskKind, TaskState};

fn unsigned(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

impl From<server::Model> for Server {
    fn from(s: server::Model) -> Self {
        Self {
            id: ServerId::stored(s.id),
            owner: UserId::stored(s.owner_id),
            node: s.node_id.map(NodeId::stored),
            // A status this build does not know reads as `unknown`, never as stopped.
            status: ServerState::parse(&s.status).unwrap_or(ServerState::Unknown),
            cores: u32::try_from(s.cores).unwrap_or(0),
            memory_mb: unsigned(s.memory_mb),
            disk_gb: unsigned(s.disk_gb),
            traffic_limit_bytes: unsigned(s.traffic_limit),
            traffic_in_bytes: unsigned(s.traffic_in),
            traffic_out_bytes: unsigned(s.traffic_out),
            task: s.task_id.map(TaskId::stored),
            uuid: s.uuid,
            name: s.name,
            hostname: s.hostname,
            plan_id: s.plan_id,
            image_id: s.image_id,
            location: s.location,
            guest_name: s.guest_name,
            ipv4: s.ipv4,
            ipv6: s.ipv6,
            status_reason: s.status_reason,
            backups: s.backups,
            ports: s.ports,
            primary_port: s.primary_port,
            variables: s.variables,
            traffic_combined: s.traffic_combined,
            created_at_ms: s.created_at,
            updated_at_ms: s.updated_at,
        }
    }
}

impl From<task::Model> for Task {
    fn from(t: task::Model) -> Self {
        Self {
            id: TaskId::stored(t.id),
            server: ServerId::stored(t.server_id),
            owner: UserId::stored(t.owner_id),
            kind: TaskKind::parse(&t.kind),
            state: TaskState::parse(&t.state),
            steps_done: super::tasks::steps_done(&t.steps_done),
            step: t.step,
            error: t.error,
            error_reason: t.error_reason,
            created_at_ms: t.created_at,
            updated_at_ms: t.updated_at,
        }
    }
}
