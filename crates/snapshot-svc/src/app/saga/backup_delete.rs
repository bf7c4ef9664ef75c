//! Deleting a backup: its archive and manifest (or the hypervisor's volume), then its
//! record. Nothing to undo, so each step is tried again before the saga gives up.

use platform::saga::{Run, Saga};
use sea_orm::DatabaseTransaction;
use serde::{Deserialize, Serialize};

use super::BACKUP_DELETE;
use crate::app::events::{self, Happened};
use crate::app::{App, now_ms};
use crate::error::Result;
use crate::store;
use crate::store::entity::{backup, task};

#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumIter, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Step {
    Remove,
    Forget,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Params {
    /// The backup as it was, for the event once its record is gone.
    pub backup: StoredBackup,
    /// Its archive is gone (noted with the step, kept through a failure).
    #[serde(default)]
    pub removed: bool,
}

/// The fields of a backup its deletion needs.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct StoredBackup {
    pub id: i64,
    pub uuid: String,
    pub owner_id: i64,
    pub node_id: i64,
    pub name: String,
    pub origin: String,
    pub target: String,
    pub location: String,
    pub size_bytes: i64,
}

impl From<&backup::Model> for StoredBackup {
    fn from(b: &backup::Model) -> Self {
        Self {
            id: b.id,
            uuid: b.uuid.clone(),
            owner_id: b.owner_id,
            node_id: b.node_id,
            name: b.name.clone(),
            origin: b.origin.clone(),
            target: b.target.clone(),
            location: b.location.clone(),
            size_bytes: b.size_bytes,
        }
    }
}

pub struct DeleteBackup;

impl Saga<App> for DeleteBackup {
    const KIND: &'static str = BACKUP_DELETE;
    const FORWARD_ONLY: bool = true;
    type Step = Step;
    type Params = Params;

    async fn run(app: &App, run: &mut Run<Params>, step: Step) -> Result<()> {
        let b = &run.params.backup;
        match step {
            Step::Remove => {
                app.remove_archive(run.subject, b).await?;
                run.params.removed = true;
                Ok(())
            }
            Step::Forget => Ok(store::backups::delete(app.db(), b.id).await?),
        }
    }

    async fn undo(_: &App, _: &Run<Params>, _: Step) -> Result<()> {
        Ok(())
    }
}

pub(super) async fn finish(
    txn: &DatabaseTransaction,
    task: &task::Model,
    failed: bool,
) -> Result<()> {
    let params: Params = super::from_json(task)?;
    let b = &params.backup;
    if failed {
        // An archive removed but not forgotten can no longer be restored: say so.
        if params.removed {
            let error = task.error.clone();
            store::backups::set(txn, b.id, now_ms(), |row| {
                row.status = sea_orm::Set(crate::domain::Status::Failed.as_str().to_owned());
                row.error = sea_orm::Set(error);
            })
            .await?;
        }
        store::backups::release(txn, b.id, &task.id, now_ms()).await?;
    }
    let row = backup::Model {
        id: b.id,
        uuid: b.uuid.clone(),
        server_id: task.server_id,
        owner_id: b.owner_id,
        node_id: b.node_id,
        name: b.name.clone(),
        origin: b.origin.clone(),
        status: String::new(),
        protected: false,
        target: b.target.clone(),
        location: b.location.clone(),
        size_bytes: b.size_bytes,
        sha256: String::new(),
        manifest: String::new(),
        error: String::new(),
        task_id: None,
        created_at: 0,
        completed_at: None,
        updated_at: 0,
    };
    let what = Happened {
        subject: if failed {
            events::BACKUP_FAILED
        } else {
            events::BACKUP_DELETED
        },
        task_id: &task.id,
        operation: if failed { "delete" } else { "" },
        reason: if failed { &task.error } else { "" },
        cause: if failed { "" } else { "owner" },
    };
    events::backup_event(txn, &row, what).await?;
    Ok(())
}
