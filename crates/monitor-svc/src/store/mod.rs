//! monitor-svc's tables, written in one transaction per node and cycle: raw samples, the
//! 30-minute and 6-hour rollups, each server's latest sample and counters, the month's
//! traffic, alert states and the outbox. Queries live here; the app sees domain types.

pub mod migration;

use std::collections::HashMap;

use sea_orm::sea_query::{Expr, ExprTrait as _, Iden as _, OnConflict, Order, Query, SimpleExpr};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, FromQueryResult, TransactionTrait as _};
use sea_orm_migration::prelude::DeriveIden;

use crate::domain::alerts::{Metric, State as AlertState};
use crate::domain::reading::Counters;
use crate::domain::tiers::{self, Tier};
use crate::domain::traffic::MonthTotal;

#[derive(DeriveIden, Clone, Copy)]
pub(crate) enum Samples {
    Table,
    ServerId,
    At,
    Cpu,
    Mem,
    Maxmem,
    Disk,
    Maxdisk,
    Netin,
    Netout,
    Diskread,
    Diskwrite,
}

#[derive(DeriveIden, Clone, Copy)]
pub(crate) enum Rollups {
    Table,
    ServerId,
    Tier,
    Bucket,
    N,
    CpuSum,
    CpuMax,
    MemSum,
    MemMax,
    MaxmemSum,
    MaxmemMax,
    DiskSum,
    DiskMax,
    MaxdiskSum,
    MaxdiskMax,
    NetinSum,
    NetinMax,
    NetoutSum,
    NetoutMax,
    DiskreadSum,
    DiskreadMax,
    DiskwriteSum,
    DiskwriteMax,
}

/// The raw samples' value columns, in the order of [`Values::fields`].
const SAMPLE_VALUES: [Samples; 9] = [
    Samples::Cpu,
    Samples::Mem,
    Samples::Maxmem,
    Samples::Disk,
    Samples::Maxdisk,
    Samples::Netin,
    Samples::Netout,
    Samples::Diskread,
    Samples::Diskwrite,
];

/// The names [`Values`] reads them by, in the same order.
const VALUE_NAMES: [&str; 9] = [
    "cpu",
    "mem",
    "maxmem",
    "disk",
    "maxdisk",
    "netin",
    "netout",
    "diskread",
    "diskwrite",
];

/// The rollup columns, in the order of [`Values::fields`].
pub(crate) const ROLLUP_PAIRS: [(Rollups, Rollups); 9] = [
    (Rollups::CpuSum, Rollups::CpuMax),
    (Rollups::MemSum, Rollups::MemMax),
    (Rollups::MaxmemSum, Rollups::MaxmemMax),
    (Rollups::DiskSum, Rollups::DiskMax),
    (Rollups::MaxdiskSum, Rollups::MaxdiskMax),
    (Rollups::NetinSum, Rollups::NetinMax),
    (Rollups::NetoutSum, Rollups::NetoutMax),
    (Rollups::DiskreadSum, Rollups::DiskreadMax),
    (Rollups::DiskwriteSum, Rollups::DiskwriteMax),
];

#[derive(DeriveIden, Clone, Copy)]
pub(crate) enum Latest {
    Table,
    ServerId,
    NodeId,
    At,
    Sample,
    Counters,
}

#[derive(DeriveIden, Clone, Copy)]
pub(crate) enum Traffic {
    Table,
    ServerId,
    Month,
    InBytes,
    OutBytes,
}

#[derive(DeriveIden, Clone, Copy)]
pub(crate) enum AlertStates {
    Table,
    ServerId,
    Metric,
    Firing,
    Streak,
    ChangedAt,
}

/// One sample's values as the tiers keep them (PVE's rrddata fields).
#[derive(Clone, Copy, Debug, Default, PartialEq, FromQueryResult)]
pub struct Values {
    pub time: i64,
    pub cpu: f64,
    pub mem: f64,
    pub maxmem: f64,
    pub disk: f64,
    pub maxdisk: f64,
    pub netin: f64,
    pub netout: f64,
    pub diskread: f64,
    pub diskwrite: f64,
}

impl Values {
    fn fields(&self) -> [f64; 9] {
        [
            self.cpu,
            self.mem,
            self.maxmem,
            self.disk,
            self.maxdisk,
            self.netin,
            self.netout,
            self.diskread,
            self.diskwrite,
        ]
    }
}

/// What a cycle needs to know of a server from before.
#[derive(Clone, Debug, Default)]
pub struct Known {
    pub counters: Option<Counters>,
    pub month: Option<MonthTotal>,
    pub alerts: HashMap<Metric, AlertState>,
}

/// One server's part of a cycle's write.
#[derive(Clone, Debug)]
pub struct Reading {
    pub server_id: i64,
    pub values: Values,
    pub at_ms: i64,
    /// The sample as published (JSON of `vps.monitor.v1.Sample`).
    pub sample_json: String,
    pub counters: Counters,
    pub month: MonthTotal,
    /// Alert states that changed (fired, cleared, or their streak moved).
    pub alerts: Vec<(Metric, AlertState)>,
}

/// An event for the outbox.
#[derive(Clone, Debug)]
pub struct Event {
    pub subject: String,
    pub id: uuid::Uuid,
    pub payload: serde_json::Value,
}

#[derive(FromQueryResult)]
struct KnownRow {
    server_id: i64,
    counters: String,
}

#[derive(FromQueryResult)]
struct TrafficRow {
    server_id: i64,
    month: String,
    in_bytes: i64,
    out_bytes: i64,
}

#[derive(FromQueryResult)]
struct AlertRow {
    server_id: i64,
    metric: String,
    firing: bool,
    streak: i32,
    changed_at: i64,
}

const CHUNK: usize = 300;

fn unsigned(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The counters, this month's traffic and the alert states of `servers`.
pub async fn known(
    db: &DatabaseConnection,
    servers: &[i64],
    month: &str,
) -> Result<HashMap<i64, Known>, DbErr> {
    let mut known: HashMap<i64, Known> = HashMap::new();
    for ids in servers.chunks(CHUNK) {
        let select = Query::select()
            .columns([Latest::ServerId, Latest::Counters])
            .from(Latest::Table)
            .and_where(Expr::col(Latest::ServerId).is_in(ids.iter().copied()))
            .to_owned();
        for row in KnownRow::find_by_statement(db.get_database_backend().build(&select))
            .all(db)
            .await?
        {
            known.entry(row.server_id).or_default().counters =
                serde_json::from_str(&row.counters).ok();
        }
        let select = Query::select()
            .columns([
                Traffic::ServerId,
                Traffic::Month,
                Traffic::InBytes,
                Traffic::OutBytes,
            ])
            .from(Traffic::Table)
            .and_where(Expr::col(Traffic::ServerId).is_in(ids.iter().copied()))
            .and_where(Expr::col(Traffic::Month).eq(month))
            .to_owned();
        for row in TrafficRow::find_by_statement(db.get_database_backend().build(&select))
            .all(db)
            .await?
        {
            known.entry(row.server_id).or_default().month = Some(MonthTotal {
                month: row.month,
                in_bytes: unsigned(row.in_bytes),
                out_bytes: unsigned(row.out_bytes),
            });
        }
        let select = Query::select()
            .columns([
                AlertStates::ServerId,
                AlertStates::Metric,
                AlertStates::Firing,
                AlertStates::Streak,
                AlertStates::ChangedAt,
            ])
            .from(AlertStates::Table)
            .and_where(Expr::col(AlertStates::ServerId).is_in(ids.iter().copied()))
            .to_owned();
        for row in AlertRow::find_by_statement(db.get_database_backend().build(&select))
            .all(db)
            .await?
        {
            let Some(metric) = Metric::parse(&row.metric) else {
                continue;
            };
            known.entry(row.server_id).or_default().alerts.insert(
                metric,
                AlertState {
                    firing: row.firing,
                    streak: u32::try_from(row.streak).unwrap_or(0),
                    changed_at_ms: row.changed_at,
                },
            );
        }
    }
    Ok(known)
}

/// Writes one node's cycle: every reading in every tier, the latest samples and counters,
/// the month's traffic, alert states and their events, in one transaction.
pub async fn write_cycle(
    db: &DatabaseConnection,
    node_id: i64,
    readings: &[Reading],
    events: &[Event],
) -> Result<(), DbErr> {
    let txn = platform::db::begin_write(db).await?;
    for chunk in readings.chunks(CHUNK) {
        insert_samples(&txn, chunk).await?;
        for tier in tiers::ROLLUPS {
            upsert_rollups(&txn, tier, chunk).await?;
        }
        upsert_latest(&txn, node_id, chunk).await?;
        upsert_traffic(&txn, chunk).await?;
    }
    let alerts: Vec<(i64, Metric, AlertState)> = readings
        .iter()
        .flat_map(|r| r.alerts.iter().map(|(m, s)| (r.server_id, *m, *s)))
        .collect();
    for chunk in alerts.chunks(CHUNK) {
        let mut insert = Query::insert();
        insert.into_table(AlertStates::Table).columns([
            AlertStates::ServerId,
            AlertStates::Metric,
            AlertStates::Firing,
            AlertStates::Streak,
            AlertStates::ChangedAt,
        ]);
        for (server_id, metric, state) in chunk {
            insert.values_panic([
                (*server_id).into(),
                metric.as_str().into(),
                state.firing.into(),
                i32::try_from(state.streak).unwrap_or(i32::MAX).into(),
                state.changed_at_ms.into(),
            ]);
        }
        insert.on_conflict(
            OnConflict::columns([AlertStates::ServerId, AlertStates::Metric])
                .update_columns([
                    AlertStates::Firing,
                    AlertStates::Streak,
                    AlertStates::ChangedAt,
                ])
                .to_owned(),
        );
        txn.execute(&insert).await?;
    }
    for event in events {
        platform::outbox::enqueue(&txn, &event.subject, event.id, &event.payload).await?;
    }
    txn.commit().await
}

async fn insert_samples<C: ConnectionTrait>(db: &C, readings: &[Reading]) -> Result<(), DbErr> {
    let mut insert = Query::insert();
    let mut columns = vec![Samples::ServerId, Samples::At];
    columns.extend(SAMPLE_VALUES);
    insert.into_table(Samples::Table).columns(columns);
    for r in readings {
        let mut row: Vec<SimpleExpr> = vec![r.server_id.into(), r.values.time.into()];
        row.extend(r.values.fields().map(SimpleExpr::from));
        insert.values_panic(row);
    }
    // A replica that polled the same second again (a takeover) keeps the first sample.
    insert.on_conflict(
        OnConflict::columns([Samples::ServerId, Samples::At])
            .do_nothing()
            .to_owned(),
    );
    db.execute(&insert).await.map(drop)
}

async fn upsert_rollups<C: ConnectionTrait>(
    db: &C,
    tier: Tier,
    readings: &[Reading],
) -> Result<(), DbErr> {
    let Tier::Rollup { width_secs, .. } = tier else {
        return Ok(());
    };
    let mut columns = vec![
        Rollups::ServerId,
        Rollups::Tier,
        Rollups::Bucket,
        Rollups::N,
    ];
    for (sum, max) in ROLLUP_PAIRS {
        columns.push(sum);
        columns.push(max);
    }
    let mut insert = Query::insert();
    insert.into_table(Rollups::Table).columns(columns);
    for r in readings {
        let mut row: Vec<SimpleExpr> = vec![
            r.server_id.into(),
            tier.code().into(),
            tiers::bucket(width_secs, r.values.time).into(),
            1i64.into(),
        ];
        for v in r.values.fields() {
            row.push(v.into());
            row.push(v.into());
        }
        insert.values_panic(row);
    }
    // Sums add up and maxima keep the larger, in SQL that SQLite and PostgreSQL share.
    let mut on_conflict =
        OnConflict::columns([Rollups::ServerId, Rollups::Tier, Rollups::Bucket]).to_owned();
    on_conflict.value(Rollups::N, Expr::cust("rollups.n + excluded.n"));
    for (sum, max) in ROLLUP_PAIRS {
        let (s, m) = (sum.to_string(), max.to_string());
        on_conflict.value(sum, Expr::cust(format!("rollups.{s} + excluded.{s}")));
        on_conflict.value(
            max,
            Expr::cust(format!(
                "CASE WHEN rollups.{m} > excluded.{m} THEN rollups.{m} ELSE excluded.{m} END"
            )),
        );
    }
    insert.on_conflict(on_conflict);
    db.execute(&insert).await.map(drop)
}

async fn upsert_latest<C: ConnectionTrait>(
    db: &C,
    node_id: i64,
    readings: &[Reading],
) -> Result<(), DbErr> {
    let mut insert = Query::insert();
    insert.into_table(Latest::Table).columns([
        Latest::ServerId,
        Latest::NodeId,
        Latest::At,
        Latest::Sample,
        Latest::Counters,
    ]);
    for r in readings {
        let counters = serde_json::to_string(&r.counters)
            .map_err(|e| DbErr::Custom(format!("encoding counters: {e}")))?;
        insert.values_panic([
            r.server_id.into(),
            node_id.into(),
            r.at_ms.into(),
            r.sample_json.clone().into(),
            counters.into(),
        ]);
    }
    insert.on_conflict(
        OnConflict::column(Latest::ServerId)
            .update_columns([Latest::NodeId, Latest::At, Latest::Sample, Latest::Counters])
            .to_owned(),
    );
    db.execute(&insert).await.map(drop)
}

async fn upsert_traffic<C: ConnectionTrait>(db: &C, readings: &[Reading]) -> Result<(), DbErr> {
    let mut insert = Query::insert();
    insert.into_table(Traffic::Table).columns([
        Traffic::ServerId,
        Traffic::Month,
        Traffic::InBytes,
        Traffic::OutBytes,
    ]);
    for r in readings {
        insert.values_panic([
            r.server_id.into(),
            r.month.month.clone().into(),
            signed(r.month.in_bytes).into(),
            signed(r.month.out_bytes).into(),
        ]);
    }
    insert.on_conflict(
        OnConflict::columns([Traffic::ServerId, Traffic::Month])
            .update_columns([Traffic::InBytes, Traffic::OutBytes])
            .to_owned(),
    );
    db.execute(&insert).await.map(drop)
}

#[derive(FromQueryResult)]
struct LatestRow {
    at: i64,
    sample: String,
}

/// A server's latest sample (as JSON of `vps.monitor.v1.Sample`) and when it was taken.
pub async fn latest(
    db: &DatabaseConnection,
    server_id: i64,
) -> Result<Option<(i64, String)>, DbErr> {
    let select = Query::select()
        .columns([Latest::At, Latest::Sample])
        .from(Latest::Table)
        .and_where(Expr::col(Latest::ServerId).eq(server_id))
        .to_owned();
    Ok(
        LatestRow::find_by_statement(db.get_database_backend().build(&select))
            .one(db)
            .await?
            .map(|r| (r.at, r.sample)),
    )
}

/// A server's points in `tier` since `since_secs`, oldest first: each sample, or each
/// period's average or maximum.
pub async fn points(
    db: &DatabaseConnection,
    server_id: i64,
    tier: Tier,
    since_secs: i64,
    max: bool,
) -> Result<Vec<Values>, DbErr> {
    let backend = db.get_database_backend();
    let select = match tier {
        Tier::Raw => Query::select()
            .expr_as(Expr::col(Samples::At), "time")
            .columns(SAMPLE_VALUES)
            .from(Samples::Table)
            .and_where(Expr::col(Samples::ServerId).eq(server_id))
            .and_where(Expr::col(Samples::At).gte(since_secs))
            .order_by(Samples::At, Order::Asc)
            .to_owned(),
        Tier::Rollup { .. } => {
            let mut select = Query::select();
            select.expr_as(Expr::col(Rollups::Bucket), "time");
            for ((sum, most), name) in ROLLUP_PAIRS.into_iter().zip(VALUE_NAMES) {
                if max {
                    select.expr_as(Expr::col(most), name);
                } else {
                    select.expr_as(Expr::cust(format!("{} / n", sum.to_string())), name);
                }
            }
            select
                .from(Rollups::Table)
                .and_where(Expr::col(Rollups::ServerId).eq(server_id))
                .and_where(Expr::col(Rollups::Tier).eq(tier.code()))
                .and_where(Expr::col(Rollups::Bucket).gte(since_secs))
                .order_by(Rollups::Bucket, Order::Asc)
                .to_owned()
        }
    };
    Values::find_by_statement(backend.build(&select))
        .all(db)
        .await
}

/// Drops what has aged out of each tier, and months of traffic older than a year.
pub async fn prune(db: &DatabaseConnection, now_secs: i64) -> Result<u64, DbErr> {
    let txn = db.begin().await?;
    let mut removed = 0;
    let delete = Query::delete()
        .from_table(Samples::Table)
        .and_where(Expr::col(Samples::At).lt(now_secs - tiers::RAW_KEEP_SECS))
        .to_owned();
    removed += txn.execute(&delete).await?.rows_affected();
    for tier in tiers::ROLLUPS {
        let Tier::Rollup { keep_secs, .. } = tier else {
            continue;
        };
        let delete = Query::delete()
            .from_table(Rollups::Table)
            .and_where(Expr::col(Rollups::Tier).eq(tier.code()))
            .and_where(Expr::col(Rollups::Bucket).lt(now_secs - keep_secs))
            .to_owned();
        removed += txn.execute(&delete).await?.rows_affected();
    }
    let year_ago = crate::domain::traffic::month_of((now_secs - 366 * tiers::DAY_SECS) * 1000);
    let delete = Query::delete()
        .from_table(Traffic::Table)
        .and_where(Expr::col(Traffic::Month).lt(year_ago))
        .to_owned();
    removed += txn.execute(&delete).await?.rows_affected();
    txn.commit().await?;
    Ok(removed)
}

/// Forgets the latest samples and alert states of servers no longer on `node_id` (deleted
/// or moved); their history ages out with the tiers.
pub async fn forget_gone(
    db: &DatabaseConnection,
    node_id: i64,
    present: &[i64],
) -> Result<u64, DbErr> {
    #[derive(FromQueryResult)]
    struct Id {
        server_id: i64,
    }
    let select = Query::select()
        .column(Latest::ServerId)
        .from(Latest::Table)
        .and_where(Expr::col(Latest::NodeId).eq(node_id))
        .to_owned();
    let gone: Vec<i64> = Id::find_by_statement(db.get_database_backend().build(&select))
        .all(db)
        .await?
        .into_iter()
        .map(|r| r.server_id)
        .filter(|id| !present.contains(id))
        .collect();
    if gone.is_empty() {
        return Ok(0);
    }
    let txn = db.begin().await?;
    let mut removed = 0;
    for ids in gone.chunks(CHUNK) {
        let delete = Query::delete()
            .from_table(Latest::Table)
            .and_where(Expr::col(Latest::ServerId).is_in(ids.iter().copied()))
            .and_where(Expr::col(Latest::NodeId).eq(node_id))
            .to_owned();
        removed += txn.execute(&delete).await?.rows_affected();
        let delete = Query::delete()
            .from_table(AlertStates::Table)
            .and_where(Expr::col(AlertStates::ServerId).is_in(ids.iter().copied()))
            .to_owned();
        txn.execute(&delete).await?;
    }
    txn.commit().await?;
    Ok(removed)
}
