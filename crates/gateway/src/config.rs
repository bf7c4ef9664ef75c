//! Gateway configuration.

use std::net::SocketAddr;

use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Config {
    pub listen: SocketAddr,
    /// Where Prometheus metrics are served (`GET /metrics`); none when absent.
    pub metrics_listen: Option<SocketAddr>,
    /// Where the services are (`VPS_PEERS__IDENTITY`, `VPS_PEERS__SERVER`, ...).
    pub peers: platform::peers::Peers,
    /// How long a successful authentication is reused before identity-svc is asked again;
    /// the upper bound on how long a revoked credential keeps working on another replica.
    pub auth_cache_ttl_ms: u64,
    /// How much of rendered listings the gateway keeps to answer again while server-svc says
    /// they are unchanged (MB; 0 keeps none). See `reads`.
    pub read_cache_mb: u64,
    /// Requests per minute per client address on login, registration, refresh and token
    /// minting.
    pub auth_rate_per_minute: u32,
    /// How many of those may come at once before the rate applies.
    pub auth_rate_burst: u32,
    /// Largest accepted request body.
    pub body_limit_bytes: usize,
    pub request_timeout_secs: u64,
    /// Take the client address from the last `X-Forwarded-For` hop. Enable only behind a
    /// proxy that appends it.
    pub trust_forwarded_for: bool,
    /// Caller-token keys (`VPS_CALLER__*`; see docs/grpc.md): the gateway signs the callers
    /// it authenticated.
    pub caller: platform::auth::KeyConfig,
    /// NATS, for the live feed (`vps.stats.*`, `vps.alerts.*`); without it the Socket.IO
    /// feed accepts subscriptions but has nothing to send.
    pub nats_url: Option<SecretString>,
    /// The Socket.IO feed's limits.
    pub live: LiveConfig,
    /// The dashboard's built files (`web/dist`), served at `/`; none when absent.
    pub web_dir: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LiveConfig {
    /// Sockets one user may hold open at once.
    pub max_sockets_per_user: usize,
    /// Servers one socket may subscribe to.
    pub max_subscriptions_per_socket: usize,
    /// Largest message a client may send (bytes, polling and WebSocket alike).
    pub max_payload_bytes: usize,
    /// How often each socket's credential is checked again; a revoked session's sockets
    /// close within this.
    pub recheck_secs: u64,
}

impl Default for LiveConfig {
    fn default() -> Self {
        Self {
            max_sockets_per_user: 10,
            max_subscriptions_per_socket: 50,
            max_payload_bytes: 16 * 1024,
            recheck_secs: 30,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 5000)),
            metrics_listen: None,
            peers: platform::peers::Peers::default(),
            auth_cache_ttl_ms: 5_000,
            read_cache_mb: 32,
            auth_rate_per_minute: 30,
            auth_rate_burst: 10,
            body_limit_bytes: 64 * 1024,
            request_timeout_secs: 30,
            trust_forwarded_for: false,
            caller: platform::auth::KeyConfig::default(),
            nats_url: None,
            live: LiveConfig::default(),
            web_dir: None,
        }
    }
}
