//! What the dialects share about snapshots and backups: their statuses by name.

use proto::snapshot::v1 as pb;

pub fn snapshot_status(status: pb::SnapshotStatus) -> &'static str {
    match status {
        pb::SnapshotStatus::InProgress => "in_progress",
        pb::SnapshotStatus::Completed => "completed",
        pb::SnapshotStatus::Failed => "failed",
        pb::SnapshotStatus::Unspecified => "unknown",
    }
}

pub fn backup_status(status: pb::BackupStatus) -> &'static str {
    match status {
        pb::BackupStatus::InProgress => "in_progress",
        pb::BackupStatus::Completed => "completed",
        pb::BackupStatus::Failed => "failed",
        pb::BackupStatus::Unspecified => "unknown",
    }
}
