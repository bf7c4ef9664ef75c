//! snapshot-svc's tables.

pub mod snapshot {
    use sea_orm::entity::prelude::*;

    /// A snapshot on the hypervisor (`hv_name` there), of one server.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "snapshots")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub uuid: String,
        pub server_id: i64,
        pub owner_id: i64,
        pub name: String,
        pub description: String,
        /// in_progress, completed or failed.
        pub status: String,
        pub size_mb: Option<i64>,
        pub hv_name: String,
        /// The task at work on it (taking, restoring or deleting it), if any.
        pub task_id: Option<String>,
        pub created_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod backup {
    use sea_orm::entity::prelude::*;

    /// An archive of one server, on the backup target (`location` its key there) or on
    /// the hypervisor (`location` its volume).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "backups")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub uuid: String,
        pub server_id: i64,
        pub owner_id: i64,
        pub node_id: i64,
        pub name: String,
        /// manual or scheduled.
        pub origin: String,
        /// in_progress, completed or failed.
        pub status: String,
        pub protected: bool,
        /// directory, s3 or hypervisor.
        pub target: String,
        pub location: String,
        pub size_bytes: i64,
        pub sha256: String,
        /// The manifest (JSON) as written beside the archive.
        pub manifest: String,
        pub error: String,
        pub task_id: Option<String>,
        pub created_at: i64,
        pub completed_at: Option<i64>,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod schedule {
    use sea_orm::entity::prelude::*;

    /// A server's backup schedule and retention.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "schedules")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub server_id: i64,
        pub owner_id: i64,
        pub frequency: String,
        pub weekday: String,
        pub time: String,
        pub time_zone: String,
        pub keep_last: i32,
        pub keep_daily: i32,
        pub keep_weekly: i32,
        pub keep_monthly: i32,
        pub enabled: bool,
        /// custom, or automatic (VPS.org's `backups_enabled`).
        pub origin: String,
        /// The slot it fires at next; claimed by moving it on.
        pub next_run_at: i64,
        pub last_run_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod server_lock {
    use sea_orm::entity::prelude::*;

    /// One row per server this service has seen: what concurrent creates of one server's
    /// snapshots and backups queue on, so a limit is never passed.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "server_locks")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub server_id: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod task {
    use sea_orm::entity::prelude::*;

    /// A saga: one piece of work on one server's snapshot or backup.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "tasks")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub server_id: i64,
        pub owner_id: i64,
        pub kind: String,
        /// running, unwinding, succeeded or failed.
        pub state: String,
        pub step: String,
        pub steps_done: String,
        pub params: String,
        pub error: String,
        pub created_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
