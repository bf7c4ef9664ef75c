//! server-svc's sagas on the platform's engine: every task is a saga of its kind (one module
//! each), its progress kept in the task row. A step that fails unwinds the steps done before
//! it in reverse (guest deleted, address and capacity released, credits refunded) and leaves
//! the server in `error` with the reason.
//!
//! This module is the engine's host (the task table, and how a task ends) and the steps more
//! than one saga shares.

mod create;
mod delete;
mod power;
mod reinstall;
mod resize;
mod suspend;

use std::sync::Arc;

use platform::grpc::{Caller, Reason, ServiceError as _};
use platform::saga::{Engine, Host, Phase, Record, SagaError};
use proto::identity::v1 as idpb;
use proto::node::v1 as nodepb;
use sea_orm::{IntoActiveModel, Set};
use serde::{Deserialize, Serialize};

use super::{App, events, now_ms};
use crate::config::Config;
use crate::domain::state::ServerState;
use crate::domain::task::{TaskKind, TaskState};
use crate::error::{Result, ServerError};
use crate::store;
use crate::store::entity::{server, task};

pub use create::Params as CreateParams;
pub use delete::Params as DeleteParams;
pub use power::{Params as PowerParams, PasswordParams};
pub use reinstall::Params as ReinstallParams;
pub use resize::Params as ResizeParams;

/// The create step its reply waits for: the steps before it (credits, placement) run first.
pub(super) fn create_reply_before() -> &'static str {
    create::REPLY_BEFORE.into()
}

/// Every kind of saga server-svc runs, with the faults its configuration injects.
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
    .with::<create::Create>()
    .with::<delete::Delete>()
    .with::<resize::Resize>()
    .with::<reinstall::Reinstall>()
    .with::<power::Start>()
    .with::<power::Stop>()
    .with::<power::Reboot>()
    .with::<power::Password>()
    .with::<suspend::Suspend>()
    .with::<suspend::Unsuspend>()
    .with_faults(&config.faults)
}

/// The steps of every kind of task, in order (tests walk them).
pub fn steps(kind: TaskKind) -> Vec<&'static str> {
    match kind {
        TaskKind::Create => platform::saga::steps_of::<App, create::Create>(),
        TaskKind::Delete => platform::saga::steps_of::<App, delete::Delete>(),
        TaskKind::Resize => platform::saga::steps_of::<App, resize::Resize>(),
        TaskKind::Reinstall => platform::saga::steps_of::<App, reinstall::Reinstall>(),
        TaskKind::Start => platform::saga::steps_of::<App, power::Start>(),
        TaskKind::Stop => platform::saga::steps_of::<App, power::Stop>(),
        TaskKind::Reboot => platform::saga::steps_of::<App, power::Reboot>(),
        TaskKind::Password => platform::saga::steps_of::<App, power::Password>(),
        TaskKind::Suspend => platform::saga::steps_of::<App, suspend::Suspend>(),
        TaskKind::Unsuspend => platform::saga::steps_of::<App, suspend::Unsuspend>(),
        // snapshot-svc's sagas do the work of these.
        TaskKind::Snapshot
        | TaskKind::SnapshotRestore
        | TaskKind::Backup
        | TaskKind::BackupRestore => Vec::new(),
    }
}

/// Parameters as stored with a task.
pub(super) fn to_json<P: Serialize>(params: &P) -> Result<String> {
    serde_json::to_string(params).map_err(|e| ServerError::Internal(e.into()))
}

pub(super) fn from_json<P: serde::de::DeserializeOwned>(task: &task::Model) -> Result<P> {
    serde_json::from_str(&task.params).map_err(|e| {
        ServerError::Internal(anyhow::anyhow!(
            "task {} ({}) has unreadable parameters: {e}",
            task.id,
            task.kind
        ))
    })
}

/// What every task's parameters carry: the status before it began, for tasks that return
/// to it.
#[derive(Debug, Default, Deserialize)]
struct Prior {
    #[serde(default)]
    prior_status: String,
    /// A held task: the status snapshot-svc's work left the server in (empty: the prior).
    #[serde(default)]
    final_status: String,
}

impl SagaError for ServerError {
    fn retryable(&self) -> bool {
        match self {
            // A busy or briefly lost database.
            Self::Database(_) => true,
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

fn task_state(task: &task::Model) -> Result<TaskState> {
    TaskState::parse(&task.state).ok_or_else(|| {
        ServerError::Internal(anyhow::anyhow!(
            "task {} has an unknown state {:?}",
            task.id,
            task.state
        ))
    })
}

pub(super) fn task_kind(task: &task::Model) -> Result<TaskKind> {
    TaskKind::parse(&task.kind).ok_or_else(|| {
        ServerError::Internal(anyhow::anyhow!(
            "task {} has an unknown kind {:?}",
            task.id,
            task.kind
        ))
    })
}

impl Host for App {
    type Error = ServerError;

    fn engine(&self) -> &Engine<Self> {
        &self.sagas
    }

    async fn load(&self, id: &str) -> Result<Record> {
        let task = self.task_row(id).await?;
        let phase = match task_state(&task)? {
            TaskState::Running => Phase::Running,
            TaskState::Unwinding => Phase::Unwinding,
            TaskState::Queued | TaskState::Succeeded | TaskState::Failed => Phase::Idle,
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
        self.set_task(id, |t| t.step = Set(step.to_owned())).await
    }

    async fn progress(&self, id: &str, done: &[String], params: &str) -> Result<()> {
        let joined = done.join(",");
        let params = params.to_owned();
        self.set_task(id, |t| {
            t.steps_done = Set(joined);
            t.params = Set(params);
        })
        .await
    }

    async fn failed(&self, id: &str, step: &str, error: &ServerError) -> Result<()> {
        let message = format!("{step} failed: {}", error.client_message());
        let why = failure_reason(error);
        self.set_task(id, |t| {
            t.state = Set(TaskState::Unwinding.as_str().to_owned());
            t.error = Set(message);
            t.error_reason = Set(why);
        })
        .await
    }

    async fn finish(&self, id: &str, failed: bool) -> Result<Option<String>> {
        self.end_task(id, failed).await
    }

    async fn open(&self) -> Result<Vec<String>> {
        Ok(store::tasks::open_ids(&self.db).await?)
    }
}

impl App {
    /// Drives a task to its end in the background.
    pub fn spawn_drive(self: &Arc<Self>, task_id: String) {
        Engine::spawn(self, task_id);
    }

    /// Offers every unfinished task that this replica does not drive to the engine, which
    /// takes it only if no other replica holds its lease.
    pub async fn resume_tasks(self: &Arc<Self>) -> Result<usize> {
        Engine::resume(self).await
    }

    /// Looks for sagas nobody drives every `resume_interval_secs`, until shutdown.
    pub fn resumer(self: &Arc<Self>) -> impl Future<Output = ()> + Send + 'static {
        Engine::resume_until_shutdown(self.clone())
    }

    /// Waits (at most `limit`) for the sagas this replica drives to stop, after shutdown.
    pub async fn drain(&self, limit: std::time::Duration) {
        self.sagas.drain(limit).await;
    }

    /// Ends a task: the server's final state, the task's, and the event, in one transaction.
    /// A delete queued behind the task begins in the same transaction; its id is returned,
    /// for the caller to drive.
    pub(super) async fn end_task(&self, task_id: &str, failed: bool) -> Result<Option<String>> {
        let task = self.task_row(task_id).await?;
        let kind = task_kind(&task)?;
        let prior_status: Prior = from_json(&task)?;
        let txn = platform::db::begin_write(&self.db).await?;
        // Locked until commit on PostgreSQL, so a delete queued meanwhile is either seen
        // here (and promoted) or waits and then finds the task ended (SQLite's write
        // transactions run one at a time anyway).
        let Some(row) = store::servers::find_locked(&txn, task.server_id).await? else {
            return Err(ServerError::NotFound("server"));
        };
        let prior = ServerState::parse(&prior_status.prior_status).unwrap_or(ServerState::Stopped);
        let at = now_ms();
        let mut am = row.clone().into_active_model();
        am.updated_at = Set(at);
        let held_status = ServerState::parse(&prior_status.final_status).unwrap_or(prior);
        let (status, reason) = if kind.is_held() {
            let reason = if held_status == ServerState::Error {
                task.error.clone()
            } else {
                String::new()
            };
            (held_status, reason)
        } else if failed {
            match kind {
                TaskKind::Create | TaskKind::Reinstall | TaskKind::Delete => {
                    (ServerState::Error, task.error.clone())
                }
                TaskKind::Suspend => (ServerState::Suspended, row.status_reason.clone()),
                _ if task.error_reason == Reason::NodeUnreachable.as_str_name() => {
                    (ServerState::Unknown, task.error.clone())
                }
                _ => (prior, String::new()),
            }
        } else {
            match kind {
                TaskKind::Create | TaskKind::Reinstall | TaskKind::Start | TaskKind::Reboot => {
                    (ServerState::Running, String::new())
                }
                TaskKind::Stop | TaskKind::Unsuspend => (ServerState::Stopped, String::new()),
                TaskKind::Delete => (ServerState::Terminated, String::new()),
                TaskKind::Suspend => (ServerState::Suspended, row.status_reason.clone()),
                TaskKind::Resize | TaskKind::Password => (prior, String::new()),
                TaskKind::Snapshot
                | TaskKind::SnapshotRestore
                | TaskKind::Backup
                | TaskKind::BackupRestore => (held_status, String::new()),
            }
        };
        am.status = Set(status.as_str().to_owned());
        am.status_reason = Set(reason);
        if status == ServerState::Running {
            am.ran_in_period = Set(true);
        }
        if !failed {
            match kind {
                TaskKind::Delete => {
                    am.deleted_at = Set(Some(at));
                    am.node_id = Set(None);
                    am.reservation_id = Set(None);
                    am.ipv4 = Set(None);
                    am.ipv6 = Set(None);
                    am.root_password = Set(None);
                }
                TaskKind::Password => {
                    let params: PasswordParams = from_json(&task)?;
                    am.root_password = Set(Some(params.password));
                }
                TaskKind::Reinstall => {
                    let params: ReinstallParams = from_json(&task)?;
                    am.root_password = Set(Some(params.password));
                    am.image_id = Set(params.image_id);
                }
                _ => {}
            }
        }
        let queued = row
            .delete_task_id
            .clone()
            .filter(|queued| kind != TaskKind::Delete && *queued != task.id);
        if let Some(queued) = &queued {
            am.status = Set(ServerState::Deleting.as_str().to_owned());
            am.task_id = Set(Some(queued.clone()));
            am.delete_task_id = Set(None);
            if store::tasks::find(&txn, queued).await?.is_none() {
                return Err(ServerError::NotFound("task"));
            }
            let params = to_json(&DeleteParams {
                prior_status: status.as_str().to_owned(),
            })?;
            store::tasks::start(&txn, queued, params, at).await?;
        }
        let updated = store::servers::update(&txn, am).await?;
        let ended = if failed {
            TaskState::Failed
        } else {
            TaskState::Succeeded
        };
        store::tasks::set(&txn, &task.id, at, |t| {
            t.state = Set(ended.as_str().to_owned());
        })
        .await?;
        let subject = if kind == TaskKind::Delete && !failed {
            events::DELETED
        } else {
            events::STATE
        };
        events::server_event(
            &txn,
            subject,
            &updated,
            events::TaskFacts {
                id: &task.id,
                kind: Some(kind),
                failed,
            },
        )
        .await?;
        txn.commit().await?;
        tracing::info!(task = %task.id, kind = %task.kind, server = updated.id, status = %updated.status, failed, "task finished");
        Ok(queued)
    }

    /// Turns a server's automatic backups (snapshot-svc's default daily schedule) on or off.
    pub(super) async fn automatic_backups(&self, server_id: i64, enabled: bool) -> Result<()> {
        self.snapshots
            .clone()
            .set_automatic_backups(
                Caller::SYSTEM.request(proto::snapshot::v1::SetAutomaticBackupsRequest {
                    server_id,
                    enabled,
                }),
            )
            .await?;
        Ok(())
    }

    /// Checks that `backup_id` is `owner_id`'s and complete (NOT_FOUND otherwise).
    pub(super) async fn check_backup(&self, backup_id: i64, owner_id: i64) -> Result<()> {
        let checked = self
            .snapshots
            .clone()
            .restore_into_guest(Caller::SYSTEM.request(
                proto::snapshot::v1::RestoreIntoGuestRequest {
                    backup_id,
                    owner_id,
                    check_only: true,
                    ..Default::default()
                },
            ))
            .await;
        match checked {
            Ok(_) => Ok(()),
            Err(status) if status.code() == tonic::Code::NotFound => {
                Err(ServerError::NotFound("backup"))
            }
            Err(status) if status.code() == tonic::Code::FailedPrecondition => {
                Err(ServerError::Conflict(status.message().to_owned()))
            }
            Err(status) => Err(status.into()),
        }
    }

    /// Puts a backup's files into the server's new, stopped guest.
    async fn restore_backup_into(&self, s: &server::Model, backup_id: i64) -> Result<()> {
        let guest = Self::guest_ref(s)?;
        self.snapshots
            .clone()
            .restore_into_guest(Caller::SYSTEM.request(
                proto::snapshot::v1::RestoreIntoGuestRequest {
                    backup_id,
                    owner_id: s.owner_id,
                    node_id: guest.node_id,
                    guest: guest.name,
                    check_only: false,
                },
            ))
            .await?;
        Ok(())
    }

    /// Has snapshot-svc forget a deleted server's snapshots and backups.
    async fn forget_snapshots(&self, s: &server::Model) -> Result<()> {
        let reply = self
            .snapshots
            .clone()
            .forget_server(
                Caller::SYSTEM
                    .request(proto::snapshot::v1::ForgetServerRequest { server_id: s.id }),
            )
            .await?
            .into_inner();
        tracing::info!(
            server = s.id,
            snapshots = reply.snapshots,
            backups = reply.backups,
            "snapshot-svc forgot the server"
        );
        Ok(())
    }

    pub(super) async fn task_row(&self, task_id: &str) -> Result<task::Model> {
        store::tasks::find(&self.db, task_id)
            .await?
            .ok_or(ServerError::NotFound("task"))
    }

    async fn set_task(
        &self,
        task_id: &str,
        change: impl FnOnce(&mut task::ActiveModel),
    ) -> Result<()> {
        Ok(store::tasks::set(&self.db, task_id, now_ms(), change).await?)
    }

    pub(super) async fn server_row(&self, id: i64) -> Result<server::Model> {
        store::servers::find(&self.db, id)
            .await?
            .ok_or(ServerError::NotFound("server"))
    }

    async fn set_server(
        &self,
        id: i64,
        change: impl FnOnce(&mut server::ActiveModel),
    ) -> Result<()> {
        Ok(store::servers::set(&self.db, id, now_ms(), change).await?)
    }

    /// A server being built whose owner deleted it meanwhile: the saga builds no further.
    async fn cancelled_build(&self, server_id: i64) -> Result<Option<ServerError>> {
        Ok(self
            .server_row(server_id)
            .await?
            .delete_task_id
            .is_some()
            .then(|| {
                ServerError::Conflict(
                    "cancelled: the server was deleted while it was being built".to_owned(),
                )
            }))
    }

    fn guest_ref(s: &server::Model) -> Result<nodepb::GuestRef> {
        let node_id = s
            .node_id
            .ok_or_else(|| ServerError::Conflict("the server has no node".to_owned()))?;
        Ok(nodepb::GuestRef {
            node_id,
            name: s.guest_name.clone(),
        })
    }

    /// Makes the guest from `image_id`, with the sealed root password if there is one; true
    /// when the driver set the password as it made the guest.
    async fn make_guest(
        &self,
        s: &server::Model,
        image_id: i64,
        sealed: Option<&str>,
    ) -> Result<bool> {
        let guest = Self::guest_ref(s)?;
        let node = self
            .nodes
            .clone()
            .get_node(Caller::SYSTEM.request(nodepb::GetNodeRequest {
                by: Some(nodepb::get_node_request::By::Id(guest.node_id)),
            }))
            .await?
            .into_inner();
        let templates = crate::store::catalog::image(&self.db, image_id)
            .await?
            .ok_or(ServerError::NotFound("image"))?
            .templates;
        let template = templates.get(&node.driver).cloned().ok_or_else(|| {
            ServerError::Conflict(format!(
                "image {image_id} has no template for {} nodes",
                node.driver
            ))
        })?;
        let root_password = match sealed {
            Some(sealed) => self.open_password(sealed)?,
            None => String::new(),
        };
        let reply = self
            .guests
            .clone()
            .create_guest(Caller::SYSTEM.request(nodepb::CreateGuestRequest {
                guest: Some(guest),
                template,
                hostname: s.hostname.clone(),
                size: Some(size_of(s)),
                root_password,
            }))
            .await?
            .into_inner();
        Ok(reply.root_password_set)
    }

    /// Removes the guest, if the server was placed; a guest already gone is fine.
    async fn remove_guest(&self, s: &server::Model) -> Result<()> {
        if s.node_id.is_none() {
            return Ok(());
        }
        self.guests
            .clone()
            .delete_guest(Caller::SYSTEM.request(Self::guest_ref(s)?))
            .await?;
        Ok(())
    }

    async fn start_guest(&self, s: &server::Model) -> Result<()> {
        self.guests
            .clone()
            .start_guest(Caller::SYSTEM.request(Self::guest_ref(s)?))
            .await?;
        Ok(())
    }

    /// Stops the guest for good (a deletion or a reinstall): a guest already gone is fine.
    async fn power_off(&self, s: &server::Model) -> Result<()> {
        if s.node_id.is_none() {
            return Ok(());
        }
        let stopped = self
            .guests
            .clone()
            .stop_guest(Caller::SYSTEM.request(nodepb::StopGuestRequest {
                guest: Some(Self::guest_ref(s)?),
                grace_secs: self.config.stop_grace_secs.clamp(1, 10),
            }))
            .await;
        match stopped {
            Err(status) if status.code() != tonic::Code::NotFound => Err(status.into()),
            _ => Ok(()),
        }
    }

    /// Sets the root password the task (or the server) holds sealed.
    async fn set_root_password(&self, s: &server::Model, sealed: Option<&str>) -> Result<()> {
        let sealed = sealed
            .or(s.root_password.as_deref())
            .ok_or_else(|| ServerError::Conflict("no root password to set".to_owned()))?;
        let password = self.open_password(sealed)?;
        self.guests
            .clone()
            .set_guest_password(Caller::SYSTEM.request(nodepb::SetGuestPasswordRequest {
                guest: Some(Self::guest_ref(s)?),
                user: "root".to_owned(),
                password,
            }))
            .await?;
        Ok(())
    }

    /// Gives the server's addresses back; the server no longer shows (or reuses) them.
    async fn release_addresses(&self, s: &server::Model) -> Result<()> {
        self.nodes
            .clone()
            .release_address(Caller::SYSTEM.request(nodepb::ReleaseAddressRequest {
                owner: s.uuid.clone(),
            }))
            .await?;
        self.set_server(s.id, |a| {
            a.ipv4 = Set(None);
            a.ipv6 = Set(None);
        })
        .await
    }

    /// Releases a capacity reservation; one already released is fine.
    async fn release_reservation(&self, reservation_id: String) -> Result<()> {
        self.nodes
            .clone()
            .release(Caller::SYSTEM.request(nodepb::ReleaseRequest { reservation_id }))
            .await?;
        Ok(())
    }

    /// Whether the first hour of this server was charged (the charge may have committed even
    /// when its reply was lost), so a refund never pays out what was never taken.
    async fn first_hour_charged(&self, s: &server::Model) -> Result<bool> {
        let reference = format!("server:{}:first-hour", s.uuid);
        let ledger = self
            .identity
            .clone()
            .list_ledger(Caller::SYSTEM.request(idpb::ListLedgerRequest {
                user_id: s.owner_id,
                limit: 1000,
            }))
            .await?
            .into_inner();
        Ok(ledger.entries.iter().any(|e| e.reference == reference))
    }

    fn open_password(&self, sealed: &str) -> Result<String> {
        let password = self.sealer.open(sealed).map_err(ServerError::Internal)?;
        String::from_utf8(password).map_err(|e| ServerError::Internal(e.into()))
    }

    /// Whether any pool of `family` serves the node (its own, or its location's).
    async fn node_has_pool(&self, node_id: i64, family: u32) -> Result<bool> {
        let node = self
            .nodes
            .clone()
            .get_node(Caller::SYSTEM.request(nodepb::GetNodeRequest {
                by: Some(nodepb::get_node_request::By::Id(node_id)),
            }))
            .await?
            .into_inner();
        let pools = self
            .nodes
            .clone()
            .list_pools(Caller::SYSTEM.request(nodepb::ListPoolsRequest {}))
            .await?
            .into_inner()
            .pools;
        Ok(pools.iter().any(|p| {
            p.family == family
                && (p.node_id == node_id || (p.node_id == 0 && p.location == node.location))
        }))
    }

    async fn resize_guest(
        &self,
        s: &server::Model,
        cores: i64,
        memory_mb: i64,
        disk_gb: i64,
    ) -> Result<()> {
        // Cores and memory are always sent as targets, so a repeat after a crash asks for the
        // same thing again; the disk only when it grows beyond what the row says it has.
        let grow_disk = disk_gb > s.disk_gb;
        self.guests
            .clone()
            .resize_guest(Caller::SYSTEM.request(nodepb::ResizeGuestRequest {
                guest: Some(Self::guest_ref(s)?),
                cores: Some(u32::try_from(cores).unwrap_or(1)),
                memory_mb: Some(u64::try_from(memory_mb).unwrap_or(64)),
                disk_gb: grow_disk.then(|| u64::try_from(disk_gb).unwrap_or(1)),
            }))
            .await?;
        Ok(())
    }

    pub(super) async fn balance_of(&self, user_id: i64) -> Result<i64> {
        Ok(self
            .identity
            .clone()
            .get_balance(Caller::SYSTEM.request(idpb::GetBalanceRequest { user_id }))
            .await?
            .into_inner()
            .balance)
    }

    pub(super) fn billing_period_ms(&self) -> i64 {
        i64::try_from(self.config.billing_period_secs.max(1).saturating_mul(1000))
            .unwrap_or(i64::MAX)
    }
}

pub fn size_of(s: &server::Model) -> nodepb::Capacity {
    capacity(s.cores, s.memory_mb, s.disk_gb)
}

fn capacity(cores: i64, memory_mb: i64, disk_gb: i64) -> nodepb::Capacity {
    nodepb::Capacity {
        cores: u32::try_from(cores).unwrap_or(0),
        memory_mb: u64::try_from(memory_mb).unwrap_or(0),
        disk_gb: u64::try_from(disk_gb).unwrap_or(0),
    }
}

/// Why a step failed, as the task keeps it (a [`Reason`]'s name).
fn failure_reason(error: &ServerError) -> String {
    error
        .reason()
        .or_else(|| error.upstream_reason())
        .unwrap_or(match error {
            ServerError::Upstream(_) | ServerError::Internal(_) => Reason::Hypervisor,
            _ => Reason::Failed,
        })
        .as_str_name()
        .to_owned()
}
