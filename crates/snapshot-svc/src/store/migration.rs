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
            Box::new(platform::outbox::AddTraceParent),
        ]
    }
}

struct Initial;

impl MigrationName for Initial {
    fn name(&self) -> &str {
        "m20261130_000001_snapshots"
    }
}

#[derive(DeriveIden)]
enum Snapshots {
    Table,
    Id,
    Uuid,
    ServerId,
    OwnerId,
    Name,
    Description,
    Status,
    SizeMb,
    HvName,
    TaskId,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Backups {
    Table,
    Id,
    Uuid,
    ServerId,
    OwnerId,
    NodeId,
    Name,
    Origin,
    Status,
    Protected,
    Target,
    Location,
    SizeBytes,
    Sha256,
    Manifest,
    Error,
    TaskId,
    CreatedAt,
    CompletedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Schedules {
    Table,
    ServerId,
    OwnerId,
    Frequency,
    Weekday,
    Time,
    TimeZone,
    KeepLast,
    KeepDaily,
    KeepWeekly,
    KeepMonthly,
    Enabled,
    Origin,
    NextRunAt,
    LastRunAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ServerLocks {
    Table,
    ServerId,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Tasks {
    Table,
    Id,
    ServerId,
    OwnerId,
    Kind,
    State,
    Step,
    StepsDone,
    Params,
    Error,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Initial {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Snapshots::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Snapshots::Id))
                    .col(string_uniq(Snapshots::Uuid))
                    .col(big_integer(Snapshots::ServerId))
                    .col(big_integer(Snapshots::OwnerId))
                    .col(string(Snapshots::Name))
                    .col(text(Snapshots::Description))
                    .col(string(Snapshots::Status))
                    .col(big_integer_null(Snapshots::SizeMb))
                    .col(string(Snapshots::HvName))
                    .col(string_null(Snapshots::TaskId))
                    .col(big_integer(Snapshots::CreatedAt))
                    .col(big_integer(Snapshots::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_snapshots_server_name")
                    .table(Snapshots::Table)
                    .col(Snapshots::ServerId)
                    .col(Snapshots::Name)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_snapshots_owner")
                    .table(Snapshots::Table)
                    .col(Snapshots::OwnerId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Backups::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Backups::Id))
                    .col(string_uniq(Backups::Uuid))
                    .col(big_integer(Backups::ServerId))
                    .col(big_integer(Backups::OwnerId))
                    .col(big_integer(Backups::NodeId))
                    .col(string(Backups::Name))
                    .col(string(Backups::Origin))
                    .col(string(Backups::Status))
                    .col(boolean(Backups::Protected))
                    .col(string(Backups::Target))
                    .col(text(Backups::Location))
                    .col(big_integer(Backups::SizeBytes))
                    .col(string(Backups::Sha256))
                    .col(text(Backups::Manifest))
                    .col(text(Backups::Error))
                    .col(string_null(Backups::TaskId))
                    .col(big_integer(Backups::CreatedAt))
                    .col(big_integer_null(Backups::CompletedAt))
                    .col(big_integer(Backups::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_backups_server")
                    .table(Backups::Table)
                    .col(Backups::ServerId)
                    .col(Backups::CreatedAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_backups_owner")
                    .table(Backups::Table)
                    .col(Backups::OwnerId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Schedules::Table)
                    .if_not_exists()
                    .col(big_integer(Schedules::ServerId).primary_key())
                    .col(big_integer(Schedules::OwnerId))
                    .col(string(Schedules::Frequency))
                    .col(string(Schedules::Weekday))
                    .col(string(Schedules::Time))
                    .col(string(Schedules::TimeZone))
                    .col(integer(Schedules::KeepLast))
                    .col(integer(Schedules::KeepDaily))
                    .col(integer(Schedules::KeepWeekly))
                    .col(integer(Schedules::KeepMonthly))
                    .col(boolean(Schedules::Enabled))
                    .col(string(Schedules::Origin))
                    .col(big_integer(Schedules::NextRunAt))
                    .col(big_integer(Schedules::LastRunAt))
                    .col(big_integer(Schedules::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_schedules_due")
                    .table(Schedules::Table)
                    .col(Schedules::NextRunAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ServerLocks::Table)
                    .if_not_exists()
                    .col(big_integer(ServerLocks::ServerId).primary_key())
                    .col(big_integer(ServerLocks::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Tasks::Table)
                    .if_not_exists()
                    .col(string(Tasks::Id).primary_key())
                    .col(big_integer(Tasks::ServerId))
                    .col(big_integer(Tasks::OwnerId))
                    .col(string(Tasks::Kind))
                    .col(string(Tasks::State))
                    .col(string(Tasks::Step))
                    .col(text(Tasks::StepsDone))
                    .col(text(Tasks::Params))
                    .col(text(Tasks::Error))
                    .col(big_integer(Tasks::CreatedAt))
                    .col(big_integer(Tasks::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_tasks_state")
                    .table(Tasks::Table)
                    .col(Tasks::State)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, _: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration(
            "snapshot-svc's first migration is not reversible".to_owned(),
        ))
    }
}
