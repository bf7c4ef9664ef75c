//! server-svc's rules: the catalog, servers and their actions, the sagas that carry them out,
//! idempotency keys and billing. Transport-free; `grpc` decodes and encodes around it.

mod billing;
mod catalog;
mod events;
mod holds;
mod idempotency;
mod monitoring;
mod quotas;
mod saga;
mod servers;

use std::sync::Arc;

use platform::Shutdown;
use platform::auth::{CallerAuth, Service, Sign};
use platform::crypto::Sealer;
use platform::grpc::Caller;
use platform::grpc::Channel;
use sea_orm::DatabaseConnection;
use tonic::service::interceptor::InterceptedService;

use crate::config::Config;
use crate::domain::catalog::{Image, Plan};
use crate::error::{Result, ServerError};
use crate::store::entity::server;

pub use billing::BillingPass;
pub use proto::ids::{NodeId, ServerId, TaskId, UserId};

/// How a caller names a server: by its id, or by its UUID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerKey {
    Id(ServerId),
    Uuid(String),
}

impl ServerKey {
    /// A server of this service's own rows.
    pub fn of(server: &server::Model) -> Self {
        Self::Id(ServerId::stored(server.id))
    }
}
pub use holds::Held;
pub use monitoring::UsageView;
pub use quotas::QuotaView;
pub use saga::steps;
pub use servers::{ActParams, ActionReply, ListServers, NewServer, ServerPage, ServerView, Update};

pub type IdentityClient =
    proto::identity::v1::identity_client::IdentityClient<InterceptedService<Channel, Sign>>;
pub type NodesClient =
    proto::node::v1::nodes_client::NodesClient<InterceptedService<Channel, Sign>>;
pub type GuestsClient =
    proto::node::v1::guests_client::GuestsClient<InterceptedService<Channel, Sign>>;
pub type SnapshotsClient =
    proto::snapshot::v1::snapshots_client::SnapshotsClient<InterceptedService<Channel, Sign>>;
pub type MonitorClient =
    proto::monitor::v1::monitor_client::MonitorClient<InterceptedService<Channel, Sign>>;
pub type ConsolesClient =
    proto::node::v1::consoles_client::ConsolesClient<InterceptedService<Channel, Sign>>;

pub struct App {
    db: DatabaseConnection,
    identity: IdentityClient,
    nodes: NodesClient,
    guests: GuestsClient,
    consoles: ConsolesClient,
    snapshots: SnapshotsClient,
    monitor: MonitorClient,
    sealer: Sealer,
    config: Arc<Config>,
    /// The sagas that carry out tasks.
    sagas: platform::saga::Engine<App>,
    /// This replica's leases on singleton work (billing).
    leases: platform::lease::LeaseHolder,
    shutdown: Shutdown,
}

impl App {
    pub fn new(
        db: DatabaseConnection,
        sealer: Sealer,
        auth: &CallerAuth,
        config: Arc<Config>,
        shutdown: Shutdown,
    ) -> anyhow::Result<Arc<Self>> {
        let identity_channel = config
            .peers
            .channel(Service::Identity, std::time::Duration::from_secs(30))?;
        // node-svc bounds each guest call by its own per-node time-out (120 s by default)
        // and a stop may take its whole grace first: wait longer than both.
        let node_channel = config.peers.channel(
            Service::Node,
            std::time::Duration::from_secs(180 + u64::from(config.stop_grace_secs)),
        )?;
        // A server that starts from a backup waits for its archive to be checked and put
        // into the guest, which takes as long as the archive is large.
        let snapshot_channel = config
            .peers
            .channel(Service::Snapshot, std::time::Duration::from_secs(6 * 3600))?;
        // Status reads wait for monitor-svc briefly: it answers from its own database.
        let monitor_channel = config
            .peers
            .channel(Service::Monitor, std::time::Duration::from_secs(5))?;
        let leases = platform::lease::LeaseHolder::new(
            db.clone(),
            std::time::Duration::from_secs(config.billing_tick_secs.max(1) * 3 + 10),
        );
        let sagas = saga::engine(&db, &config, shutdown.clone())?;
        Ok(Arc::new(Self {
            leases,
            sagas,
            db,
            identity: proto::identity::v1::identity_client::IdentityClient::with_interceptor(
                identity_channel,
                auth.sign_for(Service::Identity),
            ),
            nodes: proto::node::v1::nodes_client::NodesClient::with_interceptor(
                node_channel.clone(),
                auth.sign_for(Service::Node),
            ),
            guests: proto::node::v1::guests_client::GuestsClient::with_interceptor(
                node_channel.clone(),
                auth.sign_for(Service::Node),
            ),
            consoles: proto::node::v1::consoles_client::ConsolesClient::with_interceptor(
                node_channel,
                auth.sign_for(Service::Node),
            ),
            snapshots: proto::snapshot::v1::snapshots_client::SnapshotsClient::with_interceptor(
                snapshot_channel,
                auth.sign_for(Service::Snapshot),
            ),
            monitor: proto::monitor::v1::monitor_client::MonitorClient::with_interceptor(
                monitor_channel,
                auth.sign_for(Service::Monitor),
            ),
            sealer,
            config,
            shutdown,
        }))
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Whose servers a caller may see: their own, or any (`None`) for an administrator. A
    /// server being deleted is gone from view; it reappears only if the deletion fails (in
    /// `error`, with the reason).
    fn visible_to(caller: Caller) -> Option<i64> {
        (!caller.admin).then_some(caller.user_id)
    }

    /// One server the caller may see. A foreign or deleted server is "not found", never
    /// someone else's data.
    async fn visible_server(&self, caller: Caller, key: &ServerKey) -> Result<server::Model> {
        let key = match key {
            ServerKey::Id(id) => crate::store::servers::Key::Id(id.get()),
            ServerKey::Uuid(uuid) => crate::store::servers::Key::Uuid(uuid),
        };
        crate::store::servers::find_visible(&self.db, Self::visible_to(caller), key)
            .await?
            .ok_or(ServerError::NotFound("server"))
    }

    async fn plan_and_image(
        &self,
        server: &server::Model,
    ) -> Result<(Option<Plan>, Option<Image>)> {
        Ok(tokio::try_join!(
            crate::store::catalog::plan(&self.db, server.plan_id),
            crate::store::catalog::image(&self.db, server.image_id),
        )?)
    }
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
