//! Schema migrations, run at start-up on SQLite and PostgreSQL alike.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(Initial), Box::new(ConsoleTickets)]
    }
}

struct Initial;

impl MigrationName for Initial {
    fn name(&self) -> &str {
        "m20261122_000001_initial"
    }
}

#[derive(DeriveIden)]
enum Nodes {
    Table,
    Id,
    Uuid,
    Name,
    Location,
    Tags,
    Driver,
    Address,
    Port,
    Settings,
    Credentials,
    Cores,
    MemoryMb,
    DiskGb,
    CpuOvercommit,
    MemoryOvercommit,
    DiskOvercommit,
    ReservedCores,
    ReservedMemoryMb,
    ReservedDiskGb,
    State,
    Health,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Reservations {
    Table,
    Id,
    NodeId,
    Cores,
    MemoryMb,
    DiskGb,
    CreatedAt,
}

#[derive(DeriveIden)]
enum IpPools {
    Table,
    Id,
    Name,
    NodeId,
    Location,
    Family,
    First,
    Last,
    PrefixLen,
    Gateway,
    CreatedAt,
}

#[derive(DeriveIden)]
enum IpAllocations {
    Table,
    Id,
    PoolId,
    Address,
    Family,
    Owner,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Initial {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Nodes::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Nodes::Id))
                    .col(string_uniq(Nodes::Uuid))
                    .col(string_uniq(Nodes::Name))
                    .col(string(Nodes::Location))
                    .col(string(Nodes::Tags))
                    .col(string(Nodes::Driver))
                    .col(string(Nodes::Address))
                    .col(integer(Nodes::Port))
                    .col(text(Nodes::Settings))
                    .col(text_null(Nodes::Credentials))
                    .col(big_integer(Nodes::Cores))
                    .col(big_integer(Nodes::MemoryMb))
                    .col(big_integer(Nodes::DiskGb))
                    .col(double(Nodes::CpuOvercommit))
                    .col(double(Nodes::MemoryOvercommit))
                    .col(double(Nodes::DiskOvercommit))
                    .col(big_integer(Nodes::ReservedCores))
                    .col(big_integer(Nodes::ReservedMemoryMb))
                    .col(big_integer(Nodes::ReservedDiskGb))
                    .col(string(Nodes::State))
                    .col(string(Nodes::Health))
                    .col(timestamp_with_time_zone(Nodes::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Reservations::Table)
                    .if_not_exists()
                    .col(string(Reservations::Id).primary_key())
                    .col(big_integer(Reservations::NodeId))
                    .col(big_integer(Reservations::Cores))
                    .col(big_integer(Reservations::MemoryMb))
                    .col(big_integer(Reservations::DiskGb))
                    .col(timestamp_with_time_zone(Reservations::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Reservations::Table, Reservations::NodeId)
                            .to(Nodes::Table, Nodes::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(IpPools::Table)
                    .if_not_exists()
                    .col(big_pk_auto(IpPools::Id))
                    .col(string_uniq(IpPools::Name))
                    .col(big_integer_null(IpPools::NodeId))
                    .col(string_null(IpPools::Location))
                    .col(integer(IpPools::Family))
                    .col(string(IpPools::First))
                    .col(string(IpPools::Last))
                    .col(integer(IpPools::PrefixLen))
                    .col(string(IpPools::Gateway))
                    .col(timestamp_with_time_zone(IpPools::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(IpPools::Table, IpPools::NodeId)
                            .to(Nodes::Table, Nodes::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(IpAllocations::Table)
                    .if_not_exists()
                    .col(big_pk_auto(IpAllocations::Id))
                    .col(big_integer(IpAllocations::PoolId))
                    .col(string(IpAllocations::Address))
                    .col(integer(IpAllocations::Family))
                    .col(string(IpAllocations::Owner))
                    .col(timestamp_with_time_zone(IpAllocations::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(IpAllocations::Table, IpAllocations::PoolId)
                            .to(IpPools::Table, IpPools::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            (
                "idx_ip_allocations_address",
                [IpAllocations::PoolId, IpAllocations::Address],
            ),
            (
                "idx_ip_allocations_owner",
                [IpAllocations::Owner, IpAllocations::Family],
            ),
        ] {
            let mut index = Index::create();
            index
                .name(name)
                .table(IpAllocations::Table)
                .unique()
                .if_not_exists();
            for column in columns {
                index.col(column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }
}

struct ConsoleTickets;

impl MigrationName for ConsoleTickets {
    fn name(&self) -> &str {
        "m20261122_000002_console_tickets"
    }
}

#[derive(DeriveIden)]
enum ConsoleTicketsTable {
    #[sea_orm(iden = "console_tickets")]
    Table,
    Digest,
    NodeId,
    Guest,
    UserId,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for ConsoleTickets {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ConsoleTicketsTable::Table)
                    .if_not_exists()
                    .col(string(ConsoleTicketsTable::Digest).primary_key())
                    .col(big_integer(ConsoleTicketsTable::NodeId))
                    .col(string(ConsoleTicketsTable::Guest))
                    .col(big_integer(ConsoleTicketsTable::UserId))
                    .col(timestamp_with_time_zone(ConsoleTicketsTable::ExpiresAt))
                    .to_owned(),
            )
            .await
    }
}
