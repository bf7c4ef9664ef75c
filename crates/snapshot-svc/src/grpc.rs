//! The gRPC edge of snapshot-svc: decode, call `app`, encode.

use std::sync::Arc;

use platform::auth::{Scopes, Service};
use platform::grpc::{Caller, to_status};
use proto::snapshot::v1 as pb;
use proto::snapshot::v1::snapshots_server::{Snapshots as SnapshotsRpc, SnapshotsServer};
use tonic::{Request, Response, Status};

use crate::app::{
    App, BackupView, BackupWork, Origin, ScheduleSpec, SnapshotKey, SnapshotView, SnapshotWork,
};
use crate::domain::Status as RowStatus;
use crate::error::SnapshotError;
use crate::store::entity::{schedule, task};

pub struct SnapshotService {
    app: Arc<App>,
}

impl SnapshotService {
    pub fn new(app: Arc<App>) -> Self {
        Self { app }
    }

    pub fn into_server(self) -> SnapshotsServer<Self> {
        SnapshotsServer::new(self)
    }
}

type Reply<T> = Result<Response<T>, Status>;

fn status(error: SnapshotError) -> Status {
    to_status(&error)
}

/// Runs `work` to its end even if the caller hangs up, so a saga is never left half-begun.
async fn run_detached<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T, SnapshotError>> + Send + 'static,
) -> Result<T, Status> {
    tokio::spawn(tracing::Instrument::in_current_span(work))
        .await
        .map_err(|e| status(SnapshotError::Internal(e.into())))?
        .map_err(status)
}

fn snapshot_status(raw: &str) -> pb::SnapshotStatus {
    match RowStatus::parse(raw) {
        Some(RowStatus::InProgress) => pb::SnapshotStatus::InProgress,
        Some(RowStatus::Completed) => pb::SnapshotStatus::Completed,
        Some(RowStatus::Failed) => pb::SnapshotStatus::Failed,
        None => pb::SnapshotStatus::Unspecified,
    }
}

fn backup_status(raw: &str) -> pb::BackupStatus {
    match RowStatus::parse(raw) {
        Some(RowStatus::InProgress) => pb::BackupStatus::InProgress,
        Some(RowStatus::Completed) => pb::BackupStatus::Completed,
        Some(RowStatus::Failed) => pb::BackupStatus::Failed,
        None => pb::BackupStatus::Unspecified,
    }
}

fn snapshot_pb(v: SnapshotView) -> pb::Snapshot {
    let r = v.row;
    pb::Snapshot {
        id: r.id,
        uuid: r.uuid,
        server: Some(pb::ServerInfo {
            id: r.server_id,
            name: v.server_name,
        }),
        name: r.name,
        description: r.description,
        status: snapshot_status(&r.status).into(),
        size_mb: r.size_mb.and_then(|m| u64::try_from(m).ok()),
        created_at_ms: r.created_at,
        task_id: r.task_id.unwrap_or_default(),
    }
}

fn snapshot_reply(w: SnapshotWork) -> pb::SnapshotReply {
    pb::SnapshotReply {
        snapshot: Some(snapshot_pb(w.view)),
        task_id: w.task_id,
        server_status: w.server_status,
    }
}

fn backup_pb(v: BackupView) -> pb::Backup {
    let r = v.row;
    pb::Backup {
        id: r.id,
        uuid: r.uuid,
        server: Some(pb::ServerInfo {
            id: r.server_id,
            name: v.server_name,
        }),
        name: r.name,
        status: backup_status(&r.status).into(),
        origin: r.origin,
        protected: r.protected,
        size_bytes: u64::try_from(r.size_bytes).unwrap_or(0),
        sha256: r.sha256,
        target: r.target,
        created_at_ms: r.created_at,
        completed_at_ms: r.completed_at.unwrap_or(0),
        // Only a saga's own id is a task a client can look up.
        task_id: r
            .task_id
            .filter(|t| t.starts_with("task_"))
            .unwrap_or_default(),
        error: r.error,
    }
}

fn backup_reply(w: BackupWork) -> pb::BackupReply {
    pb::BackupReply {
        backup: Some(backup_pb(w.view)),
        task_id: w.task_id,
        server_status: w.server_status,
    }
}

fn schedule_pb(s: schedule::Model) -> pb::Schedule {
    let keep = |v: i32| u32::try_from(v).unwrap_or(0);
    pb::Schedule {
        server_id: s.server_id,
        frequency: s.frequency,
        weekday: s.weekday,
        time: s.time,
        time_zone: s.time_zone,
        keep_last: keep(s.keep_last),
        keep_daily: keep(s.keep_daily),
        keep_weekly: keep(s.keep_weekly),
        keep_monthly: keep(s.keep_monthly),
        enabled: s.enabled,
        next_run_at_ms: s.next_run_at,
        last_run_at_ms: s.last_run_at,
        origin: s.origin,
    }
}

fn task_pb(t: task::Model) -> pb::Task {
    pb::Task {
        state: match t.state.as_str() {
            crate::store::tasks::UNWINDING => crate::store::tasks::RUNNING.to_owned(),
            other => other.to_owned(),
        },
        steps_done: crate::store::tasks::steps_done(&t.steps_done),
        id: t.id,
        server_id: t.server_id,
        kind: t.kind,
        step: t.step,
        error: t.error,
        created_at_ms: t.created_at,
        updated_at_ms: t.updated_at,
    }
}

fn snapshot_key(r: &pb::SnapshotRef) -> Result<SnapshotKey, Status> {
    if r.id > 0 {
        return Ok(SnapshotKey::Id(r.id));
    }
    if r.server_id > 0 && !r.name.is_empty() {
        return Ok(SnapshotKey::Named {
            server_id: r.server_id,
            name: r.name.clone(),
        });
    }
    Err(status(SnapshotError::invalid(
        "id",
        "name a snapshot by its id, or by its server and name",
    )))
}

fn positive(field: &'static str, id: i64) -> Result<i64, Status> {
    if id > 0 {
        Ok(id)
    } else {
        Err(status(SnapshotError::invalid(field, "an id is required")))
    }
}

#[tonic::async_trait]
impl SnapshotsRpc for SnapshotService {
    async fn create_snapshot(
        &self,
        request: Request<pb::CreateSnapshotRequest>,
    ) -> Reply<pb::SnapshotReply> {
        let caller = Caller::required(&request)?.require_user(Scopes::SERVERS_WRITE)?;
        let r = request.into_inner();
        let app = self.app.clone();
        let work = run_detached(async move {
            app.create_snapshot(caller, r.server_id, &r.name, &r.description)
                .await
        })
        .await?;
        Ok(Response::new(snapshot_reply(work)))
    }

    async fn list_snapshots(
        &self,
        request: Request<pb::ListSnapshotsRequest>,
    ) -> Reply<pb::ListSnapshotsResponse> {
        let caller = Caller::required(&request)?.require_user(Scopes::SERVERS_READ)?;
        let r = request.into_inner();
        let server = (r.server_id != 0).then_some(r.server_id);
        let list = self
            .app
            .list_snapshots(caller, server)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListSnapshotsResponse {
            snapshots: list.into_iter().map(snapshot_pb).collect(),
        }))
    }

    async fn get_snapshot(&self, request: Request<pb::SnapshotRef>) -> Reply<pb::Snapshot> {
        let caller = Caller::required(&request)?.require_user(Scopes::SERVERS_READ)?;
        let key = snapshot_key(request.get_ref())?;
        let view = self.app.snapshot(caller, &key).await.map_err(status)?;
        Ok(Response::new(snapshot_pb(view)))
    }

    async fn restore_snapshot(
        &self,
        request: Request<pb::SnapshotRef>,
    ) -> Reply<pb::SnapshotReply> {
        let caller = Caller::required(&request)?.require_user(Scopes::SERVERS_WRITE)?;
        let key = snapshot_key(request.get_ref())?;
        let app = self.app.clone();
        let work = run_detached(async move { app.restore_snapshot(caller, &key).await }).await?;
        Ok(Response::new(snapshot_reply(work)))
    }

    async fn delete_snapshot(&self, request: Request<pb::SnapshotRef>) -> Reply<pb::SnapshotReply> {
        let caller = Caller::required(&request)?.require_user(Scopes::SERVERS_WRITE)?;
        let key = snapshot_key(request.get_ref())?;
        let app = self.app.clone();
        let work = run_detached(async move { app.delete_snapshot(caller, &key).await }).await?;
        Ok(Response::new(snapshot_reply(work)))
    }

    async fn create_backup(
        &self,
        request: Request<pb::CreateBackupRequest>,
    ) -> Reply<pb::BackupReply> {
        let caller = Caller::required(&request)?.require_user(Scopes::SERVERS_WRITE)?;
        let r = request.into_inner();
        let app = self.app.clone();
        let work = run_detached(async move {
            app.create_backup(caller, r.server_id, &r.name, r.protected, Origin::Manual)
                .await
        })
        .await?;
        Ok(Response::new(backup_reply(work)))
    }

    async fn list_backups(
        &self,
        request: Request<pb::ListBackupsRequest>,
    ) -> Reply<pb::ListBackupsResponse> {
        let caller = Caller::required(&request)?.require_user(Scopes::SERVERS_READ)?;
        let r = request.into_inner();
        let server = (r.server_id != 0).then_some(r.server_id);
        let list = self
            .app
            .list_backups(caller, server)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListBackupsResponse {
            backups: list.into_iter().map(backup_pb).collect(),
        }))
    }

    async fn get_backup(&self, request: Request<pb::BackupRef>) -> Reply<pb::Backup> {
        let caller = Caller::required(&request)?.require_user(Scopes::SERVERS_READ)?;
        let id = positive("id", request.get_ref().id)?;
        let view = self.app.backup(caller, id).await.map_err(status)?;
        Ok(Response::new(backup_pb(view)))
    }

    async fn restore_backup(
        &self,
        request: Request<pb::RestoreBackupRequest>,
    ) -> Reply<pb::BackupReply> {
        let caller = Caller::required(&request)?.require_user(Scopes::SERVERS_WRITE)?;
        let r = request.into_inner();
        let id = positive("id", r.id)?;
        let app = self.app.clone();
        let work =
            run_detached(async move { app.restore_backup(caller, id, r.overwrite).await }).await?;
        Ok(Response::new(backup_reply(work)))
    }

    async fn delete_backup(&self, request: Request<pb::BackupRef>) -> Reply<pb::BackupReply> {
        let caller = Caller::required(&request)?.require_user(Scopes::SERVERS_WRITE)?;
        let id = positive("id", request.get_ref().id)?;
        let app = self.app.clone();
        let work = run_detached(async move { app.delete_backup(caller, id).await }).await?;
        Ok(Response::new(backup_reply(work)))
    }

    async fn protect_backup(
        &self,
        request: Request<pb::ProtectBackupRequest>,
    ) -> Reply<pb::Backup> {
        let caller = Caller::required(&request)?.require_user(Scopes::SERVERS_WRITE)?;
        let r = request.into_inner();
        let id = positive("id", r.id)?;
        let view = self
            .app
            .protect_backup(caller, id, r.protected)
            .await
            .map_err(status)?;
        Ok(Response::new(backup_pb(view)))
    }

    async fn get_schedule(&self, request: Request<pb::ScheduleRef>) -> Reply<pb::Schedule> {
        let caller = Caller::required(&request)?.require_user(Scopes::SERVERS_READ)?;
        let server_id = positive("server_id", request.get_ref().server_id)?;
        let s = self.app.schedule(caller, server_id).await.map_err(status)?;
        Ok(Response::new(schedule_pb(s)))
    }

    async fn put_schedule(&self, request: Request<pb::PutScheduleRequest>) -> Reply<pb::Schedule> {
        let caller = Caller::required(&request)?.require_user(Scopes::SERVERS_WRITE)?;
        let s = request.into_inner().schedule.unwrap_or_default();
        let server_id = positive("server_id", s.server_id)?;
        let spec = ScheduleSpec {
            frequency: s.frequency,
            weekday: s.weekday,
            time: s.time,
            time_zone: s.time_zone,
            keep_last: s.keep_last,
            keep_daily: s.keep_daily,
            keep_weekly: s.keep_weekly,
            keep_monthly: s.keep_monthly,
            enabled: s.enabled,
        };
        let saved = self
            .app
            .put_schedule(caller, server_id, spec)
            .await
            .map_err(status)?;
        Ok(Response::new(schedule_pb(saved)))
    }

    async fn delete_schedule(
        &self,
        request: Request<pb::ScheduleRef>,
    ) -> Reply<pb::DeleteScheduleReply> {
        let caller = Caller::required(&request)?.require_user(Scopes::SERVERS_WRITE)?;
        let server_id = positive("server_id", request.get_ref().server_id)?;
        self.app
            .delete_schedule(caller, server_id)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::DeleteScheduleReply {}))
    }

    async fn get_task(&self, request: Request<pb::GetTaskRequest>) -> Reply<pb::Task> {
        let caller = Caller::required(&request)?.require_user(Scopes::SERVERS_READ)?;
        let id = request.into_inner().id;
        let task = self.app.task(caller, &id).await.map_err(status)?;
        Ok(Response::new(task_pb(task)))
    }

    async fn set_automatic_backups(
        &self,
        request: Request<pb::SetAutomaticBackupsRequest>,
    ) -> Reply<pb::SetAutomaticBackupsReply> {
        Caller::required(&request)?.require_service(&[Service::Server])?;
        let r = request.into_inner();
        let server_id = positive("server_id", r.server_id)?;
        self.app
            .set_automatic_backups(server_id, r.enabled)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::SetAutomaticBackupsReply {}))
    }

    async fn restore_into_guest(
        &self,
        request: Request<pb::RestoreIntoGuestRequest>,
    ) -> Reply<pb::RestoreIntoGuestReply> {
        Caller::required(&request)?.require_service(&[Service::Server])?;
        let r = request.into_inner();
        let backup_id = positive("backup_id", r.backup_id)?;
        let app = self.app.clone();
        run_detached(async move {
            app.restore_into_guest(backup_id, r.owner_id, r.node_id, &r.guest, r.check_only)
                .await
        })
        .await?;
        Ok(Response::new(pb::RestoreIntoGuestReply {}))
    }

    async fn forget_server(
        &self,
        request: Request<pb::ForgetServerRequest>,
    ) -> Reply<pb::ForgetServerReply> {
        Caller::required(&request)?.require_service(&[Service::Server])?;
        let server_id = positive("server_id", request.get_ref().server_id)?;
        let app = self.app.clone();
        let (snapshots, backups) =
            run_detached(async move { app.forget_server(server_id).await }).await?;
        Ok(Response::new(pb::ForgetServerReply { snapshots, backups }))
    }
}
