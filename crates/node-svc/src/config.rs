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
    pub database_url: String,
    pub database_max_connections: u32,
    /// 32 bytes, base64: encrypts node credentials at rest. Required once any node has
    /// credentials.
    pub credentials_key: Option<SecretString>,
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
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LocalLxc {
    pub name: String,
    pub location: String,
    /// The container path (`lxc-* -P`).
    pub path: PathBuf,
    pub cores: u32,
    pub memory_mb: u64,
    pub disk_gb: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50054)),
            database_url: "sqlite://data/node.db?mode=rwc".to_owned(),
            database_max_connections: 10,
            credentials_key: None,
            node_timeout_secs: 120,
            node_concurrency: 4,
            probe_interval_secs: 15,
            local_lxc: None,
            caller: platform::auth::KeyConfig::default(),
        }
    }
}

impl Default for LocalLxc {
    fn default() -> Self {
        Self {
            name: "local".to_owned(),
            location: "local".to_owned(),
            path: PathBuf::from("data/lxc"),
            cores: 2,
            memory_mb: 2048,
            disk_gb: 20,
        }
    }
}
