//! The whole stack in one process, wired in one place: every service's listen address,
//! peers, caller-token keys and database come from [`Configs::wire`], and [`spawn`] starts
//! any of them. `vps-stack` runs it on the embedded defaults; the end-to-end tests run the
//! same wiring on loopback port 0 with their own databases. A new service is added here
//! (its arm in `wire` and in `spawn`) and nowhere else.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use anyhow::Context as _;
use platform::Shutdown;
use platform::auth::{KeySet, Service};
use platform::peers::Peers;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// Every service's configuration. [`Configs::wire`] fills in what makes them one stack;
/// the rest (secrets, bootstrap, tuning) is the caller's.
#[derive(Debug, Clone, Default)]
pub struct Configs {
    pub gateway: gateway::Config,
    pub identity: identity_svc::Config,
    pub server: server_svc::Config,
    pub snapshot: snapshot_svc::Config,
    pub node: node_svc::Config,
    pub monitor: monitor_svc::Config,
    pub notify: notify_svc::Config,
}

/// A bound listener for each service, so every address is known before any service starts.
#[derive(Debug)]
pub struct Listeners(BTreeMap<&'static str, TcpListener>);

impl Listeners {
    /// Binds every service: the gateway at `gateway`, the others at `internal` on their
    /// ports from `port` (0: any free port).
    pub async fn bind(
        gateway: SocketAddr,
        internal: IpAddr,
        port: impl Fn(Service) -> u16,
    ) -> anyhow::Result<Self> {
        let mut bound = BTreeMap::new();
        for service in Service::ALL {
            let addr = if service == Service::Gateway {
                gateway
            } else {
                SocketAddr::new(internal, port(service))
            };
            bound.insert(service.name(), platform::grpc::bind(addr).await?);
        }
        Ok(Self(bound))
    }

    /// Every service on loopback at a free port (tests).
    pub async fn ephemeral() -> anyhow::Result<Self> {
        let loopback = IpAddr::from([127, 0, 0, 1]);
        Self::bind(SocketAddr::new(loopback, 0), loopback, |_| 0).await
    }

    /// Where `service` listens (reachable on loopback when bound to every address).
    pub fn addr(&self, service: Service) -> SocketAddr {
        let addr = self
            .0
            .get(service.name())
            .and_then(|l| l.local_addr().ok())
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], service.default_port())));
        if addr.ip().is_unspecified() {
            SocketAddr::new(IpAddr::from([127, 0, 0, 1]), addr.port())
        } else {
            addr
        }
    }

    /// Every service's gRPC URL.
    pub fn peers(&self) -> Peers {
        Peers::on(|service| format!("http://{}", self.addr(service)))
    }

    /// Takes a service's listener, to start it.
    pub fn take(&mut self, service: Service) -> anyhow::Result<TcpListener> {
        self.0
            .remove(service.name())
            .with_context(|| format!("no listener for {service}, or it was taken"))
    }
}

impl Configs {
    /// Makes the services one stack: their listen addresses and peers from `listeners`,
    /// their caller-token keys from `keys`, their databases from `database` (asked only
    /// for the services that keep one).
    pub fn wire(
        &mut self,
        listeners: &Listeners,
        keys: &KeySet,
        database: impl Fn(Service) -> String,
    ) {
        let peers = listeners.peers();
        let listen = |service| listeners.addr(service);

        self.gateway.listen = listen(Service::Gateway);
        self.gateway.peers = peers.clone();
        self.gateway.caller = keys.config_for(Service::Gateway);

        self.identity.listen = listen(Service::Identity);
        self.identity.database_url = database(Service::Identity);
        self.identity.caller = keys.config_for(Service::Identity);

        self.server.listen = listen(Service::Server);
        self.server.database_url = database(Service::Server);
        self.server.peers = peers.clone();
        self.server.caller = keys.config_for(Service::Server);

        self.node.listen = listen(Service::Node);
        self.node.database_url = database(Service::Node);
        self.node.caller = keys.config_for(Service::Node);

        self.snapshot.listen = listen(Service::Snapshot);
        self.snapshot.database_url = database(Service::Snapshot);
        self.snapshot.peers = peers.clone();
        self.snapshot.caller = keys.config_for(Service::Snapshot);

        self.monitor.listen = listen(Service::Monitor);
        self.monitor.database_url = database(Service::Monitor);
        self.monitor.peers = peers.clone();
        self.monitor.caller = keys.config_for(Service::Monitor);

        self.notify.listen = listen(Service::Notify);
        self.notify.database_url = database(Service::Notify);
        self.notify.peers = peers;
        self.notify.caller = keys.config_for(Service::Notify);
    }
}

/// What a started service ends with.
pub type Ended = (Service, anyhow::Result<()>);

/// Starts `service` from `configs` on its listener, until `shutdown`.
pub fn spawn(
    tasks: &mut JoinSet<Ended>,
    service: Service,
    configs: &Configs,
    listeners: &mut Listeners,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let listener = listeners.take(service)?;
    match service {
        Service::Gateway => {
            let config = configs.gateway.clone();
            tasks.spawn(async move {
                let result = gateway::serve_on(listener, config, shutdown).await;
                (service, result)
            });
        }
        Service::Identity => {
            let config = configs.identity.clone();
            tasks.spawn(async move {
                let result = identity_svc::serve_on(listener, config, shutdown).await;
                (service, result)
            });
        }
        Service::Server => {
            let config = configs.server.clone();
            tasks.spawn(async move {
                let result = server_svc::serve_on(listener, config, shutdown).await;
                (service, result)
            });
        }
        Service::Node => {
            let config = configs.node.clone();
            tasks.spawn(async move {
                let result = node_svc::serve_on(listener, config, shutdown).await;
                (service, result)
            });
        }
        Service::Snapshot => {
            let config = configs.snapshot.clone();
            tasks.spawn(async move {
                let result = snapshot_svc::serve_on(listener, config, shutdown).await;
                (service, result)
            });
        }
        Service::Monitor => {
            let config = configs.monitor.clone();
            tasks.spawn(async move {
                let result = monitor_svc::serve_on(listener, config, shutdown).await;
                (service, result)
            });
        }
        Service::Notify => {
            let config = configs.notify.clone();
            tasks.spawn(async move {
                let result = notify_svc::serve_on(listener, config, shutdown).await;
                (service, result)
            });
        }
    }
    Ok(())
}

/// Starts every service whose listener is still in `listeners`.
pub fn spawn_all(
    tasks: &mut JoinSet<Ended>,
    configs: &Configs,
    listeners: &mut Listeners,
    shutdown: &Shutdown,
) -> anyhow::Result<()> {
    for service in Service::ALL {
        if listeners.0.contains_key(service.name()) {
            spawn(tasks, service, configs, listeners, shutdown.clone())?;
        }
    }
    Ok(())
}
