//! identity-svc configuration.

use std::net::SocketAddr;

use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Config {
    /// gRPC listen address.
    pub listen: SocketAddr,
    /// Where Prometheus metrics are served (`GET /metrics`); none when absent.
    pub metrics_listen: Option<SocketAddr>,
    /// `sqlite://path?mode=rwc` or `postgres://user:pass@host/db`.
    pub database_url: String,
    pub database_max_connections: u32,
    /// HMAC key for access tokens; at least 32 bytes. Required.
    pub jwt_secret: Option<SecretString>,
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_secs: u64,
    /// The first administrator, created on first start when no administrator exists.
    pub admin: AdminBootstrap,
    /// Whether people may open their own accounts (`POST /api/auth/register`); closed,
    /// only administrators create accounts.
    pub allow_registration: bool,
    /// Caller-token keys (`VPS_CALLER__*`; see docs/grpc.md).
    pub caller: platform::auth::KeyConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AdminBootstrap {
    pub username: String,
    pub email: Option<String>,
    pub password: Option<SecretString>,
    /// A Skyport API key for this administrator, registered if not yet known.
    pub api_key: Option<SecretString>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            metrics_listen: None,
            database_url: "sqlite://data/identity.db?mode=rwc".to_owned(),
            database_max_connections: 10,
            jwt_secret: None,
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            admin: AdminBootstrap::default(),
            allow_registration: true,
            caller: platform::auth::KeyConfig::default(),
        }
    }
}

impl Default for AdminBootstrap {
    fn default() -> Self {
        Self {
            username: "admin".to_owned(),
            email: None,
            password: None,
            api_key: None,
        }
    }
}
