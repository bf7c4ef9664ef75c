//! Snapshots: taken, listed, rolled back to and deleted, each by the caller's own servers
//! only, at most the limit per server however many requests race.

use std::sync::Arc;

use platform::grpc::Caller;
use sea_orm::Set;

use super::saga::{
    REPLY_BEFORE_STOP, REPLY_BEFORE_TAKE, SNAPSHOT, SNAPSHOT_DELETE, SNAPSHOT_RESTORE,
    SnapshotDeleteParams, SnapshotParams, SnapshotRestoreParams, to_json,
};
use super::{App, new_task_id, now_ms};
use crate::domain::{Status, check_description, check_name};
use crate::error::{Result, SnapshotError};
use crate::store;
use crate::store::entity::snapshot;

/// How a caller names a snapshot: by id, or by its server and name (the panel's way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotKey {
    Id(i64),
    Named { server_id: i64, name: String },
}

/// A snapshot with its server's name.
#[derive(Debug, Clone)]
pub struct SnapshotView {
    pub row: snapshot::Model,
    pub server_name: String,
}

/// A snapshot and the task at work on it.
#[derive(Debug, Clone)]
pub struct SnapshotWork {
    pub view: SnapshotView,
    pub task_id: String,
    /// The server's status once the task began.
    pub server_status: String,
}

impl App {
    pub async fn create_snapshot(
        self: &Arc<Self>,
        caller: Caller,
        server_id: i64,
        name: &str,
        description: &str,
    ) -> Result<SnapshotWork> {
        let name = check_name("name", name)?;
        let description = check_description(description)?;
        let server = self.server_of(caller, server_id).await?;
        let limit = server
            .plan
            .as_ref()
            .map(|p| p.snapshot_limit)
            .filter(|l| *l > 0)
            .unwrap_or(self.config.snapshot_limit);
        let task_id = new_task_id();
        let uuid = uuid::Uuid::now_v7();
        let at = now_ms();
        let txn = platform::db::begin_write(&self.db).await?;
        store::lock_server(&txn, server.id, at).await?;
        if store::snapshots::counted(&txn, server.id).await? >= u64::from(limit) {
            return Err(SnapshotError::LimitReached {
                limit,
                what: "snapshots",
            });
        }
        if let Some(same) = store::snapshots::by_name(&txn, server.id, &name).await? {
            if same.status == Status::Failed.as_str() && same.task_id.is_none() {
                // A failed attempt leaves nothing on the hypervisor: its name is free again.
                store::snapshots::delete(&txn, same.id).await?;
            } else {
                return Err(SnapshotError::Conflict(format!(
                    "this server already has a snapshot named {name}"
                )));
            }
        }
        let hv_name = format!("vps-{}", &uuid.simple().to_string()[20..]);
        let row = store::snapshots::insert(
            &txn,
            snapshot::ActiveModel {
                uuid: Set(uuid.to_string()),
                server_id: Set(server.id),
                owner_id: Set(server.owner_id),
                name: Set(name.clone()),
                description: Set(description.clone()),
                status: Set(Status::InProgress.as_str().to_owned()),
                size_mb: Set(None),
                hv_name: Set(hv_name.clone()),
                task_id: Set(Some(task_id.clone())),
                created_at: Set(at),
                updated_at: Set(at),
                ..Default::default()
            },
        )
        .await?;
        let params = to_json(&SnapshotParams {
            snapshot_id: row.id,
            hv_name,
            description,
            ..SnapshotParams::default()
        })?;
        store::tasks::insert(
            &txn,
            &task_id,
            server.id,
            server.owner_id,
            SNAPSHOT,
            params,
            at,
        )
        .await?;
        txn.commit().await?;
        if let Some(refused) = self.start_task(&task_id, Some(REPLY_BEFORE_TAKE)).await? {
            store::snapshots::delete(&self.db, row.id).await?;
            return Err(refused);
        }
        let row = self.snapshot_row(row.id).await?;
        Ok(SnapshotWork {
            view: SnapshotView {
                row,
                server_name: server.name,
            },
            task_id,
            server_status: "running".to_owned(),
        }
        .with_server_status(self, server.id)
        .await)
    }

    /// The caller's snapshots: of one server (which must be theirs), or of all of theirs.
    pub async fn list_snapshots(
        &self,
        caller: Caller,
        server_id: Option<i64>,
    ) -> Result<Vec<SnapshotView>> {
        if let Some(id) = server_id {
            self.server_of(caller, id).await?;
        }
        let rows = store::snapshots::list(&self.db, Self::visible_to(caller), server_id).await?;
        let names = self
            .server_names(rows.iter().map(|r| r.server_id).collect())
            .await;
        Ok(rows
            .into_iter()
            .map(|row| SnapshotView {
                server_name: names.get(&row.server_id).cloned().unwrap_or_default(),
                row,
            })
            .collect())
    }

    pub async fn snapshot(&self, caller: Caller, key: &SnapshotKey) -> Result<SnapshotView> {
        let row = self.visible_snapshot(caller, key).await?;
        let names = self.server_names(vec![row.server_id]).await;
        Ok(SnapshotView {
            server_name: names.get(&row.server_id).cloned().unwrap_or_default(),
            row,
        })
    }

    pub async fn restore_snapshot(
        self: &Arc<Self>,
        caller: Caller,
        key: &SnapshotKey,
    ) -> Result<SnapshotWork> {
        let row = self.visible_snapshot(caller, key).await?;
        let server = self.server_of(caller, row.server_id).await?;
        if row.status != Status::Completed.as_str() {
            return Err(SnapshotError::WrongState(format!(
                "the snapshot is {}; only a completed snapshot can be restored",
                row.status.replace('_', " ")
            )));
        }
        let task_id = new_task_id();
        let at = now_ms();
        let txn = platform::db::begin_write(&self.db).await?;
        if !store::snapshots::claim(&txn, row.id, &task_id, &[Status::Completed], at).await? {
            return Err(SnapshotError::WrongState(
                "another task is at work on this snapshot".to_owned(),
            ));
        }
        let params = to_json(&SnapshotRestoreParams {
            snapshot_id: row.id,
            hv_name: row.hv_name.clone(),
            ..SnapshotRestoreParams::default()
        })?;
        store::tasks::insert(
            &txn,
            &task_id,
            row.server_id,
            row.owner_id,
            SNAPSHOT_RESTORE,
            params,
            at,
        )
        .await?;
        txn.commit().await?;
        if let Some(refused) = self.start_task(&task_id, Some(REPLY_BEFORE_STOP)).await? {
            store::snapshots::settle(
                &self.db,
                row.id,
                &task_id,
                Status::Completed,
                None,
                now_ms(),
            )
            .await?;
            return Err(refused);
        }
        Ok(SnapshotWork {
            view: SnapshotView {
                row: self.snapshot_row(row.id).await?,
                server_name: server.name,
            },
            task_id,
            server_status: "restoring".to_owned(),
        }
        .with_server_status(self, row.server_id)
        .await)
    }

    pub async fn delete_snapshot(
        self: &Arc<Self>,
        caller: Caller,
        key: &SnapshotKey,
    ) -> Result<SnapshotWork> {
        let row = self.visible_snapshot(caller, key).await?;
        let server = self.server_of(caller, row.server_id).await.ok();
        let task_id = new_task_id();
        let at = now_ms();
        let txn = platform::db::begin_write(&self.db).await?;
        if !store::snapshots::claim(
            &txn,
            row.id,
            &task_id,
            &[Status::Completed, Status::Failed],
            at,
        )
        .await?
        {
            return Err(SnapshotError::WrongState(
                "another task is at work on this snapshot".to_owned(),
            ));
        }
        let params = to_json(&SnapshotDeleteParams {
            snapshot_id: row.id,
            hv_name: row.hv_name.clone(),
            node_id: server.as_ref().map_or(0, |s| s.node_id),
            guest: server
                .as_ref()
                .map(|s| s.guest_name.clone())
                .unwrap_or_default(),
            name: row.name.clone(),
            uuid: row.uuid.clone(),
            owner_id: row.owner_id,
            on_hypervisor: row.status == Status::Completed.as_str(),
            removed: false,
        })?;
        store::tasks::insert(
            &txn,
            &task_id,
            row.server_id,
            row.owner_id,
            SNAPSHOT_DELETE,
            params,
            at,
        )
        .await?;
        txn.commit().await?;
        self.start_task(&task_id, None).await?;
        let server_status = server
            .as_ref()
            .map(|s| super::saga::status_name(s.status()))
            .unwrap_or_default();
        Ok(SnapshotWork {
            view: SnapshotView {
                row,
                server_name: server.map(|s| s.name).unwrap_or_default(),
            },
            task_id,
            server_status,
        })
    }

    async fn snapshot_row(&self, id: i64) -> Result<snapshot::Model> {
        store::snapshots::find(&self.db, id)
            .await?
            .ok_or(SnapshotError::NotFound("snapshot"))
    }

    /// A snapshot the caller may see; anyone else's is "not found".
    async fn visible_snapshot(&self, caller: Caller, key: &SnapshotKey) -> Result<snapshot::Model> {
        let row = match key {
            SnapshotKey::Id(id) => store::snapshots::find(&self.db, *id).await?,
            SnapshotKey::Named { server_id, name } => {
                store::snapshots::by_name(&self.db, *server_id, name).await?
            }
        };
        row.filter(|r| caller.admin || r.owner_id == caller.user_id)
            .ok_or(SnapshotError::NotFound("snapshot"))
    }
}

impl SnapshotWork {
    /// The server's status as server-svc shows it now (the hold may have changed it).
    async fn with_server_status(mut self, app: &App, server_id: i64) -> Self {
        if let Ok(server) = app.server_of(Caller::SYSTEM, server_id).await {
            self.server_status = super::saga::status_name(server.status());
            self.view.server_name = server.name;
        }
        self
    }
}
