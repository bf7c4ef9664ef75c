//! snapshot-svc: snapshots and backups of servers, backup schedules with retention, and the
//! sagas that take and restore them, behind the `vps.snapshot.v1.Snapshots` gRPC API.
//!
//! Layers: `grpc` (transport, thin) -> `app` (rules, sagas, the scheduler) -> `store`
//! (sea-orm); `domain` holds names, slots and retention, free of I/O; `target` is where
//! archives are kept (a directory or an S3-compatible bucket).

pub mod app;
mod config;
pub mod domain;
pub mod error;
pub mod grpc;
mod store;
pub mod target;

use std::sync::Arc;

use platform::Shutdown;
use secrecy::ExposeSecret as _;
use tokio::net::TcpListener;

pub use config::{Config, TargetConfig};

/// Starts snapshot-svc on `config.listen` and serves until `shutdown` triggers.
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
    let mut host = platform::host::ServiceHost::new("snapshot-svc", shutdown.clone());
    host.metrics(config.metrics_listen, None).await?;
    let db = platform::db::connect_and_migrate::<store::migration::Migrator>(
        &config.database_url,
        config.database_max_connections,
    )
    .await?;
    if let Some(nats_url) = &config.nats_url {
        let client = platform::outbox::connect(nats_url.expose_secret()).await?;
        let js = async_nats::jetstream::new(client);
        platform::outbox::ensure_stream(&js).await?;
        let relay = platform::outbox::Relay::new(db.clone(), js);
        host.spawn("outbox relay", relay.run(shutdown.clone()));
    }
    let target = target::Target::open(&config.backup_target)?;
    let auth = platform::auth::CallerAuth::load(platform::auth::Service::Snapshot, &config.caller)?;
    let app = app::App::new(db, &auth, target, Arc::new(config), shutdown.clone())?;
    let resumed = app
        .resume_tasks()
        .await
        .map_err(|e| anyhow::anyhow!("resuming tasks: {}", platform::grpc::chain(&e)))?;
    if resumed > 0 {
        tracing::info!(resumed, "resumed unfinished tasks");
    }
    host.spawn("saga resumer", app.resumer());
    host.spawn("backup scheduler", app.scheduler());
    let draining = app.clone();
    host.on_drain(async move { draining.drain(platform::host::DRAIN_LIMIT).await });
    host.serving::<proto::snapshot::v1::snapshots_server::SnapshotsServer<grpc::SnapshotService>>()
        .await;
    let router = host
        .grpc()?
        .add_service(tonic::service::interceptor::InterceptedService::new(
            grpc::SnapshotService::new(app).into_server(),
            auth.verifier,
        ));
    host.serve_grpc(router, listener).await
}
