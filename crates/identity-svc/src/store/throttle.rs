//! Login throttling: wrong passwords counted per key (an account, or a login name with no
//! account), in the database itself so replicas never lose a count.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait as _, OnConflict};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};

use super::entity::login_throttle;

/// Until when a key is blocked, if it is.
pub async fn blocked_until<C: ConnectionTrait>(
    db: &C,
    key: &str,
) -> Result<Option<DateTime<Utc>>, DbErr> {
    Ok(login_throttle::Entity::find_by_id(key.to_owned())
        .one(db)
        .await?
        .and_then(|r| r.blocked_until))
}

/// Counts a failure (`failed + 1`, in SQL) and answers the count now.
pub async fn count_failure<C: ConnectionTrait>(
    db: &C,
    key: &str,
    at: DateTime<Utc>,
) -> Result<i32, DbErr> {
    login_throttle::Entity::insert(login_throttle::ActiveModel {
        key: Set(key.to_owned()),
        failed: Set(1),
        blocked_until: Set(None),
        updated_at: Set(at),
    })
    .on_conflict(
        OnConflict::column(login_throttle::Column::Key)
            .value(
                login_throttle::Column::Failed,
                Expr::col((login_throttle::Entity, login_throttle::Column::Failed)).add(1),
            )
            .value(login_throttle::Column::UpdatedAt, Expr::value(at))
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(login_throttle::Entity::find_by_id(key.to_owned())
        .one(db)
        .await?
        .map_or(1, |r| r.failed))
}

pub async fn block<C: ConnectionTrait>(
    db: &C,
    key: &str,
    until: DateTime<Utc>,
) -> Result<(), DbErr> {
    login_throttle::Entity::update_many()
        .col_expr(
            login_throttle::Column::BlockedUntil,
            Expr::value(Some(until)),
        )
        .filter(login_throttle::Column::Key.eq(key))
        .exec(db)
        .await?;
    Ok(())
}

/// Forgets counters nobody touched since `before`.
pub async fn forget_older<C: ConnectionTrait>(db: &C, before: DateTime<Utc>) -> Result<(), DbErr> {
    login_throttle::Entity::delete_many()
        .filter(login_throttle::Column::UpdatedAt.lt(before))
        .exec(db)
        .await?;
    Ok(())
}

/// Forgets a key's failures (after a good password).
pub async fn clear<C: ConnectionTrait>(db: &C, key: &str) -> Result<(), DbErr> {
    login_throttle::Entity::delete_by_id(key.to_owned())
        .exec(db)
        .await?;
    Ok(())
}
