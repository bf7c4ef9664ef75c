//! What every handler shares: service clients, the authenticator, rate limiters, config.

use std::sync::Arc;
use std::time::Duration;

use platform::grpc::Channel;
use proto::identity::v1::identity_client::IdentityClient as RawIdentityClient;
use tonic::service::interceptor::InterceptedService;

use platform::auth::{CallerAuth, Service};

use crate::auth::Authenticator;
use crate::config::Config;
use crate::ratelimit::RateLimit;

pub type IdentityClient = RawIdentityClient<InterceptedService<Channel, platform::auth::Sign>>;
pub type ConsolesClient = proto::node::v1::consoles_client::ConsolesClient<
    InterceptedService<Channel, platform::auth::Sign>,
>;
pub type NodesClient =
    proto::node::v1::nodes_client::NodesClient<InterceptedService<Channel, platform::auth::Sign>>;

pub type ServersClient = proto::server::v1::servers_client::ServersClient<
    InterceptedService<Channel, platform::auth::Sign>,
>;

pub type NotifyClient = proto::notify::v1::notify_client::NotifyClient<
    InterceptedService<Channel, platform::auth::Sign>,
>;
pub type TicketsClient = proto::notify::v1::tickets_client::TicketsClient<
    InterceptedService<Channel, platform::auth::Sign>,
>;
pub type WebhooksClient = proto::notify::v1::webhooks_client::WebhooksClient<
    InterceptedService<Channel, platform::auth::Sign>,
>;
pub type SnapshotsClient = proto::snapshot::v1::snapshots_client::SnapshotsClient<
    InterceptedService<Channel, platform::auth::Sign>,
>;

#[derive(Clone)]
pub struct AppState {
    pub identity: IdentityClient,
    pub servers: ServersClient,
    pub snapshots: SnapshotsClient,
    pub notify: NotifyClient,
    pub tickets: TicketsClient,
    pub webhooks: WebhooksClient,
    pub nodes: NodesClient,
    pub consoles: ConsolesClient,
    pub auth: Authenticator,
    pub reads: crate::reads::Reads,
    pub auth_rate: Arc<RateLimit>,
    /// The dashboard, when `web_dir` is set.
    pub web: Option<crate::web::WebFiles>,
    pub config: Arc<Config>,
}

impl AppState {
    pub fn new(config: Config) -> anyhow::Result<Self> {
        let caller_auth = CallerAuth::load(Service::Gateway, &config.caller)?;
        let timeout = Duration::from_secs(30);
        let channel = config.peers.channel(Service::Identity, timeout)?;
        let identity =
            RawIdentityClient::with_interceptor(channel, caller_auth.sign_for(Service::Identity));
        let auth = Authenticator::new(
            identity.clone(),
            Duration::from_millis(config.auth_cache_ttl_ms),
        );
        let auth_rate = Arc::new(RateLimit::per_minute(
            config.auth_rate_per_minute,
            config.auth_rate_burst,
        )?);
        let node_channel = config.peers.channel(Service::Node, timeout)?;
        let nodes = proto::node::v1::nodes_client::NodesClient::with_interceptor(
            node_channel.clone(),
            caller_auth.sign_for(Service::Node),
        );
        let consoles = proto::node::v1::consoles_client::ConsolesClient::with_interceptor(
            node_channel,
            caller_auth.sign_for(Service::Node),
        );
        let servers = proto::server::v1::servers_client::ServersClient::with_interceptor(
            config.peers.channel(Service::Server, timeout)?,
            caller_auth.sign_for(Service::Server),
        );
        // A backup restore answers once its archive is checked, which reads it whole.
        let snapshots = proto::snapshot::v1::snapshots_client::SnapshotsClient::with_interceptor(
            config
                .peers
                .channel(Service::Snapshot, Duration::from_secs(600))?,
            caller_auth.sign_for(Service::Snapshot),
        );
        let notify_channel = config.peers.channel(Service::Notify, timeout)?;
        let notify = proto::notify::v1::notify_client::NotifyClient::with_interceptor(
            notify_channel.clone(),
            caller_auth.sign_for(Service::Notify),
        );
        let tickets = proto::notify::v1::tickets_client::TicketsClient::with_interceptor(
            notify_channel.clone(),
            caller_auth.sign_for(Service::Notify),
        );
        let webhooks = proto::notify::v1::webhooks_client::WebhooksClient::with_interceptor(
            notify_channel,
            caller_auth.sign_for(Service::Notify),
        );
        Ok(Self {
            identity,
            notify,
            tickets,
            webhooks,
            servers,
            snapshots,
            nodes,
            consoles,
            auth,
            reads: crate::reads::Reads::new(config.read_cache_mb.saturating_mul(1 << 20)),
            auth_rate,
            web: config
                .web_dir
                .as_deref()
                .map(crate::web::WebFiles::open)
                .transpose()?,
            config: Arc::new(config),
        })
    }

    /// A fresh identity client handle (clones share one connection).
    pub fn identity(&self) -> IdentityClient {
        self.identity.clone()
    }

    pub fn servers(&self) -> ServersClient {
        self.servers.clone()
    }

    pub fn snapshots(&self) -> SnapshotsClient {
        self.snapshots.clone()
    }

    pub fn notify(&self) -> NotifyClient {
        self.notify.clone()
    }

    pub fn tickets(&self) -> TicketsClient {
        self.tickets.clone()
    }

    pub fn webhooks(&self) -> WebhooksClient {
        self.webhooks.clone()
    }

    pub fn nodes(&self) -> NodesClient {
        self.nodes.clone()
    }
}
