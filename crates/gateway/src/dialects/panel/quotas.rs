//! Per-user quotas: what a user may hold at once (servers, vCPUs, memory, IPv4 addresses).
//! Users read their own; administrators read, set and reset anyone's.

use axum::Json;
use axum::extract::State;
use proto::server::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Panel, PanelError, Result};
use crate::extract::{Admin, Auth, Body, PathId};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(my_quota))
        .routes(routes!(user_quota, set_quota, reset_quota))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Limits {
    #[schema(minimum = 0)]
    servers: u32,
    /// vCPUs.
    #[schema(minimum = 0)]
    cores: u32,
    /// MB.
    #[schema(minimum = 0)]
    memory: u64,
    /// IPv4 addresses (each server may take one).
    #[schema(minimum = 0)]
    addresses: u32,
}

impl From<pb::QuotaLimits> for Limits {
    fn from(l: pb::QuotaLimits) -> Self {
        Self {
            servers: l.servers,
            cores: l.cores,
            memory: l.memory_mb,
            addresses: l.addresses,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Quota {
    user_id: i64,
    limits: Limits,
    /// What the user holds now.
    used: Limits,
    /// Whether the limits are the user's own rather than the defaults.
    custom: bool,
}

impl From<pb::Quota> for Quota {
    fn from(q: pb::Quota) -> Self {
        Self {
            user_id: q.user_id,
            limits: Limits::from(q.limits.unwrap_or_default()),
            used: Limits::from(q.used.unwrap_or_default()),
            custom: q.custom,
        }
    }
}

/// The caller's quota and what they hold.
#[utoipa::path(get, path = "/api/quota", tag = "servers",
    security(("bearerJwt" = [])),
    responses(
        (status = 200, description = "Limits and use", body = Quota),
        (status = 401, description = "Missing or invalid token", body = PanelError),
    ))]
async fn my_quota(State(state): State<AppState>, auth: Auth<Panel>) -> Result<Json<Quota>> {
    fetch(&state, auth.principal.caller(), 0).await
}

/// A user's quota (0: the caller's), as `caller` may see it.
async fn fetch(
    state: &AppState,
    caller: platform::grpc::Caller,
    user_id: i64,
) -> Result<Json<Quota>> {
    let reply = state
        .servers()
        .get_quota(caller.request(pb::GetQuotaRequest { user_id }))
        .await?
        .into_inner();
    Ok(Json(Quota::from(reply)))
}

/// A user's quota and what they hold (administrators).
#[utoipa::path(get, path = "/api/admin/users/{id}/quota", tag = "servers",
    security(("bearerJwt" = [])),
    params(("id" = i64, Path, description = "User id", minimum = 1)),
    responses(
        (status = 200, description = "Limits and use", body = Quota),
        (status = 400, description = "Malformed id", body = PanelError),
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 403, description = "Administrators only", body = PanelError),
    ))]
async fn user_quota(
    State(state): State<AppState>,
    admin: Admin<Panel>,
    PathId(id, _): PathId<Panel>,
) -> Result<Json<Quota>> {
    fetch(&state, admin.principal.caller(), id).await
}

/// Give a user their own limits (administrators). Servers they already hold stay.
#[utoipa::path(put, path = "/api/admin/users/{id}/quota", tag = "servers",
    security(("bearerJwt" = [])),
    params(("id" = i64, Path, description = "User id", minimum = 1)),
    request_body = Limits,
    responses(
        (status = 200, description = "The new limits", body = Quota),
        (status = 400, description = "Malformed id or body", body = PanelError),
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 403, description = "Administrators only", body = PanelError),
    ))]
async fn set_quota(
    State(state): State<AppState>,
    admin: Admin<Panel>,
    PathId(id, _): PathId<Panel>,
    Body(body, _): Body<Panel, Limits>,
) -> Result<Json<Quota>> {
    let limits = pb::QuotaLimits {
        servers: body.servers,
        cores: body.cores,
        memory_mb: body.memory,
        addresses: body.addresses,
    };
    store(&state, &admin, id, Some(limits)).await
}

/// Return a user to the default limits (administrators).
#[utoipa::path(delete, path = "/api/admin/users/{id}/quota", tag = "servers",
    security(("bearerJwt" = [])),
    params(("id" = i64, Path, description = "User id", minimum = 1)),
    responses(
        (status = 200, description = "The default limits", body = Quota),
        (status = 400, description = "Malformed id", body = PanelError),
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 403, description = "Administrators only", body = PanelError),
    ))]
async fn reset_quota(
    State(state): State<AppState>,
    admin: Admin<Panel>,
    PathId(id, _): PathId<Panel>,
) -> Result<Json<Quota>> {
    store(&state, &admin, id, None).await
}

/// Sets a user's own limits, or (`None`) returns them to the defaults.
async fn store(
    state: &AppState,
    admin: &Admin<Panel>,
    user_id: i64,
    limits: Option<pb::QuotaLimits>,
) -> Result<Json<Quota>> {
    let request = pb::SetQuotaRequest { user_id, limits };
    let reply = state
        .servers()
        .set_quota(admin.principal.caller().request(request))
        .await?
        .into_inner();
    Ok(Json(Quota::from(reply)))
}
