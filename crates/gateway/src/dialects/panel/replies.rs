//! The panel's replies as types, so the OpenAPI document states every field a handler sends
//! (the dashboard's client is generated from it). Shapes follow seed 000 where it gives one:
//! `{status: "success", …}` envelopes, `data` lists, Proxmox VE's `rrdData`.

use std::collections::BTreeMap;

use proto::monitor::v1 as monpb;
use proto::server::v1 as pb;
use proto::snapshot::v1 as snappb;
use serde::Serialize;
use utoipa::ToSchema;

use super::timestamp;
use crate::snapshots::{backup_status, snapshot_status};

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// A task begun: its id, to follow on `GET /api/tasks/{id}`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskBegun {
    /// `success`; `deleted` for a deletion.
    status: &'static str,
    /// Power actions: `start`, `stop` or `restart`.
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<&'static str>,
    task_id: String,
}

impl TaskBegun {
    pub fn new(task_id: String) -> Self {
        Self {
            status: "success",
            action: None,
            task_id,
        }
    }

    pub fn power(action: &'static str, task_id: String) -> Self {
        Self {
            action: Some(action),
            ..Self::new(task_id)
        }
    }

    pub fn deleted(task_id: String) -> Self {
        Self {
            status: "deleted",
            ..Self::new(task_id)
        }
    }
}

/// A new root password (a reset or a reinstall), shown only in this reply.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewPassword {
    status: &'static str,
    password: Option<String>,
    task_id: String,
}

impl NewPassword {
    pub fn new(password: String, task_id: String) -> Self {
        Self {
            status: "success",
            password: non_empty(password),
            task_id,
        }
    }
}

/// A resize begun: seed 000 puts the task id in `data`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Resizing {
    status: &'static str,
    /// The task id.
    data: String,
}

impl Resizing {
    pub fn new(task_id: String) -> Self {
        Self {
            status: "success",
            data: task_id,
        }
    }
}

/// A console: the WebSocket's URL with its single-use ticket.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsoleUrl {
    status: &'static str,
    /// `/api/console/ws?ticket=vct_…`, on this origin.
    url: String,
    /// Seconds the ticket stays valid.
    expires_in: u32,
}

impl ConsoleUrl {
    pub fn new(ticket: &str, expires_in: u32) -> Self {
        Self {
            status: "success",
            url: format!("/api/console/ws?ticket={ticket}"),
            expires_in,
        }
    }
}

/// A server ordered: it is being created.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedServer {
    id: i64,
    status: &'static str,
    proxmox_id: i64,
    ip_address: Option<String>,
    /// Shown only in this reply.
    root_password: Option<String>,
    task_id: String,
}

impl CreatedServer {
    pub fn new(
        server: pb::Server,
        status: &'static str,
        root_password: String,
        task_id: String,
    ) -> Self {
        Self {
            id: server.id,
            status,
            proxmox_id: server.hypervisor_id,
            ip_address: non_empty(server.ipv4),
            root_password: non_empty(root_password),
            task_id,
        }
    }
}

/// A plan (seed 000's tariff).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Tariff {
    id: i64,
    name: String,
    vcpus: u32,
    /// MB.
    memory: u64,
    /// GB.
    disk: u64,
    /// GB a month; 0 is unmetered.
    bandwidth: u64,
    /// A month, in minor units.
    price: i64,
    /// An hour, in minor units (what is charged).
    hourly_price: i64,
    snapshot_limit: u32,
    backup_limit: u32,
    /// Over the month's traffic: `none`, `throttle` or `suspend`.
    #[schema(value_type = super::servers::TrafficActionBody)]
    traffic_action: &'static str,
    throttle_mbit: u32,
}

impl From<&pb::Plan> for Tariff {
    fn from(p: &pb::Plan) -> Self {
        Self {
            id: p.id,
            name: p.name.clone(),
            vcpus: p.vcpus,
            memory: p.memory_mb,
            disk: p.disk_gb,
            bandwidth: p.bandwidth_gb,
            price: p.monthly_price,
            hourly_price: p.hourly_price,
            snapshot_limit: p.snapshot_limit,
            backup_limit: p.backup_limit,
            traffic_action: match p.traffic_action() {
                pb::TrafficAction::None => "none",
                pb::TrafficAction::Throttle => "throttle",
                pb::TrafficAction::Suspend => "suspend",
            },
            throttle_mbit: p.throttle_mbit,
        }
    }
}

/// An OS image.
#[derive(Debug, Serialize, ToSchema)]
pub struct CatalogImage {
    id: i64,
    name: String,
    #[serde(rename = "type")]
    kind: String,
    /// The template per driver; administrators only.
    #[serde(skip_serializing_if = "Option::is_none")]
    templates: Option<BTreeMap<String, String>>,
}

impl CatalogImage {
    /// The image; `with_templates` for administrators.
    pub fn new(i: &pb::Image, with_templates: bool) -> Self {
        Self {
            id: i.id,
            name: i.name.clone(),
            kind: i.r#type.clone(),
            templates: with_templates.then(|| i.templates.clone()),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CatalogLocation {
    code: String,
    name: String,
}

impl From<&pb::Location> for CatalogLocation {
    fn from(l: &pb::Location) -> Self {
        Self {
            code: l.code.clone(),
            name: l.name.clone(),
        }
    }
}

/// What may be ordered: plans, images and locations.
#[derive(Debug, Serialize, ToSchema)]
pub struct Catalog {
    tariffs: Vec<Tariff>,
    os: Vec<CatalogImage>,
    locations: Vec<CatalogLocation>,
}

impl Catalog {
    pub fn new(c: &pb::Catalog, admin: bool) -> Self {
        Self {
            tariffs: c.plans.iter().map(Tariff::from).collect(),
            os: c
                .images
                .iter()
                .map(|i| CatalogImage::new(i, admin))
                .collect(),
            locations: c.locations.iter().map(CatalogLocation::from).collect(),
        }
    }
}

/// Used against the most there is, in bytes, and the share in percent.
#[derive(Debug, Serialize, ToSchema)]
pub struct Gauge {
    used: u64,
    max: u64,
    /// Percent, two decimals.
    usage: f64,
}

impl Gauge {
    fn new((used, max): (u64, u64)) -> Self {
        let usage = if max == 0 {
            0.0
        } else {
            ((used as f64 / max as f64) * 10_000.0).round() / 100.0
        };
        Self { used, max, usage }
    }
}

/// Bytes in and out since the guest started.
#[derive(Debug, Serialize, ToSchema)]
pub struct NetworkTotals {
    #[serde(rename = "in")]
    inbound: u64,
    out: u64,
}

/// A point of history, in Proxmox VE's rrddata terms: `cpu` a fraction of the cores, memory
/// and disk in bytes, network and disk I/O in bytes a second.
#[derive(Debug, Serialize, ToSchema)]
pub struct RrdPoint {
    /// Unix seconds.
    time: i64,
    cpu: f64,
    mem: f64,
    maxmem: f64,
    disk: f64,
    maxdisk: f64,
    netin: f64,
    netout: f64,
    diskread: f64,
    diskwrite: f64,
}

impl From<&monpb::Point> for RrdPoint {
    fn from(p: &monpb::Point) -> Self {
        Self {
            time: p.time,
            cpu: p.cpu,
            mem: p.mem,
            maxmem: p.maxmem,
            disk: p.disk,
            maxdisk: p.maxdisk,
            netin: p.netin,
            netout: p.netout,
            diskread: p.diskread,
            diskwrite: p.diskwrite,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageData {
    vmid: i64,
    status: String,
    /// Seconds.
    uptime: u64,
    /// A fraction of the server's cores.
    cpu: f64,
    memory: Gauge,
    disk: Gauge,
    network: NetworkTotals,
    rrd_data: Vec<RrdPoint>,
}

/// Seed 000's `stats`: `success` with a fresh sample, else `unavailable`.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageStats {
    status: &'static str,
    data: UsageData,
}

/// What the panel's `stats` object shows, from a status read or a live sample.
pub struct Stats<'a> {
    pub server_id: i64,
    pub status: &'a str,
    pub live: bool,
    pub uptime: u64,
    /// A fraction of the server's cores.
    pub cpu: f64,
    pub memory: (u64, u64),
    pub disk: (u64, u64),
    pub network: (u64, u64),
    pub points: &'a [monpb::Point],
}

impl From<Stats<'_>> for UsageStats {
    fn from(s: Stats<'_>) -> Self {
        Self {
            status: if s.live { "success" } else { "unavailable" },
            data: UsageData {
                vmid: s.server_id,
                status: s.status.to_owned(),
                uptime: s.uptime,
                cpu: (s.cpu * 10_000.0).round() / 10_000.0,
                memory: Gauge::new(s.memory),
                disk: Gauge::new(s.disk),
                network: NetworkTotals {
                    inbound: s.network.0,
                    out: s.network.1,
                },
                rrd_data: s.points.iter().map(RrdPoint::from).collect(),
            },
        }
    }
}

/// `GET /api/server/{id}/status`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServerUsage {
    pub id: i64,
    pub status: &'static str,
    pub stats: UsageStats,
}

/// A snapshot as the panel lists it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PanelSnapshot {
    name: String,
    description: String,
    /// Unix seconds.
    snaptime: i64,
    /// `in_progress`, `completed`, `failed` or `unknown`.
    status: &'static str,
    size_mb: Option<u64>,
}

impl From<snappb::Snapshot> for PanelSnapshot {
    fn from(s: snappb::Snapshot) -> Self {
        Self {
            status: snapshot_status(s.status()),
            snaptime: s.created_at_ms / 1000,
            size_mb: s.size_mb,
            name: s.name,
            description: s.description,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PanelSnapshotList {
    status: &'static str,
    /// Oldest first.
    data: Vec<PanelSnapshot>,
}

impl PanelSnapshotList {
    pub fn new(snapshots: Vec<snappb::Snapshot>) -> Self {
        Self {
            status: "success",
            data: snapshots.into_iter().map(PanelSnapshot::from).collect(),
        }
    }
}

/// A snapshot being taken.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotBegun {
    status: &'static str,
    task_id: String,
    snapname: String,
}

impl SnapshotBegun {
    pub fn new(task_id: String, snapname: String) -> Self {
        Self {
            status: "success",
            task_id,
            snapname,
        }
    }
}

/// A backup as the panel shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PanelBackup {
    id: i64,
    name: String,
    /// `in_progress`, `completed`, `failed` or `unknown`.
    status: &'static str,
    /// `manual` or `schedule`.
    origin: String,
    /// Never rotated or pruned.
    protected: bool,
    size_bytes: u64,
    sha256: Option<String>,
    target: String,
    created_at: Option<String>,
    completed_at: Option<String>,
    error: Option<String>,
    task_id: Option<String>,
}

impl From<snappb::Backup> for PanelBackup {
    fn from(b: snappb::Backup) -> Self {
        Self {
            status: backup_status(b.status()),
            created_at: timestamp(b.created_at_ms),
            completed_at: timestamp(b.completed_at_ms),
            id: b.id,
            name: b.name,
            origin: b.origin,
            protected: b.protected,
            size_bytes: b.size_bytes,
            sha256: non_empty(b.sha256),
            target: b.target,
            error: non_empty(b.error),
            task_id: non_empty(b.task_id),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PanelBackupList {
    status: &'static str,
    /// Oldest first.
    data: Vec<PanelBackup>,
}

impl PanelBackupList {
    pub fn new(backups: Vec<snappb::Backup>) -> Self {
        Self {
            status: "success",
            data: backups.into_iter().map(PanelBackup::from).collect(),
        }
    }
}

/// One backup (after protecting or unprotecting it).
#[derive(Debug, Serialize, ToSchema)]
pub struct BackupReply {
    status: &'static str,
    data: PanelBackup,
}

impl BackupReply {
    pub fn new(backup: snappb::Backup) -> Self {
        Self {
            status: "success",
            data: backup.into(),
        }
    }
}

/// A backup being taken.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupBegun {
    status: &'static str,
    task_id: String,
    backup: Option<PanelBackup>,
}

impl BackupBegun {
    pub fn new(task_id: String, backup: Option<snappb::Backup>) -> Self {
        Self {
            status: "success",
            task_id,
            backup: backup.map(PanelBackup::from),
        }
    }
}

/// A backup schedule and its retention, as saved.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleView {
    /// `daily` or `weekly`.
    frequency: String,
    /// Weekly: `mon` ... `sun`.
    weekday: Option<String>,
    /// `HH:MM` in `timeZone`.
    time: String,
    time_zone: String,
    keep_last: u32,
    keep_daily: u32,
    keep_weekly: u32,
    keep_monthly: u32,
    enabled: bool,
    origin: String,
    next_run_at: Option<String>,
    last_run_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleReply {
    status: &'static str,
    data: ScheduleView,
}

impl ScheduleReply {
    pub fn new(s: snappb::Schedule) -> Self {
        Self {
            status: "success",
            data: ScheduleView {
                next_run_at: timestamp(s.next_run_at_ms),
                last_run_at: timestamp(s.last_run_at_ms),
                weekday: non_empty(s.weekday),
                frequency: s.frequency,
                time: s.time,
                time_zone: s.time_zone,
                keep_last: s.keep_last,
                keep_daily: s.keep_daily,
                keep_weekly: s.keep_weekly,
                keep_monthly: s.keep_monthly,
                enabled: s.enabled,
                origin: s.origin,
            },
        }
    }
}
