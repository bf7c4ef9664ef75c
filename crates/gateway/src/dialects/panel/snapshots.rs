//! The panel's snapshot routes (seed 000) and its backup and schedule routes in the same
//! style: a server's snapshots by name under `/api/server/{id}/snapshots`, its backups by
//! id under `/api/server/{id}/backups`. A foreign server is a 404; a limit reached or a
//! server in the wrong state is a 409.

use axum::Json;
use axum::extract::State;
use proto::snapshot::v1 as pb;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::replies::{
    BackupBegun, BackupReply, PanelBackupList, PanelSnapshotList, ScheduleReply, SnapshotBegun,
    TaskBegun,
};
use super::{Panel, PanelError, Result, StatusReply};
use crate::error::ApiError;
use crate::extract::{Auth, Body, PathId};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_snapshots, create_snapshot, delete_snapshot))
        .routes(routes!(rollback_snapshot))
        .routes(routes!(list_backups, create_backup, delete_backup))
        .routes(routes!(restore_backup))
        .routes(routes!(protect_backup))
        .routes(routes!(get_schedule, put_schedule, delete_schedule))
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = PanelSnapshotBody, example = json!({"snapname": "before-update", "description": "Before major update"}))]
#[serde(deny_unknown_fields)]
pub struct CreateSnapshotBody {
    /// 1-40 letters, digits, '-' or '_'; unique per server.
    #[schema(pattern = r"^[A-Za-z0-9_-]{1,40}$")]
    snapname: String,
    #[schema(max_length = 255)]
    description: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = PanelSnapshotName)]
#[serde(deny_unknown_fields)]
pub struct SnapshotName {
    #[schema(pattern = r"^[A-Za-z0-9_-]{1,40}$")]
    snapname: String,
}

fn named(server_id: i64, snapname: &str) -> pb::SnapshotRef {
    pb::SnapshotRef {
        id: 0,
        server_id,
        name: snapname.trim().to_owned(),
    }
}

fn check_snapname(raw: &str) -> std::result::Result<(), ApiError> {
    let name = raw.trim();
    if name.is_empty()
        || name.len() > 40
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ApiError::invalid(
            "snapname",
            "a snapshot name is 1-40 letters, digits, '-' or '_'",
        ));
    }
    Ok(())
}

/// Take a snapshot of a server (at most 5 per server).
#[utoipa::path(post, path = "/api/server/{id}/snapshots", tag = "snapshots",
    security(("bearerJwt" = [])),
    params(("id" = i64, Path, description = "Server id")),
    request_body = CreateSnapshotBody,
    responses(
        (status = 200, description = "Being taken; the task id follows it", body = SnapshotBegun),
        (status = 400, description = "Invalid name or description", body = PanelError),
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 404, description = "No such server of the caller's", body = PanelError),
        (status = 409, description = "The limit is reached, the name is taken, or the server is busy", body = PanelError),
    ))]
async fn create_snapshot(
    State(state): State<AppState>,
    auth: Auth<Panel>,
    PathId(id, _): PathId<Panel>,
    Body(body, _): Body<Panel, CreateSnapshotBody>,
) -> Result<Json<SnapshotBegun>> {
    check_snapname(&body.snapname)?;
    let reply = state
        .snapshots()
        .create_snapshot(auth.principal.caller().request(pb::CreateSnapshotRequest {
            server_id: id,
            name: body.snapname.trim().to_owned(),
            description: body.description.unwrap_or_default(),
        }))
        .await?
        .into_inner();
    let snapshot = reply.snapshot.unwrap_or_default();
    Ok(Json(SnapshotBegun::new(reply.task_id, snapshot.name)))
}

/// A server's snapshots.
#[utoipa::path(get, path = "/api/server/{id}/snapshots", tag = "snapshots",
    security(("bearerJwt" = [])),
    params(("id" = i64, Path, description = "Server id")),
    responses(
        (status = 200, description = "The snapshots, oldest first", body = PanelSnapshotList),
        (status = 400, description = "A malformed id", body = PanelError),
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 404, description = "No such server of the caller's", body = PanelError),
    ))]
async fn list_snapshots(
    State(state): State<AppState>,
    auth: Auth<Panel>,
    PathId(id, _): PathId<Panel>,
) -> Result<Json<PanelSnapshotList>> {
    let list = state
        .snapshots()
        .list_snapshots(
            auth.principal
                .caller()
                .request(pb::ListSnapshotsRequest { server_id: id }),
        )
        .await?
        .into_inner();
    Ok(Json(PanelSnapshotList::new(list.snapshots)))
}

/// Roll a server back to one of its snapshots: it is stopped, shown `restoring`, rolled
/// back, and started again if it was running.
#[utoipa::path(post, path = "/api/server/{id}/snapshots/rollback", tag = "snapshots",
    security(("bearerJwt" = [])),
    params(("id" = i64, Path, description = "Server id")),
    request_body = SnapshotName,
    responses(
        (status = 200, description = "Restoring; the task id follows it", body = TaskBegun),
        (status = 400, description = "Invalid name", body = PanelError),
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 404, description = "No such server or snapshot of the caller's", body = PanelError),
        (status = 409, description = "The server or the snapshot cannot be restored now", body = PanelError),
    ))]
async fn rollback_snapshot(
    State(state): State<AppState>,
    auth: Auth<Panel>,
    PathId(id, _): PathId<Panel>,
    Body(body, _): Body<Panel, SnapshotName>,
) -> Result<Json<TaskBegun>> {
    check_snapname(&body.snapname)?;
    let reply = state
        .snapshots()
        .restore_snapshot(auth.principal.caller().request(named(id, &body.snapname)))
        .await?
        .into_inner();
    Ok(Json(TaskBegun::new(reply.task_id)))
}

/// Delete one of a server's snapshots.
#[utoipa::path(delete, path = "/api/server/{id}/snapshots", tag = "snapshots",
    security(("bearerJwt" = [])),
    params(("id" = i64, Path, description = "Server id")),
    request_body = SnapshotName,
    responses(
        (status = 200, description = "Being deleted; the task id follows it", body = TaskBegun),
        (status = 400, description = "Invalid name", body = PanelError),
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 404, description = "No such server or snapshot of the caller's", body = PanelError),
        (status = 409, description = "Another task is at work on the snapshot", body = PanelError),
    ))]
async fn delete_snapshot(
    State(state): State<AppState>,
    auth: Auth<Panel>,
    PathId(id, _): PathId<Panel>,
    Body(body, _): Body<Panel, SnapshotName>,
) -> Result<Json<TaskBegun>> {
    check_snapname(&body.snapname)?;
    let reply = state
        .snapshots()
        .delete_snapshot(auth.principal.caller().request(named(id, &body.snapname)))
        .await?
        .into_inner();
    Ok(Json(TaskBegun::new(reply.task_id)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = PanelBackupBody)]
#[serde(deny_unknown_fields)]
pub struct CreateBackupBody {
    /// Optional: 1-40 letters, digits, '-' or '_'.
    #[schema(pattern = r"^[A-Za-z0-9_-]{1,40}$")]
    name: Option<String>,
    /// Never rotated or pruned, and not counted toward the limit.
    protected: Option<bool>,
}

/// Take a backup of a server now (one at a time per server).
#[utoipa::path(post, path = "/api/server/{id}/backups", tag = "snapshots",
    security(("bearerJwt" = [])),
    params(("id" = i64, Path, description = "Server id")),
    request_body = CreateBackupBody,
    responses(
        (status = 200, description = "Being taken; the task id follows it", body = BackupBegun),
        (status = 400, description = "Invalid name", body = PanelError),
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 404, description = "No such server of the caller's", body = PanelError),
        (status = 409, description = "A backup is under way, or the server is busy", body = PanelError),
    ))]
async fn create_backup(
    State(state): State<AppState>,
    auth: Auth<Panel>,
    PathId(id, _): PathId<Panel>,
    Body(body, _): Body<Panel, CreateBackupBody>,
) -> Result<Json<BackupBegun>> {
    let reply = state
        .snapshots()
        .create_backup(auth.principal.caller().request(pb::CreateBackupRequest {
            server_id: id,
            name: body.name.unwrap_or_default(),
            protected: body.protected.unwrap_or(false),
        }))
        .await?
        .into_inner();
    Ok(Json(BackupBegun::new(reply.task_id, reply.backup)))
}

/// A server's backups, oldest first.
#[utoipa::path(get, path = "/api/server/{id}/backups", tag = "snapshots",
    security(("bearerJwt" = [])),
    params(("id" = i64, Path, description = "Server id")),
    responses(
        (status = 200, description = "The backups", body = PanelBackupList),
        (status = 400, description = "A malformed id", body = PanelError),
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 404, description = "No such server of the caller's", body = PanelError),
    ))]
async fn list_backups(
    State(state): State<AppState>,
    auth: Auth<Panel>,
    PathId(id, _): PathId<Panel>,
) -> Result<Json<PanelBackupList>> {
    let list = state
        .snapshots()
        .list_backups(
            auth.principal
                .caller()
                .request(pb::ListBackupsRequest { server_id: id }),
        )
        .await?
        .into_inner();
    Ok(Json(PanelBackupList::new(list.backups)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = PanelBackupRef)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BackupRef {
    #[schema(minimum = 1)]
    backup_id: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = PanelBackupRestore)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RestoreBody {
    #[schema(minimum = 1)]
    backup_id: i64,
    /// Must be true: the server's current data is overwritten.
    overwrite: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = PanelBackupProtect)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProtectBody {
    #[schema(minimum = 1)]
    backup_id: i64,
    protected: bool,
}

/// The backup `backup_id` if it is one of server `id`'s (else 404).
async fn backup_of(
    state: &AppState,
    auth: &Auth<Panel>,
    id: i64,
    backup_id: i64,
) -> std::result::Result<pb::Backup, ApiError> {
    if backup_id <= 0 {
        return Err(ApiError::invalid("backupId", "a backup id is required"));
    }
    let backup = state
        .snapshots()
        .get_backup(
            auth.principal
                .caller()
                .request(pb::BackupRef { id: backup_id }),
        )
        .await?
        .into_inner();
    if backup.server.as_ref().map(|s| s.id) != Some(id) {
        return Err(ApiError::not_found("backup"));
    }
    Ok(backup)
}

/// Restore a backup into its server, overwriting its data (`overwrite` must be true). The
/// archive is checked first: one that does not match its manifest is a 422 and nothing is
/// touched.
#[utoipa::path(post, path = "/api/server/{id}/backups/restore", tag = "snapshots",
    security(("bearerJwt" = [])),
    params(("id" = i64, Path, description = "Server id")),
    request_body = RestoreBody,
    responses(
        (status = 200, description = "Restoring; the task id follows it", body = TaskBegun),
        (status = 400, description = "overwrite is not true, or a malformed id", body = PanelError),
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 404, description = "No such server or backup of the caller's", body = PanelError),
        (status = 409, description = "The server or the backup cannot be restored now", body = PanelError),
        (status = 422, description = "The archive does not match its manifest", body = PanelError),
    ))]
async fn restore_backup(
    State(state): State<AppState>,
    auth: Auth<Panel>,
    PathId(id, _): PathId<Panel>,
    Body(body, _): Body<Panel, RestoreBody>,
) -> Result<Json<TaskBegun>> {
    backup_of(&state, &auth, id, body.backup_id).await?;
    let reply = state
        .snapshots()
        .restore_backup(auth.principal.caller().request(pb::RestoreBackupRequest {
            id: body.backup_id,
            overwrite: body.overwrite,
        }))
        .await?
        .into_inner();
    Ok(Json(TaskBegun::new(reply.task_id)))
}

/// Delete one of a server's backups.
#[utoipa::path(delete, path = "/api/server/{id}/backups", tag = "snapshots",
    security(("bearerJwt" = [])),
    params(("id" = i64, Path, description = "Server id")),
    request_body = BackupRef,
    responses(
        (status = 200, description = "Being deleted; the task id follows it", body = TaskBegun),
        (status = 400, description = "A malformed id", body = PanelError),
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 404, description = "No such server or backup of the caller's", body = PanelError),
        (status = 409, description = "Another task is at work on the backup", body = PanelError),
    ))]
async fn delete_backup(
    State(state): State<AppState>,
    auth: Auth<Panel>,
    PathId(id, _): PathId<Panel>,
    Body(body, _): Body<Panel, BackupRef>,
) -> Result<Json<TaskBegun>> {
    backup_of(&state, &auth, id, body.backup_id).await?;
    let reply = state
        .snapshots()
        .delete_backup(
            auth.principal
                .caller()
                .request(pb::BackupRef { id: body.backup_id }),
        )
        .await?
        .into_inner();
    Ok(Json(TaskBegun::new(reply.task_id)))
}

/// Protect a backup (never rotated or pruned, not counted toward the limit), or not.
#[utoipa::path(post, path = "/api/server/{id}/backups/protect", tag = "snapshots",
    security(("bearerJwt" = [])),
    params(("id" = i64, Path, description = "Server id")),
    request_body = ProtectBody,
    responses(
        (status = 200, description = "The backup", body = BackupReply),
        (status = 400, description = "A malformed id", body = PanelError),
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 404, description = "No such server or backup of the caller's", body = PanelError),
    ))]
async fn protect_backup(
    State(state): State<AppState>,
    auth: Auth<Panel>,
    PathId(id, _): PathId<Panel>,
    Body(body, _): Body<Panel, ProtectBody>,
) -> Result<Json<BackupReply>> {
    backup_of(&state, &auth, id, body.backup_id).await?;
    let backup = state
        .snapshots()
        .protect_backup(auth.principal.caller().request(pb::ProtectBackupRequest {
            id: body.backup_id,
            protected: body.protected,
        }))
        .await?
        .into_inner();
    Ok(Json(BackupReply::new(backup)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = PanelSchedule, example = json!({"frequency": "daily", "time": "03:00", "timeZone": "Europe/Berlin", "keepDaily": 7, "keepWeekly": 4}))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScheduleBody {
    #[schema(pattern = "^(daily|weekly)$")]
    frequency: String,
    /// Weekly: `mon` ... `sun`.
    #[schema(pattern = "^(mon|tue|wed|thu|fri|sat|sun)$")]
    weekday: Option<String>,
    /// `HH:MM`, 24-hour clock.
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    time: String,
    /// An IANA time zone; default UTC.
    #[schema(max_length = 64)]
    time_zone: Option<String>,
    #[schema(minimum = 0, maximum = 1000)]
    keep_last: Option<u32>,
    #[schema(minimum = 0, maximum = 1000)]
    keep_daily: Option<u32>,
    #[schema(minimum = 0, maximum = 1000)]
    keep_weekly: Option<u32>,
    #[schema(minimum = 0, maximum = 1000)]
    keep_monthly: Option<u32>,
    /// Default true.
    enabled: Option<bool>,
}

/// A server's backup schedule.
#[utoipa::path(get, path = "/api/server/{id}/backups/schedule", tag = "snapshots",
    security(("bearerJwt" = [])),
    params(("id" = i64, Path, description = "Server id")),
    responses(
        (status = 200, description = "The schedule", body = ScheduleReply),
        (status = 400, description = "A malformed id", body = PanelError),
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 404, description = "No such server of the caller's, or it has no schedule", body = PanelError),
    ))]
async fn get_schedule(
    State(state): State<AppState>,
    auth: Auth<Panel>,
    PathId(id, _): PathId<Panel>,
) -> Result<Json<ScheduleReply>> {
    let schedule = state
        .snapshots()
        .get_schedule(
            auth.principal
                .caller()
                .request(pb::ScheduleRef { server_id: id }),
        )
        .await?
        .into_inner();
    Ok(Json(ScheduleReply::new(schedule)))
}

/// Set a server's backup schedule and retention (Proxmox Backup Server's keep-* terms).
#[utoipa::path(put, path = "/api/server/{id}/backups/schedule", tag = "snapshots",
    security(("bearerJwt" = [])),
    params(("id" = i64, Path, description = "Server id")),
    request_body = ScheduleBody,
    responses(
        (status = 200, description = "The schedule as saved", body = ScheduleReply),
        (status = 400, description = "Invalid frequency, day, time, zone or retention", body = PanelError),
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 404, description = "No such server of the caller's", body = PanelError),
    ))]
async fn put_schedule(
    State(state): State<AppState>,
    auth: Auth<Panel>,
    PathId(id, _): PathId<Panel>,
    Body(body, _): Body<Panel, ScheduleBody>,
) -> Result<Json<ScheduleReply>> {
    let schedule = pb::Schedule {
        server_id: id,
        frequency: body.frequency,
        weekday: body.weekday.unwrap_or_default(),
        time: body.time,
        time_zone: body.time_zone.unwrap_or_default(),
        keep_last: body.keep_last.unwrap_or(0),
        keep_daily: body.keep_daily.unwrap_or(0),
        keep_weekly: body.keep_weekly.unwrap_or(0),
        keep_monthly: body.keep_monthly.unwrap_or(0),
        enabled: body.enabled.unwrap_or(true),
        ..pb::Schedule::default()
    };
    let saved = state
        .snapshots()
        .put_schedule(auth.principal.caller().request(pb::PutScheduleRequest {
            schedule: Some(schedule),
        }))
        .await?
        .into_inner();
    Ok(Json(ScheduleReply::new(saved)))
}

/// Remove a server's backup schedule (its backups stay).
#[utoipa::path(delete, path = "/api/server/{id}/backups/schedule", tag = "snapshots",
    security(("bearerJwt" = [])),
    params(("id" = i64, Path, description = "Server id")),
    responses(
        (status = 200, description = "Removed", body = StatusReply),
        (status = 400, description = "A malformed id", body = PanelError),
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 404, description = "No such server of the caller's, or it has no schedule", body = PanelError),
    ))]
async fn delete_schedule(
    State(state): State<AppState>,
    auth: Auth<Panel>,
    PathId(id, _): PathId<Panel>,
) -> Result<Json<StatusReply>> {
    state
        .snapshots()
        .delete_schedule(
            auth.principal
                .caller()
                .request(pb::ScheduleRef { server_id: id }),
        )
        .await?;
    Ok(Json(StatusReply { status: "success" }))
}
