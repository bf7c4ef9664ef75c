//! notify-svc: customer communication. A durable JetStream consumer turns the business
//! events and alerts into mails (exactly one per event and recipient), a sender delivers
//! them over SMTP with retries, and support tickets live here, behind the
//! `vps.notify.v1.Notify`, `Tickets` and `Webhooks` gRPC APIs. Webhooks follow the
//! Standard Webhooks specification.
//!
//! Layers: `grpc` (transport, thin) -> `app` (consumer, sender, preferences, tickets) ->
//! `store` (sea-orm); `domain` decides which event makes which mail, free of I/O.

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

pub use config::{Config, MailConfig, SmtpConfig, Tls};

/// Starts notify-svc on `config.listen` and serves until `shutdown` triggers.
pub async fn serve(config: Config, shutdown: Shutdown) -> anyhow::Result<()> {
    let listener = platform::grpc::bind(config.listen).await?;
    serve_on(listener, config, shutdown).await
}

/// Serves gRPC on an already bound listener (tests bind port 0 and pass it in).
pub async fn serve_on(
    listener: TcpListener,
    config: Config,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    config.check()?;
    let mut host = platform::host::ServiceHost::new("notify-svc", shutdown.clone());
    host.metrics(config.metrics_listen, None).await?;
    let db = platform::db::connect_and_migrate::<store::migration::Migrator>(
        &config.database_url,
        config.database_max_connections,
    )
    .await?;
    let auth = platform::auth::CallerAuth::load(platform::auth::Service::Notify, &config.caller)?;
    let nats = match &config.nats_url {
        Some(url) => Some(platform::outbox::connect(url.expose_secret()).await?),
        None => None,
    };
    let app = app::App::new(db.clone(), &auth, Arc::new(config), shutdown.clone())?;
    app.reseal().await?;
    if let Some(client) = nats {
        let js = async_nats::jetstream::new(client.clone());
        platform::outbox::ensure_stream(&js).await?;
        let relay = platform::outbox::Relay::new(db, js.clone());
        host.spawn("outbox relay", relay.run(shutdown.clone()));
        host.spawn("event consumer", Arc::clone(&app).consume_loop(client));
    }
    host.spawn("mail sender", Arc::clone(&app).send_loop());
    host.spawn("webhook deliverer", Arc::clone(&app).deliver_loop());
    host.serving::<proto::notify::v1::notify_server::NotifyServer<grpc::NotifyService>>()
        .await;
    host.serving::<proto::notify::v1::tickets_server::TicketsServer<grpc::NotifyService>>()
        .await;
    host.serving::<proto::notify::v1::webhooks_server::WebhooksServer<grpc::NotifyService>>()
        .await;
    let service = grpc::NotifyService::new(app);
    let router = host
        .grpc()?
        .add_service(tonic::service::interceptor::InterceptedService::new(
            service.clone().into_server(),
            auth.verifier.clone(),
        ))
        .add_service(tonic::service::interceptor::InterceptedService::new(
            service.clone().into_tickets(),
            auth.verifier.clone(),
        ))
        .add_service(tonic::service::interceptor::InterceptedService::new(
            service.into_webhooks(),
            auth.verifier,
        ));
    host.serve_grpc(router, listener).await
}
