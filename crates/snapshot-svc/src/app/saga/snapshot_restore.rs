//! Rolling a server back to a snapshot: hold the server (it shows `restoring`), stop its
//! guest, roll the disk back, start it again if it was running, release it. A failure
//! before the rollback starts the guest again if it ran and puts the server back as it was.

use platform::grpc::Caller;
use platform::saga::{Run, Saga};
use proto::node::v1 as nodepb;
use proto::server::v1 as serverpb;
use sea_orm::DatabaseTransaction;
use serde::{Deserialize, Serialize};

use super::{Held, SNAPSHOT_RESTORE};
use crate::app::events::{self, Happened};
use crate::app::{App, now_ms};
use crate::domain::Status;
use crate::error::Result;
use crate::store;
use crate::store::entity::task;

#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumIter, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Step {
    Hold,
    Stop,
    Rollback,
    Start,
    Settle,
    Release,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Params {
    pub snapshot_id: i64,
    pub hv_name: String,
    #[serde(default)]
    pub held: Held,
}

pub struct RestoreSnapshot;

impl Saga<App> for RestoreSnapshot {
    const KIND: &'static str = SNAPSHOT_RESTORE;
    type Step = Step;
    type Params = Params;

    async fn run(app: &App, run: &mut Run<Params>, step: Step) -> Result<()> {
        let held = run.params.held.clone();
        match step {
            Step::Hold => {
                run.params.held = app
                    .hold(run.subject, &run.id, serverpb::TaskKind::SnapshotRestore)
                    .await?;
                Ok(())
            }
            Step::Stop if held.was_running() => app.stop_guest(&held).await,
            Step::Stop => Ok(()),
            Step::Rollback => {
                app.guests
                    .clone()
                    .rollback_snapshot(Caller::SYSTEM.request(nodepb::SnapshotRequest {
                        guest: Some(held.guest_ref()),
                        snapshot: run.params.hv_name.clone(),
                        description: String::new(),
                    }))
                    .await?;
                Ok(())
            }
            Step::Start if held.was_running() => app.start_guest(&held).await,
            Step::Start => Ok(()),
            // The snapshot is free again before the task is seen to end.
            Step::Settle => Ok(store::snapshots::settle(
                app.db(),
                run.params.snapshot_id,
                &run.id,
                Status::Completed,
                None,
                now_ms(),
            )
            .await?),
            Step::Release => app.release(run.subject, &run.id, false, None, "").await,
        }
    }

    async fn undo(app: &App, run: &Run<Params>, step: Step) -> Result<()> {
        let held = &run.params.held;
        match step {
            Step::Hold => {
                let error = app.task_error(&run.id).await;
                app.release(run.subject, &run.id, true, None, &error).await
            }
            Step::Stop if held.was_running() => app.start_guest(held).await,
            Step::Settle => Ok(store::snapshots::reclaim(
                app.db(),
                run.params.snapshot_id,
                &run.id,
                Status::Completed,
                now_ms(),
            )
            .await?),
            Step::Stop | Step::Rollback | Step::Start | Step::Release => Ok(()),
        }
    }
}

pub(super) async fn finish(
    txn: &DatabaseTransaction,
    task: &task::Model,
    failed: bool,
) -> Result<()> {
    let params: Params = super::from_json(task)?;
    // The snapshot itself is as it was, either way.
    store::snapshots::settle(
        txn,
        params.snapshot_id,
        &task.id,
        Status::Completed,
        None,
        now_ms(),
    )
    .await?;
    if let Some(row) = store::snapshots::find(txn, params.snapshot_id).await? {
        let what = Happened {
            subject: if failed {
                events::SNAPSHOT_FAILED
            } else {
                events::SNAPSHOT_RESTORED
            },
            task_id: &task.id,
            operation: if failed { "restore" } else { "" },
            reason: if failed { &task.error } else { "" },
            cause: "",
        };
        events::snapshot_event(txn, &row, what).await?;
    }
    Ok(())
}
