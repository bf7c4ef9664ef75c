//! sea-orm entities, one module per table.

pub mod node {
    use sea_orm::entity::prelude::*;

    /// A hypervisor node. `reserved_*` are the sums of its reservations, kept by the same
    /// conditional updates that take and give back capacity.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "nodes")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        #[sea_orm(unique)]
        pub uuid: String,
        #[sea_orm(unique)]
        pub name: String,
        pub location: String,
        /// Comma-separated.
        pub tags: String,
        pub driver: String,
        pub address: String,
        pub port: i32,
        /// JSON object of non-secret driver settings.
        pub settings: String,
        /// Sealed JSON object of secrets; never leaves this service.
        pub credentials: Option<String>,
        pub cores: i64,
        pub memory_mb: i64,
        pub disk_gb: i64,
        pub cpu_overcommit: f64,
        pub memory_overcommit: f64,
        pub disk_overcommit: f64,
        pub reserved_cores: i64,
        pub reserved_memory_mb: i64,
        pub reserved_disk_gb: i64,
        pub state: String,
        pub health: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod reservation {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "reservations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub node_id: i64,
        pub cores: i64,
        pub memory_mb: i64,
        pub disk_gb: i64,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod pool {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ip_pools")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        #[sea_orm(unique)]
        pub name: String,
        pub node_id: Option<i64>,
        pub location: Option<String>,
        pub family: i32,
        /// First and last address of the range, inclusive.
        pub first: String,
        pub last: String,
        pub prefix_len: i32,
        pub gateway: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod allocation {
    use sea_orm::entity::prelude::*;

    /// An address in use. Unique per (pool, address), so no address is handed out twice,
    /// and per (owner, family), so an owner holds one address of each family.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ip_allocations")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub pool_id: i64,
        pub address: String,
        pub family: i32,
        pub owner: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod console_ticket {
    use sea_orm::entity::prelude::*;

    /// A console ticket, by the digest of its secret.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "console_tickets")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub digest: String,
        pub node_id: i64,
        pub guest: String,
        pub user_id: i64,
        pub expires_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
