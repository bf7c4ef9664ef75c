//! VPS.org's snapshots (seed 004) and its backups in the same style. A missing or foreign
//! server, snapshot or backup is a 404; a limit reached or a server that cannot be restored
//! now is a 400.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use proto::snapshot::v1 as pb;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Result, VpsOrg, VpsOrgError, timestamp};
use crate::error::ApiError;
use crate::extract::{Auth, Body, PathId};
use crate::snapshots::{backup_status, snapshot_status};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_snapshots, create_snapshot))
        .routes(routes!(get_snapshot, delete_snapshot))
        .routes(routes!(restore_snapshot))
        .routes(routes!(list_backups, create_backup))
        .routes(routes!(get_backup, patch_backup, delete_backup))
        .routes(routes!(restore_backup))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ServerRef {
    id: i64,
    name: String,
}

/// A snapshot as VPS.org shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct VpsOrgSnapshot {
    id: i64,
    server: ServerRef,
    name: String,
    /// in_progress, completed or failed.
    status: String,
    size_mb: Option<u64>,
    created_at: Option<String>,
    description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

impl From<pb::Snapshot> for VpsOrgSnapshot {
    fn from(s: pb::Snapshot) -> Self {
        let server = s.server.clone().unwrap_or_default();
        Self {
            status: snapshot_status(s.status()).to_owned(),
            id: s.id,
            server: ServerRef {
                id: server.id,
                name: server.name,
            },
            name: s.name,
            size_mb: s.size_mb,
            created_at: timestamp(s.created_at_ms),
            description: s.description,
            message: None,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SnapshotList {
    count: usize,
    results: Vec<VpsOrgSnapshot>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ServerFilter {
    /// Only this server's.
    #[param(minimum = 1)]
    server_id: Option<i64>,
}

fn server_filter(
    query: std::result::Result<Query<ServerFilter>, QueryRejection>,
) -> std::result::Result<i64, ApiError> {
    let Query(query) =
        query.map_err(|_| ApiError::invalid("server_id", "server_id is a server's id"))?;
    match query.server_id {
        None => Ok(0),
        Some(id) if id > 0 => Ok(id),
        Some(_) => Err(ApiError::invalid("server_id", "server_id is a server's id")),
    }
}

/// The caller's snapshots, of one server or of all of theirs.
#[utoipa::path(get, path = "/api/v1/snapshots/", tag = "vpsorg",
    security(("vpsorgToken" = [])),
    params(ServerFilter),
    responses(
        (status = 200, description = "The snapshots", body = SnapshotList),
        (status = 400, description = "A malformed filter", body = VpsOrgError),
        (status = 401, description = "Invalid or missing token", body = VpsOrgError),
        (status = 404, description = "No such server", body = VpsOrgError),
    ))]
async fn list_snapshots(
    State(state): State<AppState>,
    auth: Auth<VpsOrg>,
    query: std::result::Result<Query<ServerFilter>, QueryRejection>,
) -> Result<Json<SnapshotList>> {
    let server_id = server_filter(query)?;
    let list = state
        .snapshots()
        .list_snapshots(
            auth.principal
                .caller()
                .request(pb::ListSnapshotsRequest { server_id }),
        )
        .await?
        .into_inner();
    let results: Vec<VpsOrgSnapshot> = list.snapshots.into_iter().map(Into::into).collect();
    Ok(Json(SnapshotList {
        count: results.len(),
        results,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = VpsOrgSnapshotBody, example = json!({"server_id": 12345, "name": "before-update-snapshot", "description": "Snapshot before system update"}))]
pub struct CreateSnapshotBody {
    #[schema(minimum = 1)]
    server_id: i64,
    /// Letters, digits, hyphens and underscores, 1-40.
    #[schema(pattern = r"^[A-Za-z0-9_-]{1,40}$")]
    name: String,
    #[schema(max_length = 255)]
    description: Option<String>,
}

/// Take a snapshot of a server (201, `in_progress`); 400 at the limit of 5 per server.
#[utoipa::path(post, path = "/api/v1/snapshots/", tag = "vpsorg",
    security(("vpsorgToken" = [])),
    request_body = CreateSnapshotBody,
    responses(
        (status = 201, description = "Being taken", body = VpsOrgSnapshot),
        (status = 400, description = "Invalid parameters, the limit reached, or the server busy", body = VpsOrgError),
        (status = 401, description = "Invalid or missing token", body = VpsOrgError),
        (status = 404, description = "No such server", body = VpsOrgError),
    ))]
async fn create_snapshot(
    State(state): State<AppState>,
    auth: Auth<VpsOrg>,
    Body(body, _): Body<VpsOrg, CreateSnapshotBody>,
) -> Result<(StatusCode, Json<VpsOrgSnapshot>)> {
    if body.server_id <= 0 {
        return Err(ApiError::invalid("server_id", "server_id is a server's id").into());
    }
    let reply = state
        .snapshots()
        .create_snapshot(auth.principal.caller().request(pb::CreateSnapshotRequest {
            server_id: body.server_id,
            name: body.name,
            description: body.description.unwrap_or_default(),
        }))
        .await
        .map_err(conflict_is_bad_request)?
        .into_inner();
    let mut snapshot = VpsOrgSnapshot::from(reply.snapshot.unwrap_or_default());
    snapshot.message = Some(
        "Snapshot is being created. This may take 3-10 minutes depending on server size."
            .to_owned(),
    );
    Ok((StatusCode::CREATED, Json(snapshot)))
}

/// VPS.org answers 400 for every refusal of a create (a name taken included).
fn conflict_is_bad_request(status: tonic::Status) -> ApiError {
    let mut error = ApiError::from_status(&status);
    if error.status == StatusCode::CONFLICT {
        error.status = StatusCode::BAD_REQUEST;
    }
    error
}

/// One snapshot.
#[utoipa::path(get, path = "/api/v1/snapshots/{id}/", tag = "vpsorg",
    security(("vpsorgToken" = [])),
    params(("id" = i64, Path, description = "Snapshot id")),
    responses(
        (status = 200, description = "The snapshot", body = VpsOrgSnapshot),
        (status = 400, description = "A malformed id", body = VpsOrgError),
        (status = 401, description = "Invalid or missing token", body = VpsOrgError),
        (status = 404, description = "No such snapshot", body = VpsOrgError),
    ))]
async fn get_snapshot(
    State(state): State<AppState>,
    auth: Auth<VpsOrg>,
    PathId(id, _): PathId<VpsOrg>,
) -> Result<Json<VpsOrgSnapshot>> {
    let snapshot = state
        .snapshots()
        .get_snapshot(auth.principal.caller().request(by_id(id)))
        .await?
        .into_inner();
    Ok(Json(snapshot.into()))
}

fn by_id(id: i64) -> pb::SnapshotRef {
    pb::SnapshotRef {
        id,
        server_id: 0,
        name: String::new(),
    }
}

/// Restore a server to a snapshot: it is stopped, shown `restoring`, rolled back, and
/// started again if it was running. Its current data is overwritten.
#[utoipa::path(post, path = "/api/v1/snapshots/{id}/restore/", tag = "vpsorg",
    security(("vpsorgToken" = [])),
    params(("id" = i64, Path, description = "Snapshot id")),
    responses(
        (status = 200, description = "Restoring"),
        (status = 400, description = "The server (or the snapshot) cannot be restored now", body = VpsOrgError),
        (status = 401, description = "Invalid or missing token", body = VpsOrgError),
        (status = 404, description = "No such snapshot", body = VpsOrgError),
    ))]
async fn restore_snapshot(
    State(state): State<AppState>,
    auth: Auth<VpsOrg>,
    PathId(id, _): PathId<VpsOrg>,
) -> Result<Json<Value>> {
    let reply = state
        .snapshots()
        .restore_snapshot(auth.principal.caller().request(by_id(id)))
        .await
        .map_err(conflict_is_bad_request)?
        .into_inner();
    let snapshot = reply.snapshot.unwrap_or_default();
    let server = snapshot.server.clone().unwrap_or_default();
    Ok(Json(json!({
        "status": "success",
        "message": "Server is being restored from snapshot. This may take 5-15 minutes.",
        "snapshot": {
            "id": snapshot.id,
            "name": snapshot.name,
            "created_at": timestamp(snapshot.created_at_ms),
        },
        "server": {"id": server.id, "name": server.name, "status": reply.server_status},
        "task_id": reply.task_id,
    })))
}

/// Delete a snapshot for good.
#[utoipa::path(delete, path = "/api/v1/snapshots/{id}/", tag = "vpsorg",
    security(("vpsorgToken" = [])),
    params(("id" = i64, Path, description = "Snapshot id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Another task is at work on it", body = VpsOrgError),
        (status = 401, description = "Invalid or missing token", body = VpsOrgError),
        (status = 404, description = "No such snapshot", body = VpsOrgError),
    ))]
async fn delete_snapshot(
    State(state): State<AppState>,
    auth: Auth<VpsOrg>,
    PathId(id, _): PathId<VpsOrg>,
) -> Result<StatusCode> {
    state
        .snapshots()
        .delete_snapshot(auth.principal.caller().request(by_id(id)))
        .await
        .map_err(conflict_is_bad_request)?;
    Ok(StatusCode::NO_CONTENT)
}

/// A backup as VPS.org shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct VpsOrgBackup {
    id: i64,
    server: ServerRef,
    name: String,
    /// in_progress, completed or failed.
    status: String,
    /// manual or scheduled.
    #[serde(rename = "type")]
    kind: String,
    protected: bool,
    size_mb: Option<u64>,
    sha256: Option<String>,
    created_at: Option<String>,
    completed_at: Option<String>,
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

impl From<pb::Backup> for VpsOrgBackup {
    fn from(b: pb::Backup) -> Self {
        let server = b.server.clone().unwrap_or_default();
        let complete = b.status() == pb::BackupStatus::Completed;
        Self {
            status: backup_status(b.status()).to_owned(),
            id: b.id,
            server: ServerRef {
                id: server.id,
                name: server.name,
            },
            name: b.name,
            kind: b.origin,
            protected: b.protected,
            size_mb: complete.then(|| b.size_bytes.div_ceil(1024 * 1024)),
            sha256: (!b.sha256.is_empty()).then_some(b.sha256),
            created_at: timestamp(b.created_at_ms),
            completed_at: timestamp(b.completed_at_ms),
            error: (!b.error.is_empty()).then_some(b.error),
            message: None,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BackupList {
    count: usize,
    results: Vec<VpsOrgBackup>,
}

/// The caller's backups, of one server or of all of theirs.
#[utoipa::path(get, path = "/api/v1/backups/", tag = "vpsorg",
    security(("vpsorgToken" = [])),
    params(ServerFilter),
    responses(
        (status = 200, description = "The backups", body = BackupList),
        (status = 400, description = "A malformed filter", body = VpsOrgError),
        (status = 401, description = "Invalid or missing token", body = VpsOrgError),
        (status = 404, description = "No such server", body = VpsOrgError),
    ))]
async fn list_backups(
    State(state): State<AppState>,
    auth: Auth<VpsOrg>,
    query: std::result::Result<Query<ServerFilter>, QueryRejection>,
) -> Result<Json<BackupList>> {
    let server_id = server_filter(query)?;
    let list = state
        .snapshots()
        .list_backups(
            auth.principal
                .caller()
                .request(pb::ListBackupsRequest { server_id }),
        )
        .await?
        .into_inner();
    let results: Vec<VpsOrgBackup> = list.backups.into_iter().map(Into::into).collect();
    Ok(Json(BackupList {
        count: results.len(),
        results,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = VpsOrgBackupBody, example = json!({"server_id": 12345, "name": "before-migration"}))]
pub struct CreateBackupBody {
    #[schema(minimum = 1)]
    server_id: i64,
    /// Optional: letters, digits, hyphens and underscores, 1-40.
    #[schema(pattern = r"^[A-Za-z0-9_-]{1,40}$")]
    name: Option<String>,
    /// Never rotated or pruned, and not counted toward the limit of 10.
    protected: Option<bool>,
}

/// Take a backup of a server now (201, `in_progress`); one at a time per server.
#[utoipa::path(post, path = "/api/v1/backups/", tag = "vpsorg",
    security(("vpsorgToken" = [])),
    request_body = CreateBackupBody,
    responses(
        (status = 201, description = "Being taken", body = VpsOrgBackup),
        (status = 400, description = "Invalid parameters, a backup under way, or the server busy", body = VpsOrgError),
        (status = 401, description = "Invalid or missing token", body = VpsOrgError),
        (status = 404, description = "No such server", body = VpsOrgError),
    ))]
async fn create_backup(
    State(state): State<AppState>,
    auth: Auth<VpsOrg>,
    Body(body, _): Body<VpsOrg, CreateBackupBody>,
) -> Result<(StatusCode, Json<VpsOrgBackup>)> {
    if body.server_id <= 0 {
        return Err(ApiError::invalid("server_id", "server_id is a server's id").into());
    }
    let reply = state
        .snapshots()
        .create_backup(auth.principal.caller().request(pb::CreateBackupRequest {
            server_id: body.server_id,
            name: body.name.unwrap_or_default(),
            protected: body.protected.unwrap_or(false),
        }))
        .await
        .map_err(conflict_is_bad_request)?
        .into_inner();
    let mut backup = VpsOrgBackup::from(reply.backup.unwrap_or_default());
    backup.message = Some("Backup is being created.".to_owned());
    Ok((StatusCode::CREATED, Json(backup)))
}

/// One backup.
#[utoipa::path(get, path = "/api/v1/backups/{id}/", tag = "vpsorg",
    security(("vpsorgToken" = [])),
    params(("id" = i64, Path, description = "Backup id")),
    responses(
        (status = 200, description = "The backup", body = VpsOrgBackup),
        (status = 400, description = "A malformed id", body = VpsOrgError),
        (status = 401, description = "Invalid or missing token", body = VpsOrgError),
        (status = 404, description = "No such backup", body = VpsOrgError),
    ))]
async fn get_backup(
    State(state): State<AppState>,
    auth: Auth<VpsOrg>,
    PathId(id, _): PathId<VpsOrg>,
) -> Result<Json<VpsOrgBackup>> {
    let backup = state
        .snapshots()
        .get_backup(auth.principal.caller().request(pb::BackupRef { id }))
        .await?
        .into_inner();
    Ok(Json(backup.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = VpsOrgBackupPatch)]
pub struct PatchBackupBody {
    protected: bool,
}

/// Protect a backup, or not.
#[utoipa::path(patch, path = "/api/v1/backups/{id}/", tag = "vpsorg",
    security(("vpsorgToken" = [])),
    params(("id" = i64, Path, description = "Backup id")),
    request_body = PatchBackupBody,
    responses(
        (status = 200, description = "The backup", body = VpsOrgBackup),
        (status = 400, description = "Invalid parameters", body = VpsOrgError),
        (status = 401, description = "Invalid or missing token", body = VpsOrgError),
        (status = 404, description = "No such backup", body = VpsOrgError),
    ))]
async fn patch_backup(
    State(state): State<AppState>,
    auth: Auth<VpsOrg>,
    PathId(id, _): PathId<VpsOrg>,
    Body(body, _): Body<VpsOrg, PatchBackupBody>,
) -> Result<Json<VpsOrgBackup>> {
    let backup = state
        .snapshots()
        .protect_backup(auth.principal.caller().request(pb::ProtectBackupRequest {
            id,
            protected: body.protected,
        }))
        .await?
        .into_inner();
    Ok(Json(backup.into()))
}

/// Delete a backup for good.
#[utoipa::path(delete, path = "/api/v1/backups/{id}/", tag = "vpsorg",
    security(("vpsorgToken" = [])),
    params(("id" = i64, Path, description = "Backup id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Another task is at work on it", body = VpsOrgError),
        (status = 401, description = "Invalid or missing token", body = VpsOrgError),
        (status = 404, description = "No such backup", body = VpsOrgError),
    ))]
async fn delete_backup(
    State(state): State<AppState>,
    auth: Auth<VpsOrg>,
    PathId(id, _): PathId<VpsOrg>,
) -> Result<StatusCode> {
    state
        .snapshots()
        .delete_backup(auth.principal.caller().request(pb::BackupRef { id }))
        .await
        .map_err(conflict_is_bad_request)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = VpsOrgBackupRestore, example = json!({"overwrite": true}))]
pub struct RestoreBackupBody {
    /// Must be true: the server's current data is overwritten.
    overwrite: bool,
}

/// Restore a backup into its server, overwriting its data. The archive is checked first:
/// one that does not match its manifest is a 422 and nothing is touched.
#[utoipa::path(post, path = "/api/v1/backups/{id}/restore/", tag = "vpsorg",
    security(("vpsorgToken" = [])),
    params(("id" = i64, Path, description = "Backup id")),
    request_body = RestoreBackupBody,
    responses(
        (status = 200, description = "Restoring"),
        (status = 400, description = "overwrite is not true, or the server cannot be restored now", body = VpsOrgError),
        (status = 401, description = "Invalid or missing token", body = VpsOrgError),
        (status = 404, description = "No such backup", body = VpsOrgError),
        (status = 422, description = "The archive does not match its manifest", body = VpsOrgError),
    ))]
async fn restore_backup(
    State(state): State<AppState>,
    auth: Auth<VpsOrg>,
    PathId(id, _): PathId<VpsOrg>,
    Body(body, _): Body<VpsOrg, RestoreBackupBody>,
) -> Result<Json<Value>> {
    let reply = state
        .snapshots()
        .restore_backup(auth.principal.caller().request(pb::RestoreBackupRequest {
            id,
            overwrite: body.overwrite,
        }))
        .await
        .map_err(conflict_is_bad_request)?
        .into_inner();
    let backup = reply.backup.unwrap_or_default();
    let server = backup.server.clone().unwrap_or_default();
    Ok(Json(json!({
        "status": "success",
        "message": "Server is being restored from backup.",
        "backup": {"id": backup.id, "name": backup.name, "created_at": timestamp(backup.created_at_ms)},
        "server": {"id": server.id, "name": server.name, "status": reply.server_status},
        "task_id": reply.task_id,
    })))
}
