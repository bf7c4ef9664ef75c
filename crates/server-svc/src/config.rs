//! server-svc configuration.

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
    /// Where identity-svc and node-svc are (`VPS_PEERS__IDENTITY`, `VPS_PEERS__NODE`).
    pub peers: platform::peers::Peers,
    /// NATS with JetStream, for the outbox relay. Without it events wait in the outbox.
    pub nats_url: Option<SecretString>,
    /// A TOML catalog (plans, images, locations) loaded at start: entries it lists that the
    /// database does not have yet are added; entries edited over the API are kept.
    pub catalog_path: Option<PathBuf>,
    /// 32 bytes, base64: encrypts root passwords at rest. Required.
    pub secrets_key: Option<SecretString>,
    /// Hostnames default to `<name>.<default_domain>`.
    pub default_domain: String,
    /// Length of a billing period (an hour in production; shorter in tests and drills).
    pub billing_period_secs: u64,
    /// How often the billing loop looks for periods that are due.
    pub billing_tick_secs: u64,
    /// How long a user whose balance ran out keeps running servers after the reminder.
    pub suspend_grace_secs: u64,
    /// A user whose balance covers fewer days than this of their running servers gets a
    /// low-balance reminder, once per episode; 0: none.
    pub low_balance_days: u32,
    /// How long a guest may take to shut down cleanly before it is stopped hard.
    pub stop_grace_secs: u32,
    /// How long a finished idempotency key is remembered.
    pub idempotency_ttl_secs: u64,
    /// Saga steps that fail on purpose (fault injection for tests and failure drills), e.g.
    /// `create:guest`; `create:start:halt` stops the saga there as if the process died;
    /// `create:guest:undo-fail` fails that step's first undo, `create:guest:undo-halt`
    /// stops the unwind after it. Each must name a real step of a real saga.
    pub faults: Vec<String>,
    /// Caller-token keys (`VPS_CALLER__*`; see docs/grpc.md).
    pub caller: platform::auth::KeyConfig,
    /// What a user may hold at once, unless an administrator set their own limits.
    pub quota: QuotaDefaults,
    /// A previous `secrets_key`: what it sealed can still be opened; nothing new uses it.
    pub secrets_key_previous: Option<SecretString>,
    /// How long a replica's hold on a saga lasts without renewal: a replica that dies
    /// leaves its sagas to the others after this long.
    pub lease_ttl_secs: u64,
    /// How often each replica looks for sagas nobody drives.
    pub resume_interval_secs: u64,
}

/// Default per-user quotas (`quota.*`).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct QuotaDefaults {
    pub servers: u32,
    pub cores: u32,
    pub memory_mb: u64,
    pub addresses: u32,
}

impl Default for QuotaDefaults {
    fn default() -> Self {
        Self {
            servers: 10,
            cores: 16,
            memory_mb: 32 * 1024,
            addresses: 10,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50052)),
            metrics_listen: None,
            database_url: "sqlite://data/server.db?mode=rwc".to_owned(),
            database_max_connections: 10,
            peers: platform::peers::Peers::default(),
            nats_url: None,
            catalog_path: None,
            secrets_key: None,
            default_domain: "vps.internal".to_owned(),
            billing_period_secs: 3600,
            billing_tick_secs: 30,
            suspend_grace_secs: 3 * 24 * 3600,
            low_balance_days: 3,
            stop_grace_secs: 30,
            idempotency_ttl_secs: 24 * 3600,
            faults: Vec::new(),
            caller: platform::auth::KeyConfig::default(),
            quota: QuotaDefaults::default(),
            secrets_key_previous: None,
            lease_ttl_secs: 60,
            resume_interval_secs: 15,
        }
    }
}
