//! sea-orm entities, one module per table. Times are Unix milliseconds.

pub mod server {
    use sea_orm::entity::prelude::*;

    /// A server. `cores`/`memory_mb`/`disk_gb` are the size in effect (the plan's, or the
    /// last resize); `root_password` is sealed and never leaves the service.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "servers")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        #[sea_orm(unique)]
        pub uuid: String,
        pub owner_id: i64,
        pub name: String,
        pub hostname: String,
        pub plan_id: i64,
        pub image_id: i64,
        pub location: String,
        pub node_id: Option<i64>,
        /// node-svc's reservation key for the capacity this server holds.
        pub reservation_id: Option<String>,
        pub guest_name: String,
        pub ipv4: Option<String>,
        pub ipv6: Option<String>,
        pub status: String,
        pub status_reason: String,
        pub cores: i64,
        pub memory_mb: i64,
        pub disk_gb: i64,
        pub backups: bool,
        pub ports: String,
        pub primary_port: String,
        pub variables: String,
        pub traffic_combined: bool,
        pub traffic_limit: i64,
        pub traffic_in: i64,
        pub traffic_out: i64,
        /// The month (`YYYY-MM`) whose traffic last passed the limit; empty: never.
        pub traffic_exceeded: String,
        pub root_password: Option<String>,
        pub hourly_price: i64,
        /// Charged up to here; the billing loop charges the next hour when it is reached.
        pub paid_until: i64,
        /// Whether the server ran at any time in the period being billed (so stopping it
        /// just before the charge does not make the period free).
        pub ran_in_period: bool,
        /// Since when the owner's balance has not covered this server's hour.
        pub overdue_since: Option<i64>,
        pub task_id: Option<String>,
        /// A delete asked for while another task ran: it starts when that task ends (a
        /// create is unwound first).
        pub delete_task_id: Option<String>,
        pub created_at: i64,
        pub updated_at: i64,
        pub deleted_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod task {
    use sea_orm::entity::prelude::*;

    /// A task: one action on one server, and the persisted progress of its saga.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "tasks")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub server_id: i64,
        pub owner_id: i64,
        pub kind: String,
        /// queued, running, unwinding, succeeded, failed.
        pub state: String,
        pub step: String,
        /// Comma-separated steps completed, in order.
        pub steps_done: String,
        pub error: String,
        /// A machine-readable reason for the failure (e.g. NODE_UNREACHABLE).
        pub error_reason: String,
        /// JSON: what the saga needs beyond the server row (e.g. the old and new size).
        pub params: String,
        pub created_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod plan {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "plans")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: i64,
        pub name: String,
        pub vcpus: i64,
        pub memory_mb: i64,
        pub disk_gb: i64,
        pub bandwidth_gb: i64,
        pub monthly_price: i64,
        pub snapshot_limit: i64,
        pub backup_limit: i64,
        /// `none`, `throttle` or `suspend`.
        pub traffic_action: String,
        pub throttle_mbit: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod image {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "images")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: i64,
        pub name: String,
        pub kind: String,
        /// JSON object: driver -> template.
        pub templates: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod location {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "locations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub code: String,
        pub name: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod idempotency {
    use sea_orm::entity::prelude::*;

    /// An idempotency key, scoped to its user (`<user id>:<key>`). `reply` is empty while
    /// the first request runs, then the encoded gRPC reply. The request running holds it by
    /// `claim_token` until `claimed_until` (renewed as it runs); `task_id` is the task its
    /// change made, once that change committed.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "idempotency_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub scope: String,
        pub request_hash: String,
        pub reply: Option<String>,
        pub created_at: i64,
        pub claim_token: String,
        pub claimed_until: i64,
        pub task_id: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod quota {
    use sea_orm::entity::prelude::*;

    /// A user's own limits, set by an administrator (the configured defaults otherwise).
    /// Its row is also what concurrent creates of one user queue on.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "quotas")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: i64,
        /// False: only the lock row; the defaults apply.
        pub custom: bool,
        pub servers: i64,
        pub cores: i64,
        pub memory_mb: i64,
        pub addresses: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod balance_warning {
    use sea_orm::entity::prelude::*;

    /// A user whose balance covers fewer days than the deployment warns at, since when.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "balance_warnings")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub owner_id: i64,
        pub since: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
