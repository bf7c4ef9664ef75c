//! Skyport's instances and images (seed 001). Instance ids are the servers' UUIDs (numeric
//! ids are accepted too); owners are shown by their Skyport user id and nodes by UUID.

use crate::reads::{self, ReadKey};
use axum::response::Response;
use std::collections::HashMap;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use platform::grpc::Caller;
use proto::identity::v1 as idpb;
use proto::node::v1 as nodepb;
use proto::server::v1 as pb;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Result, Skyport, SkyportError, number};
use crate::error::ApiError;
use crate::extract::{Auth, Body};
use crate::servers::{request, wait_task};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_images))
        .routes(routes!(list_instances))
        .routes(routes!(deploy))
        .routes(routes!(delete_instance))
        .routes(routes!(user_instances))
        .routes(routes!(get_instance))
        .routes(routes!(suspend))
        .routes(routes!(unsuspend))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SkyportImage {
    id: String,
    name: String,
    #[serde(rename = "type")]
    kind: String,
    /// The drivers this image can be deployed on.
    drivers: Vec<String>,
}

/// List the OS images instances can be deployed from.
#[utoipa::path(get, path = "/api/images", tag = "skyport",
    security(("skyportApiKey" = [])),
    responses(
        (status = 200, description = "Every image", body = [SkyportImage]),
        (status = 401, description = "API key missing or invalid", body = SkyportError),
    ))]
async fn list_images(
    State(state): State<AppState>,
    auth: Auth<Skyport>,
) -> Result<Json<Vec<SkyportImage>>> {
    let catalog = state
        .servers()
        .get_catalog(auth.principal.caller().request(pb::GetCatalogRequest {}))
        .await?
        .into_inner();
    Ok(Json(
        catalog
            .images
            .into_iter()
            .map(|i| SkyportImage {
                id: i.id.to_string(),
                name: i.name,
                kind: i.r#type,
                drivers: i.templates.into_keys().collect(),
            })
            .collect(),
    ))
}

/// An instance as Skyport clients know it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Instance {
    id: String,
    name: String,
    /// The owner's Skyport user id.
    user_id: String,
    node_id: String,
    image: String,
    /// MB.
    memory: String,
    cpu: String,
    disk: String,
    ports: String,
    primary: String,
    #[schema(value_type = Object)]
    variables: Value,
    suspended: bool,
    status: String,
    ip_address: Option<String>,
    created_at: Option<String>,
}

/// Resolves owners and nodes to the ids Skyport shows.
struct Names {
    users: HashMap<i64, String>,
    nodes: HashMap<i64, String>,
}

impl Names {
    /// The Skyport ids of the owners and nodes of `servers`, looked up in one batch each;
    /// owners in `known` are not asked for.
    async fn of(
        state: &AppState,
        caller: Caller,
        servers: &[pb::Server],
        known: HashMap<i64, String>,
    ) -> std::result::Result<Self, tonic::Status> {
        let mut owners: Vec<i64> = servers
            .iter()
            .map(|s| s.owner_id)
            .filter(|id| !known.contains_key(id))
            .collect();
        owners.sort_unstable();
        owners.dedup();
        let mut nodes: Vec<i64> = servers
            .iter()
            .map(|s| s.node_id)
            .filter(|id| *id > 0)
            .collect();
        nodes.sort_unstable();
        nodes.dedup();
        let batch = usize::try_from(crate::servers::PAGE).unwrap_or(1000);
        // Owners from identity-svc and nodes from node-svc, both at once.
        let users = async {
            let mut users = known;
            for ids in owners.chunks(batch) {
                let request = caller.request(idpb::ListUsersRequest {
                    limit: crate::servers::PAGE,
                    page_token: String::new(),
                    ids: ids.to_vec(),
                });
                let reply = state.identity().list_users(request).await?.into_inner();
                users.extend(reply.users.into_iter().map(|u| (u.id, u.skyport_id)));
            }
            Ok::<_, tonic::Status>(users)
        };
        let node_names = async {
            let mut names = HashMap::new();
            for ids in nodes.chunks(batch) {
                let request = caller.request(nodepb::ListNodesRequest {
                    limit: crate::servers::PAGE,
                    page_token: String::new(),
                    ids: ids.to_vec(),
                });
                let reply = state.nodes().list_nodes(request).await?.into_inner();
                names.extend(reply.nodes.into_iter().map(|n| (n.id, n.uuid)));
            }
            Ok::<_, tonic::Status>(names)
        };
        let (users, nodes) = tokio::try_join!(users, node_names)?;
        Ok(Self { users, nodes })
    }

    fn instance(&self, s: pb::Server) -> Instance {
        let variables = serde_json::from_str(&s.variables_json).unwrap_or(Value::Null);
        let status = s.status();
        Instance {
            id: s.uuid,
            name: s.name,
            user_id: self
                .users
                .get(&s.owner_id)
                .cloned()
                .unwrap_or_else(|| s.owner_id.to_string()),
            node_id: self
                .nodes
                .get(&s.node_id)
                .cloned()
                .unwrap_or_else(|| s.node_id.to_string()),
            image: s.image.as_ref().map(|i| i.name.clone()).unwrap_or_default(),
            memory: s.memory_mb.to_string(),
            cpu: s.cores.to_string(),
            disk: s.disk_gb.to_string(),
            ports: s.ports,
            primary: s.primary_port,
            variables,
            suspended: status == pb::ServerStatus::Suspended,
            status: crate::servers::status_name(status).to_owned(),
            ip_address: (!s.ipv4.is_empty()).then_some(s.ipv4),
            created_at: crate::dialects::panel::timestamp(s.created_at_ms),
        }
    }
}

/// A Skyport instance id (UUID, or numeric id) as a server reference.
fn instance_ref(raw: &str) -> std::result::Result<pb::ServerRef, ApiError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(ApiError::invalid("id", "id is required"));
    }
    if let Ok(id) = raw.parse::<i64>()
        && id > 0
    {
        return Ok(pb::ServerRef {
            id,
            uuid: String::new(),
        });
    }
    if raw.len() != 36 || !raw.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return Err(ApiError::not_found("instance"));
    }
    Ok(pb::ServerRef {
        id: 0,
        uuid: raw.to_ascii_lowercase(),
    })
}

fn text(field: &str, value: Option<&Value>) -> std::result::Result<Option<String>, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(ApiError::invalid(
            field,
            format!("{field} must be a string"),
        )),
    }
}

/// List every instance (administrators see all; anyone else their own).
#[utoipa::path(get, path = "/api/instances", tag = "skyport",
    security(("skyportApiKey" = [])),
    responses(
        (status = 200, description = "Instances", body = [Instance]),
        (status = 401, description = "API key missing or invalid", body = SkyportError),
    ))]
async fn list_instances(State(state): State<AppState>, auth: Auth<Skyport>) -> Result<Response> {
    let caller = auth.principal.caller();
    let key = ReadKey::new(caller, "skyport.instances", "");
    let render = |servers: Vec<pb::Server>| async {
        let names = Names::of(&state, caller, &servers, HashMap::new()).await?;
        Ok(servers
            .into_iter()
            .map(|s| names.instance(s))
            .collect::<Vec<_>>())
    };
    Ok(reads::servers(
        &state,
        key,
        caller,
        pb::ListServersRequest::default(),
        render,
    )
    .await?)
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct DeployBody {
    /// The image's id or name.
    #[schema(value_type = String)]
    image: Option<Value>,
    /// MB.
    #[schema(value_type = String)]
    memory: Option<Value>,
    #[schema(value_type = String)]
    cpu: Option<Value>,
    #[schema(value_type = String)]
    ports: Option<Value>,
    /// The node's id or UUID.
    #[serde(rename = "nodeId")]
    #[schema(value_type = String)]
    node_id: Option<Value>,
    #[schema(value_type = String)]
    name: Option<Value>,
    /// The owner's Skyport user id.
    #[schema(value_type = String)]
    user: Option<Value>,
    /// The primary port.
    #[schema(value_type = String)]
    primary: Option<Value>,
    /// The image's variables: a JSON object (or a string holding one).
    #[schema(value_type = Option<Object>)]
    variables: Option<Value>,
}

/// Deploy an instance on a node. Answers 201 at once; the instance builds in the background.
#[utoipa::path(post, path = "/api/instances/deploy", tag = "skyport",
    security(("skyportApiKey" = [])),
    request_body = DeployBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the call safe to repeat")),
    responses(
        (status = 201, description = "Instance created", body = Instance),
        (status = 400, description = "Missing or invalid parameters", body = SkyportError),
        (status = 401, description = "API key missing or invalid", body = SkyportError),
        (status = 402, description = "The owner has an unpaid debt", body = SkyportError),
        (status = 403, description = "The owner's quota would be exceeded", body = SkyportError),
        (status = 507, description = "The node has no room", body = SkyportError),
    ))]
async fn deploy(
    State(state): State<AppState>,
    auth: Auth<Skyport>,
    headers: HeaderMap,
    Body(body, _): Body<Skyport, DeployBody>,
) -> Result<impl IntoResponse> {
    let caller = auth.principal.caller();
    let image = text("image", body.image.as_ref())?;
    let memory = number("memory", body.memory.as_ref())?;
    let cpu = number("cpu", body.cpu.as_ref())?;
    let node = text("nodeId", body.node_id.as_ref())?;
    let name = text("name", body.name.as_ref())?;
    let user = text("user", body.user.as_ref())?;
    let (Some(image), Some(memory), Some(cpu), Some(node), Some(name), Some(user)) =
        (image, memory, cpu, node, name, user)
    else {
        return Err(ApiError::bad_request(
            "Missing parameters: image, memory, cpu, nodeId, name and user are required",
        )
        .into());
    };
    let ports = text("ports", body.ports.as_ref())?.unwrap_or_default();
    let primary = text("primary", body.primary.as_ref())?.unwrap_or_default();
    let variables = match body.variables {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s,
        Some(v @ Value::Object(_)) => v.to_string(),
        Some(_) => {
            return Err(ApiError::invalid("variables", "variables must be a JSON object").into());
        }
    };
    let cores = u32::try_from(cpu)
        .ok()
        .filter(|c| *c > 0)
        .ok_or_else(|| ApiError::invalid("cpu", "cpu must be a positive whole number"))?;

    let owner = state
        .identity()
        .get_user(caller.request(idpb::GetUserRequest {
            by: Some(idpb::get_user_request::By::SkyportId(user)),
        }))
        .await
        .map_err(|status| match status.code() {
            tonic::Code::NotFound => ApiError::invalid("user", "user not found"),
            _ => ApiError::from_status(&status),
        })?
        .into_inner();
    let by = match node.parse::<i64>() {
        Ok(id) if id > 0 => nodepb::get_node_request::By::Id(id),
        _ => nodepb::get_node_request::By::Uuid(node),
    };
    let node = state
        .nodes()
        .get_node(caller.request(nodepb::GetNodeRequest { by: Some(by) }))
        .await
        .map_err(|status| match status.code() {
            tonic::Code::NotFound | tonic::Code::InvalidArgument => {
                ApiError::invalid("nodeId", "node not found")
            }
            _ => ApiError::from_status(&status),
        })?
        .into_inner();
    let message = pb::CreateServerRequest {
        owner_id: owner.id,
        name,
        image_name: image,
        node_id: node.id,
        location: node.location.clone(),
        cores,
        memory_mb: memory,
        ports,
        primary_port: primary,
        variables_json: variables,
        ..pb::CreateServerRequest::default()
    };
    let reply = state
        .servers()
        .create_server(request(caller, &headers, message)?)
        .await?
        .into_inner();
    let names = Names {
        users: HashMap::from([(owner.id, owner.skyport_id)]),
        nodes: HashMap::from([(node.id, node.uuid)]),
    };
    Ok((
        StatusCode::CREATED,
        Json(names.instance(reply.server.unwrap_or_default())),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct InstanceBody {
    #[schema(value_type = String)]
    id: Option<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Message {
    message: &'static str,
}

/// Delete an instance. Answers 201, as Skyport documents; the removal runs as a task.
#[utoipa::path(delete, path = "/api/instance/delete", tag = "skyport",
    security(("skyportApiKey" = [])),
    request_body = InstanceBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the call safe to repeat")),
    responses(
        (status = 401, description = "API key missing or invalid", body = SkyportError),
        (status = 201, description = "Instance deleted", body = Message),
        (status = 400, description = "Missing id", body = SkyportError),
        (status = 404, description = "No such instance", body = SkyportError),
        (status = 409, description = "The instance is busy with another task", body = SkyportError),
    ))]
async fn delete_instance(
    State(state): State<AppState>,
    auth: Auth<Skyport>,
    headers: HeaderMap,
    Body(body, _): Body<Skyport, InstanceBody>,
) -> Result<impl IntoResponse> {
    let id = text("id", body.id.as_ref())?.unwrap_or_default();
    let message = pb::ActRequest {
        server: Some(instance_ref(&id)?),
        action: pb::Action::Delete.into(),
        ..pb::ActRequest::default()
    };
    state
        .servers()
        .act(request(auth.principal.caller(), &headers, message)?)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Message {
            message: "Instance deleted",
        }),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserInstancesBody {
    #[schema(value_type = String)]
    user_id: Option<Value>,
}

/// The instances of one user, by Skyport user id.
#[utoipa::path(post, path = "/api/getUserInstance", tag = "skyport",
    security(("skyportApiKey" = [])),
    request_body = UserInstancesBody,
    responses(
        (status = 401, description = "API key missing or invalid", body = SkyportError),
        (status = 200, description = "The user's instances", body = [Instance]),
        (status = 400, description = "Missing user id or no such user", body = SkyportError),
    ))]
async fn user_instances(
    State(state): State<AppState>,
    auth: Auth<Skyport>,
    Body(body, _): Body<Skyport, UserInstancesBody>,
) -> Result<Response> {
    let caller = auth.principal.caller();
    let user = text("userId", body.user_id.as_ref())?
        .ok_or_else(|| ApiError::invalid("userId", "userId is required"))?;
    let owner = state
        .identity()
        .get_user(caller.request(idpb::GetUserRequest {
            by: Some(idpb::get_user_request::By::SkyportId(user)),
        }))
        .await
        .map_err(|status| match status.code() {
            tonic::Code::NotFound => ApiError::invalid("userId", "user not found"),
            _ => ApiError::from_status(&status),
        })?
        .into_inner();
    let request = pb::ListServersRequest {
        owner_id: owner.id,
        ..pb::ListServersRequest::default()
    };
    let key = ReadKey::new(caller, "skyport.user_instances", owner.id.to_string());
    let render = |servers: Vec<pb::Server>| async {
        let known = HashMap::from([(owner.id, owner.skyport_id)]);
        let names = Names::of(&state, caller, &servers, known).await?;
        Ok(servers
            .into_iter()
            .filter(|s| s.owner_id == owner.id)
            .map(|s| names.instance(s))
            .collect::<Vec<_>>())
    };
    Ok(reads::servers(&state, key, caller, request, render).await?)
}

async fn one(state: &AppState, caller: Caller, reference: pb::ServerRef) -> Result<Instance> {
    let server = state
        .servers()
        .get_server(caller.request(reference))
        .await?
        .into_inner();
    let names = Names::of(state, caller, std::slice::from_ref(&server), HashMap::new()).await?;
    Ok(names.instance(server))
}

/// One instance.
#[utoipa::path(post, path = "/api/getInstance", tag = "skyport",
    security(("skyportApiKey" = [])),
    request_body = InstanceBody,
    responses(
        (status = 401, description = "API key missing or invalid", body = SkyportError),
        (status = 200, description = "The instance", body = Instance),
        (status = 400, description = "Missing id", body = SkyportError),
        (status = 404, description = "No such instance", body = SkyportError),
    ))]
async fn get_instance(
    State(state): State<AppState>,
    auth: Auth<Skyport>,
    Body(body, _): Body<Skyport, InstanceBody>,
) -> Result<Json<Instance>> {
    let id = text("id", body.id.as_ref())?.unwrap_or_default();
    Ok(Json(
        one(&state, auth.principal.caller(), instance_ref(&id)?).await?,
    ))
}

async fn suspension(
    state: &AppState,
    auth: &Auth<Skyport>,
    headers: &HeaderMap,
    id: &str,
    action: pb::Action,
) -> Result<Json<Instance>> {
    let caller = auth.principal.caller();
    let message = pb::ActRequest {
        server: Some(instance_ref(id)?),
        action: action.into(),
        ..pb::ActRequest::default()
    };
    let reply = state
        .servers()
        .act(request(caller, headers, message)?)
        .await?
        .into_inner();
    // Answer once the suspension is in force (or lifted), so the client's next request
    // never finds this one still running.
    let limit = Duration::from_secs(state.config.request_timeout_secs.saturating_sub(2).max(1));
    let task = wait_task(state, caller, &reply.task_id, limit).await?;
    if task.state() == pb::TaskState::Failed {
        return Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, task.error).into());
    }
    Ok(Json(one(state, caller, instance_ref(id)?).await?))
}

/// Suspend an instance: it is stopped and refuses power actions until unsuspended.
#[utoipa::path(post, path = "/api/instances/suspend/{id}", tag = "skyport",
    security(("skyportApiKey" = [])),
    params(("id" = String, Path, description = "Instance id")),
    responses(
        (status = 401, description = "API key missing or invalid", body = SkyportError),
        (status = 200, description = "The suspended instance", body = Instance),
        (status = 403, description = "The key is not an administrator's", body = SkyportError),
        (status = 404, description = "No such instance", body = SkyportError),
        (status = 409, description = "Already suspended, or busy", body = SkyportError),
    ))]
async fn suspend(
    State(state): State<AppState>,
    auth: Auth<Skyport>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Instance>> {
    suspension(&state, &auth, &headers, &id, pb::Action::Suspend).await
}

/// Lift a suspension; the instance is left stopped.
#[utoipa::path(post, path = "/api/instances/unsuspend/{id}", tag = "skyport",
    security(("skyportApiKey" = [])),
    params(("id" = String, Path, description = "Instance id")),
    responses(
        (status = 401, description = "API key missing or invalid", body = SkyportError),
        (status = 200, description = "The instance", body = Instance),
        (status = 403, description = "The key is not an administrator's", body = SkyportError),
        (status = 404, description = "No such instance", body = SkyportError),
        (status = 409, description = "Not suspended", body = SkyportError),
    ))]
async fn unsuspend(
    State(state): State<AppState>,
    auth: Auth<Skyport>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Instance>> {
    suspension(&state, &auth, &headers, &id, pb::Action::Unsuspend).await
}
