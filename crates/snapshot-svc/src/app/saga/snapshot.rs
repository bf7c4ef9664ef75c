//! Taking a snapshot: hold the server, have the hypervisor take it, note its size, mark it
//! complete, release the server (so a client that sees the task end finds the snapshot
//! complete). A failure deletes whatever the hypervisor made and leaves the snapshot
//! `failed` (it no longer counts toward the limit).

use platform::grpc::Caller;
use platform::saga::{Run, Saga};
use proto::node::v1 as nodepb;
use proto::server::v1 as serverpb;
use sea_orm::DatabaseTransaction;
use serde::{Deserialize, Serialize};

use super::{Held, SNAPSHOT};
use crate::app::events::{self, Happened};
use crate::app::{App, now_ms};
use crate::domain::Status;
use crate::error::{Result, SnapshotError};
use crate::store;
use crate::store::entity::task;

#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumIter, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Step {
    Hold,
    Take,
    Measure,
    Settle,
    Release,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Params {
    pub snapshot_id: i64,
    pub hv_name: String,
    pub description: String,
    #[serde(default)]
    pub held: Held,
    #[serde(default)]
    pub size_mb: Option<i64>,
}

pub struct TakeSnapshot;

impl Saga<App> for TakeSnapshot {
    const KIND: &'static str = SNAPSHOT;
    type Step = Step;
    type Params = Params;

    async fn run(app: &App, run: &mut Run<Params>, step: Step) -> Result<()> {
        match step {
            Step::Hold => {
                run.params.held = app
                    .hold(run.subject, &run.id, serverpb::TaskKind::Snapshot)
                    .await?;
                Ok(())
            }
            Step::Take => {
                app.guests
                    .clone()
                    .create_snapshot(Caller::SYSTEM.request(nodepb::SnapshotRequest {
                        guest: Some(run.params.held.guest_ref()),
                        snapshot: run.params.hv_name.clone(),
                        description: run.params.description.clone(),
                    }))
                    .await?;
                Ok(())
            }
            Step::Measure => {
                let listed = app
                    .guests
                    .clone()
                    .list_snapshots(Caller::SYSTEM.request(run.params.held.guest_ref()))
                    .await?
                    .into_inner();
                let taken = listed
                    .snapshots
                    .iter()
                    .find(|s| s.name == run.params.hv_name)
                    .ok_or_else(|| {
                        SnapshotError::Conflict(
                            "the hypervisor does not list the snapshot it took".to_owned(),
                        )
                    })?;
                run.params.size_mb = taken
                    .size_bytes
                    .map(|b| i64::try_from(b.div_ceil(1024 * 1024)).unwrap_or(i64::MAX));
                Ok(())
            }
            Step::Settle => Ok(store::snapshots::settle(
                app.db(),
                run.params.snapshot_id,
                &run.id,
                Status::Completed,
                run.params.size_mb,
                now_ms(),
            )
            .await?),
            Step::Release => app.release(run.subject, &run.id, false, None, "").await,
        }
    }

    async fn undo(app: &App, run: &Run<Params>, step: Step) -> Result<()> {
        match step {
            Step::Hold => {
                let error = app.task_error(&run.id).await;
                app.release(run.subject, &run.id, true, None, &error).await
            }
            Step::Take => {
                app.guests
                    .clone()
                    .delete_snapshot(Caller::SYSTEM.request(nodepb::SnapshotRequest {
                        guest: Some(run.params.held.guest_ref()),
                        snapshot: run.params.hv_name.clone(),
                        description: String::new(),
                    }))
                    .await?;
                Ok(())
            }
            Step::Settle => Ok(store::snapshots::reclaim(
                app.db(),
                run.params.snapshot_id,
                &run.id,
                Status::InProgress,
                now_ms(),
            )
            .await?),
            Step::Measure | Step::Release => Ok(()),
        }
    }
}

pub(super) async fn finish(
    txn: &DatabaseTransaction,
    task: &task::Model,
    failed: bool,
) -> Result<()> {
    let params: Params = super::from_json(task)?;
    if failed {
        store::snapshots::settle(
            txn,
            params.snapshot_id,
            &task.id,
            Status::Failed,
            None,
            now_ms(),
        )
        .await?;
    }
    if let Some(row) = store::snapshots::find(txn, params.snapshot_id).await? {
        let what = Happened {
            subject: if failed {
                events::SNAPSHOT_FAILED
            } else {
                events::SNAPSHOT_CREATED
            },
            task_id: &task.id,
            operation: if failed { "create" } else { "" },
            reason: if failed { &task.error } else { "" },
            cause: "",
        };
        events::snapshot_event(txn, &row, what).await?;
    }
    Ok(())
}
