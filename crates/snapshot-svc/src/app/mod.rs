//! snapshot-svc's rules: snapshots, backups and schedules, and the sagas that carry the work
//! out. Transport-free; `grpc` decodes and encodes around it.

mod backups;
mod events;
mod saga;
mod schedules;
mod snapshots;

use std::sync::Arc;

use platform::Shutdown;
use platform::auth::{CallerAuth, Service, Sign};
use platform::grpc::Caller;
use platform::grpc::Channel;
use proto::server::v1 as serverpb;
use sea_orm::DatabaseConnection;
use tonic::service::interceptor::InterceptedService;

use crate::config::Config;
use crate::error::{Result, SnapshotError};
use crate::target::Target;

pub use backups::{BackupView, BackupWork, Origin};
pub use saga::steps;
pub use schedules::ScheduleSpec;
pub use snapshots::{SnapshotKey, SnapshotView, SnapshotWork};

pub type ServersClient =
    proto::server::v1::servers_client::ServersClient<InterceptedService<Channel, Sign>>;
pub type GuestsClient =
    proto::node::v1::guests_client::GuestsClient<InterceptedService<Channel, Sign>>;

pub struct App {
    db: DatabaseConnection,
    servers: ServersClient,
    guests: GuestsClient,
    target: Target,
    config: Arc<Config>,
    sagas: platform::saga::Engine<App>,
    /// This replica's lease on the scheduler.
    leases: platform::lease::LeaseHolder,
    shutdown: Shutdown,
}

impl App {
    pub fn new(
        db: DatabaseConnection,
        auth: &CallerAuth,
        target: Target,
        config: Arc<Config>,
        shutdown: Shutdown,
    ) -> anyhow::Result<Arc<Self>> {
        let server_channel = config
            .peers
            .channel(Service::Server, std::time::Duration::from_secs(60))?;
        // Snapshots and restores stop and start guests; archives stream for as long as the
        // guest is large (those calls set no deadline of their own).
        let node_channel = config
            .peers
            .channel(Service::Node, std::time::Duration::from_secs(24 * 3600))?;
        let leases = platform::lease::LeaseHolder::new(
            db.clone(),
            std::time::Duration::from_secs(config.lease_ttl_secs.max(3)),
        );
        let sagas = saga::engine(&db, &config, shutdown.clone())?;
        Ok(Arc::new(Self {
            servers: proto::server::v1::servers_client::ServersClient::with_interceptor(
                server_channel,
                auth.sign_for(Service::Server),
            ),
            guests: proto::node::v1::guests_client::GuestsClient::with_interceptor(
                node_channel,
                auth.sign_for(Service::Node),
            ),
            db,
            target,
            config,
            sagas,
            leases,
            shutdown,
        }))
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Whose snapshots and backups a caller sees: their own, or anyone's (`None`).
    fn visible_to(caller: Caller) -> Option<i64> {
        (!caller.admin).then_some(caller.user_id)
    }

    /// A server the caller may see, as server-svc has it now: a foreign, missing or deleted
    /// server is "not found".
    async fn server_of(&self, caller: Caller, server_id: i64) -> Result<serverpb::Server> {
        if server_id <= 0 {
            return Err(SnapshotError::invalid(
                "server_id",
                "a server id is required",
            ));
        }
        let found = self
            .servers
            .clone()
            .get_server(Caller::SYSTEM.request(serverpb::ServerRef {
                id: server_id,
                uuid: String::new(),
            }))
            .await;
        let server = match found {
            Ok(reply) => reply.into_inner(),
            Err(status) if status.code() == tonic::Code::NotFound => {
                return Err(SnapshotError::NotFound("server"));
            }
            Err(status) => return Err(SnapshotError::Upstream(status)),
        };
        if !caller.admin && server.owner_id != caller.user_id {
            return Err(SnapshotError::NotFound("server"));
        }
        Ok(server)
    }

    /// The names of servers, for listings (a server gone meanwhile has none; one server-svc
    /// cannot answer for leaves its names out), a page of a thousand per call.
    async fn server_names(&self, mut ids: Vec<i64>) -> std::collections::HashMap<i64, String> {
        ids.sort_unstable();
        ids.dedup();
        let mut names = std::collections::HashMap::with_capacity(ids.len());
        let batch = usize::try_from(platform::page::MAX_LIMIT).unwrap_or(usize::MAX);
        for chunk in ids.chunks(batch) {
            let request = serverpb::ListServersRequest {
                ids: chunk.to_vec(),
                limit: platform::page::MAX_LIMIT,
                ..serverpb::ListServersRequest::default()
            };
            match self
                .servers
                .clone()
                .list_servers(Caller::SYSTEM.request(request))
                .await
            {
                Ok(reply) => names.extend(
                    reply
                        .into_inner()
                        .servers
                        .into_iter()
                        .map(|server| (server.id, server.name)),
                ),
                Err(status) => {
                    tracing::warn!(error = %status, "cannot name the servers of a listing");
                }
            }
        }
        names
    }
}

impl App {
    /// A task of snapshot-svc's the caller may see.
    pub async fn task(
        &self,
        caller: Caller,
        id: &str,
    ) -> Result<crate::store::entity::task::Model> {
        if id.is_empty() || id.len() > 64 {
            return Err(SnapshotError::NotFound("task"));
        }
        crate::store::tasks::find(&self.db, id)
            .await?
            .filter(|t| caller.admin || t.owner_id == caller.user_id)
            .ok_or(SnapshotError::NotFound("task"))
    }
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn new_task_id() -> String {
    format!("task_{}", uuid::Uuid::now_v7().simple())
}
