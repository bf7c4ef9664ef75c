//! node-svc: the node registry, placement, IP pools and the hypervisor drivers, behind the
//! `vps.node.v1.Nodes` gRPC API. The only service that holds hypervisor credentials.
//!
//! Layers: `grpc` (transport, thin) -> `app` (rules) -> `store` (sea-orm persistence);
//! `driver` holds the `Hypervisor` trait and its drivers.

mod app;
mod config;
mod domain;
pub mod driver;
mod error;
mod fleet;
mod grpc;
mod sessions;
mod store;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use platform::Shutdown;
use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;

pub use config::{Config, LocalLxc};
pub use sessions::ConsoleLimits;

/// Starts node-svc on `config.listen` and serves until `shutdown` triggers.
pub async fn serve(config: Config, shutdown: Shutdown) -> anyhow::Result<()> {
    let listener = platform::grpc::bind(config.listen).await?;
    serve_on(listener, config, shutdown).await
}

/// Serves on an already bound listener (tests bind port 0 and pass it in).
pub async fn serve_on(
    listener: TcpListener,
    config: Config,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let verifier =
        platform::auth::CallerAuth::load(platform::auth::Service::Node, &config.caller)?.verifier;
    let sealer = platform::crypto::Sealer::configured(
        config.credentials_key.as_ref(),
        config.credentials_key_previous.as_ref(),
    )
    .context("credentials_key")?;
    let db = platform::db::connect_and_migrate::<store::migration::Migrator>(
        &config.database_url,
        config.database_max_connections,
    )
    .await?;
    if let Some(sealer) = sealer.as_ref().filter(|s| s.has_previous()) {
        let resealed =
            platform::crypto::reseal_column(&db, "nodes", "id", "credentials", sealer).await?;
        tracing::info!(
            nodes = resealed,
            "node credentials sealed under the previous key are sealed under the current one"
        );
    }
    let app = Arc::new(app::Nodes::new(db, sealer));
    if let Some(local) = &config.local_lxc {
        app.ensure_local_lxc(local)
            .await
            .context("registering the local LXC node")?;
    }
    let fleet = Arc::new(fleet::Fleet::new(
        app.clone(),
        Duration::from_secs(config.node_timeout_secs.max(1)),
        config.node_concurrency,
    ));
    let mut host = platform::host::ServiceHost::new("node-svc", shutdown.clone());
    host.metrics(config.metrics_listen, None).await?;
    host.spawn(
        "node probes",
        fleet
            .clone()
            .probes(Duration::from_secs(config.probe_interval_secs), shutdown),
    );
    let sessions = Arc::new(sessions::Sessions::new(config.console));
    host.serving::<proto::node::v1::nodes_server::NodesServer<grpc::NodeService>>()
        .await;
    host.serving::<proto::node::v1::guests_server::GuestsServer<grpc::GuestService>>()
        .await;
    let router = host
        .grpc()?
        .add_service(InterceptedService::new(
            grpc::NodeService::new(app.clone()).into_server(),
            verifier.clone(),
        ))
        .add_service(InterceptedService::new(
            grpc::GuestService::new(fleet.clone(), sessions.clone()).into_server(),
            verifier.clone(),
        ))
        .add_service(InterceptedService::new(
            grpc::ConsoleService::new(app, fleet, sessions).into_server(),
            verifier,
        ));
    host.serve_grpc(router, listener).await
}
