//! The events snapshot-svc emits (`vps.events.snapshot.*`, `vps.events.backup.*`), written
//! to the outbox in the transaction that makes the change.

use proto::events::v1::{self as ev, subject};
use sea_orm::{ConnectionTrait, DbErr};

use crate::store::entity::{backup, snapshot};

/// What happened, and for `failed` to which operation and why.
#[derive(Debug, Clone, Copy)]
pub struct Happened<'a> {
    pub subject: &'static str,
    pub task_id: &'a str,
    pub operation: &'a str,
    pub reason: &'a str,
    /// Backups: why it was deleted (owner, rotation, retention, server).
    pub cause: &'a str,
}

fn kind(subject: &str) -> String {
    subject.rsplit('.').next().unwrap_or(subject).to_owned()
}

pub async fn snapshot_event<C: ConnectionTrait>(
    db: &C,
    row: &snapshot::Model,
    what: Happened<'_>,
) -> Result<(), DbErr> {
    let id = uuid::Uuid::now_v7();
    let event = ev::SnapshotEvent {
        id: id.to_string(),
        version: ev::VERSION,
        r#type: kind(what.subject),
        at: chrono::Utc::now().to_rfc3339(),
        snapshot_id: row.id,
        snapshot_uuid: row.uuid.clone(),
        server_id: row.server_id,
        owner_id: row.owner_id,
        name: row.name.clone(),
        task_id: what.task_id.to_owned(),
        operation: what.operation.to_owned(),
        reason: what.reason.to_owned(),
    };
    platform::outbox::enqueue(db, what.subject, id, &event).await
}

pub async fn backup_event<C: ConnectionTrait>(
    db: &C,
    row: &backup::Model,
    what: Happened<'_>,
) -> Result<(), DbErr> {
    let id = uuid::Uuid::now_v7();
    let event = ev::BackupEvent {
        id: id.to_string(),
        version: ev::VERSION,
        r#type: kind(what.subject),
        at: chrono::Utc::now().to_rfc3339(),
        backup_id: row.id,
        backup_uuid: row.uuid.clone(),
        server_id: row.server_id,
        owner_id: row.owner_id,
        name: row.name.clone(),
        origin: row.origin.clone(),
        size_bytes: u64::try_from(row.size_bytes).unwrap_or(0),
        task_id: what.task_id.to_owned(),
        operation: what.operation.to_owned(),
        reason: what.reason.to_owned(),
        cause: what.cause.to_owned(),
    };
    platform::outbox::enqueue(db, what.subject, id, &event).await
}

pub use subject::{
    BACKUP_CREATED, BACKUP_DELETED, BACKUP_FAILED, BACKUP_RESTORED, SNAPSHOT_CREATED,
    SNAPSHOT_DELETED, SNAPSHOT_FAILED, SNAPSHOT_RESTORED,
};
