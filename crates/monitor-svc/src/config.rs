//! monitor-svc configuration.

use std::net::SocketAddr;

use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Config {
    /// gRPC listen address.
    pub listen: SocketAddr,
    /// Prometheus metrics (`GET /metrics`); none when absent.
    pub metrics_listen: Option<SocketAddr>,
    pub database_url: String,
    pub database_max_connections: u32,
    /// Where node-svc and server-svc are (`VPS_PEERS__NODE`, `VPS_PEERS__SERVER`).
    pub peers: platform::peers::Peers,
    /// NATS: samples go out on core subjects, alerts through the outbox to JetStream.
    /// Without it nothing is published (alerts wait in the outbox).
    pub nats_url: Option<SecretString>,
    /// Caller-token keys (`VPS_CALLER__*`; see docs/grpc.md).
    pub caller: platform::auth::KeyConfig,
    /// How often every node is polled (seed 000: every 30 seconds).
    pub interval_ms: u64,
    /// How long one node may take to answer before its cycle is given up; well below the
    /// interval, so a dead node delays no other.
    pub node_timeout_ms: u64,
    /// A server whose latest sample is older than this shows `unknown`; 0: three intervals.
    pub stale_after_ms: u64,
    /// Thresholds in percent, and when an alert fires and clears.
    pub alerts: AlertConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AlertConfig {
    pub cpu_percent: f64,
    pub memory_percent: f64,
    pub disk_percent: f64,
    /// At or above this an alert is `critical` rather than `warning`.
    pub critical_percent: f64,
    /// An alert clears when its value falls below its threshold minus this.
    pub clear_margin_percent: f64,
    /// Samples in a row above the threshold before an alert fires.
    pub consecutive: u32,
    /// After an alert clears, it does not fire again for this long.
    pub cooldown_secs: u64,
}

impl Default for AlertConfig {
    fn default() -> Self {
        Self {
            cpu_percent: 90.0,
            memory_percent: 90.0,
            disk_percent: 90.0,
            critical_percent: 98.0,
            clear_margin_percent: 10.0,
            consecutive: 3,
            cooldown_secs: 300,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50055)),
            metrics_listen: None,
            database_url: "sqlite://data/monitor.db?mode=rwc".to_owned(),
            database_max_connections: 10,
            peers: platform::peers::Peers::default(),
            nats_url: None,
            caller: platform::auth::KeyConfig::default(),
            interval_ms: 30_000,
            node_timeout_ms: 10_000,
            stale_after_ms: 0,
            alerts: AlertConfig::default(),
        }
    }
}

impl Config {
    /// Refuses settings that cannot work, before anything starts.
    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.interval_ms >= 100, "interval_ms must be at least 100");
        anyhow::ensure!(
            self.node_timeout_ms > 0 && self.node_timeout_ms < self.interval_ms,
            "node_timeout_ms must be above 0 and below interval_ms"
        );
        let a = &self.alerts;
        for (name, v) in [
            ("alerts.cpu_percent", a.cpu_percent),
            ("alerts.memory_percent", a.memory_percent),
            ("alerts.disk_percent", a.disk_percent),
            ("alerts.critical_percent", a.critical_percent),
        ] {
            anyhow::ensure!(v > 0.0 && v <= 100.0, "{name} must be in (0, 100]");
        }
        anyhow::ensure!(
            a.clear_margin_percent >= 0.0 && a.clear_margin_percent < 100.0,
            "alerts.clear_margin_percent must be in [0, 100)"
        );
        anyhow::ensure!(a.consecutive >= 1, "alerts.consecutive must be at least 1");
        Ok(())
    }

    pub fn stale_after_ms(&self) -> u64 {
        if self.stale_after_ms > 0 {
            self.stale_after_ms
        } else {
            self.interval_ms * 3
        }
    }
}
