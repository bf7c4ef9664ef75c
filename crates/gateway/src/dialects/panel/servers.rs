//! The panel's server routes (seed 000), its task and catalog routes. A foreign server is a
//! 404; an action wrong for the server's state is a 409.

use crate::reads::{self, ReadKey};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::response::Response;
use proto::monitor::v1 as monpb;
use proto::server::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::replies::{
    Catalog, CatalogImage, CatalogLocation, ConsoleUrl, CreatedServer, NewPassword, Resizing,
    ServerUsage, Stats, Tariff, TaskBegun, UsageStats,
};
use super::{Panel, PanelError, Result, timestamp};
use crate::error::ApiError;
use crate::extract::{Admin, Auth, Body, PathId};
use crate::servers::{
    AddOnly, action, by_id, request, status_name, task_kind_name, task_state_name,
};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_servers))
        .routes(routes!(create_server))
        .routes(routes!(get_server, delete_server))
        .routes(routes!(server_status))
        .routes(routes!(start_server))
        .routes(routes!(stop_server))
        .routes(routes!(restart_server))
        .routes(routes!(reset_password))
        .routes(routes!(reinstall_server))
        .routes(routes!(resize_server))
        .routes(routes!(console))
        .routes(routes!(get_task))
        .routes(routes!(catalog))
        .routes(routes!(put_plan))
        .routes(routes!(put_image))
        .routes(routes!(put_location))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OsRef {
    id: i64,
    name: String,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TariffRef {
    id: i64,
    name: String,
    /// Monthly price in minor units.
    price: i64,
}

/// A server in the panel's list.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PanelServer {
    id: i64,
    user_id: i64,
    tariff_id: i64,
    os_id: i64,
    name: String,
    hostname: String,
    status: String,
    /// The numeric id of the guest on its hypervisor.
    proxmox_id: i64,
    ip_address: Option<String>,
    /// Never shown after creation: always null here.
    root_password: Option<String>,
    created_at: Option<String>,
    updated_at: Option<String>,
    os: Option<OsRef>,
    tariff: Option<TariffRef>,
    task_id: Option<String>,
    /// Why the server is in `error` or `suspended`.
    status_reason: Option<String>,
    location: String,
    ipv6_address: Option<String>,
    /// The size in effect: vCPUs, memory (MB) and disk (GB).
    cores: u32,
    memory: u64,
    disk: u64,
    /// This month's traffic against the plan's limit.
    traffic: Traffic,
    /// The node it runs on; administrators' listings only.
    #[serde(skip_serializing_if = "Option::is_none")]
    node_id: Option<i64>,
}

/// Traffic this month, in bytes; `limit` 0 is unlimited. `combined`: in and out count
/// together against the limit (else the larger of the two does).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Traffic {
    #[serde(rename = "in")]
    inbound: u64,
    out: u64,
    limit: u64,
    combined: bool,
}

impl PanelServer {
    /// The server as an administrator's listing shows it: with its node.
    pub fn for_admin(s: pb::Server) -> Self {
        let node_id = s.node_id;
        Self {
            node_id: Some(node_id),
            ..Self::from(s)
        }
    }
}

fn os_of(s: &pb::Server) -> Option<OsRef> {
    s.image.as_ref().map(|i| OsRef {
        id: i.id,
        name: i.name.clone(),
        kind: i.r#type.clone(),
    })
}

fn tariff_of(s: &pb::Server) -> Option<TariffRef> {
    s.plan.as_ref().map(|p| TariffRef {
        id: p.id,
        name: p.name.clone(),
        price: p.monthly_price,
    })
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

impl From<pb::Server> for PanelServer {
    fn from(s: pb::Server) -> Self {
        Self {
            os: os_of(&s),
            tariff: tariff_of(&s),
            status: status_name(s.status()).to_owned(),
            id: s.id,
            user_id: s.owner_id,
            tariff_id: s.plan.as_ref().map_or(0, |p| p.id),
            os_id: s.image.as_ref().map_or(0, |i| i.id),
            name: s.name,
            hostname: s.hostname,
            proxmox_id: s.hypervisor_id,
            ip_address: non_empty(&s.ipv4),
            root_password: None,
            created_at: timestamp(s.created_at_ms),
            updated_at: timestamp(s.updated_at_ms),
            task_id: non_empty(&s.task_id),
            status_reason: non_empty(&s.status_reason),
            ipv6_address: non_empty(&s.ipv6),
            cores: s.cores,
            memory: s.memory_mb,
            disk: s.disk_gb,
            traffic: Traffic {
                inbound: s.traffic_in_bytes,
                out: s.traffic_out_bytes,
                limit: s.traffic_limit_bytes,
                combined: s.traffic_combined,
            },
            node_id: None,
            location: s.location,
        }
    }
}

/// List the caller's servers.
#[utoipa::path(get, path = "/api/server", tag = "servers",
    security(("bearerJwt" = [])),
    responses(
        (status = 200, description = "The caller's servers", body = [PanelServer]),
        (status = 401, description = "Missing or invalid token", body = PanelError),
    ))]
async fn list_servers(State(state): State<AppState>, auth: Auth<Panel>) -> Result<Response> {
    let caller = auth.principal.caller();
    let request = pb::ListServersRequest {
        owner_id: caller.user_id,
        ..pb::ListServersRequest::default()
    };
    let key = ReadKey::new(caller, "panel.servers", "");
    Ok(
        reads::servers(&state, key, caller, request, |servers| async {
            Ok(servers
                .into_iter()
                .map(PanelServer::from)
                .collect::<Vec<_>>())
        })
        .await?,
    )
}

/// One server.
#[utoipa::path(get, path = "/api/server/{id}", tag = "servers",
    security(("bearerJwt" = [])),
    params(("id" = i64, Path, description = "Server id")),
    responses(
        (status = 400, description = "A malformed id", body = PanelError),
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 200, description = "The server", body = PanelServer),
        (status = 404, description = "No such server of the caller's", body = PanelError),
    ))]
async fn get_server(
    State(state): State<AppState>,
    auth: Auth<Panel>,
    PathId(id, _): PathId<Panel>,
) -> Result<Response> {
    let caller = auth.principal.caller();
    // A listing of one, so it is answered again while unchanged like any listing.
    let request = pb::ListServersRequest {
        ids: vec![id],
        ..pb::ListServersRequest::default()
    };
    let key = ReadKey::new(caller, "panel.server", id.to_string());
    Ok(
        reads::servers(&state, key, caller, request, |servers| async {
            let server = match servers.into_iter().next() {
                Some(server) => server,
                // Not the caller's (or not at all): server-svc's own refusal.
                None => state
                    .servers()
                    .get_server(caller.request(by_id(id)))
                    .await?
                    .into_inner(),
            };
            Ok(PanelServer::from(server))
        })
        .await?,
    )
}

/// Which history the status route adds, as Proxmox VE's rrddata.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatusQuery {
    /// `hour` (every sample), `day` (every sample), `week` and `month` (30-minute points),
    /// `year` (6-hour points). Absent: `hour`.
    #[param(pattern = "^(hour|day|week|month|year)$")]
    timeframe: Option<String>,
    /// For 30-minute and 6-hour points: `AVERAGE` (the default) or `MAX`.
    #[param(pattern = "^(AVERAGE|MAX)$")]
    cf: Option<String>,
}

/// Status and statistics from the server's latest sample (monitor-svc polls every node
/// every 30 seconds; no hypervisor is asked here), with `rrdData` for the timeframe.
#[utoipa::path(get, path = "/api/server/{id}/status", tag = "servers",
    security(("bearerJwt" = [])),
    params(("id" = i64, Path, description = "Server id"), StatusQuery),
    responses(
        (status = 400, description = "A malformed id, timeframe or cf", body = PanelError),
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 200, description = "Status and statistics", body = ServerUsage),
        (status = 404, description = "No such server of the caller's", body = PanelError),
    ))]
async fn server_status(
    State(state): State<AppState>,
    auth: Auth<Panel>,
    PathId(id, _): PathId<Panel>,
    query: std::result::Result<
        axum::extract::Query<StatusQuery>,
        axum::extract::rejection::QueryRejection,
    >,
) -> Result<Response> {
    let axum::extract::Query(query) =
        query.map_err(|_| ApiError::bad_request("timeframe and cf must be text"))?;
    let timeframe = match query.timeframe.as_deref().unwrap_or("hour") {
        "hour" => monpb::Timeframe::Hour,
        "day" => monpb::Timeframe::Day,
        "week" => monpb::Timeframe::Week,
        "month" => monpb::Timeframe::Month,
        "year" => monpb::Timeframe::Year,
        _ => {
            return Err(ApiError::invalid(
                "timeframe",
                "timeframe must be hour, day, week, month or year",
            )
            .into());
        }
    };
    let cf = match query.cf.as_deref().unwrap_or("AVERAGE") {
        "AVERAGE" => monpb::Consolidation::Average,
        "MAX" => monpb::Consolidation::Max,
        _ => return Err(ApiError::invalid("cf", "cf must be AVERAGE or MAX").into()),
    };
    let caller = auth.principal.caller();
    let key = ReadKey::new(
        caller,
        "panel.status",
        format!("{id}:{}:{}", timeframe as i32, cf as i32),
    );
    Ok(reads::shared(&state, key, || async {
        let usage = state
            .servers()
            .get_usage(caller.request(pb::UsageRequest {
                id,
                timeframe: timeframe.into(),
                cf: cf.into(),
                ..pb::UsageRequest::default()
            }))
            .await?
            .into_inner();
        let status = status_name(usage.status());
        Ok(ServerUsage {
            id,
            status,
            stats: UsageStats::from(Stats {
                server_id: id,
                status,
                live: usage.live,
                uptime: usage.uptime_secs,
                cpu: usage.cpu_percent.max(0.0) / 100.0,
                memory: (usage.memory_used_bytes, usage.memory_max_bytes),
                disk: (usage.disk_used_bytes, usage.disk_max_bytes),
                network: (usage.net_in_bytes, usage.net_out_bytes),
                points: &usage.points,
            }),
        })
    })
    .await?)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"osId": 1, "tariffId": 1, "name": "web1"}))]
pub struct CreateBody {
    #[schema(minimum = 1)]
    os_id: i64,
    /// The plan; 0 orders a server without one (administrators only, at a default size).
    #[schema(minimum = 0)]
    tariff_id: i64,
    /// Optional; `server-` and eight hex digits when absent.
    #[schema(pattern = r"^[A-Za-z][A-Za-z0-9-]{0,63}$")]
    name: Option<String>,
    /// A fully qualified domain name; `<name>.<default domain>` when absent.
    #[schema(
        max_length = 253,
        pattern = r"^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9-]*[A-Za-z][A-Za-z0-9-]*\.?$"
    )]
    hostname: Option<String>,
    #[schema(min_length = 1, max_length = 32)]
    location: Option<String>,
    /// Start from this backup of the caller's (its files; the new server's own size,
    /// addresses and root password); billed as any order.
    #[schema(minimum = 1)]
    backup_id: Option<i64>,
}

/// A backup to start from: positive when given.
pub fn backup_id(given: Option<i64>) -> std::result::Result<i64, ApiError> {
    match given {
        None => Ok(0),
        Some(id) if id > 0 => Ok(id),
        Some(_) => Err(ApiError::invalid("backupId", "a backup id is positive")),
    }
}

/// Order a server. Answers at once with `creating` and the generated root password, which
/// is shown only here.
#[utoipa::path(post, path = "/api/server/create", tag = "servers",
    security(("bearerJwt" = [])),
    request_body = CreateBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the call safe to repeat")),
    responses(
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 201, description = "Being created", body = CreatedServer),
        (status = 400, description = "Invalid input", body = PanelError),
        (status = 402, description = "The balance does not cover the first hour, or a debt is unpaid", body = PanelError),
        (status = 403, description = "A quota would be exceeded (servers, vCPUs, memory, addresses)", body = PanelError),
        (status = 404, description = "No such backup of the caller's", body = PanelError),
        (status = 507, description = "No node has room", body = PanelError),
    ))]
async fn create_server(
    State(state): State<AppState>,
    auth: Auth<Panel>,
    headers: HeaderMap,
    Body(body, _): Body<Panel, CreateBody>,
) -> Result<impl IntoResponse> {
    let caller = auth.principal.caller();
    let message = pb::CreateServerRequest {
        name: body.name.unwrap_or_default(),
        hostname: body.hostname.unwrap_or_default(),
        plan_id: body.tariff_id,
        image_id: body.os_id,
        location: body.location.unwrap_or_default(),
        from_backup_id: backup_id(body.backup_id)?,
        ..pb::CreateServerRequest::default()
    };
    let reply = state
        .servers()
        .create_server(request(caller, &headers, message)?)
        .await?
        .into_inner();
    let server = reply.server.unwrap_or_default();
    let status = status_name(server.status());
    Ok((
        StatusCode::CREATED,
        Json(CreatedServer::new(
            server,
            status,
            reply.root_password,
            reply.task_id,
        )),
    ))
}

async fn power(
    state: &AppState,
    auth: &Auth<Panel>,
    headers: &HeaderMap,
    id: i64,
    what: pb::Action,
    name: &'static str,
) -> Result<Json<TaskBegun>> {
    let reply = state
        .servers()
        .act(request(auth.principal.caller(), headers, action(id, what))?)
        .await?
        .into_inner();
    Ok(Json(TaskBegun::power(name, reply.task_id)))
}

/// Start a stopped server.
#[utoipa::path(post, path = "/api/server/{id}/start", tag = "servers",
    security(("bearerJwt" = [])),
    params(("id" = i64, Path, description = "Server id")),
    responses(
        (status = 400, description = "A malformed id", body = PanelError),
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 200, description = "Starting; the task id follows it", body = TaskBegun),
        (status = 402, description = "The balance does not cover the next hour", body = PanelError),
        (status = 404, description = "No such server of the caller's", body = PanelError),
        (status = 409, description = "Wrong state (already running, busy, suspended)", body = PanelError),
    ))]
async fn start_server(
    State(state): State<AppState>,
    auth: Auth<Panel>,
    headers: HeaderMap,
    PathId(id, _): PathId<Panel>,
) -> Result<Json<TaskBegun>> {
    power(&state, &auth, &headers, id, pb::Action::Start, "start").await
}

/// Stop a running server.
#[utoipa::path(post, path = "/api/server/{id}/stop", tag = "servers",
    security(("bearerJwt" = [])),
    params(("id" = i64, Path, description = "Server id")),
    responses(
        (status = 400, description = "A malformed id", body = PanelError),
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 200, description = "Stopping; the task id follows it", body = TaskBegun),
        (status = 404, description = "No such server of the caller's", body = PanelError),
        (status = 409, description = "Wrong state", body = PanelError),
    ))]
async fn stop_server(
    State(state): State<AppState>,
    auth: Auth<Panel>,
    headers: HeaderMap,
    PathId(id, _): PathId<Panel>,
) -> Result<Json<TaskBegun>> {
    power(&state, &auth, &headers, id, pb::Action::Stop, "stop").await
}

/// Restart a running server.
#[utoipa::path(post, path = "/api/server/{id}/restart", tag = "servers",
    security(("bearerJwt" = [])),
    params(("id" = i64, Path, description = "Server id")),
    responses(
        (status = 400, description = "A malformed id", body = PanelError),
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 200, description = "Restarting; the task id follows it", body = TaskBegun),
        (status = 404, description = "No such server of the caller's", body = PanelError),
        (status = 409, description = "Wrong state", body = PanelError),
    ))]
async fn restart_server(
    State(state): State<AppState>,
    auth: Auth<Panel>,
    headers: HeaderMap,
    PathId(id, _): PathId<Panel>,
) -> Result<Json<TaskBegun>> {
    power(&state, &auth, &headers, id, pb::Action::Reboot, "restart").await
}

/// Delete a server and its container.
#[utoipa::path(delete, path = "/api/server/{id}", tag = "servers",
    security(("bearerJwt" = [])),
    params(("id" = i64, Path, description = "Server id")),
    responses(
        (status = 400, description = "A malformed id", body = PanelError),
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 200, description = "Being deleted", body = TaskBegun),
        (status = 404, description = "No such server of the caller's", body = PanelError),
        (status = 409, description = "Busy with another task", body = PanelError),
    ))]
async fn delete_server(
    State(state): State<AppState>,
    auth: Auth<Panel>,
    headers: HeaderMap,
    PathId(id, _): PathId<Panel>,
) -> Result<Json<TaskBegun>> {
    let reply = state
        .servers()
        .act(request(
            auth.principal.caller(),
            &headers,
            action(id, pb::Action::Delete),
        )?)
        .await?
        .into_inner();
    Ok(Json(TaskBegun::deleted(reply.task_id)))
}

/// Generate and set a new root password (the server must be running).
#[utoipa::path(post, path = "/api/server/{id}/password", tag = "servers",
    security(("bearerJwt" = [])),
    params(("id" = i64, Path, description = "Server id")),
    responses(
        (status = 400, description = "A malformed id", body = PanelError),
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 200, description = "The new password, shown only here", body = NewPassword),
        (status = 404, description = "No such server of the caller's", body = PanelError),
        (status = 409, description = "Not running", body = PanelError),
    ))]
async fn reset_password(
    State(state): State<AppState>,
    auth: Auth<Panel>,
    headers: HeaderMap,
    PathId(id, _): PathId<Panel>,
) -> Result<Json<NewPassword>> {
    let reply = state
        .servers()
        .act(request(
            auth.principal.caller(),
            &headers,
            action(id, pb::Action::ResetPassword),
        )?)
        .await?
        .into_inner();
    Ok(Json(NewPassword::new(reply.root_password, reply.task_id)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReinstallBody {
    /// The image to install; the current one when absent.
    os_id: Option<i64>,
}

/// Rebuild the server from an image (its disk is wiped) with a new root password, shown only
/// here. An extension of the seed.
#[utoipa::path(post, path = "/api/server/{id}/reinstall", tag = "servers",
    security(("bearerJwt" = [])),
    params(("id" = i64, Path, description = "Server id")),
    request_body = ReinstallBody,
    responses(
        (status = 200, description = "Reinstalling; the new password, shown only here", body = NewPassword),
        (status = 400, description = "No such image", body = PanelError),
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 404, description = "No such server of the caller's", body = PanelError),
        (status = 409, description = "Wrong state", body = PanelError),
    ))]
async fn reinstall_server(
    State(state): State<AppState>,
    auth: Auth<Panel>,
    headers: HeaderMap,
    PathId(id, _): PathId<Panel>,
    Body(body, _): Body<Panel, ReinstallBody>,
) -> Result<Json<NewPassword>> {
    let message = pb::ActRequest {
        image_id: body.os_id.unwrap_or(0),
        ..action(id, pb::Action::Reinstall)
    };
    let reply = state
        .servers()
        .act(request(auth.principal.caller(), &headers, message)?)
        .await?
        .into_inner();
    Ok(Json(NewPassword::new(reply.root_password, reply.task_id)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResizeBody {
    #[schema(minimum = 1, maximum = 256)]
    cores: Option<u32>,
    /// MB.
    #[schema(minimum = 64, maximum = 4194304)]
    memory: Option<u64>,
    /// GB; disks only grow.
    #[schema(maximum = 65536)]
    disk: Option<u64>,
}

/// Change CPU, memory and disk; every field is optional.
#[utoipa::path(put, path = "/api/server/{id}/resize", tag = "servers",
    security(("bearerJwt" = [])),
    params(("id" = i64, Path, description = "Server id")),
    request_body = ResizeBody,
    responses(
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 200, description = "Resizing; `data` is the task id", body = Resizing),
        (status = 400, description = "Invalid size", body = PanelError),
        (status = 402, description = "The balance does not cover the next hour at the new size's price", body = PanelError),
        (status = 404, description = "No such server of the caller's", body = PanelError),
        (status = 409, description = "Wrong state", body = PanelError),
    ))]
async fn resize_server(
    State(state): State<AppState>,
    auth: Auth<Panel>,
    headers: HeaderMap,
    PathId(id, _): PathId<Panel>,
    Body(body, _): Body<Panel, ResizeBody>,
) -> Result<Json<Resizing>> {
    let message = pb::ActRequest {
        cores: body.cores,
        memory_mb: body.memory,
        disk_gb: body.disk,
        ..action(id, pb::Action::Resize)
    };
    let reply = state
        .servers()
        .act(request(auth.principal.caller(), &headers, message)?)
        .await?
        .into_inner();
    Ok(Json(Resizing::new(reply.task_id)))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ConsoleBody {
    /// The server's `proxmoxId`.
    vmid: Option<i64>,
}

/// A console URL for a running server: a WebSocket terminal behind a single-use ticket.
#[utoipa::path(post, path = "/api/server/console", tag = "servers",
    security(("bearerJwt" = [])),
    request_body = ConsoleBody,
    responses(
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 200, description = "The console URL", body = ConsoleUrl),
        (status = 400, description = "No vmid", body = PanelError),
        (status = 404, description = "No such server of the caller's", body = PanelError),
        (status = 409, description = "Not running", body = PanelError),
    ))]
async fn console(
    State(state): State<AppState>,
    auth: Auth<Panel>,
    Body(body, _): Body<Panel, ConsoleBody>,
) -> Result<Json<ConsoleUrl>> {
    let id = body
        .vmid
        .filter(|v| *v > 0)
        .ok_or_else(|| ApiError::invalid("vmid", "vmid must be a positive integer"))?;
    let ticket = state
        .servers()
        .open_console(auth.principal.caller().request(by_id(id)))
        .await?
        .into_inner();
    Ok(Json(ConsoleUrl::new(
        &ticket.ticket,
        ticket.expires_in_secs,
    )))
}

/// A task's progress and result.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskView {
    id: String,
    server_id: i64,
    kind: String,
    /// running, succeeded or failed.
    state: String,
    step: String,
    steps_done: Vec<String>,
    error: Option<String>,
    error_reason: Option<String>,
    created_at: Option<String>,
    updated_at: Option<String>,
}

impl From<pb::Task> for TaskView {
    fn from(t: pb::Task) -> Self {
        Self {
            error: non_empty(&t.error),
            error_reason: match t.error_reason() {
                platform::grpc::Reason::Unspecified => None,
                reason => Some(reason.as_str_name().to_owned()),
            },
            kind: task_kind_name(t.kind()).to_owned(),
            state: task_state_name(t.state()).to_owned(),
            id: t.id,
            server_id: t.server_id,
            step: t.step,
            steps_done: t.steps_done,
            created_at: timestamp(t.created_at_ms),
            updated_at: timestamp(t.updated_at_ms),
        }
    }
}

/// A task of the caller's.
#[utoipa::path(get, path = "/api/tasks/{id}", tag = "servers",
    security(("bearerJwt" = [])),
    params(("id" = String, Path, description = "Task id")),
    responses(
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 200, description = "The task", body = TaskView),
        (status = 404, description = "No such task of the caller's", body = PanelError),
    ))]
async fn get_task(
    State(state): State<AppState>,
    auth: Auth<Panel>,
    Path(id): Path<String>,
) -> Result<Json<TaskView>> {
    if id.is_empty() || id.len() > 64 {
        return Err(ApiError::not_found("task").into());
    }
    let caller = auth.principal.caller();
    let found = state
        .servers()
        .get_task(caller.request(pb::GetTaskRequest { id: id.clone() }))
        .await;
    match found {
        Ok(task) => Ok(Json(TaskView::from(task.into_inner()))),
        // Not server-svc's: a task of snapshot-svc's that holds no server (a deletion).
        Err(status) if status.code() == tonic::Code::NotFound => {
            let task = state
                .snapshots()
                .get_task(caller.request(proto::snapshot::v1::GetTaskRequest { id }))
                .await?
                .into_inner();
            Ok(Json(TaskView::from(task)))
        }
        Err(status) => Err(status.into()),
    }
}

impl From<proto::snapshot::v1::Task> for TaskView {
    fn from(t: proto::snapshot::v1::Task) -> Self {
        let failed = t.state == "failed";
        Self {
            id: t.id,
            server_id: t.server_id,
            kind: t.kind,
            state: t.state,
            step: t.step,
            steps_done: t.steps_done,
            error: failed.then_some(t.error),
            error_reason: failed.then(|| "FAILED".to_owned()),
            created_at: timestamp(t.created_at_ms),
            updated_at: timestamp(t.updated_at_ms),
        }
    }
}

/// Plans (tariffs), OS images and locations; administrators also see images' `templates`.
#[utoipa::path(get, path = "/api/catalog", tag = "servers",
    security(("bearerJwt" = [])),
    responses(
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 200, description = "The catalog", body = Catalog)))]
async fn catalog(State(state): State<AppState>, auth: Auth<Panel>) -> Result<Json<Catalog>> {
    let c = state
        .servers()
        .get_catalog(auth.principal.caller().request(pb::GetCatalogRequest {}))
        .await?
        .into_inner();
    // Administrators also see each image's templates, which `PUT /api/admin/images/{id}`
    // replaces as a whole.
    Ok(Json(Catalog::new(&c, auth.principal.admin)))
}

/// What a plan does to a server whose month's traffic passes `bandwidth`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TrafficActionBody {
    /// Only the `vps.events.server.traffic_exceeded` event.
    #[default]
    None,
    /// The event, and the guest's network limited to `throttleMbit` until the month ends.
    Throttle,
    /// The event, and the server suspended.
    Suspend,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanBody {
    name: String,
    vcpus: u32,
    /// MB.
    memory: u64,
    /// GB.
    disk: u64,
    /// GB per month.
    #[serde(default)]
    bandwidth: u64,
    /// Minor units per month.
    price: i64,
    /// Snapshots a server on this plan may keep (0 or absent: 5).
    #[serde(default, rename = "snapshotLimit")]
    #[schema(maximum = 1000)]
    snapshot_limit: u32,
    /// Completed, unprotected backups a server on this plan may keep (0 or absent: 10).
    #[serde(default, rename = "backupLimit")]
    #[schema(maximum = 1000)]
    backup_limit: u32,
    /// Over the month's traffic limit: `none` (the default), `throttle` or `suspend`.
    #[serde(default, rename = "trafficAction")]
    traffic_action: TrafficActionBody,
    /// For `throttle`: Mbit/s each way (0 or absent: 10).
    #[serde(default, rename = "throttleMbit")]
    #[schema(maximum = 100000)]
    throttle_mbit: u32,
}

/// Add or change a plan (administrators).
#[utoipa::path(put, path = "/api/admin/plans/{id}", tag = "servers",
    security(("bearerJwt" = [])),
    params(("id" = i64, Path, description = "Plan id"),
        ("If-None-Match" = Option<String>, Header, description = "`*`: add only; an existing plan is left as it is (412)")),
    request_body = PlanBody,
    responses(
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 200, description = "The plan as stored", body = Tariff),
        (status = 400, description = "Invalid plan, or an If-None-Match other than `*`", body = PanelError),
        (status = 403, description = "Administrators only", body = PanelError),
        (status = 412, description = "If-None-Match: * and the plan exists", body = PanelError),
    ))]
async fn put_plan(
    State(state): State<AppState>,
    admin: Admin<Panel>,
    PathId(id, _): PathId<Panel>,
    headers: HeaderMap,
    Body(body, _): Body<Panel, PlanBody>,
) -> Result<Json<Tariff>> {
    let add_only = AddOnly::from_headers(&headers)?;
    let plan = state
        .servers()
        .put_plan(
            add_only.request(
                admin.principal.caller().request(pb::Plan {
                    id,
                    name: body.name,
                    vcpus: body.vcpus,
                    memory_mb: body.memory,
                    disk_gb: body.disk,
                    bandwidth_gb: body.bandwidth,
                    monthly_price: body.price,
                    hourly_price: 0,
                    snapshot_limit: body.snapshot_limit,
                    backup_limit: body.backup_limit,
                    traffic_action: match body.traffic_action {
                        TrafficActionBody::None => pb::TrafficAction::None,
                        TrafficActionBody::Throttle => pb::TrafficAction::Throttle,
                        TrafficActionBody::Suspend => pb::TrafficAction::Suspend,
                    }
                    .into(),
                    throttle_mbit: body.throttle_mbit,
                }),
            ),
        )
        .await
        .map_err(|status| add_only.error(&status))?
        .into_inner();
    Ok(Json(Tariff::from(&plan)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageBody {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    /// The template per driver, e.g. `{"lxc": "busybox"}`.
    templates: std::collections::BTreeMap<String, String>,
}

/// Add or change an OS image (administrators).
#[utoipa::path(put, path = "/api/admin/images/{id}", tag = "servers",
    security(("bearerJwt" = [])),
    params(("id" = i64, Path, description = "Image id"),
        ("If-None-Match" = Option<String>, Header, description = "`*`: add only; an existing image is left as it is (412)")),
    request_body = ImageBody,
    responses(
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 200, description = "The image as stored", body = CatalogImage),
        (status = 400, description = "Invalid image, or an If-None-Match other than `*`", body = PanelError),
        (status = 403, description = "Administrators only", body = PanelError),
        (status = 412, description = "If-None-Match: * and the image exists", body = PanelError),
    ))]
async fn put_image(
    State(state): State<AppState>,
    admin: Admin<Panel>,
    PathId(id, _): PathId<Panel>,
    headers: HeaderMap,
    Body(body, _): Body<Panel, ImageBody>,
) -> Result<Json<CatalogImage>> {
    let add_only = AddOnly::from_headers(&headers)?;
    let image = state
        .servers()
        .put_image(
            add_only.request(admin.principal.caller().request(pb::Image {
                id,
                name: body.name,
                r#type: body.kind,
                templates: body.templates,
            })),
        )
        .await
        .map_err(|status| add_only.error(&status))?
        .into_inner();
    Ok(Json(CatalogImage::new(&image, true)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationBody {
    name: String,
}

/// Add or rename a location (administrators).
#[utoipa::path(put, path = "/api/admin/locations/{code}", tag = "servers",
    security(("bearerJwt" = [])),
    params(("code" = String, Path, description = "Location code"),
        ("If-None-Match" = Option<String>, Header, description = "`*`: add only; an existing location is left as it is (412)")),
    request_body = LocationBody,
    responses(
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 200, description = "The location as stored", body = CatalogLocation),
        (status = 400, description = "Invalid location, or an If-None-Match other than `*`", body = PanelError),
        (status = 403, description = "Administrators only", body = PanelError),
        (status = 412, description = "If-None-Match: * and the location exists", body = PanelError),
    ))]
async fn put_location(
    State(state): State<AppState>,
    admin: Admin<Panel>,
    Path(code): Path<String>,
    headers: HeaderMap,
    Body(body, _): Body<Panel, LocationBody>,
) -> Result<Json<CatalogLocation>> {
    let add_only = AddOnly::from_headers(&headers)?;
    let location = state
        .servers()
        .put_location(
            add_only.request(admin.principal.caller().request(pb::Location {
                code,
                name: body.name,
            })),
        )
        .await
        .map_err(|status| add_only.error(&status))?
        .into_inner();
    Ok(Json(CatalogLocation::from(&location)))
}
