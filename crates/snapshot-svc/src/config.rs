//! snapshot-svc configuration.

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
    /// Where server-svc and node-svc are (`VPS_PEERS__SERVER`, `VPS_PEERS__NODE`).
    pub peers: platform::peers::Peers,
    /// NATS with JetStream, for the outbox relay. Without it events wait in the outbox.
    pub nats_url: Option<SecretString>,
    /// Where backup archives go (`backup_target.*`).
    pub backup_target: TargetConfig,
    /// Snapshots a server may keep (those that failed do not count).
    pub snapshot_limit: u32,
    /// Completed, unprotected backups a server may keep; a new one beyond it rotates the
    /// oldest out.
    pub backup_limit: u32,
    /// How often the scheduler looks for backups that are due.
    pub schedule_tick_secs: u64,
    /// For tests and drills only: every schedule fires every this many seconds instead of
    /// daily or weekly (its retention is kept).
    pub schedule_every_secs: Option<u64>,
    /// How long a guest may take to shut down cleanly, before a restore, before it is
    /// stopped hard.
    pub stop_grace_secs: u32,
    /// Saga steps that fail on purpose (fault injection, as for server-svc): e.g.
    /// `snapshot:take`, `backup:archive:halt`.
    pub faults: Vec<String>,
    /// Caller-token keys (`VPS_CALLER__*`; see docs/grpc.md).
    pub caller: platform::auth::KeyConfig,
    /// How long a replica's hold on a saga or the scheduler lasts without renewal.
    pub lease_ttl_secs: u64,
    /// How often each replica looks for sagas nobody drives.
    pub resume_interval_secs: u64,
}

/// A backup target: a directory (the default, `data/backups`) or an S3-compatible bucket.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct TargetConfig {
    /// `directory` or `s3`.
    pub kind: String,
    /// `directory`: where archives go (made if missing).
    pub path: PathBuf,
    /// `s3`: the bucket, its endpoint (empty: AWS), region and credentials.
    pub bucket: String,
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: Option<SecretString>,
    /// `s3`: a key prefix for every archive (e.g. `vps/`).
    pub prefix: String,
}

impl Default for TargetConfig {
    fn default() -> Self {
        Self {
            kind: "directory".to_owned(),
            path: PathBuf::from("data/backups"),
            bucket: String::new(),
            endpoint: String::new(),
            region: "us-east-1".to_owned(),
            access_key_id: String::new(),
            secret_access_key: None,
            prefix: String::new(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50053)),
            metrics_listen: None,
            database_url: "sqlite://data/snapshot.db?mode=rwc".to_owned(),
            database_max_connections: 10,
            peers: platform::peers::Peers::default(),
            nats_url: None,
            backup_target: TargetConfig::default(),
            snapshot_limit: 5,
            backup_limit: 10,
            schedule_tick_secs: 30,
            schedule_every_secs: None,
            stop_grace_secs: 30,
            faults: Vec::new(),
            caller: platform::auth::KeyConfig::default(),
            lease_ttl_secs: 60,
            resume_interval_secs: 15,
        }
    }
}
