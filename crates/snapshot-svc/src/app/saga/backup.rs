//! Taking a backup: hold the server, stream its guest's archive to the backup target while
//! hashing it (or have the hypervisor write it to its own storage), write the manifest,
//! release the server. Once it is whole, older backups are rotated and pruned (after the
//! saga, best effort: never before the new backup exists). A failure deletes what was written and
//! leaves the backup `failed` (it counts for nothing and is cleaned up by the next one).

use futures_util::StreamExt as _;
use platform::grpc::Caller;
use platform::saga::{Run, Saga};
use proto::node::v1 as nodepb;
use proto::server::v1 as serverpb;
use sea_orm::{DatabaseTransaction, Set};
use serde::{Deserialize, Serialize};

use super::{BACKUP, Held};
use crate::app::events::{self, Happened};
use crate::app::{App, now_ms};
use crate::domain::Status;
use crate::error::{Result, SnapshotError};
use crate::store;
use crate::store::entity::task;
use crate::target::Target;

#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumIter, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Step {
    Hold,
    Archive,
    Manifest,
    Settle,
    Release,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Params {
    pub backup_id: i64,
    pub uuid: String,
    #[serde(default)]
    pub held: Held,
    /// Where it went: `directory`/`s3` and the key, or `hypervisor` and the volume.
    #[serde(default)]
    pub target: String,
    #[serde(default)]
    pub location: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub sha256: String,
    #[serde(default)]
    pub manifest: String,
}

/// What is written beside an archive, and kept with its record.
#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub backup_uuid: String,
    pub server_id: i64,
    pub created_at: String,
    pub format: String,
    pub archive: String,
    pub size_bytes: u64,
    pub sha256: String,
    /// The guest's id mapping when it was archived (LXC's lxc.idmap lines).
    pub id_map: Vec<String>,
    pub was_running: bool,
    /// The guest's own config (LXC), for a restore by hand.
    pub guest_config: String,
}

pub struct TakeBackup;

impl Saga<App> for TakeBackup {
    const KIND: &'static str = BACKUP;
    type Step = Step;
    type Params = Params;

    async fn run(app: &App, run: &mut Run<Params>, step: Step) -> Result<()> {
        match step {
            Step::Hold => {
                run.params.held = app
                    .hold(run.subject, &run.id, serverpb::TaskKind::Backup)
                    .await?;
                Ok(())
            }
            Step::Archive => archive(app, run).await,
            Step::Manifest => {
                let p = &run.params;
                if p.target != "hypervisor" {
                    let (_, manifest_key) = Target::keys(run.subject, &p.uuid);
                    app.target
                        .put_small(&manifest_key, p.manifest.clone().into_bytes())
                        .await?;
                }
                let (target, location, size, sha, manifest) = (
                    p.target.clone(),
                    p.location.clone(),
                    i64::try_from(p.size).unwrap_or(i64::MAX),
                    p.sha256.clone(),
                    p.manifest.clone(),
                );
                let at = now_ms();
                store::backups::set(app.db(), p.backup_id, at, |b| {
                    b.target = Set(target);
                    b.location = Set(location);
                    b.size_bytes = Set(size);
                    b.sha256 = Set(sha);
                    b.manifest = Set(manifest);
                })
                .await?;
                Ok(())
            }
            // Complete (and counted) before the task is seen to end.
            Step::Settle => {
                let at = now_ms();
                store::backups::set(app.db(), run.params.backup_id, at, |b| {
                    b.status = Set(Status::Completed.as_str().to_owned());
                    b.completed_at = Set(Some(at));
                })
                .await?;
                Ok(store::backups::release(app.db(), run.params.backup_id, &run.id, at).await?)
            }
            Step::Release => app.release(run.subject, &run.id, false, None, "").await,
        }
    }

    async fn undo(app: &App, run: &Run<Params>, step: Step) -> Result<()> {
        let p = &run.params;
        match step {
            Step::Hold => {
                let error = app.task_error(&run.id).await;
                app.release(run.subject, &run.id, true, None, &error).await
            }
            Step::Archive => {
                let (key, _) = Target::keys(run.subject, &p.uuid);
                app.target.delete(&key).await?;
                if p.target == "hypervisor" && !p.location.is_empty() {
                    app.delete_volume(p.held.node_id, &p.location).await?;
                }
                Ok(())
            }
            Step::Manifest => {
                let (_, manifest_key) = Target::keys(run.subject, &p.uuid);
                app.target.delete(&manifest_key).await
            }
            Step::Settle => {
                let at = now_ms();
                store::backups::reclaim(app.db(), p.backup_id, &run.id, at).await?;
                Ok(store::backups::set(app.db(), p.backup_id, at, |b| {
                    b.status = Set(Status::InProgress.as_str().to_owned());
                    b.completed_at = Set(None);
                })
                .await?)
            }
            Step::Release => Ok(()),
        }
    }
}

/// Streams the guest's archive into the target, hashing it; or notes the volume the
/// hypervisor wrote.
async fn archive(app: &App, run: &mut Run<Params>) -> Result<()> {
    let held = run.params.held.clone();
    let (key, _) = Target::keys(run.subject, &run.params.uuid);
    let stream = app
        .guests
        .clone()
        .backup_guest(Caller::SYSTEM.request(nodepb::BackupGuestRequest {
            guest: Some(held.guest_ref()),
        }))
        .await?
        .into_inner();
    let facts = std::sync::Arc::new(std::sync::Mutex::new(None::<nodepb::BackupFacts>));
    let seen = facts.clone();
    let chunks = stream.filter_map(move |message| {
        let seen = seen.clone();
        async move {
            match message {
                Ok(chunk) => {
                    if let Some(f) = chunk.facts
                        && let Ok(mut slot) = seen.lock()
                    {
                        *slot = Some(f);
                    }
                    (!chunk.data.is_empty()).then_some(Ok(chunk.data))
                }
                Err(status) => Some(Err(SnapshotError::from(status))),
            }
        }
    });
    let written = app.target.write(&key, Box::pin(chunks)).await?;
    let facts = facts
        .lock()
        .ok()
        .and_then(|mut f| f.take())
        .ok_or_else(|| {
            SnapshotError::Conflict("the archive ended before it was whole".to_owned())
        })?;
    let p = &mut run.params;
    if facts.volume.is_empty() {
        p.target = app.target.kind().to_owned();
        p.location = key.clone();
        p.size = written.size;
        p.sha256 = written.sha256;
    } else {
        // Kept by the hypervisor: the (empty) object is not the backup.
        app.target.delete(&key).await?;
        p.target = "hypervisor".to_owned();
        p.location = facts.volume.clone();
        p.size = 0;
        p.sha256 = String::new();
    }
    let manifest = Manifest {
        version: 1,
        backup_uuid: p.uuid.clone(),
        server_id: run.subject,
        created_at: chrono::Utc::now().to_rfc3339(),
        format: facts.format,
        archive: p.location.clone(),
        size_bytes: p.size,
        sha256: p.sha256.clone(),
        id_map: facts.id_map,
        was_running: facts.was_running,
        guest_config: facts.guest_config,
    };
    p.manifest =
        serde_json::to_string_pretty(&manifest).map_err(|e| SnapshotError::Internal(e.into()))?;
    tracing::info!(
        server = run.subject,
        backup = p.backup_id,
        bytes = p.size,
        "archive written"
    );
    Ok(())
}

pub(super) async fn finish(
    txn: &DatabaseTransaction,
    task: &task::Model,
    failed: bool,
) -> Result<()> {
    let params: Params = super::from_json(task)?;
    let at = now_ms();
    if failed {
        let error = task.error.clone();
        store::backups::set(txn, params.backup_id, at, |b| {
            b.status = Set(Status::Failed.as_str().to_owned());
            b.error = Set(error);
            b.size_bytes = Set(0);
            b.sha256 = Set(String::new());
        })
        .await?;
    }
    store::backups::release(txn, params.backup_id, &task.id, at).await?;
    if let Some(row) = store::backups::find(txn, params.backup_id).await? {
        let what = Happened {
            subject: if failed {
                events::BACKUP_FAILED
            } else {
                events::BACKUP_CREATED
            },
            task_id: &task.id,
            operation: if failed { "create" } else { "" },
            reason: if failed { &task.error } else { "" },
            cause: "",
        };
        events::backup_event(txn, &row, what).await?;
    }
    Ok(())
}
