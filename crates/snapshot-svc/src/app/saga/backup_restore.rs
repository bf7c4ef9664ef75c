//! Restoring a backup into its server: check the archive against its manifest first, then
//! hold the server (it shows `restoring`), stop its guest, put the archive back, start it
//! again if it ran, release it. A failure before the disk is replaced starts the guest
//! again if it ran and puts the server back as it was.

use futures_util::StreamExt as _;
use platform::grpc::Caller;
use platform::saga::{Run, Saga};
use proto::node::v1 as nodepb;
use proto::server::v1 as serverpb;
use sea_orm::DatabaseTransaction;
use serde::{Deserialize, Serialize};

use super::{BACKUP_RESTORE, Held};
use crate::app::events::{self, Happened};
use crate::app::{App, now_ms};
use crate::error::{Result, SnapshotError};
use crate::store;
use crate::store::entity::task;

#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumIter, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Step {
    Verify,
    Hold,
    Stop,
    Restore,
    Start,
    Settle,
    Release,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Params {
    pub backup_id: i64,
    pub target: String,
    pub location: String,
    pub size: u64,
    pub sha256: String,
    #[serde(default)]
    pub held: Held,
}

pub struct RestoreBackup;

impl Saga<App> for RestoreBackup {
    const KIND: &'static str = BACKUP_RESTORE;
    type Step = Step;
    type Params = Params;

    async fn run(app: &App, run: &mut Run<Params>, step: Step) -> Result<()> {
        let held = run.params.held.clone();
        let p = &run.params;
        match step {
            Step::Verify if p.target == "hypervisor" => Ok(()),
            Step::Verify => app.target.verify(&p.location, p.size, &p.sha256).await,
            Step::Hold => {
                run.params.held = app
                    .hold(run.subject, &run.id, serverpb::TaskKind::BackupRestore)
                    .await?;
                Ok(())
            }
            Step::Stop if held.was_running() => app.stop_guest(&held).await,
            Step::Stop => Ok(()),
            Step::Restore => restore(app, p, &held).await,
            Step::Start if held.was_running() => app.start_guest(&held).await,
            Step::Start => Ok(()),
            // The backup is free again before the task is seen to end.
            Step::Settle => {
                Ok(store::backups::release(app.db(), p.backup_id, &run.id, now_ms()).await?)
            }
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
            Step::Settle => {
                Ok(
                    store::backups::reclaim(app.db(), run.params.backup_id, &run.id, now_ms())
                        .await?,
                )
            }
            _ => Ok(()),
        }
    }
}

/// Streams the archive to node-svc. A read that fails part-way cancels the call rather
/// than ending the stream, so node-svc never takes a partial archive for a whole one.
pub(in crate::app) async fn restore(app: &App, p: &Params, held: &Held) -> Result<()> {
    let first = nodepb::RestoreChunk {
        guest: Some(held.guest_ref()),
        volume: if p.target == "hypervisor" {
            p.location.clone()
        } else {
            String::new()
        },
        data: bytes::Bytes::new(),
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<nodepb::RestoreChunk>(4);
    tx.send(first)
        .await
        .map_err(|e| SnapshotError::Internal(anyhow::anyhow!("{e}")))?;
    let read = if p.target == "hypervisor" {
        None
    } else {
        Some(app.target.read(&p.location).await?)
    };
    // Sends the archive; on a failed read it hands the sender back with the error, so the
    // stream stays open until the call is cancelled.
    let mut reader = tokio::spawn(async move {
        if let Some(mut read) = read {
            while let Some(item) = read.next().await {
                match item {
                    Ok(data) => {
                        let chunk = nodepb::RestoreChunk {
                            guest: None,
                            volume: String::new(),
                            data,
                        };
                        if tx.send(chunk).await.is_err() {
                            return Ok(());
                        }
                    }
                    Err(error) => return Err((error, tx)),
                }
            }
        }
        Ok(())
    });
    let mut guests = app.guests.clone();
    let outgoing = tokio_stream::wrappers::ReceiverStream::new(rx);
    let mut call =
        tokio::spawn(async move { guests.restore_guest(Caller::SYSTEM.request(outgoing)).await });
    loop {
        tokio::select! {
            done = &mut call => {
                reader.abort();
                done.map_err(|e| SnapshotError::Internal(e.into()))??;
                return Ok(());
            }
            read = &mut reader, if !reader.is_finished() => {
                match read {
                    Ok(Ok(())) => {}
                    Ok(Err((error, open))) => {
                        // Cancelled with the stream still open: never a clean end.
                        call.abort();
                        let _ = (&mut call).await;
                        drop(open);
                        return Err(error);
                    }
                    Err(e) => {
                        call.abort();
                        return Err(SnapshotError::Internal(e.into()));
                    }
                }
            }
        }
    }
}

pub(super) async fn finish(
    txn: &DatabaseTransaction,
    task: &task::Model,
    failed: bool,
) -> Result<()> {
    let params: Params = super::from_json(task)?;
    store::backups::release(txn, params.backup_id, &task.id, now_ms()).await?;
    if let Some(row) = store::backups::find(txn, params.backup_id).await? {
        let what = Happened {
            subject: if failed {
                events::BACKUP_FAILED
            } else {
                events::BACKUP_RESTORED
            },
            task_id: &task.id,
            operation: if failed { "restore" } else { "" },
            reason: if failed { &task.error } else { "" },
            cause: "",
        };
        events::backup_event(txn, &row, what).await?;
    }
    Ok(())
}
