//! Deleting a snapshot: the hypervisor's first, then the record. Nothing to undo, so each
//! step is tried again before the saga gives up (the snapshot then stays, as it was).

use platform::grpc::Caller;
use platform::saga::{Run, Saga};
use proto::node::v1 as nodepb;
use sea_orm::DatabaseTransaction;
use serde::{Deserialize, Serialize};

use super::SNAPSHOT_DELETE;
use crate::app::events::{self, Happened};
use crate::app::{App, now_ms};
use crate::domain::Status;
use crate::error::Result;
use crate::store;
use crate::store::entity::task;

#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumIter, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Step {
    Remove,
    Forget,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Params {
    pub snapshot_id: i64,
    pub hv_name: String,
    /// The guest, if the server still has one (a failed snapshot may have none to delete).
    pub node_id: i64,
    pub guest: String,
    /// The snapshot as it was, for the event once its row is gone.
    pub name: String,
    pub uuid: String,
    pub owner_id: i64,
    /// Whether the hypervisor has anything to delete (a failed snapshot has not).
    pub on_hypervisor: bool,
    /// The hypervisor's copy is gone (noted with the step, kept through a failure).
    #[serde(default)]
    pub removed: bool,
}

pub struct DeleteSnapshot;

impl Saga<App> for DeleteSnapshot {
    const KIND: &'static str = SNAPSHOT_DELETE;
    const FORWARD_ONLY: bool = true;
    type Step = Step;
    type Params = Params;

    async fn run(app: &App, run: &mut Run<Params>, step: Step) -> Result<()> {
        if step == Step::Remove {
            remove(app, &run.params).await?;
            run.params.removed = true;
            return Ok(());
        }
        Ok(store::snapshots::delete(app.db(), run.params.snapshot_id).await?)
    }

    async fn undo(_: &App, _: &Run<Params>, _: Step) -> Result<()> {
        Ok(())
    }
}

/// Deletes the hypervisor's copy, if it has one.
async fn remove(app: &App, p: &Params) -> Result<()> {
    if !p.on_hypervisor || p.node_id <= 0 {
        return Ok(());
    }
    let removed = app
        .guests
        .clone()
        .delete_snapshot(Caller::SYSTEM.request(nodepb::SnapshotRequest {
            guest: Some(nodepb::GuestRef {
                node_id: p.node_id,
                name: p.guest.clone(),
            }),
            snapshot: p.hv_name.clone(),
            description: String::new(),
        }))
        .await;
    match removed {
        Ok(_) => Ok(()),
        // The guest is gone, and its snapshots with it.
        Err(status) if status.code() == tonic::Code::NotFound => Ok(()),
        Err(status) => Err(status.into()),
    }
}

pub(super) async fn finish(
    txn: &DatabaseTransaction,
    task: &task::Model,
    failed: bool,
) -> Result<()> {
    let params: Params = super::from_json(task)?;
    if failed {
        // It stays, as what the hypervisor still keeps says: a snapshot removed there but
        // not forgotten here can no longer be restored.
        let kept = if params.on_hypervisor && !params.removed {
            Status::Completed
        } else {
            Status::Failed
        };
        store::snapshots::settle(txn, params.snapshot_id, &task.id, kept, None, now_ms()).await?;
    }
    let row = crate::store::entity::snapshot::Model {
        id: params.snapshot_id,
        uuid: params.uuid.clone(),
        server_id: task.server_id,
        owner_id: params.owner_id,
        name: params.name.clone(),
        description: String::new(),
        status: String::new(),
        size_mb: None,
        hv_name: params.hv_name.clone(),
        task_id: None,
        created_at: 0,
        updated_at: 0,
    };
    let what = Happened {
        subject: if failed {
            events::SNAPSHOT_FAILED
        } else {
            events::SNAPSHOT_DELETED
        },
        task_id: &task.id,
        operation: if failed { "delete" } else { "" },
        reason: if failed { &task.error } else { "" },
        cause: "",
    };
    events::snapshot_event(txn, &row, what).await?;
    Ok(())
}
