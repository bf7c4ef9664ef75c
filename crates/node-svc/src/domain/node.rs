//! A node as node-svc's rules hand it out: never its credentials, only whether it has some.

use chrono::{DateTime, Utc};
use proto::ids::NodeId;

/// Whether a node takes new servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    Online,
    Offline,
    Maintenance,
}

impl NodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Offline => "offline",
            Self::Maintenance => "maintenance",
        }
    }

    pub fn parse(stored: &str) -> Option<Self> {
        match stored {
            "online" => Some(Self::Online),
            "offline" => Some(Self::Offline),
            "maintenance" => Some(Self::Maintenance),
            _ => None,
        }
    }
}

/// What the last probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeHealth {
    Healthy,
    Unreachable,
    Unknown,
}

impl NodeHealth {
    pub fn parse(stored: &str) -> Self {
        match stored {
            "healthy" => Self::Healthy,
            "unreachable" => Self::Unreachable,
            _ => Self::Unknown,
        }
    }
}

/// Cores, memory (MB) and disk (GB).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capacity {
    pub cores: i64,
    pub memory_mb: i64,
    pub disk_gb: i64,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub id: NodeId,
    pub uuid: String,
    pub name: String,
    pub location: String,
    pub tags: Vec<String>,
    pub driver: String,
    pub address: String,
    pub port: u16,
    /// Non-secret driver settings.
    pub settings: std::collections::BTreeMap<String, String>,
    pub has_credentials: bool,
    pub capacity: Capacity,
    pub cpu_overcommit: f64,
    pub memory_overcommit: f64,
    pub disk_overcommit: f64,
    /// The sum of its reservations.
    pub reserved: Capacity,
    /// `None` for a state this build does not know.
    pub state: Option<NodeState>,
    pub health: NodeHealth,
    pub created_at: DateTime<Utc>,
}
