//! The CVM client dialect (seed 003): `API-Public-Token` + `API-Private-Token` headers, the
//! `{"response": ...}` / `{"errors": [...]}` envelope, 401 for a bad pair and 403 for a pair
//! without client-API access. Power actions answer when they are done, as CVM documents.

use crate::reads::{self, ReadKey};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use proto::server::v1 as pb;
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Dialect, DialectKind, header_text};
use crate::auth::{Credential, Principal};
use crate::error::{ApiError, Failure};
use crate::extract::{Auth, PathId};
use crate::servers::{action, request, wait_task};
use crate::state::AppState;

pub struct Cvm;

/// The client-API scope a CVM pair must carry.
pub const CLIENT_SCOPE: &str = "cvm:client";

impl Dialect for Cvm {
    const KIND: DialectKind = DialectKind::Cvm;

    fn credential(headers: &HeaderMap) -> Option<Credential> {
        let public = header_text(headers, "api-public-token")?;
        let private = header_text(headers, "api-private-token")?;
        Some(Credential::CvmPair {
            public: public.to_owned(),
            private: private.to_owned(),
        })
    }

    fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "No valid API token pair was specified.",
        )
    }

    fn error_body(error: &ApiError) -> Value {
        json!({ "errors": [error.message] })
    }

    fn admit(principal: &Principal) -> std::result::Result<(), ApiError> {
        if principal.scopes.iter().any(|s| s == CLIENT_SCOPE) {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "This API token pair does not have access to the client API.",
            ))
        }
    }
}

/// CVM's success envelope.
pub fn response<T: serde::Serialize>(value: T) -> axum::Json<serde_json::Value> {
    axum::Json(enveloped(value))
}

/// A value in CVM's `{"response": ...}` envelope.
fn enveloped<T: serde::Serialize>(value: T) -> Value {
    json!({ "response": value })
}

type Result<T> = std::result::Result<T, Failure<Cvm>>;

/// CVM's error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct CvmErrors {
    errors: Vec<String>,
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_vpses))
        .routes(routes!(vps_status))
        .routes(routes!(start_vps))
        .routes(routes!(stop_vps))
        .routes(routes!(restart_vps))
}

/// Our status in CVM's five words.
fn status_name(status: pb::ServerStatus) -> &'static str {
    use pb::ServerStatus as S;
    match status {
        S::Running | S::Stopping | S::Rebooting => "running",
        S::Stopped | S::Starting | S::Creating | S::Restoring | S::Error => "stopped",
        S::Suspended => "suspended",
        S::Terminated | S::Deleting => "terminated",
        S::Unknown | S::Unspecified => "unknown",
    }
}

/// The traffic keys: `traffic_*` when accounting is combined, `traffic_in_*` and
/// `traffic_out_*` when it is split.
fn traffic(s: &pb::Server, limits: bool, into: &mut Map<String, Value>) {
    let text = |v: u64| Value::String(v.to_string());
    if s.traffic_combined {
        if limits {
            into.insert("traffic_limit".into(), text(s.traffic_limit_bytes));
        }
        into.insert(
            "traffic_used".into(),
            text(s.traffic_in_bytes + s.traffic_out_bytes),
        );
    } else {
        if limits {
            into.insert("traffic_in_limit".into(), text(s.traffic_limit_bytes));
            into.insert("traffic_out_limit".into(), text(s.traffic_limit_bytes));
        }
        into.insert("traffic_in_used".into(), text(s.traffic_in_bytes));
        into.insert("traffic_out_used".into(), text(s.traffic_out_bytes));
    }
}

fn vps(s: &pb::Server) -> Value {
    let mut v = Map::new();
    let text = |v: String| Value::String(v);
    v.insert("id".into(), text(s.id.to_string()));
    v.insert("node".into(), text(s.node_id.to_string()));
    // CVM's only documented type is 1 (container virtualization).
    v.insert("virtualization_type".into(), text("1".into()));
    v.insert("hostname".into(), text(s.hostname.clone()));
    v.insert("guaranteed_ram".into(), text(s.memory_mb.to_string()));
    v.insert(
        "disk_space".into(),
        text((s.disk_gb.saturating_mul(1024)).to_string()),
    );
    v.insert("cpu_count".into(), text(s.cores.to_string()));
    traffic(s, true, &mut v);
    Value::Object(v)
}

/// The caller's VPSes.
#[utoipa::path(get, path = "/api/client/vps/list", tag = "cvm",
    security(("cvmPublicToken" = [], "cvmPrivateToken" = [])),
    responses(
        (status = 200, description = "`{\"response\": {\"vpses\": [...]}}`"),
        (status = 401, description = "No valid token pair", body = CvmErrors),
        (status = 403, description = "The pair has no client-API access", body = CvmErrors),
    ))]
async fn list_vpses(State(state): State<AppState>, auth: Auth<Cvm>) -> Result<Response> {
    let caller = auth.principal.caller();
    let request = pb::ListServersRequest {
        owner_id: caller.user_id,
        ..pb::ListServersRequest::default()
    };
    let key = ReadKey::new(caller, "cvm.vpses", "");
    Ok(
        reads::servers(&state, key, caller, request, |servers| async move {
            let vpses: Vec<Value> = servers.iter().map(vps).collect();
            Ok(enveloped(json!({ "vpses": vpses })))
        })
        .await?,
    )
}

/// Status and usage of one VPS.
#[utoipa::path(get, path = "/api/client/vps/{id}/status", tag = "cvm",
    security(("cvmPublicToken" = [], "cvmPrivateToken" = [])),
    params(("id" = String, Path, description = "The VPS id")),
    responses(
        (status = 200, description = "`{\"response\": {...}}` with status, ram_used, disk_used and traffic"),
        (status = 401, description = "No valid token pair", body = CvmErrors),
        (status = 404, description = "No such VPS", body = CvmErrors),
    ))]
async fn vps_status(
    State(state): State<AppState>,
    auth: Auth<Cvm>,
    PathId(id, _): PathId<Cvm>,
) -> Result<Response> {
    let caller = auth.principal.caller();
    let key = ReadKey::new(caller, "cvm.status", id.to_string());
    Ok(reads::shared(&state, key, || async {
        let (server, usage) = crate::servers::server_and_usage(&state, caller, id).await?;
        let mut v = Map::new();
        // The month's traffic, as monitor-svc accounts it (kept across guest restarts).
        traffic(&server, false, &mut v);
        v.insert(
            "ram_used".into(),
            Value::String(usage.memory_used_bytes.to_string()),
        );
        v.insert(
            "disk_used".into(),
            Value::String(usage.disk_used_bytes.to_string()),
        );
        v.insert(
            "status".into(),
            Value::String(status_name(usage.status()).to_owned()),
        );
        Ok(enveloped(Value::Object(v)))
    })
    .await?)
}

/// Runs a power action to its end: 200 with an empty body when it worked, 500 when it
/// failed, 503 when the node did not answer.
async fn power(
    state: &AppState,
    auth: &Auth<Cvm>,
    headers: &HeaderMap,
    id: i64,
    what: pb::Action,
) -> Result<Response> {
    let caller = auth.principal.caller();
    let reply = state
        .servers()
        .act(request(caller, headers, action(id, what))?)
        .await?
        .into_inner();
    let limit = Duration::from_secs(state.config.request_timeout_secs.saturating_sub(2).max(1));
    let task = wait_task(state, caller, &reply.task_id, limit).await?;
    match task.state() {
        pb::TaskState::Succeeded => Ok(Json(json!({})).into_response()),
        pb::TaskState::Failed if task.error_reason() == platform::grpc::Reason::NodeUnreachable => {
            Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, task.error).into())
        }
        pb::TaskState::Failed => {
            Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, task.error).into())
        }
        pb::TaskState::Queued | pb::TaskState::Running | pb::TaskState::Unspecified => {
            let state = crate::servers::task_state_name(task.state());
            Ok(response(json!({ "task_id": task.id, "state": state })).into_response())
        }
    }
}

/// Start a VPS.
#[utoipa::path(post, path = "/api/client/vps/{id}/start", tag = "cvm",
    security(("cvmPublicToken" = [], "cvmPrivateToken" = [])),
    params(("id" = String, Path, description = "The VPS id")),
    responses(
        (status = 401, description = "No valid token pair", body = CvmErrors),
        (status = 200, description = "Started (empty response)"),
        (status = 402, description = "The balance does not cover the next hour", body = CvmErrors),
        (status = 404, description = "No such VPS", body = CvmErrors),
        (status = 409, description = "Wrong state (already running, suspended ...)", body = CvmErrors),
        (status = 500, description = "The VPS failed to start", body = CvmErrors),
        (status = 503, description = "The host node is unreachable", body = CvmErrors),
    ))]
async fn start_vps(
    State(state): State<AppState>,
    auth: Auth<Cvm>,
    headers: HeaderMap,
    PathId(id, _): PathId<Cvm>,
) -> Result<Response> {
    power(&state, &auth, &headers, id, pb::Action::Start).await
}

/// Shut a VPS down.
#[utoipa::path(post, path = "/api/client/vps/{id}/stop", tag = "cvm",
    security(("cvmPublicToken" = [], "cvmPrivateToken" = [])),
    params(("id" = String, Path, description = "The VPS id")),
    responses(
        (status = 401, description = "No valid token pair", body = CvmErrors),
        (status = 200, description = "Stopped (empty response)"),
        (status = 404, description = "No such VPS", body = CvmErrors),
        (status = 409, description = "Wrong state", body = CvmErrors),
        (status = 500, description = "The VPS failed to shut down", body = CvmErrors),
        (status = 503, description = "The host node is unreachable", body = CvmErrors),
    ))]
async fn stop_vps(
    State(state): State<AppState>,
    auth: Auth<Cvm>,
    headers: HeaderMap,
    PathId(id, _): PathId<Cvm>,
) -> Result<Response> {
    power(&state, &auth, &headers, id, pb::Action::Stop).await
}

/// Restart a VPS.
#[utoipa::path(post, path = "/api/client/vps/{id}/restart", tag = "cvm",
    security(("cvmPublicToken" = [], "cvmPrivateToken" = [])),
    params(("id" = String, Path, description = "The VPS id")),
    responses(
        (status = 401, description = "No valid token pair", body = CvmErrors),
        (status = 200, description = "Restarted (empty response)"),
        (status = 404, description = "No such VPS", body = CvmErrors),
        (status = 409, description = "Wrong state", body = CvmErrors),
        (status = 500, description = "The VPS failed to restart", body = CvmErrors),
        (status = 503, description = "The host node is unreachable", body = CvmErrors),
    ))]
async fn restart_vps(
    State(state): State<AppState>,
    auth: Auth<Cvm>,
    headers: HeaderMap,
    PathId(id, _): PathId<Cvm>,
) -> Result<Response> {
    power(&state, &auth, &headers, id, pb::Action::Reboot).await
}
