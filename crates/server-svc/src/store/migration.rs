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
            Box::new(QueuedDelete),
            Box::new(Quotas),
            Box::new(platform::lease::CreateLeases),
            Box::new(PlanLimits),
            Box::new(TrafficActions),
            Box::new(BalanceWarnings),
            Box::new(platform::outbox::AddTraceParent),
            Box::new(ReadVersions),
            Box::new(IdempotencyClaims),
        ]
    }
}

struct Initial;

impl MigrationName for Initial {
    fn name(&self) -> &str {
        "m20261122_000001_servers"
    }
}

#[derive(DeriveIden)]
enum Servers {
    Table,
    Id,
    Uuid,
    OwnerId,
    Name,
    Hostname,
    PlanId,
    ImageId,
    Location,
    NodeId,
    ReservationId,
    GuestName,
    Ipv4,
    Ipv6,
    Status,
    StatusReason,
    Cores,
    MemoryMb,
    DiskGb,
    Backups,
    Ports,
    PrimaryPort,
    Variables,
    TrafficCombined,
    TrafficLimit,
    TrafficIn,
    TrafficOut,
    RootPassword,
    HourlyPrice,
    PaidUntil,
    RanInPeriod,
    OverdueSince,
    TaskId,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
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
    Error,
    ErrorReason,
    Params,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Plans {
    Table,
    Id,
    Name,
    Vcpus,
    MemoryMb,
    DiskGb,
    BandwidthGb,
    MonthlyPrice,
}

#[derive(DeriveIden)]
enum Images {
    Table,
    Id,
    Name,
    Kind,
    Templates,
}

#[derive(DeriveIden)]
enum Locations {
    Table,
    Code,
    Name,
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    Scope,
    RequestHash,
    Reply,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Initial {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Servers::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Servers::Id))
                    .col(string_uniq(Servers::Uuid))
                    .col(big_integer(Servers::OwnerId))
                    .col(string(Servers::Name))
                    .col(string(Servers::Hostname))
                    .col(big_integer(Servers::PlanId))
                    .col(big_integer(Servers::ImageId))
                    .col(string(Servers::Location))
                    .col(big_integer_null(Servers::NodeId))
                    .col(string_null(Servers::ReservationId))
                    .col(string(Servers::GuestName))
                    .col(string_null(Servers::Ipv4))
                    .col(string_null(Servers::Ipv6))
                    .col(string(Servers::Status))
                    .col(text(Servers::StatusReason))
                    .col(big_integer(Servers::Cores))
                    .col(big_integer(Servers::MemoryMb))
                    .col(big_integer(Servers::DiskGb))
                    .col(boolean(Servers::Backups))
                    .col(string(Servers::Ports))
                    .col(string(Servers::PrimaryPort))
                    .col(text(Servers::Variables))
                    .col(boolean(Servers::TrafficCombined))
                    .col(big_integer(Servers::TrafficLimit))
                    .col(big_integer(Servers::TrafficIn))
                    .col(big_integer(Servers::TrafficOut))
                    .col(text_null(Servers::RootPassword))
                    .col(big_integer(Servers::HourlyPrice))
                    .col(big_integer(Servers::PaidUntil))
                    .col(boolean(Servers::RanInPeriod).default(false))
                    .col(big_integer_null(Servers::OverdueSince))
                    .col(string_null(Servers::TaskId))
                    .col(big_integer(Servers::CreatedAt))
                    .col(big_integer(Servers::UpdatedAt))
                    .col(big_integer_null(Servers::DeletedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_servers_owner")
                    .table(Servers::Table)
                    .col(Servers::OwnerId)
                    .col(Servers::Id)
                    .if_not_exists()
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
                    .col(text(Tasks::Error))
                    .col(string(Tasks::ErrorReason))
                    .col(text(Tasks::Params))
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
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Plans::Table)
                    .if_not_exists()
                    .col(big_integer(Plans::Id).primary_key())
                    .col(string(Plans::Name))
                    .col(big_integer(Plans::Vcpus))
                    .col(big_integer(Plans::MemoryMb))
                    .col(big_integer(Plans::DiskGb))
                    .col(big_integer(Plans::BandwidthGb))
                    .col(big_integer(Plans::MonthlyPrice))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Images::Table)
                    .if_not_exists()
                    .col(big_integer(Images::Id).primary_key())
                    .col(string(Images::Name))
                    .col(string(Images::Kind))
                    .col(text(Images::Templates))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Locations::Table)
                    .if_not_exists()
                    .col(string(Locations::Code).primary_key())
                    .col(string(Locations::Name))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKeys::Table)
                    .if_not_exists()
                    .col(string(IdempotencyKeys::Scope).primary_key())
                    .col(string(IdempotencyKeys::RequestHash))
                    .col(text_null(IdempotencyKeys::Reply))
                    .col(big_integer(IdempotencyKeys::CreatedAt))
                    .to_owned(),
            )
            .await
    }
}

/// A delete asked for while another task runs waits on the server row.
struct QueuedDelete;

impl MigrationName for QueuedDelete {
    fn name(&self) -> &str {
        "m20261130_000001_queued_delete"
    }
}

#[derive(DeriveIden)]
enum ServersQueue {
    #[sea_orm(iden = "servers")]
    Table,
    DeleteTaskId,
}

#[async_trait::async_trait]
impl MigrationTrait for QueuedDelete {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ServersQueue::Table)
                    .add_column(string_null(ServersQueue::DeleteTaskId))
                    .to_owned(),
            )
            .await
    }
}

/// How many snapshots and backups a server on each plan may keep (0: the defaults).
struct PlanLimits;

impl MigrationName for PlanLimits {
    fn name(&self) -> &str {
        "m20261130_000003_plan_limits"
    }
}

#[derive(DeriveIden)]
enum PlanLimitColumns {
    #[sea_orm(iden = "plans")]
    Table,
    SnapshotLimit,
    BackupLimit,
}

#[async_trait::async_trait]
impl MigrationTrait for PlanLimits {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one at a time.
        for column in [
            PlanLimitColumns::SnapshotLimit,
            PlanLimitColumns::BackupLimit,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(PlanLimitColumns::Table)
                        .add_column(big_integer(column).default(0))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

/// What a plan does when a server's month's traffic passes its limit, and the month a
/// server last did (so it happens once per month).
struct TrafficActions;

impl MigrationName for TrafficActions {
    fn name(&self) -> &str {
        "m20261130_000004_traffic_actions"
    }
}

#[derive(DeriveIden)]
enum TrafficPlanColumns {
    #[sea_orm(iden = "plans")]
    Table,
    TrafficAction,
    ThrottleMbit,
}

#[derive(DeriveIden)]
enum TrafficServerColumns {
    #[sea_orm(iden = "servers")]
    Table,
    TrafficExceeded,
}

#[async_trait::async_trait]
impl MigrationTrait for TrafficActions {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(TrafficPlanColumns::Table)
                    .add_column(string(TrafficPlanColumns::TrafficAction).default("none"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(TrafficPlanColumns::Table)
                    .add_column(big_integer(TrafficPlanColumns::ThrottleMbit).default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(TrafficServerColumns::Table)
                    .add_column(string(TrafficServerColumns::TrafficExceeded).default(""))
                    .to_owned(),
            )
            .await
    }
}

/// Per-user quotas.
struct Quotas;

impl MigrationName for Quotas {
    fn name(&self) -> &str {
        "m20261130_000002_quotas"
    }
}

#[derive(DeriveIden)]
enum QuotaTable {
    #[sea_orm(iden = "quotas")]
    Table,
    UserId,
    Custom,
    Servers,
    Cores,
    MemoryMb,
    Addresses,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Quotas {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(QuotaTable::Table)
                    .if_not_exists()
                    .col(big_integer(QuotaTable::UserId).primary_key())
                    .col(boolean(QuotaTable::Custom))
                    .col(big_integer(QuotaTable::Servers))
                    .col(big_integer(QuotaTable::Cores))
                    .col(big_integer(QuotaTable::MemoryMb))
                    .col(big_integer(QuotaTable::Addresses))
                    .col(big_integer(QuotaTable::UpdatedAt))
                    .to_owned(),
            )
            .await
    }
}

/// Users whose balance covers fewer days than the deployment warns at, since when: one
/// low-balance reminder per episode.
struct BalanceWarnings;

impl MigrationName for BalanceWarnings {
    fn name(&self) -> &str {
        "m20261130_000005_balance_warnings"
    }
}

#[derive(DeriveIden)]
enum BalanceWarningsTable {
    #[sea_orm(iden = "balance_warnings")]
    Table,
    OwnerId,
    Since,
}

#[async_trait::async_trait]
impl MigrationTrait for BalanceWarnings {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(BalanceWarningsTable::Table)
                    .if_not_exists()
                    .col(big_integer(BalanceWarningsTable::OwnerId).primary_key())
                    .col(big_integer(BalanceWarningsTable::Since))
                    .to_owned(),
            )
            .await
    }
}

/// Read versions (`store::versions`): a counter per owner that a trigger moves on whenever one
/// of their servers is inserted, changed or deleted (both owners' when a server changes hands),
/// and one for the catalog, moved when a plan or image is. The counters only grow, so their sum
/// names the state of every listing at once. On PostgreSQL the increment takes the owner's row
/// lock, so writers to different owners never wait for each other.
struct ReadVersions;

impl MigrationName for ReadVersions {
    fn name(&self) -> &str {
        "m20261201_000001_read_versions"
    }
}

/// An owner's (or the catalog's) counter moved on, in either database's dialect of upsert.
fn bump(scope: &str) -> String {
    format!(
        "INSERT INTO read_versions (scope, version) VALUES ({scope}, 1)
    ON CONFLICT (scope) DO UPDATE SET version = read_versions.version + 1;"
    )
}

fn read_versions_sqlite() -> String {
    let mut sql = String::from(
        "CREATE TABLE IF NOT EXISTS read_versions (scope BIGINT NOT NULL PRIMARY KEY, version BIGINT NOT NULL);\n",
    );
    for (event, scopes) in [
        ("INSERT", vec!["NEW.owner_id"]),
        ("UPDATE", vec!["OLD.owner_id", "NEW.owner_id"]),
        ("DELETE", vec!["OLD.owner_id"]),
    ] {
        let body: String = scopes.iter().map(|scope| bump(scope)).collect();
        sql += &format!(
            "CREATE TRIGGER IF NOT EXISTS read_versions_servers_{op} AFTER {event} ON servers BEGIN {body} END;\n",
            op = event.to_lowercase()
        );
        for table in ["plans", "images"] {
            sql += &format!(
                "CREATE TRIGGER IF NOT EXISTS read_versions_{table}_{op} AFTER {event} ON {table} BEGIN {body} END;\n",
                op = event.to_lowercase(),
                body = bump("0"),
            );
        }
    }
    sql
}

fn read_versions_postgres() -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS read_versions (scope BIGINT NOT NULL PRIMARY KEY, version BIGINT NOT NULL);
CREATE OR REPLACE FUNCTION read_versions_servers() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'INSERT' THEN {old} END IF;
  IF TG_OP <> 'DELETE' THEN {new} END IF;
  RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION read_versions_catalog() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  {catalog}
  RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER read_versions_servers AFTER INSERT OR UPDATE OR DELETE ON servers
  FOR EACH ROW EXECUTE FUNCTION read_versions_servers();
CREATE OR REPLACE TRIGGER read_versions_plans AFTER INSERT OR UPDATE OR DELETE ON plans
  FOR EACH STATEMENT EXECUTE FUNCTION read_versions_catalog();
CREATE OR REPLACE TRIGGER read_versions_images AFTER INSERT OR UPDATE OR DELETE ON images
  FOR EACH STATEMENT EXECUTE FUNCTION read_versions_catalog();
",
        old = bump("OLD.owner_id"),
        new = bump("NEW.owner_id"),
        catalog = bump("0"),
    )
}

#[async_trait::async_trait]
impl MigrationTrait for ReadVersions {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let sql = if manager.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
            read_versions_postgres()
        } else {
            read_versions_sqlite()
        };
        manager.get_connection().execute_unprepared(&sql).await?;
        Ok(())
    }
}

/// Idempotency keys held by a lease: the request that claimed a key renews `claimed_until`
/// while it runs, so a repeat can take over a key whose claimer died instead of waiting for it
/// for ten minutes; `claim_token` fences the claimer's writes; `task_id` is the task its
/// change made, written in the change's own transaction, so a taker-over answers with it
/// rather than doing the change twice.
struct IdempotencyClaims;

impl MigrationName for IdempotencyClaims {
    fn name(&self) -> &str {
        "m20261201_000002_idempotency_claims"
    }
}

#[derive(DeriveIden)]
enum IdempotencyClaimColumns {
    #[sea_orm(iden = "idempotency_keys")]
    Table,
    ClaimToken,
    ClaimedUntil,
    TaskId,
}

#[async_trait::async_trait]
impl MigrationTrait for IdempotencyClaims {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds no more at once.
        for column in [
            string(IdempotencyClaimColumns::ClaimToken)
                .default("")
                .to_owned(),
            big_integer(IdempotencyClaimColumns::ClaimedUntil)
                .default(0)
                .to_owned(),
            string_null(IdempotencyClaimColumns::TaskId),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(IdempotencyClaimColumns::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
