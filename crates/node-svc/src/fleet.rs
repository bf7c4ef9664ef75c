//! The live side of the registry: one driver per node, each call bounded by the node's
//! timeout and concurrency limit, and a periodic probe that keeps each node's health. A dead
//! or slow node holds up only calls to itself.

use proto::ids::NodeId;
use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use platform::Shutdown;
use tokio::sync::{RwLock, Semaphore};

use crate::app::Nodes;
use crate::driver::lxc::LxcDriver;
use crate::driver::proxmox::{Auth, ProxmoxConfig, ProxmoxDriver};
use crate::driver::{DriverError, Hypervisor};
use crate::error::{NodeError, Result};
use crate::store::entity::node;

struct Handle {
    name: String,
    driver: Arc<dyn Hypervisor>,
    permits: Semaphore,
    /// Set by the probe: calls fail at once instead of waiting out the timeout.
    unreachable: AtomicBool,
}

pub struct Fleet {
    nodes: Arc<Nodes>,
    handles: RwLock<HashMap<NodeId, Arc<Handle>>>,
    timeout: Duration,
    concurrency: usize,
}

fn driver_for(node: &node::Model, nodes: &Nodes) -> Result<Arc<dyn Hypervisor>> {
    let settings: HashMap<String, String> =
        serde_json::from_str(&node.settings).unwrap_or_default();
    match node.driver.as_str() {
        "lxc" => {
            let path = settings.get("path").ok_or_else(|| {
                NodeError::Internal(anyhow::anyhow!("lxc node {} has no path", node.name))
            })?;
            let options = crate::driver::lxc::options_from(&settings)
                .map_err(|e| NodeError::Internal(anyhow::anyhow!("lxc node {}: {e}", node.name)))?;
            Ok(Arc::new(LxcDriver::with_options(path, options)))
        }
        "proxmox" => {
            let mut credentials = nodes.credentials(node)?;
            let auth = match (
                credentials.remove("token"),
                credentials.remove("username"),
                credentials.remove("password"),
            ) {
                (Some(token), _, _) => Auth::Token(token),
                (None, Some(username), Some(password)) => Auth::Password { username, password },
                _ => {
                    return Err(NodeError::Internal(anyhow::anyhow!(
                        "proxmox node {} has no credentials",
                        node.name
                    )));
                }
            };
            let setting = |key: &str, default: &str| {
                settings
                    .get(key)
                    .cloned()
                    .unwrap_or_else(|| default.to_owned())
            };
            let host = if node.address.contains(':') {
                format!("[{}]", node.address)
            } else {
                node.address.clone()
            };
            let config = ProxmoxConfig {
                base_url: format!("https://{host}:{}", node.port),
                node: setting("node", "pve"),
                auth,
                ca_file: settings.get("ca_file").map(PathBuf::from),
                insecure: settings.get("insecure").is_some_and(|v| v == "true"),
                storage: setting("storage", "local-lvm"),
                bridge: setting("bridge", "vmbr0"),
                backup_storage: setting("backup_storage", "local"),
            };
            let driver = ProxmoxDriver::new(config).map_err(NodeError::Internal)?;
            Ok(Arc::new(driver))
        }
        other => Err(NodeError::Internal(anyhow::anyhow!(
            "unknown driver {other}"
        ))),
    }
}

impl Fleet {
    pub fn new(nodes: Arc<Nodes>, timeout: Duration, concurrency: usize) -> Self {
        Self {
            nodes,
            handles: RwLock::new(HashMap::new()),
            timeout,
            concurrency: concurrency.max(1),
        }
    }

    async fn handle(&self, node_id: NodeId) -> Result<Arc<Handle>> {
        // The registry decides whether the node still exists: a deleted node's driver (and
        // its credentials) must not be used again.
        let node = match self.nodes.node_by_id(node_id).await {
            Ok(node) => node,
            Err(e) => {
                self.handles.write().await.remove(&node_id);
                return Err(e);
            }
        };
        if let Some(found) = self.handles.read().await.get(&node_id) {
            return Ok(found.clone());
        }
        let handle = Arc::new(Handle {
            driver: driver_for(&node, &self.nodes)?,
            name: node.name,
            permits: Semaphore::new(self.concurrency),
            unreachable: AtomicBool::new(node.health == "unreachable"),
        });
        Ok(self
            .handles
            .write()
            .await
            .entry(node_id)
            .or_insert(handle)
            .clone())
    }

    /// A node's handle, unless its last health probe failed.
    async fn reachable(&self, node_id: NodeId) -> Result<Arc<Handle>> {
        let handle = self.handle(node_id).await?;
        if handle.unreachable.load(Ordering::Relaxed) {
            return Err(NodeError::Unreachable {
                node: handle.name.clone(),
                source: anyhow::anyhow!("the last health probe failed"),
            });
        }
        Ok(handle)
    }

    /// Runs one driver operation on a node within its limits. Waiting for a turn counts
    /// against the timeout too.
    pub async fn call<T, F, Fut>(&self, node_id: NodeId, operation: F) -> Result<T>
    where
        F: FnOnce(Arc<dyn Hypervisor>) -> Fut,
        Fut: Future<Output = Result<T, DriverError>>,
    {
        let handle = self.reachable(node_id).await?;
        self.call_unchecked(&handle, operation).await
    }

    /// Like [`Fleet::call`], without the time-out: for archives, which take as long as the
    /// guest is large (their streams show they are alive).
    pub async fn call_long<T, F, Fut>(&self, node_id: NodeId, operation: F) -> Result<T>
    where
        F: FnOnce(Arc<dyn Hypervisor>) -> Fut,
        Fut: Future<Output = Result<T, DriverError>>,
    {
        let handle = self.reachable(node_id).await?;
        let _permit = handle
            .permits
            .acquire()
            .await
            .map_err(|e| NodeError::Internal(e.into()))?;
        operation(handle.driver.clone())
            .await
            .map_err(|e| map_driver_error(&handle.name, e))
    }

    async fn call_unchecked<T, F, Fut>(&self, handle: &Arc<Handle>, operation: F) -> Result<T>
    where
        F: FnOnce(Arc<dyn Hypervisor>) -> Fut,
        Fut: Future<Output = Result<T, DriverError>>,
    {
        let work = async {
            let _permit = handle
                .permits
                .acquire()
                .await
                .map_err(|e| NodeError::Internal(e.into()))?;
            operation(handle.driver.clone())
                .await
                .map_err(|e| map_driver_error(&handle.name, e))
        };
        match tokio::time::timeout(self.timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(NodeError::Unreachable {
                node: handle.name.clone(),
                source: anyhow::anyhow!("no answer within {:?}", self.timeout),
            }),
        }
    }

    /// Probes every node now and records the verdicts.
    pub async fn probe_all(&self) {
        let Ok(all) = self.nodes.all_nodes().await else {
            return;
        };
        for node in all {
            let handle = match self.handle(NodeId::stored(node.id)).await {
                Ok(handle) => handle,
                Err(e) => {
                    tracing::debug!(node = %node.name, error = %e, "no driver for this node");
                    continue;
                }
            };
            let probed = self
                .call_unchecked(&handle, |driver| async move { driver.probe().await })
                .await;
            let verdict = match probed {
                Ok(()) => "healthy",
                Err(NodeError::Unreachable { .. }) => "unreachable",
                Err(e) => {
                    tracing::debug!(node = %node.name, error = %e, "probe could not run");
                    "unknown"
                }
            };
            handle
                .unreachable
                .store(verdict == "unreachable", Ordering::Relaxed);
            if verdict != node.health {
                tracing::info!(node = %node.name, from = %node.health, to = verdict, "node health changed");
                if let Err(e) = self
                    .nodes
                    .set_health(NodeId::stored(node.id), verdict)
                    .await
                {
                    tracing::warn!(error = %e, "recording node health failed");
                }
            }
        }
    }

    /// Probes every `interval` until shutdown.
    /// Probes every node every `interval`, until shutdown.
    pub async fn probes(self: Arc<Self>, interval: Duration, shutdown: Shutdown) {
        let mut tick = tokio::time::interval(interval.max(Duration::from_secs(1)));
        loop {
            tokio::select! {
                biased;
                () = shutdown.wait() => break,
                _ = tick.tick() => self.probe_all().await,
            }
        }
    }
}

fn map_driver_error(node: &str, error: DriverError) -> NodeError {
    match error {
        DriverError::NotFound(what) => {
            tracing::debug!(node, what, "not found on the node");
            NodeError::NotFound("guest")
        }
        DriverError::Conflict(message) => NodeError::Conflict(message),
        DriverError::Failed(message) => NodeError::Hypervisor(message),
        DriverError::Unreachable(source) => NodeError::Unreachable {
            node: node.to_owned(),
            source,
        },
    }
}
