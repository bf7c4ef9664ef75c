//! Nodes. Their `reserved_*` counters belong to `reservations`.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};

use super::entity::{node, reservation};

/// Inserts a node (a name used before is a unique violation).
pub async fn insert<C: ConnectionTrait>(
    db: &C,
    row: node::ActiveModel,
) -> Result<node::Model, DbErr> {
    row.insert(db).await
}

pub async fn find<C: ConnectionTrait>(db: &C, id: i64) -> Result<Option<node::Model>, DbErr> {
    node::Entity::find_by_id(id).one(db).await
}

pub async fn by_uuid<C: ConnectionTrait>(db: &C, uuid: &str) -> Result<Option<node::Model>, DbErr> {
    node::Entity::find()
        .filter(node::Column::Uuid.eq(uuid))
        .one(db)
        .await
}

pub async fn by_name<C: ConnectionTrait>(db: &C, name: &str) -> Result<Option<node::Model>, DbErr> {
    node::Entity::find()
        .filter(node::Column::Name.eq(name))
        .one(db)
        .await
}

/// Every node, in id order.
pub async fn all<C: ConnectionTrait>(db: &C) -> Result<Vec<node::Model>, DbErr> {
    node::Entity::find()
        .order_by_asc(node::Column::Id)
        .all(db)
        .await
}

/// Up to `fetch` nodes with ids above `after`, in id order; only `ids` when given.
pub async fn page<C: ConnectionTrait>(
    db: &C,
    after: i64,
    fetch: u64,
    ids: &[i64],
) -> Result<Vec<node::Model>, DbErr> {
    let mut query = node::Entity::find()
        .filter(node::Column::Id.gt(after))
        .order_by_asc(node::Column::Id)
        .limit(fetch);
    if !ids.is_empty() {
        query = query.filter(node::Column::Id.is_in(ids.iter().copied()));
    }
    query.all(db).await
}

/// Saves a changed node.
pub async fn update<C: ConnectionTrait>(
    db: &C,
    row: node::ActiveModel,
) -> Result<node::Model, DbErr> {
    row.update(db).await
}

pub async fn set_state<C: ConnectionTrait>(
    db: &C,
    row: node::Model,
    state: &str,
) -> Result<node::Model, DbErr> {
    let mut active: node::ActiveModel = row.into();
    active.state = Set(state.to_owned());
    active.update(db).await
}

pub async fn set_health<C: ConnectionTrait>(db: &C, id: i64, health: &str) -> Result<(), DbErr> {
    node::Entity::update_many()
        .col_expr(node::Column::Health, Expr::value(health))
        .filter(node::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// How many servers (reservations) live on a node.
pub async fn count_servers<C: ConnectionTrait>(db: &C, id: i64) -> Result<u64, DbErr> {
    reservation::Entity::find()
        .filter(reservation::Column::NodeId.eq(id))
        .count(db)
        .await
}

pub async fn delete<C: ConnectionTrait>(db: &C, id: i64) -> Result<(), DbErr> {
    node::Entity::delete_by_id(id).exec(db).await?;
    Ok(())
}
