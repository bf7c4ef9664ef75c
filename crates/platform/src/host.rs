//! What every service's `serve` shares: health and reflection on its gRPC server,
//! background work that is awaited on shutdown, and the order of stopping: stop taking
//! calls, let long work reach a boundary (sagas at a step), then wait for the background
//! loops (which watch the same shutdown) to end.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tonic::server::NamedService;
use tonic_health::server::HealthReporter;

use crate::Shutdown;

/// How long a stopping service waits for its background work before it gives up on it.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(30);

type Drain = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A service while it runs.
pub struct ServiceHost {
    name: &'static str,
    shutdown: Shutdown,
    background: JoinSet<&'static str>,
    /// In a mutex only so the host is `Sync` (its futures are `Send` only).
    drains: std::sync::Mutex<Vec<Drain>>,
    health: HealthReporter,
    health_service:
        tonic_health::pb::health_server::HealthServer<tonic_health::server::HealthService>,
}

impl ServiceHost {
    pub fn new(name: &'static str, shutdown: Shutdown) -> Self {
        let health = HealthReporter::new();
        let health_service = tonic_health::pb::health_server::HealthServer::new(
            tonic_health::server::HealthService::from_health_reporter(health.clone()),
        );
        Self {
            name,
            shutdown,
            background: JoinSet::new(),
            drains: std::sync::Mutex::new(Vec::new()),
            health,
            health_service,
        }
    }

    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    /// Runs `work` in the background; it must end soon after shutdown triggers (loops
    /// select on [`Shutdown::wait`]), and stopping waits for it.
    pub fn spawn(&mut self, what: &'static str, work: impl Future<Output = ()> + Send + 'static) {
        self.background.spawn(async move {
            work.await;
            what
        });
    }

    /// Work to wait for once the service stops taking calls (sagas reaching a step
    /// boundary), before the background loops are waited for.
    pub fn on_drain(&mut self, work: impl Future<Output = ()> + Send + 'static) {
        if let Ok(drains) = self.drains.get_mut() {
            drains.push(Box::pin(work));
        }
    }

    /// Serves Prometheus metrics on `addr` (if set) while the service runs; `extra` adds
    /// the service's own lines to the page.
    pub async fn metrics(
        &mut self,
        addr: Option<std::net::SocketAddr>,
        extra: Option<crate::metrics::Extra>,
    ) -> anyhow::Result<()> {
        if let Some(addr) = addr {
            let listener = crate::grpc::bind(addr).await?;
            let shutdown = self.shutdown.clone();
            self.spawn("metrics", crate::metrics::serve(listener, extra, shutdown));
        }
        Ok(())
    }

    /// Reports the gRPC service `S` as serving to health checks.
    pub async fn serving<S: NamedService>(&self) {
        self.health.set_serving::<S>().await;
    }

    /// A gRPC server with the project's defaults, health checks and reflection.
    pub fn grpc(&self) -> anyhow::Result<crate::grpc::Router> {
        Ok(crate::grpc::server(self.name)
            .add_service(self.health_service.clone())
            .add_service(crate::grpc::reflection(proto::FILE_DESCRIPTOR_SET)?))
    }

    /// Serves `router` on `listener` until shutdown, then stops as described above.
    pub async fn serve_grpc(
        self,
        router: crate::grpc::Router,
        listener: TcpListener,
    ) -> anyhow::Result<()> {
        tracing::info!(addr = %listener.local_addr()?, "{} listening", self.name);
        let served = crate::grpc::serve(router, listener, self.shutdown.clone()).await;
        self.stop().await;
        served
    }

    /// Stops: triggers shutdown (for a server that ended on its own), drains, and waits
    /// for the background work, [`DRAIN_LIMIT`] at most.
    pub async fn stop(mut self) {
        self.shutdown.trigger();
        let _ = self
            .health
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
        let deadline = tokio::time::Instant::now() + DRAIN_LIMIT;
        let drains = self
            .drains
            .get_mut()
            .map(std::mem::take)
            .unwrap_or_default();
        let drains = futures_util::future::join_all(drains);
        if tokio::time::timeout_at(deadline, drains).await.is_err() {
            tracing::warn!(
                service = self.name,
                "stopping before long work reached a boundary"
            );
        }
        loop {
            match tokio::time::timeout_at(deadline, self.background.join_next()).await {
                Ok(Some(Ok(what))) => tracing::debug!(service = self.name, what, "stopped"),
                Ok(Some(Err(error))) => {
                    tracing::error!(service = self.name, %error, "background work failed");
                }
                Ok(None) => break,
                Err(_) => {
                    tracing::warn!(
                        service = self.name,
                        left = self.background.len(),
                        "background work did not stop in time; abandoning it"
                    );
                    self.background.abort_all();
                    break;
                }
            }
        }
    }
}
