//! Holds: snapshot-svc's sagas work on a server's guest (take or restore a snapshot or a
//! backup) while server-svc keeps the server out of other hands. A hold is a task of
//! server-svc's, of a kind no saga here drives: it begins like any action (the state machine
//! decides, one task at a time, a delete queues behind it) and ends when snapshot-svc
//! releases it, with the status the work left the server in.

use std::sync::Arc;

use sea_orm::Set;
use serde::{Deserialize, Serialize};

use super::saga::{from_json, to_json};
use super::{App, ServerView, events, now_ms};
use crate::domain::state::{Action, Refusal, ServerState};
use crate::domain::task::{TaskKind, TaskState};
use crate::error::{Result, ServerError};
use crate::store;

/// A held task's parameters: where the server was, and where the work left it.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct HoldParams {
    pub prior_status: String,
    #[serde(default)]
    pub final_status: String,
}

/// A server held for a task, and the status it had before.
#[derive(Debug)]
pub struct Held {
    pub view: ServerView,
    pub prior: ServerState,
}

impl App {
    /// Holds `server_id` for snapshot-svc's task `task_id` of `kind`. The same task asking
    /// again gets the same hold.
    pub async fn hold(
        self: &Arc<Self>,
        server_id: i64,
        kind: TaskKind,
        task_id: &str,
    ) -> Result<Held> {
        if !kind.is_held() {
            return Err(ServerError::invalid(
                "kind",
                "not a kind snapshot-svc holds",
            ));
        }
        let server = self.server_row(server_id).await?;
        if server.deleted_at.is_some() {
            return Err(ServerError::NotFound("server"));
        }
        if server.task_id.as_deref() == Some(task_id) {
            let task = self.task_row(task_id).await?;
            let params: HoldParams = from_json(&task)?;
            return Ok(Held {
                prior: ServerState::parse(&params.prior_status).unwrap_or(ServerState::Stopped),
                view: self.view(server).await?,
            });
        }
        if server.delete_task_id.is_some() {
            return Err(ServerError::WrongState(Refusal::DeletePending));
        }
        let action = match kind {
            TaskKind::SnapshotRestore | TaskKind::BackupRestore => Action::Restore,
            _ => Action::Snapshot,
        };
        let current = ServerState::parse(&server.status).unwrap_or(ServerState::Unknown);
        let next = current.begin(action).map_err(ServerError::WrongState)?;
        if let Some(previous) = &server.task_id
            && let Some(running) = store::tasks::find(&self.db, previous).await?
            && TaskState::parse(&running.state).is_some_and(TaskState::is_open)
        {
            return Err(ServerError::WrongState(Refusal::TaskUnderway));
        }
        let at = now_ms();
        let txn = platform::db::begin_write(&self.db).await?;
        let claimed = store::servers::swap_status(
            &txn,
            server.id,
            current.as_str(),
            server.task_id.as_deref(),
            next.as_str(),
            task_id,
            at,
        )
        .await?;
        if !claimed {
            txn.rollback().await?;
            return Err(ServerError::WrongState(Refusal::TaskUnderway));
        }
        let params = to_json(&HoldParams {
            prior_status: current.as_str().to_owned(),
            final_status: String::new(),
        })?;
        store::tasks::insert(&txn, task_id, &server, kind, TaskState::Running, params, at).await?;
        let updated = store::servers::find(&txn, server.id)
            .await?
            .ok_or(ServerError::NotFound("server"))?;
        if next != current {
            events::server_event(
                &txn,
                events::STATE,
                &updated,
                events::TaskFacts {
                    id: task_id,
                    kind: Some(kind),
                    failed: false,
                },
            )
            .await?;
        }
        txn.commit().await?;
        tracing::info!(server = server.id, task = task_id, kind = %kind, "server held");
        Ok(Held {
            view: self.view(updated).await?,
            prior: current,
        })
    }

    /// Ends the hold of `task_id`: the server takes `status` (`None`: where it was before).
    /// A delete queued behind the hold begins. Releasing twice is releasing once.
    pub async fn release(
        self: &Arc<Self>,
        server_id: i64,
        task_id: &str,
        failed: bool,
        status: Option<ServerState>,
        error: &str,
    ) -> Result<ServerView> {
        let task = self.task_row(task_id).await?;
        if task.server_id != server_id
            || !super::saga::task_kind(&task).is_ok_and(TaskKind::is_held)
        {
            return Err(ServerError::NotFound("task"));
        }
        if TaskState::parse(&task.state).is_some_and(TaskState::is_open) {
            let mut params: HoldParams = from_json(&task)?;
            params.final_status = status.map(|s| s.as_str().to_owned()).unwrap_or_default();
            let params = to_json(&params)?;
            let error: String = error.chars().take(500).collect();
            store::tasks::set(&self.db, task_id, now_ms(), |t| {
                t.params = Set(params);
                if failed {
                    t.error = Set(error);
                    t.error_reason = Set(platform::grpc::Reason::Failed.as_str_name().to_owned());
                }
            })
            .await?;
            if let Some(queued) = self.end_task(task_id, failed).await? {
                self.spawn_drive(queued);
            }
        }
        let server = self.server_row(server_id).await?;
        self.view(server).await
    }
}
