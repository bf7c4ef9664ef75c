//! Idempotency keys: one row per (user, key), claimed by the first request, holding its
//! sealed reply once it has one.

use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};

use super::entity::idempotency;

/// Claims a key for a request: true when this call inserted it (it runs the request).
pub async fn claim<C: ConnectionTrait>(
    db: &C,
    scope: &str,
    request_hash: &str,
    at_ms: i64,
) -> Result<bool, DbErr> {
    let inserted = idempotency::Entity::insert(idempotency::ActiveModel {
        scope: Set(scope.to_owned()),
        request_hash: Set(request_hash.to_owned()),
        reply: Set(None),
        created_at: Set(at_ms),
    })
    .on_conflict(
        OnConflict::column(idempotency::Column::Scope)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(inserted == 1)
}

pub async fn find<C: ConnectionTrait>(
    db: &C,
    scope: &str,
) -> Result<Option<idempotency::Model>, DbErr> {
    idempotency::Entity::find_by_id(scope.to_owned())
        .one(db)
        .await
}

/// Keeps the (sealed) reply of the request that claimed the key.
pub async fn keep_reply<C: ConnectionTrait>(
    db: &C,
    scope: &str,
    sealed: String,
) -> Result<(), DbErr> {
    idempotency::Entity::update_many()
        .col_expr(idempotency::Column::Reply, Expr::value(sealed))
        .filter(idempotency::Column::Scope.eq(scope))
        .exec(db)
        .await?;
    Ok(())
}

/// Gives a key back (its request failed: a repeat may try again).
pub async fn release<C: ConnectionTrait>(db: &C, scope: &str) -> Result<(), DbErr> {
    idempotency::Entity::delete_by_id(scope.to_owned())
        .exec(db)
        .await?;
    Ok(())
}

/// Forgets keys with replies older than `replied_before` and claims without one older than
/// `abandoned_before`; how many.
pub async fn expire<C: ConnectionTrait>(
    db: &C,
    replied_before: i64,
    abandoned_before: i64,
) -> Result<u64, DbErr> {
    let done = idempotency::Entity::delete_many()
        .filter(idempotency::Column::CreatedAt.lt(replied_before))
        .filter(idempotency::Column::Reply.is_not_null())
        .exec(db)
        .await?;
    let abandoned = idempotency::Entity::delete_many()
        .filter(idempotency::Column::CreatedAt.lt(abandoned_before))
        .filter(idempotency::Column::Reply.is_null())
        .exec(db)
        .await?;
    Ok(done.rows_affected + abandoned.rows_affected)
}
