//! The gRPC edge of node-svc: decode, call `app`, encode. Credentials never go out.

use proto::ids::{NodeId, UserId};
use std::sync::Arc;
use std::time::Duration;

use platform::auth::{Caller, Scopes, Service};
use platform::grpc::to_status;
use proto::node::v1 as pb;
use proto::node::v1::consoles_server::{Consoles as ConsolesRpc, ConsolesServer};
use proto::node::v1::guests_server::{Guests as GuestsRpc, GuestsServer};
use proto::node::v1::nodes_server::{Nodes as NodesRpc, NodesServer};
use tonic::{Request, Response, Status};

use crate::app::console::TICKET_TTL_SECS;
use crate::app::{NewNode, NewPool, NodeState, Nodes, PoolView, Size, netmask};
use crate::domain::node::{Capacity, Node, NodeHealth};
use crate::driver::{GuestSpec, PowerState, ROOT_PASSWORD_SET, Resources, valid_name};
use crate::error::NodeError;
use crate::fleet::Fleet;
use crate::sessions::Sessions;

/// Services that place servers: capacity, addresses, and the registry read for placement.
const PLACING: &[Service] = &[Service::Server];
/// Services that drive guests (power, snapshots) on the hypervisors.
const DRIVING_GUESTS: &[Service] = &[Service::Server, Service::Snapshot];
/// Services that read guests' state and usage.
const READING_GUESTS: &[Service] = &[Service::Server, Service::Snapshot, Service::Monitor];
/// Who may list the nodes without being an administrator: placement and the poll loop.
const LISTING_NODES: &[Service] = &[Service::Server, Service::Monitor];

pub struct NodeService {
    app: Arc<Nodes>,
}

impl NodeService {
    pub fn new(app: Arc<Nodes>) -> Self {
        Self { app }
    }

    pub fn into_server(self) -> NodesServer<Self> {
        NodesServer::new(self)
    }
}

type Reply<T> = Result<Response<T>, Status>;

fn status(error: NodeError) -> Status {
    to_status(&error)
}

fn capacity(cores: i64, memory_mb: i64, disk_gb: i64) -> pb::Capacity {
    pb::Capacity {
        cores: u32::try_from(cores).unwrap_or(0),
        memory_mb: u64::try_from(memory_mb).unwrap_or(0),
        disk_gb: u64::try_from(disk_gb).unwrap_or(0),
    }
}

pub fn node_pb(n: Node) -> pb::Node {
    let state = match n.state {
        Some(NodeState::Online) => pb::NodeState::Online,
        Some(NodeState::Offline) => pb::NodeState::Offline,
        Some(NodeState::Maintenance) => pb::NodeState::Maintenance,
        None => pb::NodeState::Unspecified,
    };
    let health = match n.health {
        NodeHealth::Healthy => pb::NodeHealth::Healthy,
        NodeHealth::Unreachable => pb::NodeHealth::Unreachable,
        NodeHealth::Unknown => pb::NodeHealth::Unknown,
    };
    let size = |c: Capacity| capacity(c.cores, c.memory_mb, c.disk_gb);
    pb::Node {
        id: n.id.get(),
        uuid: n.uuid,
        name: n.name,
        location: n.location,
        tags: n.tags,
        driver: n.driver,
        address: n.address,
        port: u32::from(n.port),
        capacity: Some(size(n.capacity)),
        overcommit: Some(pb::Overcommit {
            cpu: n.cpu_overcommit,
            memory: n.memory_overcommit,
            disk: n.disk_overcommit,
        }),
        reserved: Some(size(n.reserved)),
        state: state.into(),
        health: health.into(),
        created_at_ms: n.created_at.timestamp_millis(),
        settings: n.settings.into_iter().collect(),
        has_credentials: n.has_credentials,
    }
}

fn pool_pb(v: PoolView) -> pb::Pool {
    let range = format!("{}-{}", v.pool.first, v.pool.last);
    pb::Pool {
        id: v.pool.id,
        name: v.pool.name,
        node_id: v.pool.node_id.unwrap_or(0),
        location: v.pool.location.unwrap_or_default(),
        range,
        netmask: netmask(v.pool.family, v.pool.prefix_len),
        gateway: v.pool.gateway,
        family: u32::try_from(v.pool.family).unwrap_or(0),
        prefix_len: u32::try_from(v.pool.prefix_len).unwrap_or(0),
        size: u64::try_from(v.size).unwrap_or(u64::MAX),
        allocated: v.allocated,
    }
}

#[tonic::async_trait]
impl NodesRpc for NodeService {
    async fn create_node(&self, request: Request<pb::CreateNodeRequest>) -> Reply<pb::Node> {
        let caller = Caller::required(&request)?.require_user(Scopes::NODES_WRITE)?;
        let r = request.into_inner();
        let capacity = r.capacity.unwrap_or_default();
        let overcommit = r.overcommit.unwrap_or_default();
        let new = NewNode {
            name: r.name,
            location: r.location,
            tags: r.tags,
            driver: r.driver,
            address: r.address,
            port: r.port,
            cores: capacity.cores,
            memory_mb: capacity.memory_mb,
            disk_gb: capacity.disk_gb,
            cpu_overcommit: overcommit.cpu,
            memory_overcommit: overcommit.memory,
            disk_overcommit: overcommit.disk,
            settings: r.settings.into_iter().collect(),
            credentials: r.credentials.into_iter().collect(),
        };
        let created = self.app.create_node(caller, new).await.map_err(status)?;
        Ok(Response::new(node_pb(created)))
    }

    async fn list_nodes(
        &self,
        request: Request<pb::ListNodesRequest>,
    ) -> Reply<pb::ListNodesResponse> {
        let caller =
            Caller::required(&request)?.user_or_service(Scopes::NODES_READ, LISTING_NODES)?;
        let r = request.into_inner();
        let page = platform::page::Page::parse(r.limit, &r.page_token)
            .map_err(|(field, message)| status(NodeError::invalid(field, message)))?;
        let (nodes, next_page_token) = self
            .app
            .list_nodes(caller, page, &r.ids)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListNodesResponse {
            nodes: nodes.into_iter().map(node_pb).collect(),
            next_page_token,
        }))
    }

    async fn get_node(&self, request: Request<pb::GetNodeRequest>) -> Reply<pb::Node> {
        let caller = Caller::required(&request)?.user_or_service(Scopes::NODES_READ, PLACING)?;
        let (id, uuid) = match request.into_inner().by {
            Some(pb::get_node_request::By::Id(id)) => {
                let id = NodeId::new(id).ok_or_else(|| status(NodeError::NotFound("node")))?;
                (Some(id), None)
            }
            Some(pb::get_node_request::By::Uuid(uuid)) => (None, Some(uuid)),
            None => (None, None),
        };
        let found = self
            .app
            .get_node(caller, id, uuid.as_deref())
            .await
            .map_err(status)?;
        Ok(Response::new(node_pb(found)))
    }

    async fn set_node_state(&self, request: Request<pb::SetNodeStateRequest>) -> Reply<pb::Node> {
        let caller = Caller::required(&request)?.require_user(Scopes::NODES_WRITE)?;
        let r = request.into_inner();
        let state = match pb::NodeState::try_from(r.state) {
            Ok(pb::NodeState::Online) => NodeState::Online,
            Ok(pb::NodeState::Offline) => NodeState::Offline,
            Ok(pb::NodeState::Maintenance) => NodeState::Maintenance,
            _ => {
                return Err(status(NodeError::invalid(
                    "state",
                    "state must be online, offline or maintenance",
                )));
            }
        };
        let updated = self
            .app
            .set_state(
                caller,
                NodeId::new(r.id).ok_or_else(|| status(NodeError::NotFound("node")))?,
                state,
            )
            .await
            .map_err(status)?;
        Ok(Response::new(node_pb(updated)))
    }

    async fn delete_node(
        &self,
        request: Request<pb::DeleteNodeRequest>,
    ) -> Reply<pb::DeleteNodeResponse> {
        let caller = Caller::required(&request)?.require_user(Scopes::NODES_WRITE)?;
        let id = NodeId::new(request.into_inner().id)
            .ok_or_else(|| status(NodeError::invalid("id", "a node id is required")))?;
        self.app.delete_node(caller, id).await.map_err(status)?;
        Ok(Response::new(pb::DeleteNodeResponse {}))
    }

    async fn reserve(&self, request: Request<pb::ReserveRequest>) -> Reply<pb::Reservation> {
        Caller::required(&request)?.require_service(PLACING)?;
        let r = request.into_inner();
        let size = r.size.unwrap_or_default();
        let size = Size {
            cores: size.cores,
            memory_mb: size.memory_mb,
            disk_gb: size.disk_gb,
        };
        let location = (!r.location.is_empty()).then_some(r.location.as_str());
        if r.node_id < 0 {
            return Err(status(NodeError::invalid(
                "node_id",
                "node id must be positive",
            )));
        }
        let pinned = NodeId::new(r.node_id);
        let tags: Vec<String> = r
            .tags
            .iter()
            .map(|t| t.trim().to_ascii_lowercase())
            .collect();
        let reservation = self
            .app
            .reserve(&r.reservation_id, size, location, &tags, pinned)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::Reservation {
            reservation_id: reservation.id,
            node_id: reservation.node_id,
            size: Some(pb::Capacity {
                cores: reservation.size.cores,
                memory_mb: reservation.size.memory_mb,
                disk_gb: reservation.size.disk_gb,
            }),
        }))
    }

    async fn release(&self, request: Request<pb::ReleaseRequest>) -> Reply<pb::ReleaseResponse> {
        Caller::required(&request)?.require_service(PLACING)?;
        let released = self
            .app
            .release(&request.into_inner().reservation_id)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ReleaseResponse { released }))
    }

    async fn create_pool(&self, request: Request<pb::CreatePoolRequest>) -> Reply<pb::Pool> {
        let caller = Caller::required(&request)?.require_user(Scopes::NODES_WRITE)?;
        let r = request.into_inner();
        let new = NewPool {
            name: r.name,
            node_id: (r.node_id != 0).then_some(r.node_id),
            location: (!r.location.is_empty()).then_some(r.location),
            range: r.range,
            gateway: r.gateway,
        };
        let created = self.app.create_pool(caller, new).await.map_err(status)?;
        Ok(Response::new(pool_pb(created)))
    }

    async fn list_pools(
        &self,
        request: Request<pb::ListPoolsRequest>,
    ) -> Reply<pb::ListPoolsResponse> {
        let caller = Caller::required(&request)?.user_or_service(Scopes::NODES_READ, PLACING)?;
        let pools = self.app.list_pools(caller).await.map_err(status)?;
        Ok(Response::new(pb::ListPoolsResponse {
            pools: pools.into_iter().map(pool_pb).collect(),
        }))
    }

    async fn allocate_address(
        &self,
        request: Request<pb::AllocateAddressRequest>,
    ) -> Reply<pb::Address> {
        Caller::required(&request)?.require_service(PLACING)?;
        let r = request.into_inner();
        let family = i32::try_from(r.family).unwrap_or(0);
        let got = self
            .app
            .allocate(
                &r.owner,
                family,
                NodeId::new(r.node_id).ok_or_else(|| status(NodeError::NotFound("node")))?,
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::Address {
            address: got.address,
            pool_id: got.pool.id,
            gateway: got.pool.gateway.clone(),
            prefix_len: u32::try_from(got.pool.prefix_len).unwrap_or(0),
            netmask: netmask(got.pool.family, got.pool.prefix_len),
            owner: got.owner,
        }))
    }

    async fn release_address(
        &self,
        request: Request<pb::ReleaseAddressRequest>,
    ) -> Reply<pb::ReleaseAddressResponse> {
        Caller::required(&request)?.require_service(PLACING)?;
        let released = self
            .app
            .release_addresses(&request.into_inner().owner)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ReleaseAddressResponse {
            released: u32::try_from(released).unwrap_or(u32::MAX),
        }))
    }
}

/// The guest operations, for server-svc, snapshot-svc and monitor-svc. Ownership of servers
/// is theirs to check; node-svc checks names and nodes.
pub struct GuestService {
    fleet: Arc<Fleet>,
    sessions: Arc<Sessions>,
}

impl GuestService {
    pub fn new(fleet: Arc<Fleet>, sessions: Arc<Sessions>) -> Self {
        Self { fleet, sessions }
    }

    pub fn into_server(self) -> GuestsServer<Self> {
        GuestsServer::new(self)
    }
}

fn guest(reference: Option<pb::GuestRef>) -> Result<(NodeId, String), Status> {
    let reference = reference.unwrap_or_default();
    match NodeId::new(reference.node_id) {
        Some(node) if valid_name(&reference.name) => Ok((node, reference.name)),
        _ => Err(status(NodeError::invalid(
            "guest",
            "a guest is a node id and a name of 1-63 letters, digits, '-' or '_', starting with a letter",
        ))),
    }
}

/// Upper bounds on a guest's size (0 means "not given").
fn check_size(cores: u32, memory_mb: u64, disk_gb: u64) -> Result<(), Status> {
    if cores > 1024 || memory_mb > 16 * 1024 * 1024 || disk_gb > 1024 * 1024 {
        return Err(status(NodeError::invalid(
            "resources",
            "at most 1024 cores, 16 TiB of memory and 1 PiB of disk",
        )));
    }
    Ok(())
}

fn grace(secs: u32) -> Duration {
    Duration::from_secs(if secs == 0 {
        30
    } else {
        u64::from(secs).min(600)
    })
}

fn power_pb(state: PowerState) -> pb::PowerState {
    match state {
        PowerState::Running => pb::PowerState::Running,
        PowerState::Stopped => pb::PowerState::Stopped,
        PowerState::Unknown => pb::PowerState::Unknown,
    }
}

fn notes(notes: Vec<String>) -> Response<pb::GuestReply> {
    Response::new(pb::GuestReply {
        notes,
        root_password_set: false,
    })
}

fn snapshot_name(raw: &str) -> Result<String, Status> {
    if valid_name(raw) {
        Ok(raw.to_owned())
    } else {
        Err(status(NodeError::invalid(
            "snapname",
            "a snapshot name is 1-63 letters, digits, '-' or '_', starting with a letter",
        )))
    }
}

#[tonic::async_trait]
impl GuestsRpc for GuestService {
    async fn create_guest(
        &self,
        request: Request<pb::CreateGuestRequest>,
    ) -> Reply<pb::GuestReply> {
        Caller::required(&request)?.require_service(DRIVING_GUESTS)?;
        let r = request.into_inner();
        let (node, name) = guest(r.guest)?;
        let size = r.size.unwrap_or_default();
        let hostname_ok = r.hostname.len() <= 253
            && r.hostname
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if !hostname_ok {
            return Err(status(NodeError::invalid(
                "hostname",
                "hostname must be a host name (letters, digits, '-', '.')",
            )));
        }
        check_size(size.cores, size.memory_mb, size.disk_gb)?;
        let spec = GuestSpec {
            name,
            template: r.template,
            hostname: r.hostname,
            resources: Resources {
                cores: (size.cores > 0).then_some(size.cores),
                memory_mb: (size.memory_mb > 0).then_some(size.memory_mb),
                disk_gb: (size.disk_gb > 0).then_some(size.disk_gb),
            },
            root_password: (!r.root_password.is_empty()).then_some(r.root_password),
        };
        let done = self
            .fleet
            .call(node, |d| async move { d.create(&spec).await })
            .await
            .map_err(status)?;
        let password_set = done.iter().any(|n| n == ROOT_PASSWORD_SET);
        let mut reply = notes(done);
        reply.get_mut().root_password_set = password_set;
        Ok(reply)
    }

    async fn get_guest_state(&self, request: Request<pb::GuestRef>) -> Reply<pb::GuestStateReply> {
        Caller::required(&request)?.require_service(READING_GUESTS)?;
        let (node, name) = guest(Some(request.into_inner()))?;
        let state = self
            .fleet
            .call(node, |d| async move { d.state(&name).await })
            .await
            .map_err(status)?;
        Ok(Response::new(pb::GuestStateReply {
            state: power_pb(state).into(),
        }))
    }

    async fn start_guest(&self, request: Request<pb::GuestRef>) -> Reply<pb::GuestReply> {
        Caller::required(&request)?.require_service(DRIVING_GUESTS)?;
        let (node, name) = guest(Some(request.into_inner()))?;
        self.fleet
            .call(node, |d| async move { d.start(&name).await })
            .await
            .map_err(status)?;
        Ok(notes(Vec::new()))
    }

    async fn stop_guest(&self, request: Request<pb::StopGuestRequest>) -> Reply<pb::GuestReply> {
        Caller::required(&request)?.require_service(DRIVING_GUESTS)?;
        let r = request.into_inner();
        let (node, name) = guest(r.guest)?;
        let grace = grace(r.grace_secs);
        self.sessions.close_guest(node, &name);
        self.fleet
            .call(node, |d| async move { d.stop(&name, grace).await })
            .await
            .map_err(status)?;
        Ok(notes(Vec::new()))
    }

    async fn reboot_guest(&self, request: Request<pb::StopGuestRequest>) -> Reply<pb::GuestReply> {
        Caller::required(&request)?.require_service(DRIVING_GUESTS)?;
        let r = request.into_inner();
        let (node, name) = guest(r.guest)?;
        let grace = grace(r.grace_secs);
        self.sessions.close_guest(node, &name);
        let done = self
            .fleet
            .call(node, |d| async move { d.reboot(&name, grace).await })
            .await
            .map_err(status)?;
        Ok(notes(done))
    }

    async fn delete_guest(&self, request: Request<pb::GuestRef>) -> Reply<pb::GuestReply> {
        Caller::required(&request)?.require_service(DRIVING_GUESTS)?;
        let (node, name) = guest(Some(request.into_inner()))?;
        self.sessions.close_guest(node, &name);
        self.fleet
            .call(node, |d| async move { d.delete(&name).await })
            .await
            .map_err(status)?;
        Ok(notes(Vec::new()))
    }

    async fn set_guest_password(
        &self,
        request: Request<pb::SetGuestPasswordRequest>,
    ) -> Reply<pb::GuestReply> {
        Caller::required(&request)?.require_service(DRIVING_GUESTS)?;
        let r = request.into_inner();
        let (node, name) = guest(r.guest)?;
        let (user, password) = (r.user, r.password);
        if password.chars().count() < 8
            || password.len() > 256
            || password.contains(['\n', '\r', '\0'])
        {
            return Err(status(NodeError::invalid(
                "password",
                "password must be 8-256 characters on one line",
            )));
        }
        self.fleet
            .call(node, |d| async move {
                d.set_password(&name, &user, &password).await
            })
            .await
            .map_err(status)?;
        Ok(notes(Vec::new()))
    }

    async fn resize_guest(
        &self,
        request: Request<pb::ResizeGuestRequest>,
    ) -> Reply<pb::GuestReply> {
        Caller::required(&request)?.require_service(DRIVING_GUESTS)?;
        let r = request.into_inner();
        let (node, name) = guest(r.guest)?;
        let resources = Resources {
            cores: r.cores,
            memory_mb: r.memory_mb,
            disk_gb: r.disk_gb,
        };
        check_size(
            resources.cores.unwrap_or(0),
            resources.memory_mb.unwrap_or(0),
            resources.disk_gb.unwrap_or(0),
        )?;
        if resources == Resources::default()
            || resources.cores == Some(0)
            || resources.memory_mb.is_some_and(|m| m < 64)
            || resources.disk_gb == Some(0)
        {
            return Err(status(NodeError::invalid(
                "resources",
                "name at least one of cores, memory (64 MB+) or disk, each positive",
            )));
        }
        let done = self
            .fleet
            .call(node, |d| async move { d.resize(&name, resources).await })
            .await
            .map_err(status)?;
        Ok(notes(done))
    }

    async fn create_snapshot(
        &self,
        request: Request<pb::SnapshotRequest>,
    ) -> Reply<pb::GuestReply> {
        Caller::required(&request)?.require_service(DRIVING_GUESTS)?;
        let r = request.into_inner();
        let (node, name) = guest(r.guest)?;
        let snapshot = snapshot_name(&r.snapshot)?;
        let description: String = r
            .description
            .chars()
            .filter(|c| !c.is_control())
            .take(255)
            .collect();
        let done = self
            .fleet
            .call(node, |d| async move {
                d.snapshot_create(&name, &snapshot, &description).await
            })
            .await
            .map_err(status)?;
        Ok(notes(done))
    }

    async fn list_snapshots(
        &self,
        request: Request<pb::GuestRef>,
    ) -> Reply<pb::ListSnapshotsReply> {
        Caller::required(&request)?.require_service(DRIVING_GUESTS)?;
        let (node, name) = guest(Some(request.into_inner()))?;
        let list = self
            .fleet
            .call(node, |d| async move { d.snapshot_list(&name).await })
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListSnapshotsReply {
            snapshots: list
                .into_iter()
                .map(|s| pb::SnapshotInfo {
                    name: s.name,
                    description: s.description,
                    created_at: s.created_at,
                    size_bytes: s.size_bytes,
                })
                .collect(),
        }))
    }

    async fn rollback_snapshot(
        &self,
        request: Request<pb::SnapshotRequest>,
    ) -> Reply<pb::GuestReply> {
        Caller::required(&request)?.require_service(DRIVING_GUESTS)?;
        let r = request.into_inner();
        let (node, name) = guest(r.guest)?;
        let snapshot = snapshot_name(&r.snapshot)?;
        let done = self
            .fleet
            .call(node, |d| async move {
                d.snapshot_rollback(&name, &snapshot).await
            })
            .await
            .map_err(status)?;
        Ok(notes(done))
    }

    async fn delete_snapshot(
        &self,
        request: Request<pb::SnapshotRequest>,
    ) -> Reply<pb::GuestReply> {
        Caller::required(&request)?.require_service(DRIVING_GUESTS)?;
        let r = request.into_inner();
        let (node, name) = guest(r.guest)?;
        let snapshot = snapshot_name(&r.snapshot)?;
        self.fleet
            .call(node, |d| async move {
                d.snapshot_delete(&name, &snapshot).await
            })
            .await
            .map_err(status)?;
        Ok(notes(Vec::new()))
    }

    type BackupGuestStream =
        std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::BackupChunk, Status>> + Send>>;

    async fn backup_guest(
        &self,
        request: Request<pb::BackupGuestRequest>,
    ) -> Reply<Self::BackupGuestStream> {
        Caller::required(&request)?.require_service(&[Service::Snapshot])?;
        let (node, name) = guest(request.into_inner().guest)?;
        let (sink, mut chunks) = tokio::sync::mpsc::channel::<bytes::Bytes>(8);
        let (out, stream) = tokio::sync::mpsc::channel::<Result<pb::BackupChunk, Status>>(8);
        let fleet = self.fleet.clone();
        tokio::spawn(async move {
            let work = fleet.call_long(node, |d| async move { d.backup(&name, sink).await });
            let relay = async {
                while let Some(data) = chunks.recv().await {
                    let chunk = pb::BackupChunk { data, facts: None };
                    if out.send(Ok(chunk)).await.is_err() {
                        break;
                    }
                }
            };
            let (result, ()) = tokio::join!(work, relay);
            let last = result.map_err(status).map(|facts| pb::BackupChunk {
                data: bytes::Bytes::new(),
                facts: Some(pb::BackupFacts {
                    format: facts.format,
                    volume: facts.volume.unwrap_or_default(),
                    id_map: facts.id_map,
                    was_running: facts.was_running,
                    guest_config: facts.config,
                }),
            });
            let _ = out.send(last).await;
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(stream),
        )))
    }

    async fn restore_guest(
        &self,
        request: Request<tonic::Streaming<pb::RestoreChunk>>,
    ) -> Reply<pb::GuestReply> {
        Caller::required(&request)?.require_service(&[Service::Snapshot])?;
        let mut incoming = request.into_inner();
        let first = incoming.message().await?.ok_or_else(|| {
            status(NodeError::invalid(
                "guest",
                "the first message names the guest",
            ))
        })?;
        let (node, name) = guest(first.guest)?;
        let volume = (!first.volume.is_empty()).then_some(first.volume);
        let (feed, source) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, String>>(8);
        let first_data = first.data;
        let relay = async move {
            if !first_data.is_empty() && feed.send(Ok(first_data)).await.is_err() {
                return Ok(());
            }
            loop {
                match incoming.message().await {
                    Ok(Some(chunk)) => {
                        if feed.send(Ok(chunk.data)).await.is_err() {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(status) => {
                        // The sender hung up or failed: the driver must not take a partial
                        // archive for a whole one.
                        let _ = feed.send(Err(status.message().to_owned())).await;
                        return Err(status);
                    }
                }
            }
            Ok::<(), Status>(())
        };
        let work = self.fleet.call_long(node, |d| async move {
            d.restore(&name, volume.as_deref(), source).await
        });
        let (done, relayed) = tokio::join!(work, relay);
        // A stream cut short must not count as a whole archive.
        relayed?;
        Ok(notes(done.map_err(status)?))
    }

    async fn delete_backup_volume(
        &self,
        request: Request<pb::BackupVolumeRef>,
    ) -> Reply<pb::GuestReply> {
        Caller::required(&request)?.require_service(&[Service::Snapshot])?;
        let r = request.into_inner();
        let node = NodeId::new(r.node_id)
            .ok_or_else(|| status(NodeError::invalid("node_id", "a node id is required")))?;
        if r.volume.is_empty() || r.volume.len() > 255 || r.volume.chars().any(char::is_control) {
            return Err(status(NodeError::invalid(
                "volume",
                "a backup volume id is required",
            )));
        }
        let volume = r.volume;
        self.fleet
            .call(node, |d| async move { d.delete_backup(&volume).await })
            .await
            .map_err(status)?;
        Ok(notes(Vec::new()))
    }

    async fn node_usage(
        &self,
        request: Request<pb::NodeUsageRequest>,
    ) -> Reply<pb::NodeUsageReply> {
        Caller::required(&request)?.require_service(READING_GUESTS)?;
        let node = NodeId::new(request.into_inner().node_id)
            .ok_or_else(|| status(NodeError::invalid("node_id", "a node id is required")))?;
        let usage = self
            .fleet
            .call(node, |d| async move { d.usage().await })
            .await
            .map_err(status)?;
        Ok(Response::new(pb::NodeUsageReply {
            guests: usage
                .into_iter()
                .map(|u| pb::GuestUsage {
                    name: u.name,
                    state: power_pb(u.state).into(),
                    cpu_time_ns: u.cpu_time_ns,
                    memory_bytes: u.memory_bytes,
                    memory_limit_bytes: u.memory_limit_bytes.unwrap_or(0),
                    disk_bytes: u.disk_bytes,
                    net_rx_bytes: u.net_rx_bytes,
                    net_tx_bytes: u.net_tx_bytes,
                    uptime_secs: u.uptime_secs,
                    cpu_fraction: u.cpu_fraction.unwrap_or(-1.0),
                    disk_read_bytes: u.disk_read_bytes,
                    disk_write_bytes: u.disk_write_bytes,
                })
                .collect(),
        }))
    }

    async fn set_network_limit(
        &self,
        request: Request<pb::NetworkLimitRequest>,
    ) -> Reply<pb::GuestReply> {
        Caller::required(&request)?.require_service(&[Service::Server])?;
        let r = request.into_inner();
        if r.mbit > 100_000 {
            return Err(status(NodeError::invalid("mbit", "at most 100000 Mbit/s")));
        }
        let (node, name) = guest(r.guest)?;
        let mbit = r.mbit;
        let notes = self
            .fleet
            .call(
                node,
                |d| async move { d.set_network_limit(&name, mbit).await },
            )
            .await
            .map_err(status)?;
        Ok(self::notes(notes))
    }
}

/// Console tickets and the terminal stream.
pub struct ConsoleService {
    nodes: Arc<Nodes>,
    fleet: Arc<Fleet>,
    sessions: Arc<Sessions>,
}

impl ConsoleService {
    pub fn new(nodes: Arc<Nodes>, fleet: Arc<Fleet>, sessions: Arc<Sessions>) -> Self {
        Self {
            nodes,
            fleet,
            sessions,
        }
    }

    pub fn into_server(self) -> ConsolesServer<Self> {
        ConsolesServer::new(self)
    }
}

type OutputStream =
    std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::ConsoleOutput, Status>> + Send>>;

#[tonic::async_trait]
impl ConsolesRpc for ConsoleService {
    async fn issue_ticket(
        &self,
        request: Request<pb::IssueConsoleTicketRequest>,
    ) -> Reply<pb::ConsoleTicket> {
        Caller::required(&request)?.require_service(&[Service::Server])?;
        let r = request.into_inner();
        let (node, name) = guest(r.guest)?;
        let user = UserId::new(r.user_id).ok_or_else(|| {
            status(NodeError::invalid(
                "user_id",
                "a console ticket is bound to a user",
            ))
        })?;
        let ticket = self
            .nodes
            .issue_console_ticket(node, &name, user)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ConsoleTicket {
            ticket,
            expires_in_secs: TICKET_TTL_SECS,
        }))
    }

    async fn close_user_consoles(
        &self,
        request: Request<pb::CloseUserConsolesRequest>,
    ) -> Reply<pb::CloseUserConsolesReply> {
        Caller::required(&request)?.require_service(&[Service::Gateway])?;
        let Some(user) = UserId::new(request.into_inner().user_id) else {
            return Err(status(NodeError::invalid(
                "user_id",
                "a user id is required",
            )));
        };
        let closed = self.sessions.close_user(user);
        Ok(Response::new(pb::CloseUserConsolesReply {
            closed: u32::try_from(closed).unwrap_or(u32::MAX),
        }))
    }

    type AttachStream = OutputStream;

    async fn attach(
        &self,
        request: Request<tonic::Streaming<pb::ConsoleInput>>,
    ) -> Reply<Self::AttachStream> {
        use tokio_stream::StreamExt as _;
        Caller::required(&request)?.require_service(&[Service::Gateway])?;
        let mut inbound = request.into_inner();
        let first = inbound.message().await?;
        let (ticket, authenticated) = match first {
            Some(pb::ConsoleInput {
                input: Some(pb::console_input::Input::Ticket(ticket)),
                user_id,
            }) => (ticket, user_id),
            _ => return Err(status(NodeError::BadTicket)),
        };
        let grant = self
            .nodes
            .redeem_console_ticket(&ticket)
            .await
            .map_err(status)?;
        if authenticated != 0 && authenticated != grant.user_id.get() {
            // Another user's ticket: refused like any bad ticket (and now used up).
            return Err(status(NodeError::BadTicket));
        }
        let mut session = self
            .sessions
            .open(grant.user_id, grant.node_id, &grant.guest)
            .map_err(status)?;
        let name = grant.guest.clone();
        let console = self
            .fleet
            .call(grant.node_id, |d| async move { d.console(&name).await })
            .await
            .map_err(status)?;
        tracing::info!(user = grant.user_id.get(), node = grant.node_id.get(), guest = %grant.guest, "console opened");
        let crate::driver::Console { input, output } = console;
        let limits = self.sessions.limits();
        tokio::spawn(async move {
            let ends = tokio::time::Instant::now() + limits.lifetime();
            let why = loop {
                let message = tokio::select! {
                    message = tokio::time::timeout(limits.idle(), inbound.message()) => message,
                    () = tokio::time::sleep_until(ends) => break "its lifetime ended",
                    () = session.closed() => break "its server stopped or its user logged out",
                };
                let bytes = match message {
                    Err(_) => break "it was idle too long",
                    Ok(Ok(Some(pb::ConsoleInput {
                        input: Some(pb::console_input::Input::Data(bytes)),
                        ..
                    }))) => bytes,
                    Ok(Ok(Some(_))) => continue,
                    Ok(_) => break "the client left",
                };
                if bytes.len() > limits.max_frame_bytes {
                    break "a frame was too large";
                }
                if input.send(bytes).await.is_err() {
                    break "the terminal ended";
                }
            };
            tracing::info!(user = grant.user_id.get(), guest = %grant.guest, why, "console closed");
            // Dropping the input ends the terminal, which ends the output stream.
            drop(input);
            drop(session);
        });
        let stream = tokio_stream::wrappers::ReceiverStream::new(output)
            .map(|data| Ok(pb::ConsoleOutput { data }));
        Ok(Response::new(Box::pin(stream)))
    }
}
