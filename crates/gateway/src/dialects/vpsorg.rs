//! The VPS.org dialect (seeds 002 and 004): `Authorization: Bearer <API token>`, errors as
//! `{"detail": ...}` (with `errors` naming the field). Servers here; snapshots and backups
//! in `snapshots`.

mod snapshots;

use crate::reads::{self, ReadKey};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::response::Response;
use proto::server::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Dialect, DialectKind, bearer};
use crate::auth::Credential;
use crate::error::{ApiError, Failure};
use crate::extract::{Auth, Body, PathId};
use crate::servers::{action, by_id, request};
use crate::state::AppState;

pub struct VpsOrg;

impl Dialect for VpsOrg {
    const KIND: DialectKind = DialectKind::VpsOrg;

    fn credential(headers: &HeaderMap) -> Option<Credential> {
        bearer(headers).map(|t| Credential::VpsorgToken(t.to_owned()))
    }

    fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Invalid token or no token provided.",
        )
    }

    /// An action wrong for the server's state is a 400 here ("already running"), and so is
    /// a limit reached ("snapshot limit reached").
    fn error_status(error: &ApiError) -> StatusCode {
        if error.is_wrong_state() || error.is_limit_reached() {
            StatusCode::BAD_REQUEST
        } else {
            error.status
        }
    }

    /// `detail`, and for a field's fault `errors: {field: [message]}`.
    fn error_body(error: &ApiError) -> serde_json::Value {
        match &error.field {
            Some(field) => {
                serde_json::json!({ "detail": error.message, "errors": { field: [error.message] } })
            }
            None => serde_json::json!({ "detail": error.message }),
        }
    }

    fn error_headers(error: &ApiError, headers: &mut HeaderMap) {
        super::bearer_challenge(error, headers);
    }
}

type Result<T> = std::result::Result<T, Failure<VpsOrg>>;

/// VPS.org's error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct VpsOrgError {
    detail: String,
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_servers, create_server))
        .routes(routes!(get_server, put_server, patch_server, delete_server))
        .routes(routes!(start_server))
        .routes(routes!(stop_server))
        .routes(routes!(reboot_server))
        .merge(snapshots::routes())
}

/// Our status as VPS.org names it.
fn status_name(status: pb::ServerStatus) -> &'static str {
    use pb::ServerStatus as S;
    match status {
        S::Running => "active",
        S::Creating => "provisioning",
        S::Stopped => "stopped",
        S::Starting => "starting",
        S::Stopping => "stopping",
        S::Rebooting => "rebooting",
        S::Restoring => "restoring",
        S::Deleting => "deleting",
        S::Suspended => "suspended",
        S::Terminated => "terminated",
        S::Error => "error",
        S::Unknown | S::Unspecified => "unknown",
    }
}

/// A `status` filter value (English or the document's Romanian) as our status.
fn status_filter(raw: &str) -> std::result::Result<pb::ServerStatus, ApiError> {
    use pb::ServerStatus as S;
    Ok(match raw.trim().to_ascii_lowercase().as_str() {
        "active" | "activ" | "running" => S::Running,
        "stopped" | "oprit" => S::Stopped,
        "suspended" | "suspendat" => S::Suspended,
        "provisioning" | "creating" => S::Creating,
        "error" => S::Error,
        "starting" => S::Starting,
        "stopping" => S::Stopping,
        "rebooting" => S::Rebooting,
        _ => {
            return Err(ApiError::invalid(
                "status",
                "status must be one of active, stopped, suspended, provisioning, error",
            ));
        }
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlanView {
    id: i64,
    name: String,
    vcpus: u32,
    /// MB.
    memory: u64,
    /// GB.
    storage: u64,
    /// GB per month.
    bandwidth: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OsView {
    id: i64,
    name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ResourceUsage {
    cpu_percent: f64,
    /// MB.
    memory_used: u64,
    /// GB.
    disk_used: u64,
    /// GB this period (in + out).
    bandwidth_used: u64,
}

/// A server in VPS.org's shape.
#[derive(Debug, Serialize, ToSchema)]
pub struct VpsOrgServer {
    id: i64,
    name: String,
    hostname: String,
    /// active, stopped, suspended, provisioning, starting, stopping, rebooting, error ...
    status: String,
    ip_address: Option<String>,
    ipv6_address: Option<String>,
    location: String,
    plan: Option<PlanView>,
    os: Option<OsView>,
    backups_enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_usage: Option<ResourceUsage>,
    created_at: Option<String>,
    updated_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'static str>,
}

fn timestamp(ms: i64) -> Option<String> {
    (ms > 0).then(|| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    })
}

impl From<pb::Server> for VpsOrgServer {
    fn from(s: pb::Server) -> Self {
        let size = (s.cores, s.memory_mb, s.disk_gb);
        Self {
            id: s.id,
            status: status_name(s.status()).to_owned(),
            ip_address: (!s.ipv4.is_empty()).then_some(s.ipv4),
            ipv6_address: (!s.ipv6.is_empty()).then_some(s.ipv6),
            location: s.location,
            plan: s.plan.map(|p| PlanView {
                id: p.id,
                name: p.name,
                vcpus: size.0,
                memory: size.1,
                storage: size.2,
                bandwidth: p.bandwidth_gb,
            }),
            os: s.image.map(|i| OsView {
                id: i.id,
                name: i.name,
            }),
            backups_enabled: s.backups,
            resource_usage: None,
            created_at: timestamp(s.created_at_ms),
            updated_at: timestamp(s.updated_at_ms),
            name: s.name,
            hostname: s.hostname,
            message: None,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ServerList {
    count: usize,
    results: Vec<VpsOrgServer>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// active, stopped or suspended.
    status: Option<String>,
    /// A location code.
    location: Option<String>,
}

/// List the caller's servers.
#[utoipa::path(get, path = "/api/v1/servers/", tag = "vpsorg",
    security(("vpsorgToken" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "The caller's servers", body = ServerList),
        (status = 400, description = "Unknown status filter", body = VpsOrgError),
        (status = 401, description = "Invalid or missing token", body = VpsOrgError),
    ))]
async fn list_servers(
    State(state): State<AppState>,
    auth: Auth<VpsOrg>,
    query: std::result::Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response> {
    let Query(query) = query.map_err(|_| ApiError::bad_request("invalid query parameters"))?;
    let status = match query.status.as_deref().map(str::trim) {
        None | Some("") => pb::ServerStatus::Unspecified,
        Some(raw) => status_filter(raw)?,
    };
    let caller = auth.principal.caller();
    let request = pb::ListServersRequest {
        owner_id: caller.user_id,
        status: status.into(),
        location: query.location.unwrap_or_default(),
        ..pb::ListServersRequest::default()
    };
    // The filters as server-svc reads them: a status by number, a location by its length
    // first, so no two filter pairs share a key.
    let args = format!(
        "{}:{}:{}",
        request.status,
        request.location.len(),
        request.location
    );
    let key = ReadKey::new(caller, "vpsorg.servers", args);
    Ok(
        reads::servers(&state, key, caller, request, |servers| async {
            let results: Vec<VpsOrgServer> = servers.into_iter().map(VpsOrgServer::from).collect();
            Ok(ServerList {
                count: results.len(),
                results,
            })
        })
        .await?,
    )
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = VpsOrgCreateBody, example = json!({"name": "web1", "plan_id": 1, "os_id": 1}))]
pub struct CreateBody {
    #[schema(pattern = r"^[A-Za-z][A-Za-z0-9-]{0,63}$")]
    name: Option<String>,
    #[schema(minimum = 1)]
    plan_id: Option<i64>,
    #[schema(minimum = 1)]
    os_id: Option<i64>,
    #[schema(min_length = 1, max_length = 32)]
    location: Option<String>,
    /// A fully qualified domain name.
    #[schema(
        max_length = 253,
        pattern = r"^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9-]*[A-Za-z][A-Za-z0-9-]*\.?$"
    )]
    hostname: Option<String>,
    ssh_key_id: Option<i64>,
    backups_enabled: Option<bool>,
    /// Start from this backup of the caller's (its files; the new server's own size,
    /// addresses and root password); billed as any order.
    #[schema(minimum = 1)]
    backup_id: Option<i64>,
}

/// Create a server. Answers 201 with `provisioning`; 402 when the balance does not cover the
/// first hour.
#[utoipa::path(post, path = "/api/v1/servers/", tag = "vpsorg",
    security(("vpsorgToken" = [])),
    request_body = CreateBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the call safe to repeat")),
    responses(
        (status = 201, description = "Being provisioned", body = VpsOrgServer),
        (status = 400, description = "Invalid parameters", body = VpsOrgError),
        (status = 401, description = "Invalid or missing token", body = VpsOrgError),
        (status = 402, description = "Insufficient credits, or a debt is unpaid", body = VpsOrgError),
        (status = 403, description = "A quota would be exceeded", body = VpsOrgError),
        (status = 404, description = "No such backup of the caller's", body = VpsOrgError),
    ))]
async fn create_server(
    State(state): State<AppState>,
    auth: Auth<VpsOrg>,
    headers: HeaderMap,
    Body(body, _): Body<VpsOrg, CreateBody>,
) -> Result<impl IntoResponse> {
    let name = body
        .name
        .ok_or_else(|| ApiError::invalid("name", "This field is required."))?;
    let plan_id = body
        .plan_id
        .ok_or_else(|| ApiError::invalid("plan_id", "This field is required."))?;
    let os_id = body
        .os_id
        .ok_or_else(|| ApiError::invalid("os_id", "This field is required."))?;
    let location = body
        .location
        .filter(|l| !l.trim().is_empty())
        .ok_or_else(|| ApiError::invalid("location", "This field is required."))?;
    if body.ssh_key_id.is_some() {
        // No SSH key is stored for any account yet, so every id is unknown.
        return Err(ApiError::invalid("ssh_key_id", "no such SSH key").into());
    }
    let message = pb::CreateServerRequest {
        name,
        hostname: body.hostname.unwrap_or_default(),
        plan_id,
        image_id: os_id,
        location,
        backups: body.backups_enabled.unwrap_or(false),
        from_backup_id: match body.backup_id {
            None => 0,
            Some(id) if id > 0 => id,
            Some(_) => return Err(ApiError::invalid("backup_id", "a backup id is positive").into()),
        },
        ..pb::CreateServerRequest::default()
    };
    let reply = state
        .servers()
        .create_server(request(auth.principal.caller(), &headers, message)?)
        .await?
        .into_inner();
    let mut server = VpsOrgServer::from(reply.server.unwrap_or_default());
    server.message = Some("Server is being provisioned. This may take 2-5 minutes.");
    Ok((StatusCode::CREATED, Json(server)))
}

/// One server, with its resource usage.
#[utoipa::path(get, path = "/api/v1/servers/{id}/", tag = "vpsorg",
    security(("vpsorgToken" = [])),
    params(("id" = i64, Path, description = "Server id")),
    responses(
        (status = 400, description = "A malformed id", body = VpsOrgError),
        (status = 200, description = "The server", body = VpsOrgServer),
        (status = 401, description = "Invalid or missing token", body = VpsOrgError),
        (status = 404, description = "No such server", body = VpsOrgError),
    ))]
async fn get_server(
    State(state): State<AppState>,
    auth: Auth<VpsOrg>,
    PathId(id, _): PathId<VpsOrg>,
) -> Result<Response> {
    let caller = auth.principal.caller();
    let key = ReadKey::new(caller, "vpsorg.server", id.to_string());
    Ok(reads::shared(&state, key, || async {
        let (server, usage) = crate::servers::server_and_usage(&state, caller, id).await?;
        let traffic = server.traffic_in_bytes + server.traffic_out_bytes;
        let mut view = VpsOrgServer::from(server);
        view.status = status_name(usage.status()).to_owned();
        view.resource_usage = Some(ResourceUsage {
            cpu_percent: usage.cpu_percent.max(0.0),
            memory_used: usage.memory_used_bytes / (1024 * 1024),
            disk_used: usage.disk_used_bytes / (1024 * 1024 * 1024),
            // This calendar month's, as monitor-svc accounts it.
            bandwidth_used: traffic / 1_000_000_000,
        });
        Ok(view)
    })
    .await?)
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateBody {
    #[schema(pattern = r"^[A-Za-z][A-Za-z0-9-]{0,63}$")]
    name: Option<String>,
    #[schema(
        max_length = 253,
        pattern = r"^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9-]*[A-Za-z][A-Za-z0-9-]*\.?$"
    )]
    hostname: Option<String>,
    backups_enabled: Option<bool>,
}

async fn update(
    state: &AppState,
    auth: &Auth<VpsOrg>,
    id: i64,
    body: UpdateBody,
) -> Result<Json<VpsOrgServer>> {
    let server = state
        .servers()
        .update_server(auth.principal.caller().request(pb::UpdateServerRequest {
            server: Some(by_id(id)),
            name: body.name,
            hostname: body.hostname,
            backups: body.backups_enabled,
        }))
        .await?
        .into_inner();
    Ok(Json(VpsOrgServer::from(server)))
}

/// Replace the server's settings: name, hostname and backups are all required.
#[utoipa::path(put, path = "/api/v1/servers/{id}/", tag = "vpsorg",
    security(("vpsorgToken" = [])),
    params(("id" = i64, Path, description = "Server id")),
    request_body = UpdateBody,
    responses(
        (status = 401, description = "Invalid or missing token", body = VpsOrgError),
        (status = 200, description = "Updated", body = VpsOrgServer),
        (status = 400, description = "Invalid or missing parameters", body = VpsOrgError),
        (status = 404, description = "No such server", body = VpsOrgError),
    ))]
async fn put_server(
    State(state): State<AppState>,
    auth: Auth<VpsOrg>,
    PathId(id, _): PathId<VpsOrg>,
    Body(body, _): Body<VpsOrg, UpdateBody>,
) -> Result<Json<VpsOrgServer>> {
    for (field, present) in [
        ("name", body.name.is_some()),
        ("hostname", body.hostname.is_some()),
        ("backups_enabled", body.backups_enabled.is_some()),
    ] {
        if !present {
            return Err(ApiError::invalid(field, "This field is required.").into());
        }
    }
    update(&state, &auth, id, body).await
}

/// Change some of the server's settings.
#[utoipa::path(patch, path = "/api/v1/servers/{id}/", tag = "vpsorg",
    security(("vpsorgToken" = [])),
    params(("id" = i64, Path, description = "Server id")),
    request_body = UpdateBody,
    responses(
        (status = 401, description = "Invalid or missing token", body = VpsOrgError),
        (status = 200, description = "Updated", body = VpsOrgServer),
        (status = 400, description = "Invalid parameters", body = VpsOrgError),
        (status = 404, description = "No such server", body = VpsOrgError),
    ))]
async fn patch_server(
    State(state): State<AppState>,
    auth: Auth<VpsOrg>,
    PathId(id, _): PathId<VpsOrg>,
    Body(body, _): Body<VpsOrg, UpdateBody>,
) -> Result<Json<VpsOrgServer>> {
    update(&state, &auth, id, body).await
}

/// Delete a server for good (it is removed in the background).
#[utoipa::path(delete, path = "/api/v1/servers/{id}/", tag = "vpsorg",
    security(("vpsorgToken" = [])),
    params(("id" = i64, Path, description = "Server id")),
    responses(
        (status = 400, description = "A malformed id", body = VpsOrgError),
        (status = 401, description = "Invalid or missing token", body = VpsOrgError),
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such server", body = VpsOrgError),
    ))]
async fn delete_server(
    State(state): State<AppState>,
    auth: Auth<VpsOrg>,
    headers: HeaderMap,
    PathId(id, _): PathId<VpsOrg>,
) -> Result<StatusCode> {
    state
        .servers()
        .act(request(
            auth.principal.caller(),
            &headers,
            action(id, pb::Action::Delete),
        )?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn power(
    state: &AppState,
    auth: &Auth<VpsOrg>,
    headers: &HeaderMap,
    id: i64,
    what: pb::Action,
    message: &'static str,
) -> Result<Json<serde_json::Value>> {
    let reply = state
        .servers()
        .act(request(auth.principal.caller(), headers, action(id, what))?)
        .await?
        .into_inner();
    let server = reply.server.unwrap_or_default();
    Ok(Json(serde_json::json!({
        "status": "success",
        "message": message,
        "server": {"id": server.id, "name": server.name, "status": status_name(server.status())},
        "task_id": reply.task_id,
    })))
}

/// Start a stopped server (400 when it is already running).
#[utoipa::path(post, path = "/api/v1/servers/{id}/start/", tag = "vpsorg",
    security(("vpsorgToken" = [])),
    params(("id" = i64, Path, description = "Server id")),
    responses(
        (status = 401, description = "Invalid or missing token", body = VpsOrgError),
        (status = 200, description = "Starting"),
        (status = 400, description = "Already running", body = VpsOrgError),
        (status = 402, description = "The balance does not cover the next hour", body = VpsOrgError),
        (status = 404, description = "No such server", body = VpsOrgError),
    ))]
async fn start_server(
    State(state): State<AppState>,
    auth: Auth<VpsOrg>,
    headers: HeaderMap,
    PathId(id, _): PathId<VpsOrg>,
) -> Result<Json<serde_json::Value>> {
    power(
        &state,
        &auth,
        &headers,
        id,
        pb::Action::Start,
        "Server is starting",
    )
    .await
}

/// Stop a running server (400 when it is already stopped).
#[utoipa::path(post, path = "/api/v1/servers/{id}/stop/", tag = "vpsorg",
    security(("vpsorgToken" = [])),
    params(("id" = i64, Path, description = "Server id")),
    responses(
        (status = 401, description = "Invalid or missing token", body = VpsOrgError),
        (status = 200, description = "Stopping"),
        (status = 400, description = "Already stopped", body = VpsOrgError),
        (status = 404, description = "No such server", body = VpsOrgError),
    ))]
async fn stop_server(
    State(state): State<AppState>,
    auth: Auth<VpsOrg>,
    headers: HeaderMap,
    PathId(id, _): PathId<VpsOrg>,
) -> Result<Json<serde_json::Value>> {
    power(
        &state,
        &auth,
        &headers,
        id,
        pb::Action::Stop,
        "Server is stopping",
    )
    .await
}

/// Reboot a running server (400 when it is not running).
#[utoipa::path(post, path = "/api/v1/servers/{id}/reboot/", tag = "vpsorg",
    security(("vpsorgToken" = [])),
    params(("id" = i64, Path, description = "Server id")),
    responses(
        (status = 401, description = "Invalid or missing token", body = VpsOrgError),
        (status = 200, description = "Rebooting"),
        (status = 400, description = "Not running", body = VpsOrgError),
        (status = 404, description = "No such server", body = VpsOrgError),
    ))]
async fn reboot_server(
    State(state): State<AppState>,
    auth: Auth<VpsOrg>,
    headers: HeaderMap,
    PathId(id, _): PathId<VpsOrg>,
) -> Result<Json<serde_json::Value>> {
    power(
        &state,
        &auth,
        &headers,
        id,
        pb::Action::Reboot,
        "Server is rebooting",
    )
    .await
}
