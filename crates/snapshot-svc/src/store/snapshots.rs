//! Snapshots.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait as _, ColumnTrait as _, ConnectionTrait, DbErr, EntityTrait as _,
    PaginatorTrait as _, QueryFilter as _, QueryOrder as _,
};

use super::entity::snapshot;
use crate::domain::Status;

pub async fn find<C: ConnectionTrait>(db: &C, id: i64) -> Result<Option<snapshot::Model>, DbErr> {
    snapshot::Entity::find_by_id(id).one(db).await
}

pub async fn by_name<C: ConnectionTrait>(
    db: &C,
    server_id: i64,
    name: &str,
) -> Result<Option<snapshot::Model>, DbErr> {
    snapshot::Entity::find()
        .filter(snapshot::Column::ServerId.eq(server_id))
        .filter(snapshot::Column::Name.eq(name))
        .one(db)
        .await
}

/// The snapshots that count toward a server's limit (all but the failed).
pub async fn counted<C: ConnectionTrait>(db: &C, server_id: i64) -> Result<u64, DbErr> {
    snapshot::Entity::find()
        .filter(snapshot::Column::ServerId.eq(server_id))
        .filter(snapshot::Column::Status.ne(Status::Failed.as_str()))
        .count(db)
        .await
}

/// A server's snapshots (`None`: every server's of `owner`, or everyone's), oldest first.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    owner: Option<i64>,
    server_id: Option<i64>,
) -> Result<Vec<snapshot::Model>, DbErr> {
    let mut query = snapshot::Entity::find().order_by_asc(snapshot::Column::Id);
    if let Some(owner) = owner {
        query = query.filter(snapshot::Column::OwnerId.eq(owner));
    }
    if let Some(server_id) = server_id {
        query = query.filter(snapshot::Column::ServerId.eq(server_id));
    }
    query.all(db).await
}

pub async fn insert<C: ConnectionTrait>(
    db: &C,
    row: snapshot::ActiveModel,
) -> Result<snapshot::Model, DbErr> {
    row.insert(db).await
}

pub async fn delete<C: ConnectionTrait>(db: &C, id: i64) -> Result<(), DbErr> {
    snapshot::Entity::delete_by_id(id).exec(db).await?;
    Ok(())
}

/// Marks a snapshot as worked on by `task`, only if no task is at work on it and it is
/// completed (a restore or a delete) or failed (a delete): of two that race, one wins.
pub async fn claim<C: ConnectionTrait>(
    db: &C,
    id: i64,
    task: &str,
    statuses: &[Status],
    at_ms: i64,
) -> Result<bool, DbErr> {
    let result = snapshot::Entity::update_many()
        .col_expr(snapshot::Column::TaskId, Expr::value(task))
        .col_expr(snapshot::Column::UpdatedAt, Expr::value(at_ms))
        .filter(snapshot::Column::Id.eq(id))
        .filter(snapshot::Column::TaskId.is_null())
        .filter(snapshot::Column::Status.is_in(statuses.iter().map(|s| s.as_str())))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Ends `task`'s work on a snapshot, leaving it in `status` (and its size, if known).
pub async fn settle<C: ConnectionTrait>(
    db: &C,
    id: i64,
    task: &str,
    status: Status,
    size_mb: Option<i64>,
    at_ms: i64,
) -> Result<(), DbErr> {
    let mut update = snapshot::Entity::update_many()
        .col_expr(
            snapshot::Column::TaskId,
            Expr::value(Option::<String>::None),
        )
        .col_expr(snapshot::Column::Status, Expr::value(status.as_str()))
        .col_expr(snapshot::Column::UpdatedAt, Expr::value(at_ms))
        .filter(snapshot::Column::Id.eq(id))
        .filter(snapshot::Column::TaskId.eq(task));
    if let Some(size) = size_mb {
        update = update.col_expr(snapshot::Column::SizeMb, Expr::value(size));
    }
    update.exec(db).await?;
    Ok(())
}

/// Puts a snapshot back under `task` in `status` (the undo of a settle).
pub async fn reclaim<C: ConnectionTrait>(
    db: &C,
    id: i64,
    task: &str,
    status: Status,
    at_ms: i64,
) -> Result<(), DbErr> {
    snapshot::Entity::update_many()
        .col_expr(snapshot::Column::TaskId, Expr::value(task))
        .col_expr(snapshot::Column::Status, Expr::value(status.as_str()))
        .col_expr(snapshot::Column::UpdatedAt, Expr::value(at_ms))
        .filter(snapshot::Column::Id.eq(id))
        .filter(
            sea_orm::Condition::any()
                .add(snapshot::Column::TaskId.is_null())
                .add(snapshot::Column::TaskId.eq(task)),
        )
        .exec(db)
        .await?;
    Ok(())
}

pub async fn of_server<C: ConnectionTrait>(
    db: &C,
    server_id: i64,
) -> Result<Vec<snapshot::Model>, DbErr> {
    list(db, None, Some(server_id)).await
}

pub async fn delete_of_server<C: ConnectionTrait>(db: &C, server_id: i64) -> Result<u64, DbErr> {
    Ok(snapshot::Entity::delete_many()
        .filter(snapshot::Column::ServerId.eq(server_id))
        .exec(db)
        .await?
        .rows_affected)
}
