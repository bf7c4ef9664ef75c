//! monitor-svc: the poll loop (one batched call per node and cycle, nodes split between
//! replicas by leases), samples kept in tiers, traffic per calendar month, threshold alerts,
//! and per-server Prometheus metrics, behind the `vps.monitor.v1.Monitor` gRPC API.
//!
//! Layers: `grpc` (transport, thin) -> `app` (the loop, a node's cycle, reads, metrics) ->
//! `store` (sea-orm); `domain` holds rates, traffic, alert rules, tiers and node
//! assignment, free of I/O.

pub mod app;
mod config;
pub mod domain;
pub mod error;
pub mod grpc;
#[doc(hidden)]
pub mod store;

use std::sync::Arc;

use platform::Shutdown;
use secrecy::ExposeSecret as _;
use tokio::net::TcpListener;

pub use config::{AlertConfig, Config};

/// Starts monitor-svc on `config.listen` and serves until `shutdown` triggers.
pub async fn serve(config: Config, shutdown: Shutdown) -> anyhow::Result<()> {
    let listener = platform::grpc::bind(config.listen).await?;
    serve_on(listener, config, shutdown).await
}

/// Serves gRPC on an already bound listener (tests bind port 0 and pass it in), and the
/// metrics on `metrics_listen` if set.
pub async fn serve_on(
    listener: TcpListener,
    config: Config,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    config.check()?;
    let metrics_listen = config.metrics_listen;
    let mut host = platform::host::ServiceHost::new("monitor-svc", shutdown.clone());
    let db = platform::db::connect_and_migrate::<store::migration::Migrator>(
        &config.database_url,
        config.database_max_connections,
    )
    .await?;
    let nats = match &config.nats_url {
        Some(url) => {
            let client = platform::outbox::connect(url.expose_secret()).await?;
            let js = async_nats::jetstream::new(client.clone());
            platform::outbox::ensure_stream(&js).await?;
            let relay = platform::outbox::Relay::new(db.clone(), js);
            host.spawn("outbox relay", relay.run(shutdown.clone()));
            Some(client)
        }
        None => None,
    };
    let auth = platform::auth::CallerAuth::load(platform::auth::Service::Monitor, &config.caller)?;
    let app = app::App::new(db, &auth, nats, Arc::new(config), shutdown.clone())?;
    host.spawn("poll loop", Arc::clone(&app).poll_loop());
    host.spawn("sample pruning", Arc::clone(&app).prune_loop());
    let per_server: platform::metrics::Extra = {
        let app = Arc::clone(&app);
        Arc::new(move || app.render_metrics())
    };
    host.metrics(metrics_listen, Some(per_server)).await?;
    host.serving::<proto::monitor::v1::monitor_server::MonitorServer<grpc::MonitorService>>()
        .await;
    let router = host
        .grpc()?
        .add_service(tonic::service::interceptor::InterceptedService::new(
            grpc::MonitorService::new(app).into_server(),
            auth.verifier,
        ));
    host.serve_grpc(router, listener).await
}
