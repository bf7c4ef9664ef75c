//! The Skyport dialect (seed 001): `x-api-key` (an administrator's key), errors as
//! `{"error": ...}`. Users and nodes here; instances and images in `instances`.

mod instances;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use proto::identity::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Dialect, DialectKind, header_text};
use crate::auth::Credential;
use crate::error::{ApiError, Failure};
use crate::extract::{Auth, Body};
use crate::state::AppState;

pub struct Skyport;

impl Dialect for Skyport {
    const KIND: DialectKind = DialectKind::Skyport;

    fn credential(headers: &HeaderMap) -> Option<Credential> {
        header_text(headers, "x-api-key").map(|k| Credential::SkyportApiKey(k.to_owned()))
    }

    fn unauthorized() -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "API key is missing or invalid")
    }

    fn error_body(error: &ApiError) -> serde_json::Value {
        serde_json::json!({ "error": error.message })
    }
}

type Result<T> = std::result::Result<T, Failure<Skyport>>;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users))
        .routes(routes!(get_user))
        .routes(routes!(create_user))
        .routes(routes!(list_nodes))
        .routes(routes!(create_node))
        .routes(routes!(delete_node))
        .merge(instances::routes())
}

/// A user as Skyport clients know it. Never carries the password hash.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SkyportUser {
    /// The Skyport string id (client-supplied at creation, or generated).
    user_id: String,
    username: String,
    email: String,
    admin: bool,
}

impl From<pb::User> for SkyportUser {
    fn from(u: pb::User) -> Self {
        Self {
            admin: u.role == i32::from(pb::Role::Admin),
            user_id: u.skyport_id,
            username: u.username,
            email: u.email,
        }
    }
}

/// Skyport's error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct SkyportError {
    error: String,
}

/// List every user.
#[utoipa::path(get, path = "/api/users", tag = "skyport",
    security(("skyportApiKey" = [])),
    responses(
        (status = 200, description = "Every user", body = [SkyportUser]),
        (status = 401, description = "API key missing or invalid", body = SkyportError),
    ))]
async fn list_users(
    State(state): State<AppState>,
    auth: Auth<Skyport>,
) -> Result<Json<Vec<SkyportUser>>> {
    let caller = auth.principal.caller();
    let users = crate::servers::all_pages(|page_token| {
        let request = caller.request(pb::ListUsersRequest {
            limit: crate::servers::PAGE,
            page_token,
            ids: Vec::new(),
        });
        async {
            let reply = state.identity().list_users(request).await?.into_inner();
            Ok((reply.users, reply.next_page_token))
        }
    })
    .await?;
    Ok(Json(users.into_iter().map(SkyportUser::from).collect()))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct GetUserBody {
    /// `email` or `username`.
    #[serde(rename = "type")]
    kind: Option<String>,
    value: Option<String>,
}

/// Find a user by email or username. Answers 201 on success, as Skyport documents.
#[utoipa::path(post, path = "/api/getUser", tag = "skyport",
    security(("skyportApiKey" = [])),
    request_body = GetUserBody,
    responses(
        (status = 201, description = "The user", body = SkyportUser),
        (status = 400, description = "Missing or invalid parameters, or no such user", body = SkyportError),
        (status = 401, description = "API key missing or invalid", body = SkyportError),
    ))]
async fn get_user(
    State(state): State<AppState>,
    auth: Auth<Skyport>,
    Body(body, _): Body<Skyport, GetUserBody>,
) -> Result<impl IntoResponse> {
    use pb::get_user_request::By;
    let value = body
        .value
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 254)
        .ok_or_else(|| ApiError::invalid("value", "value is required"))?;
    let by = match body.kind.as_deref() {
        Some("email") => By::Email(value),
        Some("username") => By::Username(value),
        _ => return Err(ApiError::invalid("type", "type must be 'email' or 'username'").into()),
    };
    let reply = state
        .identity()
        .get_user(
            auth.principal
                .caller()
                .request(pb::GetUserRequest { by: Some(by) }),
        )
        .await
        .map_err(|status| match status.code() {
            tonic::Code::NotFound => ApiError::bad_request("user not found"),
            _ => ApiError::from_status(&status),
        })?;
    Ok((
        StatusCode::CREATED,
        Json(SkyportUser::from(reply.into_inner())),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"username": "bob", "email": "bob@example.com", "password": "correct-horse-9"}))]
pub struct CreateUserBody {
    #[schema(pattern = r"^[A-Za-z0-9][A-Za-z0-9_.-]{2,31}$")]
    username: Option<String>,
    #[schema(format = Email, max_length = 254)]
    email: Option<String>,
    #[schema(min_length = 8, max_length = 128)]
    password: Option<String>,
    /// Optional Skyport id; generated when absent.
    #[schema(pattern = r"^[A-Za-z0-9_-]{1,64}$")]
    user_id: Option<String>,
    /// Whether the user is an administrator: `true`/`false` (strings accepted too).
    #[schema(value_type = Option<bool>)]
    admin: Option<serde_json::Value>,
}

/// Create a user.
#[utoipa::path(post, path = "/api/auth/create-user", tag = "skyport",
    security(("skyportApiKey" = [])),
    request_body = CreateUserBody,
    responses(
        (status = 201, description = "The new user", body = SkyportUser),
        (status = 400, description = "Missing or invalid parameters", body = SkyportError),
        (status = 401, description = "API key missing or invalid", body = SkyportError),
        (status = 409, description = "A user with this username, email or userId exists", body = SkyportError),
    ))]
async fn create_user(
    State(state): State<AppState>,
    auth: Auth<Skyport>,
    Body(body, _): Body<Skyport, CreateUserBody>,
) -> Result<impl IntoResponse> {
    let (Some(username), Some(email), Some(password)) = (body.username, body.email, body.password)
    else {
        return Err(ApiError::bad_request("username, email and password are required").into());
    };
    let admin = match body.admin {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::Bool(b)) => b,
        Some(serde_json::Value::String(s)) if s == "true" || s == "false" => s == "true",
        Some(_) => return Err(ApiError::invalid("admin", "admin must be true or false").into()),
    };
    let request = pb::CreateUserRequest {
        username,
        email,
        password,
        role: if admin {
            pb::Role::Admin
        } else {
            pb::Role::User
        }
        .into(),
        skyport_id: body.user_id,
    };
    let created = state
        .identity()
        .create_user(auth.principal.caller().request(request))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(SkyportUser::from(created.into_inner())),
    ))
}

/// A node as Skyport clients know it: the numbers as strings, as Skyport sends them. Never
/// carries credentials.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SkyportNode {
    /// The node's id (a UUID).
    id: String,
    name: String,
    /// Comma-separated.
    tags: String,
    /// Megabytes.
    ram: String,
    /// Gigabytes.
    disk: String,
    /// The processor specification given at creation, else the number of cores.
    processor: String,
    /// Cores.
    cores: u32,
    address: String,
    port: String,
    location: String,
    /// `lxc` or `proxmox`.
    driver: String,
    /// `online`, `offline` or `maintenance`.
    state: String,
    /// `healthy`, `unreachable` or `unknown` (not probed yet).
    health: String,
    /// Capacity taken by servers: cores, MB, GB.
    reserved: ReservedView,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReservedView {
    cores: u32,
    ram: u64,
    disk: u64,
}

impl From<proto::node::v1::Node> for SkyportNode {
    fn from(n: proto::node::v1::Node) -> Self {
        use proto::node::v1::{NodeHealth, NodeState};
        let capacity = n.capacity.unwrap_or_default();
        let reserved = n.reserved.unwrap_or_default();
        let state = match NodeState::try_from(n.state) {
            Ok(NodeState::Online) => "online",
            Ok(NodeState::Offline) => "offline",
            Ok(NodeState::Maintenance) => "maintenance",
            _ => "unknown",
        };
        let health = match NodeHealth::try_from(n.health) {
            Ok(NodeHealth::Healthy) => "healthy",
            Ok(NodeHealth::Unreachable) => "unreachable",
            _ => "unknown",
        };
        Self {
            id: n.uuid,
            name: n.name,
            tags: n.tags.join(","),
            ram: capacity.memory_mb.to_string(),
            disk: capacity.disk_gb.to_string(),
            processor: n
                .settings
                .get("processor")
                .cloned()
                .unwrap_or_else(|| capacity.cores.to_string()),
            cores: capacity.cores,
            address: n.address,
            port: n.port.to_string(),
            location: n.location,
            driver: n.driver,
            state: state.to_owned(),
            health: health.to_owned(),
            reserved: ReservedView {
                cores: reserved.cores,
                ram: reserved.memory_mb,
                disk: reserved.disk_gb,
            },
        }
    }
}

/// List every node.
#[utoipa::path(get, path = "/api/nodes", tag = "skyport",
    security(("skyportApiKey" = [])),
    responses(
        (status = 200, description = "Every node, without credentials", body = [SkyportNode]),
        (status = 401, description = "API key missing or invalid", body = SkyportError),
    ))]
async fn list_nodes(
    State(state): State<AppState>,
    auth: Auth<Skyport>,
) -> Result<Json<Vec<SkyportNode>>> {
    let caller = auth.principal.caller();
    let nodes = crate::servers::list_nodes(&state, caller).await?;
    Ok(Json(nodes.into_iter().map(SkyportNode::from).collect()))
}

/// A number sent as a JSON number or a string of digits, as Skyport clients do.
fn number(
    field: &str,
    value: Option<&serde_json::Value>,
) -> std::result::Result<Option<u64>, ApiError> {
    let invalid = || ApiError::invalid(field, format!("{field} must be a whole number"));
    match value {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => n.as_u64().map(Some).ok_or_else(invalid),
        Some(serde_json::Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(serde_json::Value::String(s)) => s.trim().parse().map(Some).map_err(|_| invalid()),
        Some(_) => Err(invalid()),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateNodeBody {
    name: Option<String>,
    /// Comma-separated.
    tags: Option<String>,
    /// Megabytes (number or string).
    #[schema(value_type = Option<String>)]
    ram: Option<serde_json::Value>,
    /// Gigabytes (number or string).
    #[schema(value_type = Option<String>)]
    disk: Option<serde_json::Value>,
    /// A processor specification (any text, e.g. `AMD EPYC 7543`), or the number of cores.
    #[schema(value_type = Option<String>)]
    processor: Option<serde_json::Value>,
    /// Extension: the number of cores, when `processor` is a description.
    #[schema(value_type = Option<u32>, minimum = 1)]
    cores: Option<serde_json::Value>,
    address: Option<String>,
    #[schema(value_type = Option<String>)]
    port: Option<serde_json::Value>,
    /// Extension: `proxmox` (default) or `lxc`.
    driver: Option<String>,
    /// Extension: the data-centre location (default `default`).
    location: Option<String>,
    /// Extension, lxc: the container path on the node-svc host.
    lxc_path: Option<String>,
    /// Extension, proxmox: the PVE node name.
    pve_node: Option<String>,
    /// Extension, proxmox: `USER@REALM!TOKENID=SECRET`. Stored encrypted, never returned.
    api_token: Option<String>,
    /// Extension, proxmox: ticket login instead of a token. Stored encrypted, never returned.
    username: Option<String>,
    password: Option<String>,
}

/// Register a node. Skyport's fields, plus extensions for the driver and its credentials.
#[utoipa::path(post, path = "/api/nodes/create", tag = "skyport",
    security(("skyportApiKey" = [])),
    request_body = CreateNodeBody,
    responses(
        (status = 201, description = "The new node", body = SkyportNode),
        (status = 400, description = "Missing or invalid parameters", body = SkyportError),
        (status = 401, description = "API key missing or invalid", body = SkyportError),
        (status = 409, description = "A node with this name exists", body = SkyportError),
    ))]
async fn create_node(
    State(state): State<AppState>,
    auth: Auth<Skyport>,
    Body(body, _): Body<Skyport, CreateNodeBody>,
) -> Result<impl IntoResponse> {
    use proto::node::v1 as node;
    let (Some(name), Some(ram), Some(disk), Some(processor)) = (
        body.name,
        number("ram", body.ram.as_ref())?,
        number("disk", body.disk.as_ref())?,
        body.processor.as_ref().filter(|p| !p.is_null()),
    ) else {
        return Err(ApiError::bad_request("name, ram, disk and processor are required").into());
    };
    // The processor is a specification; the core count is a number given there, or the
    // `cores` extension.
    let (description, counted) = match processor {
        serde_json::Value::String(text) => {
            (text.trim().to_owned(), text.trim().parse::<u64>().ok())
        }
        other => (String::new(), number("processor", Some(other))?),
    };
    if description.chars().count() > 128 || description.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "processor",
            "processor must be at most 128 printable characters",
        )
        .into());
    }
    let processor = match (number("cores", body.cores.as_ref())?, counted) {
        (Some(cores), _) | (None, Some(cores)) => cores,
        (None, None) => {
            return Err(ApiError::invalid(
                "cores",
                "give the number of cores: a number in processor, or cores",
            )
            .into());
        }
    };
    if processor == 0 {
        return Err(ApiError::invalid("cores", "a node needs at least one core").into());
    }
    let driver = body.driver.unwrap_or_else(|| "proxmox".to_owned());
    let mut settings = std::collections::HashMap::new();
    if !description.is_empty() && description.parse::<u64>().is_err() {
        settings.insert("processor".to_owned(), description);
    }
    let mut credentials = std::collections::HashMap::new();
    if let Some(path) = body.lxc_path {
        settings.insert("path".to_owned(), path);
    }
    if let Some(pve_node) = body.pve_node {
        settings.insert("node".to_owned(), pve_node);
    }
    for (key, value) in [
        ("token", body.api_token),
        ("username", body.username),
        ("password", body.password),
    ] {
        if let Some(value) = value {
            credentials.insert(key.to_owned(), value);
        }
    }
    let request = node::CreateNodeRequest {
        name,
        location: body.location.unwrap_or_default(),
        tags: body
            .tags
            .unwrap_or_default()
            .split(',')
            .map(str::to_owned)
            .collect(),
        driver,
        address: body.address.unwrap_or_default(),
        port: u32::try_from(number("port", body.port.as_ref())?.unwrap_or(0))
            .map_err(|_| ApiError::invalid("port", "port must be 1-65535"))?,
        capacity: Some(node::Capacity {
            cores: u32::try_from(processor)
                .map_err(|_| ApiError::invalid("processor", "too many cores"))?,
            memory_mb: ram,
            disk_gb: disk,
        }),
        overcommit: None,
        settings,
        credentials,
    };
    let created = state
        .nodes()
        .create_node(auth.principal.caller().request(request))
        .await
        .map_err(|status| match status.code() {
            tonic::Code::FailedPrecondition => {
                ApiError::new(StatusCode::CONFLICT, status.message())
            }
            _ => ApiError::from_status(&status),
        })?
        .into_inner();
    Ok((StatusCode::CREATED, Json(SkyportNode::from(created))))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeleteNodeBody {
    /// The node's id (its UUID, or the numeric id as a string).
    #[schema(value_type = Option<String>)]
    node_id: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Deleted {
    message: &'static str,
}

/// Delete a node. Refused with 409 while servers live on it. Answers 201, as Skyport
/// documents.
#[utoipa::path(delete, path = "/api/nodes/delete", tag = "skyport",
    security(("skyportApiKey" = [])),
    request_body = DeleteNodeBody,
    responses(
        (status = 201, description = "Deleted", body = Deleted),
        (status = 400, description = "Missing or unknown node id", body = SkyportError),
        (status = 401, description = "API key missing or invalid", body = SkyportError),
        (status = 409, description = "Servers still live on the node", body = SkyportError),
    ))]
async fn delete_node(
    State(state): State<AppState>,
    auth: Auth<Skyport>,
    Body(body, _): Body<Skyport, DeleteNodeBody>,
) -> Result<impl IntoResponse> {
    use proto::node::v1 as node;
    let raw = match body.node_id {
        Some(serde_json::Value::String(s)) => s.trim().to_owned(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => return Err(ApiError::invalid("nodeId", "nodeId is required").into()),
    };
    let by = match raw.parse::<i64>() {
        Ok(id) if id > 0 => node::get_node_request::By::Id(id),
        _ if raw.len() == 36 => node::get_node_request::By::Uuid(raw),
        _ => return Err(ApiError::invalid("nodeId", "nodeId must be a node's id").into()),
    };
    let caller = auth.principal.caller();
    let not_found = |status: tonic::Status| match status.code() {
        tonic::Code::NotFound => ApiError::invalid("nodeId", "no such node"),
        tonic::Code::FailedPrecondition => ApiError::new(StatusCode::CONFLICT, status.message()),
        _ => ApiError::from_status(&status),
    };
    let mut nodes = state.nodes();
    let found = nodes
        .get_node(caller.request(node::GetNodeRequest { by: Some(by) }))
        .await
        .map_err(not_found)?
        .into_inner();
    nodes
        .delete_node(caller.request(node::DeleteNodeRequest { id: found.id }))
        .await
        .map_err(not_found)?;
    Ok((
        StatusCode::CREATED,
        Json(Deleted {
            message: "Node deleted",
        }),
    ))
}
