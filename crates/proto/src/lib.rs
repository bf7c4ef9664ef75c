//! Generated gRPC types and clients/servers, one module per service package `vps.<svc>.v1`.

#![allow(clippy::all, clippy::pedantic, missing_docs)]

pub mod ids;

pub mod common {
    pub mod v1 {
        tonic::include_proto!("vps.common.v1");
    }
}

pub mod events {
    pub mod v1 {
        tonic::include_proto!("vps.events.v1");

        /// The event types a webhook endpoint may ask for: an event's subject after
        /// `vps.events.`, and `alert.fired` / `alert.resolved` for `vps.alerts.*`. notify-svc
        /// refuses any other; the gateway's OpenAPI document lists these.
        pub const WEBHOOK_EVENT_TYPES: &[&str] = &[
            "server.created",
            "server.state",
            "server.deleted",
            "server.suspended",
            "server.traffic_exceeded",
            "snapshot.created",
            "snapshot.restored",
            "snapshot.deleted",
            "snapshot.failed",
            "backup.created",
            "backup.restored",
            "backup.deleted",
            "backup.failed",
            "billing.payment_reminder",
            "ticket.opened",
            "ticket.replied",
            "ticket.closed",
            "ticket.reopened",
            "alert.fired",
            "alert.resolved",
        ];

        /// The JetStream subjects events are published on (stream `VPS_EVENTS`).
        pub mod subject {
            pub const SERVER_CREATED: &str = "vps.events.server.created";
            pub const SERVER_STATE: &str = "vps.events.server.state";
            pub const SERVER_DELETED: &str = "vps.events.server.deleted";
            pub const SERVER_SUSPENDED: &str = "vps.events.server.suspended";
            pub const PAYMENT_REMINDER: &str = "vps.events.billing.payment_reminder";
            pub const SNAPSHOT_CREATED: &str = "vps.events.snapshot.created";
            pub const SNAPSHOT_RESTORED: &str = "vps.events.snapshot.restored";
            pub const SNAPSHOT_DELETED: &str = "vps.events.snapshot.deleted";
            pub const SNAPSHOT_FAILED: &str = "vps.events.snapshot.failed";
            pub const BACKUP_CREATED: &str = "vps.events.backup.created";
            pub const BACKUP_RESTORED: &str = "vps.events.backup.restored";
            pub const BACKUP_DELETED: &str = "vps.events.backup.deleted";
            pub const BACKUP_FAILED: &str = "vps.events.backup.failed";
            pub const TRAFFIC_EXCEEDED: &str = "vps.events.server.traffic_exceeded";
            pub const TICKET_OPENED: &str = "vps.events.ticket.opened";
            pub const TICKET_REPLIED: &str = "vps.events.ticket.replied";
            pub const TICKET_CLOSED: &str = "vps.events.ticket.closed";
            pub const TICKET_REOPENED: &str = "vps.events.ticket.reopened";

            /// A server's samples (core NATS, not kept): `vps.stats.<server_id>`.
            pub fn stats(server_id: i64) -> String {
                format!("{STATS_PREFIX}{server_id}")
            }
            pub const STATS_PREFIX: &str = "vps.stats.";
            pub const STATS_ALL: &str = "vps.stats.*";

            /// A server's alert changes (JetStream stream `VPS_ALERTS`): `vps.alerts.<id>`.
            pub fn alerts(server_id: i64) -> String {
                format!("{ALERTS_PREFIX}{server_id}")
            }
            pub const ALERTS_PREFIX: &str = "vps.alerts.";
            pub const ALERTS_ALL: &str = "vps.alerts.*";
        }

        /// The schema version every event of this package carries.
        pub const VERSION: u32 = 1;
    }
}

pub mod identity {
    pub mod v1 {
        tonic::include_proto!("vps.identity.v1");
    }
}

pub mod notify {
    pub mod v1 {
        tonic::include_proto!("vps.notify.v1");
    }
}

pub mod monitor {
    pub mod v1 {
        tonic::include_proto!("vps.monitor.v1");
    }
}

pub mod node {
    pub mod v1 {
        tonic::include_proto!("vps.node.v1");
    }
}

pub mod server {
    pub mod v1 {
        tonic::include_proto!("vps.server.v1");
    }
}

pub mod snapshot {
    pub mod v1 {
        tonic::include_proto!("vps.snapshot.v1");
    }
}

/// Every service's file descriptors, encoded (`FileDescriptorSet`): served by gRPC server
/// reflection and walked by the tests that call every RPC.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptors.bin"));
