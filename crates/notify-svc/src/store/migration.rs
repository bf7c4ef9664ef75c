//! Schema migrations, run at start-up on SQLite and PostgreSQL alike.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(Initial),
            Box::new(platform::outbox::CreateOutbox),
            Box::new(platform::lease::CreateLeases),
            Box::new(Webhooks),
            Box::new(platform::outbox::AddTraceParent),
        ]
    }
}

struct Initial;

impl MigrationName for Initial {
    fn name(&self) -> &str {
        "m20261130_000001_notify"
    }
}

#[derive(DeriveIden)]
enum Mails {
    Table,
    Id,
    Uuid,
    Key,
    EventId,
    UserId,
    Kind,
    Recipient,
    Subject,
    TextBody,
    HtmlBody,
    State,
    Attempts,
    NextAttemptAt,
    LastError,
    CreatedAt,
    SentAt,
}

#[derive(DeriveIden)]
enum Preferences {
    Table,
    UserId,
    Kind,
    Enabled,
}

#[derive(DeriveIden)]
enum Tickets {
    Table,
    Id,
    Uuid,
    OwnerId,
    ServerId,
    Subject,
    Status,
    MessageCount,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum TicketMessages {
    Table,
    Id,
    TicketId,
    AuthorId,
    Staff,
    Body,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Initial {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Mails::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Mails::Id))
                    .col(string_uniq(Mails::Uuid))
                    .col(string_uniq(Mails::Key))
                    .col(string(Mails::EventId))
                    .col(big_integer(Mails::UserId))
                    .col(string(Mails::Kind))
                    .col(string(Mails::Recipient))
                    .col(text(Mails::Subject))
                    .col(text(Mails::TextBody))
                    .col(text(Mails::HtmlBody))
                    .col(string(Mails::State))
                    .col(integer(Mails::Attempts))
                    .col(big_integer(Mails::NextAttemptAt))
                    .col(text(Mails::LastError))
                    .col(big_integer(Mails::CreatedAt))
                    .col(big_integer_null(Mails::SentAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_mails_due")
                    .table(Mails::Table)
                    .col(Mails::State)
                    .col(Mails::NextAttemptAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_mails_user_kind")
                    .table(Mails::Table)
                    .col(Mails::UserId)
                    .col(Mails::Kind)
                    .col(Mails::CreatedAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Preferences::Table)
                    .if_not_exists()
                    .col(big_integer(Preferences::UserId))
                    .col(string(Preferences::Kind))
                    .col(boolean(Preferences::Enabled))
                    .primary_key(
                        Index::create()
                            .col(Preferences::UserId)
                            .col(Preferences::Kind),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Tickets::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Tickets::Id))
                    .col(string_uniq(Tickets::Uuid))
                    .col(big_integer(Tickets::OwnerId))
                    .col(big_integer_null(Tickets::ServerId))
                    .col(string(Tickets::Subject))
                    .col(string(Tickets::Status))
                    .col(integer(Tickets::MessageCount))
                    .col(big_integer(Tickets::CreatedAt))
                    .col(big_integer(Tickets::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_tickets_owner")
                    .table(Tickets::Table)
                    .col(Tickets::OwnerId)
                    .col(Tickets::Id)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(TicketMessages::Table)
                    .if_not_exists()
                    .col(big_pk_auto(TicketMessages::Id))
                    .col(big_integer(TicketMessages::TicketId))
                    .col(big_integer(TicketMessages::AuthorId))
                    .col(boolean(TicketMessages::Staff))
                    .col(text(TicketMessages::Body))
                    .col(big_integer(TicketMessages::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_ticket_messages_ticket")
                    .table(TicketMessages::Table)
                    .col(TicketMessages::TicketId)
                    .col(TicketMessages::Id)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}

struct Webhooks;

impl MigrationName for Webhooks {
    fn name(&self) -> &str {
        "m20261130_000002_webhooks"
    }
}

#[derive(DeriveIden)]
enum WebhooksTable {
    #[sea_orm(iden = "webhooks")]
    Table,
    Id,
    Uuid,
    OwnerId,
    Url,
    EventTypes,
    AllEvents,
    Secret,
    SecretHint,
    Enabled,
    DisabledReason,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Deliveries {
    Table,
    Id,
    MessageId,
    WebhookId,
    EventId,
    EventType,
    Payload,
    State,
    Attempts,
    NextAttemptAt,
    LastStatus,
    LastError,
    CreatedAt,
    DeliveredAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Webhooks {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WebhooksTable::Table)
                    .if_not_exists()
                    .col(big_pk_auto(WebhooksTable::Id))
                    .col(string_uniq(WebhooksTable::Uuid))
                    .col(big_integer(WebhooksTable::OwnerId))
                    .col(text(WebhooksTable::Url))
                    .col(text(WebhooksTable::EventTypes))
                    .col(boolean(WebhooksTable::AllEvents))
                    .col(text(WebhooksTable::Secret))
                    .col(string(WebhooksTable::SecretHint))
                    .col(boolean(WebhooksTable::Enabled))
                    .col(text(WebhooksTable::DisabledReason))
                    .col(big_integer(WebhooksTable::CreatedAt))
                    .col(big_integer(WebhooksTable::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhooks_owner")
                    .table(WebhooksTable::Table)
                    .col(WebhooksTable::OwnerId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Deliveries::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Deliveries::Id))
                    .col(string_uniq(Deliveries::MessageId))
                    .col(big_integer(Deliveries::WebhookId))
                    .col(string(Deliveries::EventId))
                    .col(string(Deliveries::EventType))
                    .col(text(Deliveries::Payload))
                    .col(string(Deliveries::State))
                    .col(integer(Deliveries::Attempts))
                    .col(big_integer(Deliveries::NextAttemptAt))
                    .col(integer(Deliveries::LastStatus))
                    .col(text(Deliveries::LastError))
                    .col(big_integer(Deliveries::CreatedAt))
                    .col(big_integer_null(Deliveries::DeliveredAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_deliveries_event")
                    .table(Deliveries::Table)
                    .col(Deliveries::WebhookId)
                    .col(Deliveries::EventId)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_deliveries_due")
                    .table(Deliveries::Table)
                    .col(Deliveries::State)
                    .col(Deliveries::NextAttemptAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
