//! server-svc: servers, plans, OS images, tasks, lifecycle sagas and the outbox.
//!
//! Its gRPC API is not built yet: it serves gRPC health only, so deployments and the
//! launcher already run it in its place. The domain core (state machine, catalog,
//! validation) is here and tested; the API, sagas and persistence arrive with their issue.

pub mod domain;

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
            listen: SocketAddr::from(([127, 0, 0, 1], 50052)),
        }
    }
}

pub async fn serve(config: Config, shutdown: Shutdown) -> anyhow::Result<()> {
    let listener = platform::grpc::bind(config.listen).await?;
    serve_on(listener, shutdown).await
}

pub async fn serve_on(listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
    platform::grpc::serve_health_only("server-svc", listener, shutdown).await
}
