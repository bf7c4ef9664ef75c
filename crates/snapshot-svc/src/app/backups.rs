//! Backups: taken by hand or by schedule, one at a time per server; restored into their
//! server only when the caller says its data may be overwritten; rotated (the oldest
//! unprotected one goes) instead of refused at the limit; pruned by their schedule's
//! retention. Protected backups are never rotated or pruned and count for nothing.

use std::sync::Arc;

use chrono_tz::Tz;
use platform::grpc::Caller;
use proto::node::v1 as nodepb;
use sea_orm::Set;

use super::events::{self, Happened};
use super::saga::backup_delete::StoredBackup;
use super::saga::{
    BACKUP, BACKUP_DELETE, BACKUP_RESTORE, BackupDeleteParams, BackupParams, BackupRestoreParams,
    REPLY_BEFORE_ARCHIVE, REPLY_BEFORE_STOP, to_json,
};
use super::{App, new_task_id, now_ms};
use crate::domain::retention::{self, Candidate, Keep};
use crate::domain::schedule::Timing;
use crate::domain::{Status, check_name};
use crate::error::{Result, SnapshotError};
use crate::store;
use crate::store::entity::backup;
use crate::target::Target;

/// Who asked for a backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Manual,
    Scheduled,
}

impl Origin {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::Scheduled => "scheduled",
        }
    }
}

#[derive(Debug, Clone)]
pub struct BackupView {
    pub row: backup::Model,
    pub server_name: String,
}

#[derive(Debug, Clone)]
pub struct BackupWork {
    pub view: BackupView,
    pub task_id: String,
    pub server_status: String,
}

impl App {
    pub async fn create_backup(
        self: &Arc<Self>,
        caller: Caller,
        server_id: i64,
        name: &str,
        protected: bool,
        origin: Origin,
    ) -> Result<BackupWork> {
        let server = self.server_of(caller, server_id).await?;
        let at = now_ms();
        let name = if name.trim().is_empty() {
            format!("backup-{}", chrono::Utc::now().format("%Y%m%d-%H%M%S"))
        } else {
            check_name("name", name)?
        };
        let task_id = new_task_id();
        let uuid = uuid::Uuid::now_v7().to_string();
        let txn = platform::db::begin_write(&self.db).await?;
        store::lock_server(&txn, server.id, at).await?;
        if store::backups::in_progress(&txn, server.id).await? > 0 {
            return Err(SnapshotError::WrongState(
                "a backup of this server is under way".to_owned(),
            ));
        }
        let row = store::backups::insert(
            &txn,
            backup::ActiveModel {
                uuid: Set(uuid.clone()),
                server_id: Set(server.id),
                owner_id: Set(server.owner_id),
                node_id: Set(server.node_id),
                name: Set(name),
                origin: Set(origin.as_str().to_owned()),
                status: Set(Status::InProgress.as_str().to_owned()),
                protected: Set(protected),
                target: Set(self.target.kind().to_owned()),
                location: Set(String::new()),
                size_bytes: Set(0),
                sha256: Set(String::new()),
                manifest: Set(String::new()),
                error: Set(String::new()),
                task_id: Set(Some(task_id.clone())),
                created_at: Set(at),
                completed_at: Set(None),
                updated_at: Set(at),
                ..Default::default()
            },
        )
        .await?;
        let params = to_json(&BackupParams {
            backup_id: row.id,
            uuid,
            ..BackupParams::default()
        })?;
        store::tasks::insert(
            &txn,
            &task_id,
            server.id,
            server.owner_id,
            BACKUP,
            params,
            at,
        )
        .await?;
        txn.commit().await?;
        if let Some(refused) = self
            .start_task(&task_id, Some(REPLY_BEFORE_ARCHIVE))
            .await?
        {
            store::backups::delete(&self.db, row.id).await?;
            return Err(refused);
        }
        let server_status = self.server_status(server.id).await;
        Ok(BackupWork {
            view: BackupView {
                row: self.backup_row(row.id).await?,
                server_name: server.name,
            },
            task_id,
            server_status,
        })
    }

    pub async fn list_backups(
        &self,
        caller: Caller,
        server_id: Option<i64>,
    ) -> Result<Vec<BackupView>> {
        if let Some(id) = server_id {
            self.server_of(caller, id).await?;
        }
        let rows = store::backups::list(&self.db, Self::visible_to(caller), server_id).await?;
        let names = self
            .server_names(rows.iter().map(|r| r.server_id).collect())
            .await;
        Ok(rows
            .into_iter()
            .map(|row| BackupView {
                server_name: names.get(&row.server_id).cloned().unwrap_or_default(),
                row,
            })
            .collect())
    }

    pub async fn backup(&self, caller: Caller, id: i64) -> Result<BackupView> {
        let row = self.visible_backup(caller, id).await?;
        let names = self.server_names(vec![row.server_id]).await;
        Ok(BackupView {
            server_name: names.get(&row.server_id).cloned().unwrap_or_default(),
            row,
        })
    }

    pub async fn restore_backup(
        self: &Arc<Self>,
        caller: Caller,
        id: i64,
        overwrite: bool,
    ) -> Result<BackupWork> {
        let row = self.visible_backup(caller, id).await?;
        let server = self.server_of(caller, row.server_id).await?;
        if !overwrite {
            return Err(SnapshotError::invalid(
                "overwrite",
                "a restore overwrites the server's data: set overwrite to true to go ahead",
            ));
        }
        if row.status != Status::Completed.as_str() {
            return Err(SnapshotError::WrongState(format!(
                "the backup is {}; only a completed backup can be restored",
                row.status.replace('_', " ")
            )));
        }
        let task_id = new_task_id();
        let at = now_ms();
        let txn = platform::db::begin_write(&self.db).await?;
        if !store::backups::claim(&txn, row.id, &task_id, &[Status::Completed], at).await? {
            return Err(SnapshotError::WrongState(
                "another task is at work on this backup".to_owned(),
            ));
        }
        let params = to_json(&BackupRestoreParams {
            backup_id: row.id,
            target: row.target.clone(),
            location: row.location.clone(),
            size: u64::try_from(row.size_bytes).unwrap_or(0),
            sha256: row.sha256.clone(),
            ..BackupRestoreParams::default()
        })?;
        store::tasks::insert(
            &txn,
            &task_id,
            row.server_id,
            row.owner_id,
            BACKUP_RESTORE,
            params,
            at,
        )
        .await?;
        txn.commit().await?;
        if let Some(refused) = self.start_task(&task_id, Some(REPLY_BEFORE_STOP)).await? {
            store::backups::release(&self.db, row.id, &task_id, now_ms()).await?;
            if let SnapshotError::Corrupt(why) = &refused {
                tracing::warn!(backup = row.id, server = row.server_id, %why, "refused a corrupt archive");
            }
            return Err(refused);
        }
        let server_status = self.server_status(row.server_id).await;
        Ok(BackupWork {
            view: BackupView {
                row: self.backup_row(row.id).await?,
                server_name: server.name,
            },
            task_id,
            server_status,
        })
    }

    pub async fn delete_backup(self: &Arc<Self>, caller: Caller, id: i64) -> Result<BackupWork> {
        let row = self.visible_backup(caller, id).await?;
        let task_id = self.begin_backup_delete(&row).await?;
        let names = self.server_names(vec![row.server_id]).await;
        let server_status = self.server_status(row.server_id).await;
        Ok(BackupWork {
            view: BackupView {
                server_name: names.get(&row.server_id).cloned().unwrap_or_default(),
                row,
            },
            task_id,
            server_status,
        })
    }

    pub async fn protect_backup(
        &self,
        caller: Caller,
        id: i64,
        protected: bool,
    ) -> Result<BackupView> {
        let row = self.visible_backup(caller, id).await?;
        store::backups::set(&self.db, row.id, now_ms(), |b| b.protected = Set(protected)).await?;
        self.backup(caller, id).await
    }

    /// For a new server that starts from a backup of its owner's: checks the backup is
    /// theirs and complete (`check_only`), or checks its archive and puts it into the new,
    /// stopped guest.
    pub async fn restore_into_guest(
        &self,
        backup_id: i64,
        owner_id: i64,
        node_id: i64,
        guest: &str,
        check_only: bool,
    ) -> Result<()> {
        let row = store::backups::find(&self.db, backup_id)
            .await?
            .filter(|b| b.owner_id == owner_id)
            .ok_or(SnapshotError::NotFound("backup"))?;
        if row.status != Status::Completed.as_str() {
            return Err(SnapshotError::WrongState(format!(
                "the backup is {}; only a completed backup can be restored",
                row.status.replace('_', " ")
            )));
        }
        if check_only {
            return Ok(());
        }
        if node_id <= 0 || guest.is_empty() {
            return Err(SnapshotError::invalid(
                "guest",
                "a node and a guest are required",
            ));
        }
        if row.target == "hypervisor" && row.node_id != node_id {
            return Err(SnapshotError::WrongState(
                "this backup is kept on its own node's storage and restores only there".to_owned(),
            ));
        }
        let params = BackupRestoreParams {
            backup_id: row.id,
            target: row.target.clone(),
            location: row.location.clone(),
            size: u64::try_from(row.size_bytes).unwrap_or(0),
            sha256: row.sha256.clone(),
            ..BackupRestoreParams::default()
        };
        if row.target != "hypervisor" {
            self.target
                .verify(&params.location, params.size, &params.sha256)
                .await?;
        }
        let held = super::saga::Held {
            node_id,
            guest: guest.to_owned(),
            prior_status: "stopped".to_owned(),
        };
        super::saga::backup_restore::restore(self, &params, &held).await?;
        let what = Happened {
            subject: events::BACKUP_RESTORED,
            task_id: "",
            operation: "",
            reason: "",
            cause: "new_server",
        };
        events::backup_event(&self.db, &row, what).await?;
        tracing::info!(
            backup = row.id,
            node = node_id,
            guest,
            "backup restored into a new server"
        );
        Ok(())
    }

    /// Starts the deletion saga of a backup no other task is at work on.
    async fn begin_backup_delete(self: &Arc<Self>, row: &backup::Model) -> Result<String> {
        let task_id = new_task_id();
        let at = now_ms();
        let txn = platform::db::begin_write(&self.db).await?;
        if !store::backups::claim(
            &txn,
            row.id,
            &task_id,
            &[Status::Completed, Status::Failed],
            at,
        )
        .await?
        {
            return Err(SnapshotError::WrongState(
                "another task is at work on this backup".to_owned(),
            ));
        }
        let params = to_json(&BackupDeleteParams {
            backup: StoredBackup::from(row),
            removed: false,
        })?;
        store::tasks::insert(
            &txn,
            &task_id,
            row.server_id,
            row.owner_id,
            BACKUP_DELETE,
            params,
            at,
        )
        .await?;
        txn.commit().await?;
        self.start_task(&task_id, None).await?;
        Ok(task_id)
    }

    /// Deletes what a backup keeps: its archive and manifest, or the hypervisor's volume.
    pub(super) async fn remove_archive(&self, server_id: i64, b: &StoredBackup) -> Result<()> {
        if b.target == "hypervisor" {
            if !b.location.is_empty() {
                self.delete_volume(b.node_id, &b.location).await?;
            }
            return Ok(());
        }
        let (key, manifest) = Target::keys(server_id, &b.uuid);
        self.target.delete(&key).await?;
        self.target.delete(&manifest).await
    }

    pub(super) async fn delete_volume(&self, node_id: i64, volume: &str) -> Result<()> {
        let deleted = self
            .guests
            .clone()
            .delete_backup_volume(Caller::SYSTEM.request(nodepb::BackupVolumeRef {
                node_id,
                volume: volume.to_owned(),
            }))
            .await;
        match deleted {
            Ok(_) => Ok(()),
            Err(status) if status.code() == tonic::Code::NotFound => Ok(()),
            Err(status) => Err(status.into()),
        }
    }

    /// After a backup completes: failed attempts are cleaned up, the oldest unprotected
    /// backups beyond the limit go, and the schedule's retention prunes. Best effort: a
    /// backup that cannot go now goes next time.
    pub(super) async fn rotate(&self, server_id: i64) {
        if let Err(error) = self.rotate_once(server_id).await {
            tracing::warn!(server = server_id, error = %platform::grpc::chain(&error), "rotating backups failed; next time");
        }
    }

    async fn rotate_once(&self, server_id: i64) -> Result<()> {
        let rows = store::backups::list(&self.db, None, Some(server_id)).await?;
        fn idle(b: &&&backup::Model) -> bool {
            b.task_id.is_none()
        }
        let mut doomed: Vec<(backup::Model, &'static str)> = rows
            .iter()
            .filter(|b| b.task_id.is_none())
            .filter(|b| b.status == Status::Failed.as_str())
            .map(|b| (b.clone(), "failed"))
            .collect();
        let mut kept: Vec<&backup::Model> = rows
            .iter()
            .filter(|b| b.status == Status::Completed.as_str() && !b.protected)
            .collect();
        kept.sort_by_key(|b| (b.created_at, b.id));
        if let Some(schedule) = store::schedules::find(&self.db, server_id).await? {
            let zone = Timing::parse(
                &schedule.frequency,
                &schedule.weekday,
                &schedule.time,
                &schedule.time_zone,
            )
            .map(|t| t.zone)
            .unwrap_or(Tz::UTC);
            let keep = Keep {
                last: u32::try_from(schedule.keep_last).unwrap_or(0),
                daily: u32::try_from(schedule.keep_daily).unwrap_or(0),
                weekly: u32::try_from(schedule.keep_weekly).unwrap_or(0),
                monthly: u32::try_from(schedule.keep_monthly).unwrap_or(0),
            };
            let candidates: Vec<Candidate> = kept
                .iter()
                .map(|b| Candidate {
                    id: b.id,
                    at: chrono::DateTime::from_timestamp_millis(b.created_at).unwrap_or_default(),
                    protected: b.protected,
                })
                .collect();
            let pruned = retention::prune(&candidates, keep, zone);
            for b in kept.iter().filter(|b| pruned.contains(&b.id)).filter(idle) {
                doomed.push(((*b).clone(), "retention"));
            }
            kept.retain(|b| !pruned.contains(&b.id));
        }
        let limit = self
            .server_of(Caller::SYSTEM, server_id)
            .await
            .ok()
            .and_then(|s| s.plan)
            .map(|p| p.backup_limit)
            .filter(|l| *l > 0)
            .unwrap_or(self.config.backup_limit) as usize;
        if kept.len() > limit {
            let extra = kept.len() - limit;
            for b in kept.iter().take(extra).filter(idle) {
                doomed.push(((*b).clone(), "rotation"));
            }
        }
        for (b, cause) in doomed {
            self.remove_now(&b, cause).await?;
        }
        Ok(())
    }

    /// Deletes a backup at once (rotation, retention, a deleted server): its archive, then
    /// its record and the event.
    async fn remove_now(&self, b: &backup::Model, cause: &str) -> Result<()> {
        let txn = platform::db::begin_write(&self.db).await?;
        // Claimed first, so a restore that begins meanwhile cannot take it.
        if !store::backups::claim(
            &txn,
            b.id,
            "removing",
            &[Status::Completed, Status::Failed],
            now_ms(),
        )
        .await?
        {
            return Ok(());
        }
        txn.commit().await?;
        if let Err(e) = self
            .remove_archive(b.server_id, &StoredBackup::from(b))
            .await
        {
            store::backups::release(&self.db, b.id, "removing", now_ms()).await?;
            return Err(e);
        }
        let txn = platform::db::begin_write(&self.db).await?;
        store::backups::delete(&txn, b.id).await?;
        if b.status == Status::Completed.as_str() {
            let what = Happened {
                subject: events::BACKUP_DELETED,
                task_id: "",
                operation: "",
                reason: "",
                cause,
            };
            events::backup_event(&txn, b, what).await?;
        }
        txn.commit().await?;
        tracing::info!(backup = b.id, server = b.server_id, cause, "backup deleted");
        Ok(())
    }

    /// The server is gone: its snapshots go (the hypervisor deleted them with the guest),
    /// its backups too unless protected, and its schedule.
    pub async fn forget_server(&self, server_id: i64) -> Result<(u32, u32)> {
        let snapshots = store::snapshots::of_server(&self.db, server_id).await?;
        let txn = platform::db::begin_write(&self.db).await?;
        for s in &snapshots {
            let what = Happened {
                subject: events::SNAPSHOT_DELETED,
                task_id: "",
                operation: "",
                reason: "",
                cause: "server",
            };
            events::snapshot_event(&txn, s, what).await?;
        }
        store::snapshots::delete_of_server(&txn, server_id).await?;
        store::schedules::delete(&txn, server_id).await?;
        store::forget_server(&txn, server_id).await?;
        txn.commit().await?;
        let mut backups = 0;
        for b in store::backups::list(&self.db, None, Some(server_id)).await? {
            if b.protected && b.status == Status::Completed.as_str() {
                continue;
            }
            if b.task_id.is_none() {
                self.remove_now(&b, "server").await?;
                backups += 1;
            }
        }
        Ok((u32::try_from(snapshots.len()).unwrap_or(u32::MAX), backups))
    }

    async fn backup_row(&self, id: i64) -> Result<backup::Model> {
        store::backups::find(&self.db, id)
            .await?
            .ok_or(SnapshotError::NotFound("backup"))
    }

    async fn visible_backup(&self, caller: Caller, id: i64) -> Result<backup::Model> {
        store::backups::find(&self.db, id)
            .await?
            .filter(|r| caller.admin || r.owner_id == caller.user_id)
            .ok_or(SnapshotError::NotFound("backup"))
    }

    /// The server's status as server-svc shows it now (empty if it is gone).
    async fn server_status(&self, server_id: i64) -> String {
        self.server_of(Caller::SYSTEM, server_id)
            .await
            .map(|s| super::saga::status_name(s.status()))
            .unwrap_or_default()
    }
}
