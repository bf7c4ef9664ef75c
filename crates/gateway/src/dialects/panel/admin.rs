//! What operators read to run the fleet from the dashboard: every user, every server, the
//! nodes with their capacity, health and servers, and the address pools. Administrators only.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use proto::identity::v1 as idpb;
use proto::node::v1 as nodepb;
use proto::server::v1 as pb;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::servers::PanelServer;
use super::{Account, Panel, PanelError, Result, timestamp};
use crate::extract::Admin;
use crate::servers::{PAGE, all_pages, list_nodes, list_servers};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(users))
        .routes(routes!(servers))
        .routes(routes!(nodes))
        .routes(routes!(pools))
}

/// Every account (administrators).
#[utoipa::path(get, path = "/api/admin/users", tag = "admin",
    security(("bearerJwt" = [])),
    responses(
        (status = 200, description = "Every account, oldest first", body = [Account]),
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 403, description = "Administrators only", body = PanelError),
    ))]
async fn users(State(state): State<AppState>, admin: Admin<Panel>) -> Result<Json<Vec<Account>>> {
    let caller = admin.principal.caller();
    let users = all_pages(|page_token| {
        let request = caller.request(idpb::ListUsersRequest {
            limit: PAGE,
            page_token,
            ids: Vec::new(),
        });
        async {
            let reply = state.identity().list_users(request).await?.into_inner();
            Ok((reply.users, reply.next_page_token))
        }
    })
    .await?;
    Ok(Json(users.into_iter().map(Account::from).collect()))
}

/// Every user's servers, with their owners and nodes (administrators).
#[utoipa::path(get, path = "/api/admin/servers", tag = "admin",
    security(("bearerJwt" = [])),
    responses(
        (status = 200, description = "Every server, in id order", body = [PanelServer]),
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 403, description = "Administrators only", body = PanelError),
    ))]
async fn servers(
    State(state): State<AppState>,
    admin: Admin<Panel>,
) -> Result<Json<Vec<PanelServer>>> {
    let all = list_servers(
        &state,
        admin.principal.caller(),
        pb::ListServersRequest::default(),
    )
    .await?;
    Ok(Json(all.into_iter().map(PanelServer::for_admin).collect()))
}

/// Cores, memory (MB) and disk (GB).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Size {
    cores: u32,
    memory: u64,
    disk: u64,
}

impl From<Option<nodepb::Capacity>> for Size {
    fn from(c: Option<nodepb::Capacity>) -> Self {
        let c = c.unwrap_or_default();
        Self {
            cores: c.cores,
            memory: c.memory_mb,
            disk: c.disk_gb,
        }
    }
}

/// A hypervisor node as operators see it. No credential is ever part of it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeView {
    id: i64,
    name: String,
    location: String,
    /// `lxc` or `proxmox`.
    driver: String,
    address: String,
    /// `online`, `offline` or `maintenance`.
    state: &'static str,
    /// `healthy`, `unreachable` or `unknown` (not checked yet).
    health: &'static str,
    /// What the node has, before overcommit.
    capacity: Size,
    /// What its servers hold.
    reserved: Size,
    /// How far each resource may be overcommitted (1.0: not at all).
    overcommit: Overcommit,
    /// How many servers it runs (any status).
    servers: u32,
    created_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Overcommit {
    cpu: f64,
    memory: f64,
    disk: f64,
}

fn node_view(n: nodepb::Node, servers: u32) -> NodeView {
    let overcommit = n.overcommit.unwrap_or_default();
    NodeView {
        state: match n.state() {
            nodepb::NodeState::Online => "online",
            nodepb::NodeState::Maintenance => "maintenance",
            nodepb::NodeState::Offline | nodepb::NodeState::Unspecified => "offline",
        },
        health: match n.health() {
            nodepb::NodeHealth::Healthy => "healthy",
            nodepb::NodeHealth::Unreachable => "unreachable",
            nodepb::NodeHealth::Unknown => "unknown",
        },
        capacity: Size::from(n.capacity),
        reserved: Size::from(n.reserved),
        overcommit: Overcommit {
            cpu: overcommit.cpu,
            memory: overcommit.memory,
            disk: overcommit.disk,
        },
        servers,
        created_at: timestamp(n.created_at_ms),
        id: n.id,
        name: n.name,
        location: n.location,
        driver: n.driver,
        address: n.address,
    }
}

/// Every node with its capacity, health and how many servers it runs (administrators).
#[utoipa::path(get, path = "/api/admin/nodes", tag = "admin",
    security(("bearerJwt" = [])),
    responses(
        (status = 200, description = "Every node", body = [NodeView]),
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 403, description = "Administrators only", body = PanelError),
    ))]
async fn nodes(State(state): State<AppState>, admin: Admin<Panel>) -> Result<Json<Vec<NodeView>>> {
    let caller = admin.principal.caller();
    let (nodes, servers) = tokio::try_join!(
        list_nodes(&state, caller),
        list_servers(&state, caller, pb::ListServersRequest::default()),
    )?;
    let mut per_node: HashMap<i64, u32> = HashMap::new();
    for server in &servers {
        *per_node.entry(server.node_id).or_default() += 1;
    }
    Ok(Json(
        nodes
            .into_iter()
            .map(|n| {
                let count = per_node.get(&n.id).copied().unwrap_or(0);
                node_view(n, count)
            })
            .collect(),
    ))
}

/// An address pool: where servers' addresses come from.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PoolView {
    id: i64,
    name: String,
    /// The node it serves (0: every node of its location).
    node_id: i64,
    location: String,
    range: String,
    gateway: String,
    /// 4 or 6.
    family: u32,
    prefix_len: u32,
    size: u64,
    allocated: u64,
}

/// Every address pool and how much of it is taken (administrators).
#[utoipa::path(get, path = "/api/admin/pools", tag = "admin",
    security(("bearerJwt" = [])),
    responses(
        (status = 200, description = "Every pool", body = [PoolView]),
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 403, description = "Administrators only", body = PanelError),
    ))]
async fn pools(State(state): State<AppState>, admin: Admin<Panel>) -> Result<Json<Vec<PoolView>>> {
    let reply = state
        .nodes()
        .list_pools(
            admin
                .principal
                .caller()
                .request(nodepb::ListPoolsRequest {}),
        )
        .await?
        .into_inner();
    Ok(Json(
        reply
            .pools
            .into_iter()
            .map(|p| PoolView {
                id: p.id,
                name: p.name,
                node_id: p.node_id,
                location: p.location,
                range: p.range,
                gateway: p.gateway,
                family: p.family,
                prefix_len: p.prefix_len,
                size: p.size,
                allocated: p.allocated,
            })
            .collect(),
    ))
}
