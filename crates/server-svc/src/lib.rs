//! server-svc: servers, plans, OS images, tasks, lifecycle sagas and the outbox, behind the
//! `vps.server.v1.Servers` gRPC API.
//!
//! Layers: `grpc` (transport, thin) -> `app` (rules, sagas, billing) -> `store` (sea-orm);
//! `domain` holds the state machine, the catalog and validation, free of I/O.

pub mod app;
mod config;
pub mod domain;
pub mod error;
pub mod grpc;
mod store;

use std::sync::Arc;

use anyhow::Context as _;
use platform::Shutdown;
use secrecy::ExposeSecret as _;
use tokio::net::TcpListener;

pub use config::{Config, QuotaDefaults};

/// Starts server-svc on `config.listen` and serves until `shutdown` triggers.
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
    let sealer = config
        .secrets_key
        .as_ref()
        .context("server-svc needs secrets_key (32 bytes, base64) to encrypt root passwords")
        .and_then(|key| platform::crypto::Sealer::from_base64(key.expose_secret()))
        .context("secrets_key")?;
    let sealer = match &config.secrets_key_previous {
        Some(previous) => sealer
            .with_previous(previous.expose_secret())
            .context("secrets_key_previous")?,
        None => sealer,
    };
    let catalog = match &config.catalog_path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the catalog {}", path.display()))?;
            Some(
                domain::catalog::Catalog::from_toml(&text)
                    .map_err(|e| anyhow::anyhow!("catalog {}: {e}", path.display()))?,
            )
        }
        None => None,
    };
    let mut host = platform::host::ServiceHost::new("server-svc", shutdown.clone());
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
    let auth = platform::auth::CallerAuth::load(platform::auth::Service::Server, &config.caller)?;
    let app = app::App::new(db, sealer, &auth, Arc::new(config), shutdown.clone())?;
    if let Some(catalog) = &catalog {
        app.seed_catalog(catalog)
            .await
            .map_err(|e| anyhow::anyhow!("seeding the catalog: {}", platform::grpc::chain(&e)))?;
    }
    let resumed = app
        .resume_tasks()
        .await
        .map_err(|e| anyhow::anyhow!("resuming tasks: {}", platform::grpc::chain(&e)))?;
    if resumed > 0 {
        tracing::info!(resumed, "resumed unfinished tasks");
    }
    host.spawn("saga resumer", app.resumer());
    host.spawn("billing", app.billing());
    // Sagas stop at their next step boundary and release their leases: wait for them.
    let draining = app.clone();
    host.on_drain(async move { draining.drain(platform::host::DRAIN_LIMIT).await });
    host.serving::<proto::server::v1::servers_server::ServersServer<grpc::ServerService>>()
        .await;
    let router = host
        .grpc()?
        .add_service(tonic::service::interceptor::InterceptedService::new(
            grpc::ServerService::new(app).into_server(),
            auth.verifier,
        ));
    host.serve_grpc(router, listener).await
}
