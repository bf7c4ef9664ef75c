//! Leases: who does a named piece of background work (a billing loop, a saga, a node to
//! poll) when several replicas could. A lease is a row with an owner and an expiry, taken
//! and renewed with conditional updates, so at most one replica holds it at a time; a
//! replica that dies loses it when it expires, and another takes over.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict, Query, Table};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, StatementBuilder};
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::Shutdown;

#[derive(DeriveIden)]
enum Leases {
    Table,
    Name,
    Owner,
    ExpiresAt,
}

/// The migration that creates the `leases` table; each service with background work lists
/// it in its migrator.
pub struct CreateLeases;

impl MigrationName for CreateLeases {
    fn name(&self) -> &str {
        "m20261130_900000_leases"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateLeases {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Leases::Table)
                    .if_not_exists()
                    .col(string(Leases::Name).primary_key())
                    .col(string(Leases::Owner))
                    .col(timestamp_with_time_zone(Leases::ExpiresAt))
                    .to_owned(),
            )
            .await
    }
}

/// One replica's leases: every lease it takes carries its owner id.
#[derive(Clone, Debug)]
pub struct LeaseHolder {
    db: DatabaseConnection,
    owner: String,
    ttl: Duration,
}

impl LeaseHolder {
    /// A holder with a fresh owner id (one per process) and leases of `ttl`.
    pub fn new(db: DatabaseConnection, ttl: Duration) -> Self {
        Self {
            db,
            owner: uuid::Uuid::new_v4().to_string(),
            ttl,
        }
    }

    fn expiry(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + chrono::TimeDelta::from_std(self.ttl).unwrap_or(chrono::TimeDelta::seconds(30))
    }

    /// This holder's owner id (one per process).
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The unexpired leases whose names start with `prefix`, with their owners: how
    /// replicas that each hold a membership lease find one another.
    pub async fn live(&self, prefix: &str) -> Result<Vec<(String, String)>, DbErr> {
        let select = Query::select()
            .columns([Leases::Name, Leases::Owner])
            .from(Leases::Table)
            .and_where(Expr::col(Leases::Name).like(format!("{}%", escape_like(prefix))))
            .and_where(Expr::col(Leases::ExpiresAt).gt(Utc::now()))
            .to_owned();
        let rows = self.db.query_all(&select).await?;
        rows.into_iter()
            .map(|row| Ok((row.try_get("", "name")?, row.try_get("", "owner")?)))
            .collect()
    }

    /// How long a lease lasts unless renewed.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Takes the lease `name` if nobody holds it, it has expired, or this holder has it
    /// already (which renews it). True when this holder has it afterwards.
    pub async fn acquire(&self, name: &str) -> Result<bool, DbErr> {
        let now = Utc::now();
        let expires = self.expiry(now);
        // A lease nobody ever took: one insert wins.
        let insert = Query::insert()
            .into_table(Leases::Table)
            .columns([Leases::Name, Leases::Owner, Leases::ExpiresAt])
            .values_panic([name.into(), self.owner.clone().into(), expires.into()])
            .on_conflict(OnConflict::column(Leases::Name).do_nothing().to_owned())
            .to_owned();
        let inserted = self.exec(&insert).await?;
        if inserted > 0 {
            return Ok(true);
        }
        // Otherwise one conditional update: ours already, or expired.
        let update = Query::update()
            .table(Leases::Table)
            .value(Leases::Owner, self.owner.clone())
            .value(Leases::ExpiresAt, expires)
            .and_where(Expr::col(Leases::Name).eq(name))
            .and_where(
                Expr::col(Leases::Owner)
                    .eq(self.owner.clone())
                    .or(Expr::col(Leases::ExpiresAt).lt(now)),
            )
            .to_owned();
        Ok(self.exec(&update).await? == 1)
    }

    /// Lets the lease go at once (if this holder has it), so another may take it.
    pub async fn release(&self, name: &str) -> Result<(), DbErr> {
        let delete = Query::delete()
            .from_table(Leases::Table)
            .and_where(Expr::col(Leases::Name).eq(name))
            .and_where(Expr::col(Leases::Owner).eq(self.owner.clone()))
            .to_owned();
        self.exec(&delete).await?;
        Ok(())
    }

    async fn exec<S: StatementBuilder>(&self, statement: &S) -> Result<u64, DbErr> {
        Ok(self.db.execute(statement).await?.rows_affected())
    }

    /// Runs `work` every `every` for as long as this holder has the lease `name`, until
    /// `shutdown`; the lease is renewed before each run and released at the end. Any number
    /// of replicas may run this: one at a time does the work.
    pub async fn run_singleton<F, Fut>(
        &self,
        name: &str,
        every: Duration,
        shutdown: Shutdown,
        work: F,
    ) where
        F: FnMut() -> Fut,
        Fut: Future<Output = ()>,
    {
        self.run_singleton_woken(name, every, &tokio::sync::Notify::new(), shutdown, work)
            .await;
    }

    /// [`LeaseHolder::run_singleton`], also running as soon as `wake` is notified (work
    /// this replica just made), not only on the next tick.
    pub async fn run_singleton_woken<F, Fut>(
        &self,
        name: &str,
        every: Duration,
        wake: &tokio::sync::Notify,
        shutdown: Shutdown,
        mut work: F,
    ) where
        F: FnMut() -> Fut,
        Fut: Future<Output = ()>,
    {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // Shutdown first: after a long round the tick is ready at once too, and a replica
            // that is draining must not start another round.
            tokio::select! {
                biased;
                () = shutdown.wait() => break,
                _ = tick.tick() => {}
                () = wake.notified() => {}
            }
            match self.acquire(name).await {
                Ok(true) => work().await,
                Ok(false) => {}
                Err(error) => tracing::warn!(lease = name, error = %error, "lease check failed"),
            }
        }
        if let Err(error) = self.release(name).await {
            tracing::warn!(lease = name, error = %error, "releasing a lease failed");
        }
    }
}

/// A prefix for LIKE without its wildcards: lease names are letters, digits, `:` and `-`.
fn escape_like(prefix: &str) -> String {
    prefix.replace(['%', '_'], "")
}
