//! Address pools and the addresses allocated from them (one row per address: the unique
//! address is what stops two servers getting one).

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, Set,
};

use super::entity::{allocation, pool};

/// A new pool's row (addresses already normalised).
pub struct NewPool {
    pub name: String,
    pub node_id: Option<i64>,
    pub location: Option<String>,
    pub family: i32,
    pub first: String,
    pub last: String,
    pub prefix_len: i32,
    pub gateway: String,
}

/// Inserts a pool; a name used before is a unique violation.
pub async fn insert<C: ConnectionTrait>(
    db: &C,
    new: NewPool,
    at: DateTime<Utc>,
) -> Result<pool::Model, DbErr> {
    pool::ActiveModel {
        name: Set(new.name),
        node_id: Set(new.node_id),
        location: Set(new.location),
        family: Set(new.family),
        first: Set(new.first),
        last: Set(new.last),
        prefix_len: Set(new.prefix_len),
        gateway: Set(new.gateway),
        created_at: Set(at),
        ..Default::default()
    }
    .insert(db)
    .await
}

/// Every pool, in id order.
pub async fn all<C: ConnectionTrait>(db: &C) -> Result<Vec<pool::Model>, DbErr> {
    pool::Entity::find()
        .order_by_asc(pool::Column::Id)
        .all(db)
        .await
}

/// Every pool of an address family.
pub async fn of_family<C: ConnectionTrait>(db: &C, family: i32) -> Result<Vec<pool::Model>, DbErr> {
    pool::Entity::find()
        .filter(pool::Column::Family.eq(family))
        .all(db)
        .await
}

/// The pools that serve a node: its own first, then its location's, each in id order.
pub async fn serving<C: ConnectionTrait>(
    db: &C,
    family: i32,
    node_id: i64,
    location: &str,
) -> Result<Vec<pool::Model>, DbErr> {
    let mut pools = pool::Entity::find()
        .filter(pool::Column::Family.eq(family))
        .filter(pool::Column::NodeId.eq(node_id))
        .order_by_asc(pool::Column::Id)
        .all(db)
        .await?;
    pools.extend(
        pool::Entity::find()
            .filter(pool::Column::Family.eq(family))
            .filter(pool::Column::NodeId.is_null())
            .filter(pool::Column::Location.eq(location))
            .order_by_asc(pool::Column::Id)
            .all(db)
            .await?,
    );
    Ok(pools)
}

pub async fn find<C: ConnectionTrait>(db: &C, id: i64) -> Result<Option<pool::Model>, DbErr> {
    pool::Entity::find_by_id(id).one(db).await
}

/// The ids of a node's own pools.
pub async fn ids_of_node<C: ConnectionTrait>(db: &C, node_id: i64) -> Result<Vec<i64>, DbErr> {
    Ok(pool::Entity::find()
        .filter(pool::Column::NodeId.eq(node_id))
        .all(db)
        .await?
        .into_iter()
        .map(|p| p.id)
        .collect())
}

pub async fn count_allocated<C: ConnectionTrait>(db: &C, pool_id: i64) -> Result<u64, DbErr> {
    allocation::Entity::find()
        .filter(allocation::Column::PoolId.eq(pool_id))
        .count(db)
        .await
}

/// How many addresses are allocated from any of these pools.
pub async fn count_allocated_in<C: ConnectionTrait>(
    db: &C,
    pool_ids: &[i64],
) -> Result<u64, DbErr> {
    allocation::Entity::find()
        .filter(allocation::Column::PoolId.is_in(pool_ids.iter().copied()))
        .count(db)
        .await
}

/// The addresses taken in a pool.
pub async fn allocated<C: ConnectionTrait>(
    db: &C,
    pool_id: i64,
) -> Result<Vec<allocation::Model>, DbErr> {
    allocation::Entity::find()
        .filter(allocation::Column::PoolId.eq(pool_id))
        .all(db)
        .await
}

/// The address of `family` an owner holds, if any.
pub async fn held_by<C: ConnectionTrait>(
    db: &C,
    owner: &str,
    family: i32,
) -> Result<Option<allocation::Model>, DbErr> {
    allocation::Entity::find()
        .filter(allocation::Column::Owner.eq(owner))
        .filter(allocation::Column::Family.eq(family))
        .one(db)
        .await
}

/// Allocates an address to an owner; an address (or an owner's family) taken meanwhile is a
/// unique violation.
pub async fn allocate<C: ConnectionTrait>(
    db: &C,
    pool: &pool::Model,
    address: &str,
    owner: &str,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    allocation::ActiveModel {
        pool_id: Set(pool.id),
        address: Set(address.to_owned()),
        family: Set(pool.family),
        owner: Set(owner.to_owned()),
        created_at: Set(at),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Releases every address an owner holds; how many.
pub async fn release<C: ConnectionTrait>(db: &C, owner: &str) -> Result<u64, DbErr> {
    Ok(allocation::Entity::delete_many()
        .filter(allocation::Column::Owner.eq(owner))
        .exec(db)
        .await?
        .rows_affected)
}
