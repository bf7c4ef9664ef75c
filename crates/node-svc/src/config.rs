//! node-svc configuration.

use std::net::SocketAddr;
use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Config {
    /// gRPC listen address.
    pub listen: SocketAddr,
    /// Where Prometheus metrics are served (`GET /metrics`); none when absent.
    pub metrics_listen: Option<SocketAddr>,
    pub database_url: String,
    pub database_max_connections: u32,
    /// 32 bytes, base64: encrypts node credentials at rest. Required once any node has
    /// credentials.
    pub credentials_key: Option<SecretString>,
    /// A previous `credentials_key`: what it sealed is sealed again under the current key
    /// at start, after which it can be dropped.
    pub credentials_key_previous: Option<SecretString>,
    /// Upper bound on any one call to a node.
    pub node_timeout_secs: u64,
    /// Calls in flight to one node at most; more wait their turn.
    pub node_concurrency: usize,
    /// How often each node's health is probed.
    pub probe_interval_secs: u64,
    /// A local LXC node to register on start (the embedded stack sets this when LXC is present).
    pub local_lxc: Option<LocalLxc>,
    /// Caller-token keys (`VPS_CALLER__*`; see docs/grpc.md).
    pub caller: platform::auth::KeyConfig,
    /// Console session limits (`VPS_CONSOLE__*`).
    pub console: crate::sessions::ConsoleLimits,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LocalLxc {
    pub name: String,
    pub location: String,
    /// The container path (`lxc-* -P`). It may be on a filesystem apart from the control
    /// plane's data; every directory above it must be open to traversal.
    pub path: PathBuf,
    /// What the node declares; 0 (the default) takes this host's cores, its memory less
    /// `reserve_memory_mb`, and the free disk of the container path less `reserve_disk_gb`.
    pub cores: u32,
    pub memory_mb: u64,
    pub disk_gb: u64,
    /// Kept back for the control plane itself.
    pub reserve_memory_mb: u64,
    pub reserve_disk_gb: u64,
    /// vCPUs sold per core (containers share cores well); 0 means the node default (4).
    pub cpu_overcommit: f64,
    /// The node's other settings (`backing`, `idmap`, `pids_max`, `stop_grace_secs`, `unenforced_disk`; see
    /// docs/nodes.md). The default backing is `loop`: disk sizes are enforced.
    pub settings: std::collections::BTreeMap<String, String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50054)),
            metrics_listen: None,
            database_url: "sqlite://data/node.db?mode=rwc".to_owned(),
            database_max_connections: 10,
            credentials_key: None,
            credentials_key_previous: None,
            node_timeout_secs: 120,
            node_concurrency: 4,
            probe_interval_secs: 15,
            local_lxc: None,
            caller: platform::auth::KeyConfig::default(),
            console: crate::sessions::ConsoleLimits::default(),
        }
    }
}

impl Default for LocalLxc {
    fn default() -> Self {
        Self {
            name: "local".to_owned(),
            location: "local".to_owned(),
            path: PathBuf::from("/var/lib/vps/lxc"),
            cores: 0,
            memory_mb: 0,
            disk_gb: 0,
            reserve_memory_mb: 1024,
            reserve_disk_gb: 5,
            cpu_overcommit: 0.0,
            settings: std::collections::BTreeMap::new(),
        }
    }
}
