//! identity-svc: users, credentials and credits behind the `vps.identity.v1.Identity` gRPC API.
//!
//! Layers: `grpc` (transport, thin) -> `app` (rules: users, sessions, authentication,
//! credentials, credits, service accounts) -> `store` (sea-orm persistence); `domain` holds
//! validation and credential formats, free of I/O. The same shape as server-svc's.

mod app;
mod config;
mod domain;
mod error;
mod grpc;
mod store;

use std::sync::Arc;

use platform::Shutdown;
use tokio::net::TcpListener;

pub use config::{AdminBootstrap, Config};

/// Starts identity-svc on `config.listen` and serves until `shutdown` triggers.
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
    let auth = platform::auth::CallerAuth::load(platform::auth::Service::Identity, &config.caller)?;
    let app = Arc::new(app::Identity::start(&config, auth.minter.clone()).await?);
    let mut host = platform::host::ServiceHost::new("identity-svc", shutdown);
    host.metrics(config.metrics_listen, None).await?;
    host.serving::<proto::identity::v1::identity_server::IdentityServer<grpc::IdentityService>>()
        .await;
    let router = host
        .grpc()?
        .add_service(tonic::service::interceptor::InterceptedService::new(
            grpc::IdentityService::new(app.clone()).into_server(),
            auth.verifier,
        ))
        .add_service(grpc::CallerTokensService::new(app).into_server());
    host.serve_grpc(router, listener).await
}
