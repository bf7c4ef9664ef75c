//! Where a service finds the others: one shape in every service's configuration,
//! `peers.<service>` (`VPS_PEERS__IDENTITY=http://identity:50051` in the environment).
//! Unset peers are on loopback at their default ports, as the embedded stack runs them.

use serde::{Deserialize, Serialize};

use crate::auth::Service;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Peers {
    pub identity: String,
    pub server: String,
    pub snapshot: String,
    pub node: String,
    pub monitor: String,
    pub notify: String,
}

impl Default for Peers {
    fn default() -> Self {
        Self::on(|service| format!("http://127.0.0.1:{}", service.default_port()))
    }
}

impl Peers {
    /// Every peer at the URL `url` gives it.
    pub fn on(url: impl Fn(Service) -> String) -> Self {
        Self {
            identity: url(Service::Identity),
            server: url(Service::Server),
            snapshot: url(Service::Snapshot),
            node: url(Service::Node),
            monitor: url(Service::Monitor),
            notify: url(Service::Notify),
        }
    }

    /// The gRPC URL of `service` (the gateway is nobody's peer: its URL is empty).
    pub fn url(&self, service: Service) -> &str {
        match service {
            Service::Identity => &self.identity,
            Service::Server => &self.server,
            Service::Snapshot => &self.snapshot,
            Service::Node => &self.node,
            Service::Monitor => &self.monitor,
            Service::Notify => &self.notify,
            Service::Gateway => "",
        }
    }

    /// A lazily connected channel to `service`, whose calls time out after `timeout`.
    pub fn channel(
        &self,
        service: Service,
        timeout: std::time::Duration,
    ) -> anyhow::Result<crate::grpc::Channel> {
        crate::grpc::channel_with_timeout(self.url(service), timeout)
    }
}

#[cfg(test)]
// figment's `Jail` fixes the closures' error type; its size is not ours to choose.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, Default)]
    #[serde(default)]
    struct Sample {
        peers: Peers,
    }

    #[test]
    fn peers_come_from_the_environment_in_one_shape() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("VPS_PEERS__NODE", "http://node:50054");
            let sample: Sample = crate::config::load().expect("config");
            assert_eq!(sample.peers.url(Service::Node), "http://node:50054");
            assert_eq!(
                sample.peers.url(Service::Identity),
                "http://127.0.0.1:50051",
                "unset peers are on loopback at their default ports"
            );
            Ok(())
        });
    }
}
