//! The node registry: create, list, change state, delete. Credentials are sealed on the way
//! in and never leave.

use std::collections::BTreeMap;

use chrono::Utc;
use platform::grpc::Caller;
use proto::ids::NodeId;
use sea_orm::Set;

pub use crate::domain::node::{Node, NodeState};

use super::{Nodes, is_unique_violation, require_admin, validate};
use crate::error::{NodeError, Result};
use crate::store;
use crate::store::entity::node;

pub const DRIVERS: [&str; 2] = ["lxc", "proxmox"];

#[derive(Debug, Clone, Default)]
pub struct NewNode {
    pub name: String,
    pub location: String,
    pub tags: Vec<String>,
    pub driver: String,
    pub address: String,
    pub port: u32,
    pub cores: u32,
    pub memory_mb: u64,
    pub disk_gb: u64,
    /// Zero means the default.
    pub cpu_overcommit: f64,
    pub memory_overcommit: f64,
    pub disk_overcommit: f64,
    pub settings: BTreeMap<String, String>,
    pub credentials: BTreeMap<String, String>,
}

fn overcommit(field: &'static str, raw: f64, default: f64) -> Result<f64> {
    if raw == 0.0 {
        return Ok(default);
    }
    if !(1.0..=32.0).contains(&raw) {
        return Err(NodeError::invalid(
            field,
            format!("{field} must be between 1 and 32"),
        ));
    }
    Ok(raw)
}

impl Nodes {
    pub async fn create_node(&self, caller: Caller, new: NewNode) -> Result<Node> {
        require_admin(caller)?;
        let name = validate::name("name", &new.name)?;
        let location = if new.location.trim().is_empty() {
            "default".to_owned()
        } else {
            validate::name("location", &new.location)?
        };
        let tags = validate::tags(&new.tags)?;
        let driver = new.driver.trim().to_ascii_lowercase();
        if !DRIVERS.contains(&driver.as_str()) {
            return Err(NodeError::invalid(
                "driver",
                "driver must be 'lxc' or 'proxmox'",
            ));
        }
        validate::map("settings", &new.settings)?;
        validate::map("credentials", &new.credentials)?;
        let (address, port) = match driver.as_str() {
            "lxc" => {
                let path = new.settings.get("path").map(String::as_str).unwrap_or("");
                if !path.starts_with('/') {
                    return Err(NodeError::invalid(
                        "settings",
                        "an lxc node needs settings.path, an absolute container path",
                    ));
                }
                let settings: std::collections::HashMap<String, String> = new
                    .settings
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                crate::driver::lxc::options_from(&settings)
                    .map_err(|message| NodeError::invalid("settings", message))?;
                let address = if new.address.trim().is_empty() {
                    "127.0.0.1".to_owned()
                } else {
                    validate::address(&new.address)?
                };
                (address, new.port)
            }
            _ => {
                let address = validate::address(&new.address)?;
                if !new.settings.contains_key("node") {
                    return Err(NodeError::invalid(
                        "settings",
                        "a proxmox node needs settings.node, the PVE node name",
                    ));
                }
                let has_token = new.credentials.contains_key("token");
                let has_password = new.credentials.contains_key("username")
                    && new.credentials.contains_key("password");
                if !has_token && !has_password {
                    return Err(NodeError::invalid(
                        "credentials",
                        "a proxmox node needs credentials.token (USER@REALM!TOKENID=SECRET) or credentials.username and credentials.password",
                    ));
                }
                (address, if new.port == 0 { 8006 } else { new.port })
            }
        };
        if port > 65535 {
            return Err(NodeError::invalid("port", "port must be 1-65535"));
        }
        if new.cores == 0 || new.cores > 4096 {
            return Err(NodeError::invalid("processor", "cores must be 1-4096"));
        }
        if !(128..=1 << 32).contains(&new.memory_mb) {
            return Err(NodeError::invalid("ram", "memory must be at least 128 MB"));
        }
        if !(1..=1 << 30).contains(&new.disk_gb) {
            return Err(NodeError::invalid("disk", "disk must be at least 1 GB"));
        }
        let credentials = if new.credentials.is_empty() {
            None
        } else {
            let sealer = self.sealer.as_ref().ok_or_else(|| {
                NodeError::Conflict(
                    "node-svc has no credentials_key configured; it cannot store node credentials"
                        .into(),
                )
            })?;
            let json =
                serde_json::to_vec(&new.credentials).map_err(|e| NodeError::Internal(e.into()))?;
            Some(sealer.seal(&json).map_err(NodeError::Internal)?)
        };
        let settings =
            serde_json::to_string(&new.settings).map_err(|e| NodeError::Internal(e.into()))?;
        let inserted = node::ActiveModel {
            uuid: Set(uuid::Uuid::new_v4().to_string()),
            name: Set(name),
            location: Set(location),
            tags: Set(tags.join(",")),
            driver: Set(driver),
            address: Set(address),
            port: Set(i32::try_from(port).unwrap_or(0)),
            settings: Set(settings),
            credentials: Set(credentials),
            cores: Set(i64::from(new.cores)),
            memory_mb: Set(i64::try_from(new.memory_mb).unwrap_or(i64::MAX)),
            disk_gb: Set(i64::try_from(new.disk_gb).unwrap_or(i64::MAX)),
            cpu_overcommit: Set(overcommit("cpu_overcommit", new.cpu_overcommit, 4.0)?),
            memory_overcommit: Set(overcommit("memory_overcommit", new.memory_overcommit, 1.0)?),
            disk_overcommit: Set(overcommit("disk_overcommit", new.disk_overcommit, 1.0)?),
            reserved_cores: Set(0),
            reserved_memory_mb: Set(0),
            reserved_disk_gb: Set(0),
            state: Set(NodeState::Online.as_str().to_owned()),
            health: Set("unknown".to_owned()),
            created_at: Set(Utc::now()),
            ..Default::default()
        };
        match store::nodes::insert(&self.db, inserted).await {
            Ok(model) => Ok(model.into()),
            Err(e) if is_unique_violation(&e) => Err(NodeError::Conflict(
                "a node with this name already exists".into(),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// A page of nodes in id order, all of them or only `ids`; the next page's token.
    pub async fn list_nodes(
        &self,
        caller: Caller,
        page: platform::page::Page,
        ids: &[i64],
    ) -> Result<(Vec<Node>, String)> {
        require_admin(caller)?;
        platform::page::check_batch(ids)
            .map_err(|(field, message)| NodeError::invalid(field, message))?;
        let rows = store::nodes::page(&self.db, page.after, page.fetch(), ids).await?;
        let (rows, next) = page.finish(rows, |n| n.id);
        Ok((rows.into_iter().map(Node::from).collect(), next))
    }

    /// Every node, for the service's own use (probes, drivers).
    pub async fn all_nodes(&self) -> Result<Vec<node::Model>> {
        Ok(store::nodes::all(&self.db).await?)
    }

    pub async fn node_by_id(&self, id: NodeId) -> Result<node::Model> {
        store::nodes::find(&self.db, id.get())
            .await?
            .ok_or(NodeError::NotFound("node"))
    }

    pub async fn get_node(
        &self,
        caller: Caller,
        id: Option<NodeId>,
        uuid: Option<&str>,
    ) -> Result<Node> {
        require_admin(caller)?;
        let found = match (id, uuid) {
            (Some(id), _) => store::nodes::find(&self.db, id.get()).await?,
            (None, Some(uuid)) => store::nodes::by_uuid(&self.db, uuid).await?,
            (None, None) => return Err(NodeError::invalid("nodeId", "name a node")),
        };
        found.map(Node::from).ok_or(NodeError::NotFound("node"))
    }

    pub async fn set_state(&self, caller: Caller, id: NodeId, state: NodeState) -> Result<Node> {
        require_admin(caller)?;
        let found = self.node_by_id(id).await?;
        Ok(store::nodes::set_state(&self.db, found, state.as_str())
            .await?
            .into())
    }

    /// Records a probe's verdict.
    pub async fn set_health(&self, id: NodeId, health: &str) -> Result<()> {
        Ok(store::nodes::set_health(&self.db, id.get(), health).await?)
    }

    /// The node's decrypted credentials (for its driver only).
    pub fn credentials(&self, node: &node::Model) -> Result<BTreeMap<String, String>> {
        let Some(sealed) = &node.credentials else {
            return Ok(BTreeMap::new());
        };
        let sealer = self.sealer.as_ref().ok_or_else(|| {
            NodeError::Internal(anyhow::anyhow!(
                "node {} has credentials but no credentials_key is configured",
                node.name
            ))
        })?;
        let json = sealer.open(sealed).map_err(NodeError::Internal)?;
        serde_json::from_slice(&json).map_err(|e| NodeError::Internal(e.into()))
    }

    /// Deletes a node. Refused while servers (reservations) or addresses live on it.
    pub async fn delete_node(&self, caller: Caller, id: NodeId) -> Result<()> {
        require_admin(caller)?;
        let found = self.node_by_id(id).await?;
        let servers = store::nodes::count_servers(&self.db, id.get()).await?;
        if servers > 0 {
            return Err(NodeError::Conflict(format!(
                "node {} still has {servers} server(s); delete or move them first",
                found.name
            )));
        }
        let pool_ids = store::pools::ids_of_node(&self.db, id.get()).await?;
        let addresses = store::pools::count_allocated_in(&self.db, &pool_ids).await?;
        if addresses > 0 {
            return Err(NodeError::Conflict(format!(
                "node {} still has {addresses} allocated address(es)",
                found.name
            )));
        }
        Ok(store::nodes::delete(&self.db, id.get()).await?)
    }
}

impl Nodes {
    /// Registers the local LXC node of the embedded stack, or brings its declared size up to
    /// date with the host on every start.
    pub async fn ensure_local_lxc(&self, local: &crate::config::LocalLxc) -> Result<()> {
        std::fs::create_dir_all(&local.path).map_err(|e| NodeError::Internal(e.into()))?;
        let path = local
            .path
            .canonicalize()
            .map_err(|e| NodeError::Internal(e.into()))?;
        let (cores, memory_mb, disk_gb) = local_capacity(local, &path);
        if let Some(found) = store::nodes::by_name(&self.db, local.name.as_str()).await? {
            let mut active: node::ActiveModel = found.into();
            active.cores = Set(i64::from(cores));
            active.memory_mb = Set(clamp(memory_mb));
            active.disk_gb = Set(clamp(disk_gb));
            store::nodes::update(&self.db, active).await?;
            return Ok(());
        }
        let mut settings = local.settings.clone();
        settings.insert("path".to_owned(), path.display().to_string());
        let new = NewNode {
            name: local.name.clone(),
            location: local.location.clone(),
            tags: vec!["local".to_owned()],
            driver: "lxc".to_owned(),
            cores,
            memory_mb,
            disk_gb,
            cpu_overcommit: local.cpu_overcommit,
            settings,
            ..NewNode::default()
        };
        match self.create_node(Caller::SYSTEM, new).await {
            Ok(created) => {
                tracing::info!(node = %created.name, path = %path.display(), cores, memory_mb, disk_gb, "registered the local LXC node");
                Ok(())
            }
            // Replicas starting together: another one registered it a moment ago.
            Err(NodeError::Conflict(_))
                if store::nodes::by_name(&self.db, local.name.as_str())
                    .await?
                    .is_some() =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

fn clamp(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// What the local node declares: the configured size, or this host's cores, its memory and
/// the free disk under `path`, each less what the control plane keeps for itself.
fn local_capacity(local: &crate::config::LocalLxc, path: &std::path::Path) -> (u32, u64, u64) {
    let cores = if local.cores > 0 {
        local.cores
    } else {
        std::thread::available_parallelism()
            .ok()
            .and_then(|n| u32::try_from(n.get()).ok())
            .unwrap_or(1)
    };
    let memory_mb = if local.memory_mb > 0 {
        local.memory_mb
    } else {
        host_memory_mb()
            .saturating_sub(local.reserve_memory_mb)
            .max(256)
    };
    let disk_gb = if local.disk_gb > 0 {
        local.disk_gb
    } else {
        free_disk_gb(path)
            .saturating_sub(local.reserve_disk_gb)
            .max(1)
    };
    (cores, memory_mb, disk_gb)
}

/// MemTotal from /proc/meminfo, in MB.
fn host_memory_mb() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or(1024, |kb| kb / 1024)
}

/// Free space of the filesystem holding `path`, in GB, from `df` (POSIX output).
fn free_disk_gb(path: &std::path::Path) -> u64 {
    std::process::Command::new("df")
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .arg("-Pk")
        .arg(path)
        .output()
        .ok()
        .and_then(|out| {
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.lines()
                .nth(1)?
                .split_whitespace()
                .nth(3)?
                .parse::<u64>()
                .ok()
        })
        .map_or(10, |kb| kb / (1024 * 1024))
}
