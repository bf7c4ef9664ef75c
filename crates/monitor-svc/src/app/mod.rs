//! monitor-svc's application layer: the poll loop (one batched call per node and cycle,
//! nodes split between replicas), what a cycle makes of a node's answer, status reads, and
//! the per-server metrics.

pub mod cycle;
pub mod metrics;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use platform::Shutdown;
use platform::auth::{Caller, CallerAuth, Service, Sign};
use platform::grpc::Channel;
use platform::lease::LeaseHolder;
use proto::monitor::v1 as pb;
use sea_orm::DatabaseConnection;
use tonic::service::interceptor::InterceptedService;

use crate::config::Config;
use crate::domain::{assign, tiers};
use crate::error::{MonitorError, Result};
use crate::store;

pub type ServersClient =
    proto::server::v1::servers_client::ServersClient<InterceptedService<Channel, Sign>>;
pub type GuestsClient =
    proto::node::v1::guests_client::GuestsClient<InterceptedService<Channel, Sign>>;
pub type NodesClient =
    proto::node::v1::nodes_client::NodesClient<InterceptedService<Channel, Sign>>;

const MEMBER_PREFIX: &str = "monitor:member:";
const NODE_PREFIX: &str = "monitor:node:";
const PRUNE_LEASE: &str = "monitor:prune";

pub struct App {
    db: DatabaseConnection,
    config: Arc<Config>,
    servers: ServersClient,
    guests: GuestsClient,
    nodes: NodesClient,
    nats: Option<async_nats::Client>,
    leases: LeaseHolder,
    /// What this replica polls: the latest sample of each server on its nodes, for
    /// `/metrics`, and how each node's last cycle went.
    pub(crate) polled: RwLock<HashMap<i64, metrics::NodeReadings>>,
    shutdown: Shutdown,
}

impl App {
    pub fn new(
        db: DatabaseConnection,
        auth: &CallerAuth,
        nats: Option<async_nats::Client>,
        config: Arc<Config>,
        shutdown: Shutdown,
    ) -> anyhow::Result<Arc<Self>> {
        // Each call is bounded by the node timeout; the channel's own limit is a backstop.
        let timeout = Duration::from_millis(config.node_timeout_ms.max(1000) * 2);
        let server_channel = config.peers.channel(Service::Server, timeout)?;
        let node_channel = config.peers.channel(Service::Node, timeout)?;
        // A replica's leases outlive three missed cycles; then its nodes pass to the others.
        let ttl = Duration::from_millis((config.interval_ms * 3).max(3000));
        Ok(Arc::new(Self {
            leases: LeaseHolder::new(db.clone(), ttl),
            db,
            servers: proto::server::v1::servers_client::ServersClient::with_interceptor(
                server_channel,
                auth.sign_for(Service::Server),
            ),
            guests: proto::node::v1::guests_client::GuestsClient::with_interceptor(
                node_channel.clone(),
                auth.sign_for(Service::Node),
            ),
            nodes: proto::node::v1::nodes_client::NodesClient::with_interceptor(
                node_channel,
                auth.sign_for(Service::Node),
            ),
            nats,
            config,
            polled: RwLock::new(HashMap::new()),
            shutdown,
        }))
    }

    pub fn replica(&self) -> &str {
        self.leases.owner()
    }

    /// The poll loop: every interval, this replica's share of the nodes, each polled
    /// concurrently and bounded by the node timeout. Runs until shutdown, then lets the
    /// nodes go at once so another replica takes them without waiting for the leases.
    pub async fn poll_loop(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_millis(self.config.interval_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let member = format!("{MEMBER_PREFIX}{}", self.replica());
        loop {
            tokio::select! {
                biased;
                () = self.shutdown.wait() => break,
                _ = tick.tick() => {}
            }
            if let Err(error) = self.cycle(&member).await {
                tracing::warn!(error = %platform::grpc::chain(&error), "poll cycle failed");
            }
        }
        let held: Vec<i64> = self
            .polled
            .read()
            .map(|p| p.keys().copied().collect())
            .unwrap_or_default();
        for node in held {
            let _ = self.leases.release(&format!("{NODE_PREFIX}{node}")).await;
        }
        let _ = self.leases.release(&member).await;
    }

    async fn cycle(self: &Arc<Self>, member: &str) -> Result<()> {
        self.leases.acquire(member).await?;
        let replicas: Vec<String> = self
            .leases
            .live(MEMBER_PREFIX)
            .await?
            .into_iter()
            .map(|(_, owner)| owner)
            .collect();
        let nodes = self.node_ids().await?;
        let mut polls = tokio::task::JoinSet::new();
        let mut mine = Vec::new();
        for node in &nodes {
            let lease = format!("{NODE_PREFIX}{node}");
            if assign::owner(*node, &replicas) != Some(self.replica()) {
                // Another replica's now: let it go, so it need not wait for the lease.
                if self.forget_node(*node) {
                    self.leases.release(&lease).await?;
                }
                continue;
            }
            if !self.leases.acquire(&lease).await? {
                // Still held by the replica that had it; it lets go within a cycle.
                continue;
            }
            mine.push(*node);
            let app = Arc::clone(self);
            let node = *node;
            polls.spawn(async move { app.poll_node(node).await });
        }
        // Nodes that are gone from the registry.
        let gone: Vec<i64> = self
            .polled
            .read()
            .map(|p| p.keys().copied().filter(|n| !nodes.contains(n)).collect())
            .unwrap_or_default();
        for node in gone {
            self.forget_node(node);
            self.leases.release(&format!("{NODE_PREFIX}{node}")).await?;
        }
        while polls.join_next().await.is_some() {}
        tracing::debug!(
            nodes = mine.len(),
            replicas = replicas.len(),
            "poll cycle done"
        );
        Ok(())
    }

    fn forget_node(&self, node: i64) -> bool {
        self.polled
            .write()
            .map(|mut p| p.remove(&node).is_some())
            .unwrap_or(false)
    }

    /// Every registered node, walking the pages.
    async fn node_ids(&self) -> Result<Vec<i64>> {
        let mut ids = Vec::new();
        let mut page_token = String::new();
        loop {
            let reply = self
                .nodes
                .clone()
                .list_nodes(Caller::SYSTEM.request(proto::node::v1::ListNodesRequest {
                    limit: 1000,
                    page_token,
                    ids: Vec::new(),
                }))
                .await
                .map_err(|s| {
                    MonitorError::Internal(anyhow::anyhow!("listing nodes: {}", s.message()))
                })?
                .into_inner();
            ids.extend(reply.nodes.iter().map(|n| n.id));
            if reply.next_page_token.is_empty() {
                return Ok(ids);
            }
            page_token = reply.next_page_token;
        }
    }

    /// Drops what has aged out of the tiers, on one replica at a time.
    pub async fn prune_loop(self: Arc<Self>) {
        let every = Duration::from_millis((self.config.interval_ms * 20).clamp(1000, 600_000));
        let app = Arc::clone(&self);
        self.leases
            .run_singleton(PRUNE_LEASE, every, self.shutdown.clone(), move || {
                let app = Arc::clone(&app);
                async move {
                    match store::prune(&app.db, chrono::Utc::now().timestamp()).await {
                        Ok(0) => {}
                        Ok(removed) => tracing::debug!(removed, "pruned samples"),
                        Err(error) => tracing::warn!(error = %error, "pruning samples failed"),
                    }
                }
            })
            .await;
    }

    /// The latest sample of a server and its points for `timeframe`.
    pub async fn stats(
        &self,
        server_id: i64,
        timeframe: pb::Timeframe,
        max: bool,
    ) -> Result<pb::Stats> {
        if server_id <= 0 {
            return Err(MonitorError::Invalid {
                field: "server_id",
                message: "a server id is required".to_owned(),
            });
        }
        let now = chrono::Utc::now();
        let latest = store::latest(&self.db, server_id).await?;
        let stale = latest.as_ref().is_none_or(|(at, _)| {
            now.timestamp_millis() - at
                > i64::try_from(self.config.stale_after_ms()).unwrap_or(i64::MAX)
        });
        let latest = latest.and_then(|(_, json)| serde_json::from_str::<pb::Sample>(&json).ok());
        let points = match tiers::window(timeframe, now.timestamp()) {
            None => Vec::new(),
            Some((tier, since)) => store::points(&self.db, server_id, tier, since, max)
                .await?
                .into_iter()
                .map(|v| pb::Point {
                    time: v.time,
                    cpu: v.cpu,
                    mem: v.mem,
                    maxmem: v.maxmem,
                    disk: v.disk,
                    maxdisk: v.maxdisk,
                    netin: v.netin,
                    netout: v.netout,
                    diskread: v.diskread,
                    diskwrite: v.diskwrite,
                })
                .collect(),
        };
        Ok(pb::Stats {
            latest,
            stale,
            points,
        })
    }

    pub fn poll_status(&self) -> pb::PollStatus {
        let mut nodes: Vec<pb::PolledNode> = self
            .polled
            .read()
            .map(|p| p.values().map(|n| n.status.clone()).collect())
            .unwrap_or_default();
        nodes.sort_by_key(|n| n.node_id);
        pb::PollStatus {
            replica: self.replica().to_owned(),
            nodes,
        }
    }
}
