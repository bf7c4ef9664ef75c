//! Backups.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait as _, ColumnTrait as _, ConnectionTrait, DbErr, EntityTrait as _,
    PaginatorTrait as _, QueryFilter as _, QueryOrder as _,
};

use super::entity::backup;
use crate::domain::Status;

pub async fn find<C: ConnectionTrait>(db: &C, id: i64) -> Result<Option<backup::Model>, DbErr> {
    backup::Entity::find_by_id(id).one(db).await
}

/// A server's backups (`None`: every server's of `owner`, or everyone's), oldest first.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    owner: Option<i64>,
    server_id: Option<i64>,
) -> Result<Vec<backup::Model>, DbErr> {
    let mut query = backup::Entity::find().order_by_asc(backup::Column::Id);
    if let Some(owner) = owner {
        query = query.filter(backup::Column::OwnerId.eq(owner));
    }
    if let Some(server_id) = server_id {
        query = query.filter(backup::Column::ServerId.eq(server_id));
    }
    query.all(db).await
}

/// A backup of the server being taken now, if any.
pub async fn in_progress<C: ConnectionTrait>(db: &C, server_id: i64) -> Result<u64, DbErr> {
    backup::Entity::find()
        .filter(backup::Column::ServerId.eq(server_id))
        .filter(backup::Column::Status.eq(Status::InProgress.as_str()))
        .count(db)
        .await
}

pub async fn insert<C: ConnectionTrait>(
    db: &C,
    row: backup::ActiveModel,
) -> Result<backup::Model, DbErr> {
    row.insert(db).await
}

pub async fn delete<C: ConnectionTrait>(db: &C, id: i64) -> Result<(), DbErr> {
    backup::Entity::delete_by_id(id).exec(db).await?;
    Ok(())
}

/// Changes some of a backup's columns (and its `updated_at`).
pub async fn set<C: ConnectionTrait>(
    db: &C,
    id: i64,
    at_ms: i64,
    change: impl FnOnce(&mut backup::ActiveModel),
) -> Result<(), DbErr> {
    let mut am = backup::ActiveModel {
        id: sea_orm::ActiveValue::Unchanged(id),
        updated_at: sea_orm::ActiveValue::Set(at_ms),
        ..Default::default()
    };
    change(&mut am);
    am.update(db).await?;
    Ok(())
}

/// Marks a backup as worked on by `task`, only if no task is at work on it and it is in
/// one of `statuses`: of two that race, one wins.
pub async fn claim<C: ConnectionTrait>(
    db: &C,
    id: i64,
    task: &str,
    statuses: &[Status],
    at_ms: i64,
) -> Result<bool, DbErr> {
    let result = backup::Entity::update_many()
        .col_expr(backup::Column::TaskId, Expr::value(task))
        .col_expr(backup::Column::UpdatedAt, Expr::value(at_ms))
        .filter(backup::Column::Id.eq(id))
        .filter(backup::Column::TaskId.is_null())
        .filter(backup::Column::Status.is_in(statuses.iter().map(|s| s.as_str())))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Puts a backup back under `task` (the undo of a release), only if nobody took it since.
pub async fn reclaim<C: ConnectionTrait>(
    db: &C,
    id: i64,
    task: &str,
    at_ms: i64,
) -> Result<(), DbErr> {
    backup::Entity::update_many()
        .col_expr(backup::Column::TaskId, Expr::value(task))
        .col_expr(backup::Column::UpdatedAt, Expr::value(at_ms))
        .filter(backup::Column::Id.eq(id))
        .filter(backup::Column::TaskId.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Ends `task`'s work on a backup.
pub async fn release<C: ConnectionTrait>(
    db: &C,
    id: i64,
    task: &str,
    at_ms: i64,
) -> Result<(), DbErr> {
    backup::Entity::update_many()
        .col_expr(backup::Column::TaskId, Expr::value(Option::<String>::None))
        .col_expr(backup::Column::UpdatedAt, Expr::value(at_ms))
        .filter(backup::Column::Id.eq(id))
        .filter(backup::Column::TaskId.eq(task))
        .exec(db)
        .await?;
    Ok(())
}
