//! notify-svc's tables.

pub mod mail {
    use sea_orm::entity::prelude::*;

    /// One email to one recipient, made from one event (`key` is unique: an event that
    /// arrives twice makes no second mail).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "mails")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub uuid: String,
        /// `<event id>:<recipient user>`.
        #[sea_orm(unique)]
        pub key: String,
        pub event_id: String,
        pub user_id: i64,
        pub kind: String,
        pub recipient: String,
        pub subject: String,
        pub text_body: String,
        pub html_body: String,
        /// pending, sent or failed.
        pub state: String,
        pub attempts: i32,
        /// When the next attempt is due (ms since the epoch).
        pub next_attempt_at: i64,
        pub last_error: String,
        pub created_at: i64,
        pub sent_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod preference {
    use sea_orm::entity::prelude::*;

    /// A kind of mail a user turned off or on again (absent: on).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "preferences")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: i64,
        #[sea_orm(primary_key, auto_increment = false)]
        pub kind: String,
        pub enabled: bool,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod ticket {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "tickets")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub uuid: String,
        pub owner_id: i64,
        pub server_id: Option<i64>,
        pub subject: String,
        /// open or closed.
        pub status: String,
        pub message_count: i32,
        pub created_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod ticket_message {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ticket_messages")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub ticket_id: i64,
        pub author_id: i64,
        pub staff: bool,
        pub body: String,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod webhook {
    use sea_orm::entity::prelude::*;

    /// An endpoint events are delivered to.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "webhooks")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub uuid: String,
        pub owner_id: i64,
        pub url: String,
        /// A JSON list of event types; empty: every type.
        pub event_types: String,
        /// Every user's events (administrators' endpoints).
        pub all_events: bool,
        /// The signing secret, sealed with the service's key.
        pub secret: String,
        pub secret_hint: String,
        pub enabled: bool,
        pub disabled_reason: String,
        pub created_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod delivery {
    use sea_orm::entity::prelude::*;

    /// One event for one endpoint (unique: an event that arrives twice is delivered once).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "deliveries")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        /// The `webhook-id` header, `msg_<uuid>`: the same on every attempt.
        pub message_id: String,
        pub webhook_id: i64,
        pub event_id: String,
        pub event_type: String,
        /// The body, as sent (and signed).
        pub payload: String,
        /// pending, delivered or failed.
        pub state: String,
        pub attempts: i32,
        pub next_attempt_at: i64,
        pub last_status: i32,
        pub last_error: String,
        pub created_at: i64,
        pub delivered_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
