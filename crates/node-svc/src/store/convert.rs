//! Rows onto the domain's types: the one place that knows both.

use proto::ids::NodeId;

use super::entity::node;
use crate::domain::node::{Capacity, Node, NodeHealth, NodeState};

impl From<node::Model> for Node {
    fn from(n: node::Model) -> Self {
        Self {
            id: NodeId::stored(n.id),
            tags: n
                .tags
                .split(',')
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect(),
            port: u16::try_from(n.port).unwrap_or(0),
            settings: serde_json::from_str(&n.settings).unwrap_or_default(),
            has_credentials: n.credentials.is_some(),
            capacity: Capacity {
                cores: n.cores,
                memory_mb: n.memory_mb,
                disk_gb: n.disk_gb,
            },
            reserved: Capacity {
                cores: n.reserved_cores,
                memory_mb: n.reserved_memory_mb,
                disk_gb: n.reserved_disk_gb,
            },
            state: NodeState::parse(&n.state),
            health: NodeHealth::parse(&n.health),
            uuid: n.uuid,
            name: n.name,
            location: n.location,
            driver: n.driver,
            address: n.address,
            cpu_overcommit: n.cpu_overcommit,
            memory_overcommit: n.memory_overcommit,
            disk_overcommit: n.disk_overcommit,
            created_at: n.created_at,
        }
    }
}
