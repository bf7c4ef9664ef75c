//! The `Hypervisor` trait and its drivers. Every operation is idempotent where the
//! hypervisor allows it (creating a guest that already exists with our tag succeeds,
//! deleting a missing one succeeds), so sagas can retry.

pub mod lxc;
pub mod proxmox;

use std::time::Duration;

use async_trait::async_trait;

/// What to create.
#[derive(Debug, Clone)]
pub struct GuestSpec {
    /// The guest's name on the hypervisor (e.g. `vps-42`).
    pub name: String,
    /// Driver-specific template: `busybox`, or `download:debian:bookworm:amd64` for LXC.
    pub template: String,
    pub hostname: String,
    pub resources: Resources,
    /// The root password, for drivers that can only set it when the guest is made (Proxmox
    /// containers); the others ignore it here and set it later.
    pub root_password: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    pub cores: Option<u32>,
    pub memory_mb: Option<u64>,
    pub disk_gb: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerState {
    Running,
    Stopped,
    /// The hypervisor answered, but not with a state we know.
    Unknown,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Usage {
    pub name: String,
    pub state: PowerState,
    /// Cumulative CPU time, where the hypervisor counts it (LXC).
    pub cpu_time_ns: u64,
    /// CPU use now as a fraction of the guest's cores, where the hypervisor reports that
    /// instead (Proxmox).
    pub cpu_fraction: Option<f64>,
    pub memory_bytes: u64,
    pub memory_limit_bytes: Option<u64>,
    pub disk_bytes: u64,
    pub net_rx_bytes: u64,
    pub net_tx_bytes: u64,
    /// Bytes read from and written to the guest's disks since it started.
    pub disk_read_bytes: u64,
    pub disk_write_bytes: u64,
    pub uptime_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub name: String,
    pub description: String,
    /// Unix seconds.
    pub created_at: i64,
    /// What it takes on disk, where the driver can tell.
    pub size_bytes: Option<u64>,
}

/// What a driver tells of an archive it made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupFacts {
    /// `tar+zstd`, or `vzdump` for a backup the hypervisor keeps (named by `volume`).
    pub format: String,
    pub volume: Option<String>,
    /// The guest's id mapping (LXC's `lxc.idmap` lines).
    pub id_map: Vec<String>,
    pub was_running: bool,
    /// The guest's own config as the hypervisor keeps it (LXC), for a restore by hand.
    pub config: String,
}

/// The archive's bytes as a driver makes them.
pub type ChunkSink = tokio::sync::mpsc::Sender<bytes::Bytes>;
/// The archive's bytes as a restore receives them; an error means the sender could not send
/// the whole archive, and the restore must not go ahead.
pub type Chunks = tokio::sync::mpsc::Receiver<Result<bytes::Bytes, String>>;

/// What a driver did besides the obvious, for the task's log (e.g. "stopped the container
/// for the snapshot and started it again").
pub type Notes = Vec<String>;

/// The note a driver's `create` returns when it set the root password as it made the guest.
pub const ROOT_PASSWORD_SET: &str = "the root password was set at creation";

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("guest {0} does not exist")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Failed(String),
    #[error("the hypervisor is unreachable")]
    Unreachable(#[source] anyhow::Error),
}

pub type DriverResult<T> = Result<T, DriverError>;

/// An open console: bytes typed go into `input`, what the terminal prints comes out of
/// `output`. Dropping `input` ends the session; `output` ends when the guest side closes.
pub struct Console {
    pub input: tokio::sync::mpsc::Sender<Vec<u8>>,
    pub output: tokio::sync::mpsc::Receiver<Vec<u8>>,
}

#[async_trait]
pub trait Hypervisor: Send + Sync {
    /// Cheap liveness check of the node itself.
    async fn probe(&self) -> DriverResult<()>;
    async fn create(&self, spec: &GuestSpec) -> DriverResult<Notes>;
    async fn state(&self, name: &str) -> DriverResult<PowerState>;
    async fn start(&self, name: &str) -> DriverResult<()>;
    /// Graceful within `grace`, then forced.
    async fn stop(&self, name: &str, grace: Duration) -> DriverResult<()>;
    async fn reboot(&self, name: &str, grace: Duration) -> DriverResult<Notes>;
    async fn delete(&self, name: &str) -> DriverResult<()>;
    async fn set_password(&self, name: &str, user: &str, password: &str) -> DriverResult<()>;
    async fn resize(&self, name: &str, resources: Resources) -> DriverResult<Notes>;
    async fn snapshot_create(
        &self,
        name: &str,
        snapshot: &str,
        description: &str,
    ) -> DriverResult<Notes>;
    async fn snapshot_list(&self, name: &str) -> DriverResult<Vec<SnapshotInfo>>;
    async fn snapshot_rollback(&self, name: &str, snapshot: &str) -> DriverResult<Notes>;
    async fn snapshot_delete(&self, name: &str, snapshot: &str) -> DriverResult<()>;
    /// The whole guest as one archive, its bytes sent into `sink` as they are made (none,
    /// for a backup the hypervisor keeps: the facts name its volume). The guest is frozen or
    /// stopped meanwhile and left as it was.
    async fn backup(&self, name: &str, sink: ChunkSink) -> DriverResult<BackupFacts>;
    /// Puts an archive back into the stopped guest `name`: from `volume` on the hypervisor,
    /// or from the bytes `source` yields until it closes. The guest's disk is replaced only
    /// once the whole archive has unpacked.
    async fn restore(
        &self,
        name: &str,
        volume: Option<&str>,
        source: Chunks,
    ) -> DriverResult<Notes>;
    /// Deletes a backup the hypervisor keeps; a missing one is already deleted.
    async fn delete_backup(&self, volume: &str) -> DriverResult<()>;
    /// Usage of every guest of the node, in one pass.
    async fn usage(&self) -> DriverResult<Vec<Usage>>;
    /// Limits the guest's network to `mbit` Mbit/s each way (0 lifts the limit).
    async fn set_network_limit(&self, name: &str, mbit: u32) -> DriverResult<Notes>;
    /// A terminal on a running guest.
    async fn console(&self, name: &str) -> DriverResult<Console>;
}

/// Guest and snapshot names: 1-63 letters, digits and '-', starting with a letter.
pub fn valid_name(raw: &str) -> bool {
    (1..=63).contains(&raw.len())
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && raw.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::valid_name;

    proptest! {
        /// Guest and snapshot names reach `lxc-*` arguments, config files and paths.
        #[test]
        fn any_accepted_guest_or_snapshot_name_is_safe_in_a_path_and_a_command(
            raw in "\\PC{0,80}"
        ) {
            if valid_name(&raw) {
                prop_assert!((1..=63).contains(&raw.len()));
                prop_assert!(raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
                prop_assert!(!raw.contains(['/', '.', ' ', '\'', '"', '\n', '=']));
            }
        }

        #[test]
        fn names_of_the_allowed_shape_are_accepted(name in "[a-zA-Z][a-zA-Z0-9_-]{0,62}") {
            prop_assert!(valid_name(&name));
        }
    }
}
