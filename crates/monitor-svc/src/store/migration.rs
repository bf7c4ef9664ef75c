//! Schema migrations, run at start-up on SQLite and PostgreSQL alike.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use super::{AlertStates, Latest, Rollups, Samples, Traffic};

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
        "m20261130_000001_monitor"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Initial {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Samples::Table)
                    .if_not_exists()
                    .col(big_integer(Samples::ServerId))
                    .col(big_integer(Samples::At))
                    .col(double(Samples::Cpu))
                    .col(double(Samples::Mem))
                    .col(double(Samples::Maxmem))
                    .col(double(Samples::Disk))
                    .col(double(Samples::Maxdisk))
                    .col(double(Samples::Netin))
                    .col(double(Samples::Netout))
                    .col(double(Samples::Diskread))
                    .col(double(Samples::Diskwrite))
                    .primary_key(Index::create().col(Samples::ServerId).col(Samples::At))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_samples_at")
                    .table(Samples::Table)
                    .col(Samples::At)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        let mut rollups = Table::create();
        rollups
            .table(Rollups::Table)
            .if_not_exists()
            .col(big_integer(Rollups::ServerId))
            .col(small_integer(Rollups::Tier))
            .col(big_integer(Rollups::Bucket))
            .col(big_integer(Rollups::N));
        for (sum, max) in super::ROLLUP_PAIRS {
            rollups.col(double(sum)).col(double(max));
        }
        manager
            .create_table(
                rollups
                    .primary_key(
                        Index::create()
                            .col(Rollups::ServerId)
                            .col(Rollups::Tier)
                            .col(Rollups::Bucket),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_rollups_bucket")
                    .table(Rollups::Table)
                    .col(Rollups::Tier)
                    .col(Rollups::Bucket)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Latest::Table)
                    .if_not_exists()
                    .col(big_integer(Latest::ServerId).primary_key())
                    .col(big_integer(Latest::NodeId))
                    .col(big_integer(Latest::At))
                    .col(text(Latest::Sample))
                    .col(text(Latest::Counters))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_latest_node")
                    .table(Latest::Table)
                    .col(Latest::NodeId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Traffic::Table)
                    .if_not_exists()
                    .col(big_integer(Traffic::ServerId))
                    .col(string_len(Traffic::Month, 7))
                    .col(big_integer(Traffic::InBytes))
                    .col(big_integer(Traffic::OutBytes))
                    .primary_key(Index::create().col(Traffic::ServerId).col(Traffic::Month))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AlertStates::Table)
                    .if_not_exists()
                    .col(big_integer(AlertStates::ServerId))
                    .col(string_len(AlertStates::Metric, 16))
                    .col(boolean(AlertStates::Firing))
                    .col(integer(AlertStates::Streak))
                    .col(big_integer(AlertStates::ChangedAt))
                    .primary_key(
                        Index::create()
                            .col(AlertStates::ServerId)
                            .col(AlertStates::Metric),
                    )
                    .to_owned(),
            )
            .await
    }
}
