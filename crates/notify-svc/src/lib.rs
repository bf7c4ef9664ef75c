//! notify-svc: email notifications from JetStream events.
//!
//! Not built yet: it serves gRPC health only, so deployments and the launcher already run
//! it in its place. Its API arrives with its issue.

use std::net::SocketAddr;

use platform::Shutdown;
use serde::Deserialize;
use tokio::net::TcpListener;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Config {
    /// gRPC listen address.
    pub listen: SocketAddr,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50056)),
        }
    }
}

pub async fn serve(config: Config, shutdown: Shutdown) -> anyhow::Result<()> {
    let listener = platform::grpc::bind(config.listen).await?;
    serve_on(listener, shutdown).await
}

pub async fn serve_on(listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
    platform::grpc::serve_health_only("notify-svc", listener, shutdown).await
}
