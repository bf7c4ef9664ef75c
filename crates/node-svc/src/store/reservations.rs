//! Capacity reservations and the node counters they add up to. Taking capacity is one
//! conditional update of a node's `reserved_*` counters, so concurrent placements can never
//! oversubscribe it (on SQLite or PostgreSQL).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
};

use super::entity::{node, reservation};

/// Cores, memory (MB) and disk (GB), as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amount {
    pub cores: i64,
    pub memory_mb: i64,
    pub disk_gb: i64,
}

pub async fn find<C: ConnectionTrait>(
    db: &C,
    id: &str,
) -> Result<Option<reservation::Model>, DbErr> {
    reservation::Entity::find_by_id(id.to_owned()).one(db).await
}

/// Nodes that may take a new server: online and not known to be unreachable.
pub async fn placeable_nodes<C: ConnectionTrait>(db: &C) -> Result<Vec<node::Model>, DbErr> {
    node::Entity::find()
        .filter(node::Column::State.eq("online"))
        .filter(node::Column::Health.ne("unreachable"))
        .all(db)
        .await
}

/// Adds `amount` to a node's reserved counters if it still fits under its capacity times
/// its overcommit ratios; false when it does not (or the node went offline).
pub async fn take<C: ConnectionTrait>(db: &C, node_id: i64, amount: Amount) -> Result<bool, DbErr> {
    let fits = |reserved: node::Column, add: i64, total: node::Column, ratio: node::Column| {
        Expr::col(reserved)
            .add(add)
            .lte(Expr::col(total).mul(Expr::col(ratio)))
    };
    let taken = node::Entity::update_many()
        .col_expr(
            node::Column::ReservedCores,
            Expr::col(node::Column::ReservedCores).add(amount.cores),
        )
        .col_expr(
            node::Column::ReservedMemoryMb,
            Expr::col(node::Column::ReservedMemoryMb).add(amount.memory_mb),
        )
        .col_expr(
            node::Column::ReservedDiskGb,
            Expr::col(node::Column::ReservedDiskGb).add(amount.disk_gb),
        )
        .filter(node::Column::Id.eq(node_id))
        .filter(node::Column::State.eq("online"))
        .filter(fits(
            node::Column::ReservedCores,
            amount.cores,
            node::Column::Cores,
            node::Column::CpuOvercommit,
        ))
        .filter(fits(
            node::Column::ReservedMemoryMb,
            amount.memory_mb,
            node::Column::MemoryMb,
            node::Column::MemoryOvercommit,
        ))
        .filter(fits(
            node::Column::ReservedDiskGb,
            amount.disk_gb,
            node::Column::DiskGb,
            node::Column::DiskOvercommit,
        ))
        .exec(db)
        .await?;
    Ok(taken.rows_affected == 1)
}

/// Records a reservation (its id is unique: a second insert of the same id is a unique
/// violation).
pub async fn insert<C: ConnectionTrait>(
    db: &C,
    id: &str,
    node_id: i64,
    amount: Amount,
    at: DateTime<Utc>,
) -> Result<reservation::Model, DbErr> {
    reservation::ActiveModel {
        id: Set(id.to_owned()),
        node_id: Set(node_id),
        cores: Set(amount.cores),
        memory_mb: Set(amount.memory_mb),
        disk_gb: Set(amount.disk_gb),
        created_at: Set(at),
    }
    .insert(db)
    .await
}

/// Deletes a reservation; false when another caller deleted it first.
pub async fn delete<C: ConnectionTrait>(db: &C, id: &str) -> Result<bool, DbErr> {
    let deleted = reservation::Entity::delete_by_id(id.to_owned())
        .exec(db)
        .await?;
    Ok(deleted.rows_affected == 1)
}

/// Takes `amount` off a node's reserved counters.
pub async fn give_back<C: ConnectionTrait>(
    db: &C,
    node_id: i64,
    amount: Amount,
) -> Result<(), DbErr> {
    node::Entity::update_many()
        .col_expr(
            node::Column::ReservedCores,
            Expr::col(node::Column::ReservedCores).sub(amount.cores),
        )
        .col_expr(
            node::Column::ReservedMemoryMb,
            Expr::col(node::Column::ReservedMemoryMb).sub(amount.memory_mb),
        )
        .col_expr(
            node::Column::ReservedDiskGb,
            Expr::col(node::Column::ReservedDiskGb).sub(amount.disk_gb),
        )
        .filter(node::Column::Id.eq(node_id))
        .exec(db)
        .await?;
    Ok(())
}
