//! snapshot-svc's sagas on the platform's engine, one module per kind, their progress kept
//! in the task row. Work on a guest holds its server in server-svc first (so nothing else
//! runs on it meanwhile) and releases it last; a failed step unwinds the ones before it and
//! releases the server as it was.

pub(super) mod backup;
pub(super) mod backup_delete;
pub(super) mod backup_restore;
mod snapshot;
mod snapshot_delete;
mod snapshot_restore;

use std::sync::Arc;

use platform::grpc::{Caller, Reason, ServiceError as _};
use platform::saga::{Engine, Host, Phase, Record, SagaError};
use proto::node::v1 as nodepb;
use proto::server::v1 as serverpb;
use sea_orm::Set;
use serde::Serialize;

use super::{App, now_ms};
use crate::config::Config;
use crate::error::{Result, SnapshotError};
use crate::store;
use crate::store::entity::task;

pub use backup::Params as BackupParams;
pub use backup_delete::Params as BackupDeleteParams;
pub use backup_restore::Params as BackupRestoreParams;
pub use snapshot::Params as SnapshotParams;
pub use snapshot_delete::Params as SnapshotDeleteParams;
pub use snapshot_restore::Params as SnapshotRestoreParams;

pub const SNAPSHOT: &str = "snapshot";
pub const SNAPSHOT_RESTORE: &str = "snapshot_restore";
pub const SNAPSHOT_DELETE: &str = "snapshot_delete";
pub const BACKUP: &str = "backup";
pub const BACKUP_RESTORE: &str = "backup_restore";
pub const BACKUP_DELETE: &str = "backup_delete";

/// The step each reply waits for: the server is held (and a backup's archive checked)
/// before the caller hears back, so a refusal is an answer.
pub const REPLY_BEFORE_TAKE: &str = "take";
pub const REPLY_BEFORE_STOP: &str = "stop";
pub const REPLY_BEFORE_ARCHIVE: &str = "archive";

pub(super) fn engine(
    db: &sea_orm::DatabaseConnection,
    config: &Config,
    shutdown: platform::Shutdown,
) -> anyhow::Result<Engine<App>> {
    Engine::for_service(
        db,
        config.lease_ttl_secs,
        config.resume_interval_secs,
        shutdown,
    )
    .with::<snapshot::TakeSnapshot>()
    .with::<snapshot_restore::RestoreSnapshot>()
    .with::<snapshot_delete::DeleteSnapshot>()
    .with::<backup::TakeBackup>()
    .with::<backup_restore::RestoreBackup>()
    .with::<backup_delete::DeleteBackup>()
    .with_faults(&config.faults)
}

/// Every kind of saga and its steps, in order (tests walk them).
pub fn steps() -> Vec<(&'static str, Vec<&'static str>)> {
    use platform::saga::steps_of;
    vec![
        (SNAPSHOT, steps_of::<App, snapshot::TakeSnapshot>()),
        (
            SNAPSHOT_RESTORE,
            steps_of::<App, snapshot_restore::RestoreSnapshot>(),
        ),
        (
            SNAPSHOT_DELETE,
            steps_of::<App, snapshot_delete::DeleteSnapshot>(),
        ),
        (BACKUP, steps_of::<App, backup::TakeBackup>()),
        (
            BACKUP_RESTORE,
            steps_of::<App, backup_restore::RestoreBackup>(),
        ),
        (
            BACKUP_DELETE,
            steps_of::<App, backup_delete::DeleteBackup>(),
        ),
    ]
}

pub(super) fn to_json<P: Serialize>(params: &P) -> Result<String> {
    serde_json::to_string(params).map_err(|e| SnapshotError::Internal(e.into()))
}

pub(super) fn from_json<P: serde::de::DeserializeOwned>(task: &task::Model) -> Result<P> {
    serde_json::from_str(&task.params).map_err(|e| {
        SnapshotError::Internal(anyhow::anyhow!(
            "task {} ({}) has unreadable parameters: {e}",
            task.id,
            task.kind
        ))
    })
}

impl SagaError for SnapshotError {
    fn retryable(&self) -> bool {
        match self {
            Self::Database(_) | Self::Target(_) => true,
            // A peer restarting (or dying mid-call: steps are idempotent, so the call is
            // made again, on a replica that answers); a node that does not answer is an
            // answer (`unknown`).
            Self::Upstream(status) => {
                platform::grpc::failed_in_transport(status)
                    || (status.code() == tonic::Code::Unavailable
                        && platform::grpc::error_reason(status) != Some(Reason::NodeUnreachable))
            }
            _ => false,
        }
    }

    fn corrupt(message: String) -> Self {
        Self::Internal(anyhow::anyhow!(message))
    }

    fn injected(message: String) -> Self {
        Self::Conflict(message)
    }
}

impl Host for App {
    type Error = SnapshotError;

    fn engine(&self) -> &Engine<Self> {
        &self.sagas
    }

    async fn load(&self, id: &str) -> Result<Record> {
        let task = self.task_row(id).await?;
        let phase = match task.state.as_str() {
            store::tasks::RUNNING => Phase::Running,
            store::tasks::UNWINDING => Phase::Unwinding,
            _ => Phase::Idle,
        };
        Ok(Record {
            done: store::tasks::steps_done(&task.steps_done),
            id: task.id,
            kind: task.kind,
            subject: task.server_id,
            phase,
            step: task.step,
            params: task.params,
        })
    }

    async fn begin_step(&self, id: &str, step: &str) -> Result<()> {
        let step = step.to_owned();
        Ok(store::tasks::set(&self.db, id, now_ms(), |t| t.step = Set(step)).await?)
    }

    async fn progress(&self, id: &str, done: &[String], params: &str) -> Result<()> {
        let joined = done.join(",");
        let params = params.to_owned();
        Ok(store::tasks::set(&self.db, id, now_ms(), |t| {
            t.steps_done = Set(joined);
            t.params = Set(params);
        })
        .await?)
    }

    async fn failed(&self, id: &str, step: &str, error: &SnapshotError) -> Result<()> {
        let message = format!("{step} failed: {}", error.client_message());
        Ok(store::tasks::set(&self.db, id, now_ms(), |t| {
            t.state = Set(store::tasks::UNWINDING.to_owned());
            t.error = Set(message);
        })
        .await?)
    }

    async fn finish(&self, id: &str, failed: bool) -> Result<Option<String>> {
        let task = self.task_row(id).await?;
        let txn = platform::db::begin_write(&self.db).await?;
        match task.kind.as_str() {
            SNAPSHOT => snapshot::finish(&txn, &task, failed).await?,
            SNAPSHOT_RESTORE => snapshot_restore::finish(&txn, &task, failed).await?,
            SNAPSHOT_DELETE => snapshot_delete::finish(&txn, &task, failed).await?,
            BACKUP => backup::finish(&txn, &task, failed).await?,
            BACKUP_RESTORE => backup_restore::finish(&txn, &task, failed).await?,
            BACKUP_DELETE => backup_delete::finish(&txn, &task, failed).await?,
            other => {
                return Err(SnapshotError::Internal(anyhow::anyhow!(
                    "task {id} has an unknown kind {other:?}"
                )));
            }
        }
        let state = if failed {
            store::tasks::FAILED
        } else {
            store::tasks::SUCCEEDED
        };
        store::tasks::set(&txn, id, now_ms(), |t| t.state = Set(state.to_owned())).await?;
        txn.commit().await?;
        tracing::info!(task = id, kind = %task.kind, server = task.server_id, failed, "task finished");
        if task.kind == BACKUP && !failed {
            // The new backup counts now: older ones beyond the limit or the retention go.
            self.rotate(task.server_id).await;
        }
        Ok(None)
    }

    async fn open(&self) -> Result<Vec<String>> {
        Ok(store::tasks::open_ids(&self.db).await?)
    }
}

/// The guest a server is, and where it stood, as its hold told.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(super) struct Held {
    pub node_id: i64,
    pub guest: String,
    /// The server's status before the hold (`running`, `stopped` ...).
    pub prior_status: String,
}

impl Held {
    fn guest_ref(&self) -> nodepb::GuestRef {
        nodepb::GuestRef {
            node_id: self.node_id,
            name: self.guest.clone(),
        }
    }

    fn was_running(&self) -> bool {
        self.prior_status == "running"
    }
}

impl App {
    /// Drives a task to its end in the background.
    pub fn spawn_drive(self: &Arc<Self>, task_id: String) {
        Engine::spawn(self, task_id);
    }

    pub async fn resume_tasks(self: &Arc<Self>) -> Result<usize> {
        Engine::resume(self).await
    }

    pub fn resumer(self: &Arc<Self>) -> impl Future<Output = ()> + Send + 'static {
        Engine::resume_until_shutdown(self.clone())
    }

    pub async fn drain(&self, limit: std::time::Duration) {
        self.sagas.drain(limit).await;
    }

    pub(super) async fn task_row(&self, task_id: &str) -> Result<task::Model> {
        store::tasks::find(&self.db, task_id)
            .await?
            .ok_or(SnapshotError::NotFound("task"))
    }

    /// Drives a new task here until `reply_before` (its first steps run before the caller
    /// hears back, so a refusal is an answer); then in the background. `Ok(Some(error))`:
    /// refused before the reply and wholly undone, the task forgotten (the caller forgets
    /// its record too). `Err`: failed, and still unwinding in the background.
    pub(super) async fn start_task(
        self: &Arc<Self>,
        task_id: &str,
        reply_before: Option<&str>,
    ) -> Result<Option<SnapshotError>> {
        self.sagas.hold(task_id).await?;
        let refused = {
            // Driven here until the reply: the resumer must not drive it meanwhile.
            let _driving = self.sagas.claim(task_id);
            match reply_before {
                Some(stop) => match Engine::advance(self.as_ref(), task_id, Some(stop)).await? {
                    platform::saga::Progress::Failed(error) => {
                        Some((Engine::unwind(self.as_ref(), task_id).await, error))
                    }
                    _ => None,
                },
                None => None,
            }
        };
        match refused {
            Some((Ok(true), error)) => {
                store::tasks::delete(&self.db, task_id).await?;
                Ok(Some(error))
            }
            Some((_, error)) => {
                self.spawn_drive(task_id.to_owned());
                Err(error)
            }
            None => {
                self.spawn_drive(task_id.to_owned());
                Ok(None)
            }
        }
    }

    /// Holds the server for `task_id` in server-svc.
    async fn hold(&self, server_id: i64, task_id: &str, kind: serverpb::TaskKind) -> Result<Held> {
        let reply = self
            .servers
            .clone()
            .hold(Caller::SYSTEM.request(serverpb::HoldRequest {
                server_id,
                kind: kind.into(),
                task_id: task_id.to_owned(),
            }))
            .await
            .map_err(|status| match status.code() {
                tonic::Code::NotFound => SnapshotError::NotFound("server"),
                _ => SnapshotError::from(status),
            })?
            .into_inner();
        let prior = reply.prior_status();
        let server = reply.server.unwrap_or_default();
        if server.node_id <= 0 || server.guest_name.is_empty() {
            // Held, but with no guest to work on: give it back.
            self.release(server_id, task_id, true, None, "the server has no guest")
                .await?;
            return Err(SnapshotError::WrongState(
                "the server has no guest yet".to_owned(),
            ));
        }
        Ok(Held {
            node_id: server.node_id,
            guest: server.guest_name,
            prior_status: status_name(prior),
        })
    }

    /// Ends a hold in server-svc; `status` `None` puts the server back where it was.
    async fn release(
        &self,
        server_id: i64,
        task_id: &str,
        failed: bool,
        status: Option<serverpb::ServerStatus>,
        error: &str,
    ) -> Result<()> {
        let released = self
            .servers
            .clone()
            .release(Caller::SYSTEM.request(serverpb::ReleaseRequest {
                server_id,
                task_id: task_id.to_owned(),
                failed,
                status: status.unwrap_or(serverpb::ServerStatus::Unspecified).into(),
                error: error.to_owned(),
            }))
            .await;
        match released {
            Ok(_) => Ok(()),
            // The hold is gone with its server (deleted by an administrator meanwhile).
            Err(status) if status.code() == tonic::Code::NotFound => Ok(()),
            Err(status) => Err(status.into()),
        }
    }

    async fn stop_guest(&self, held: &Held) -> Result<()> {
        self.guests
            .clone()
            .stop_guest(Caller::SYSTEM.request(nodepb::StopGuestRequest {
                guest: Some(held.guest_ref()),
                grace_secs: self.config.stop_grace_secs.max(1),
            }))
            .await?;
        Ok(())
    }

    async fn start_guest(&self, held: &Held) -> Result<()> {
        self.guests
            .clone()
            .start_guest(Caller::SYSTEM.request(held.guest_ref()))
            .await?;
        Ok(())
    }

    /// The error of a task, for events and the released server's task.
    async fn task_error(&self, task_id: &str) -> String {
        self.task_row(task_id)
            .await
            .map(|t| t.error)
            .unwrap_or_default()
    }
}

/// A server status as its lower-case word (`running`, `restoring` ...).
pub fn status_name(status: serverpb::ServerStatus) -> String {
    status
        .as_str_name()
        .trim_start_matches("SERVER_STATUS_")
        .to_ascii_lowercase()
}
