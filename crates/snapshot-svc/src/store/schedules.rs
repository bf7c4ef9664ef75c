//! Backup schedules.

use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait as _, ConnectionTrait, DbErr, EntityTrait as _, QueryFilter as _, QueryOrder as _,
    QuerySelect as _,
};

use super::entity::schedule;

pub async fn find<C: ConnectionTrait>(
    db: &C,
    server_id: i64,
) -> Result<Option<schedule::Model>, DbErr> {
    schedule::Entity::find_by_id(server_id).one(db).await
}

/// Writes a server's schedule whole.
pub async fn put<C: ConnectionTrait>(db: &C, row: schedule::Model) -> Result<(), DbErr> {
    let am: schedule::ActiveModel = row.into();
    schedule::Entity::insert(am)
        .on_conflict(
            OnConflict::column(schedule::Column::ServerId)
                .update_columns([
                    schedule::Column::OwnerId,
                    schedule::Column::Frequency,
                    schedule::Column::Weekday,
                    schedule::Column::Time,
                    schedule::Column::TimeZone,
                    schedule::Column::KeepLast,
                    schedule::Column::KeepDaily,
                    schedule::Column::KeepWeekly,
                    schedule::Column::KeepMonthly,
                    schedule::Column::Enabled,
                    schedule::Column::Origin,
                    schedule::Column::NextRunAt,
                    schedule::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

pub async fn delete<C: ConnectionTrait>(db: &C, server_id: i64) -> Result<bool, DbErr> {
    Ok(schedule::Entity::delete_by_id(server_id)
        .exec(db)
        .await?
        .rows_affected
        == 1)
}

/// Enabled schedules whose slot has come, soonest first.
pub async fn due<C: ConnectionTrait>(
    db: &C,
    now_ms: i64,
    limit: u64,
) -> Result<Vec<schedule::Model>, DbErr> {
    schedule::Entity::find()
        .filter(schedule::Column::Enabled.eq(true))
        .filter(schedule::Column::NextRunAt.lte(now_ms))
        .order_by_asc(schedule::Column::NextRunAt)
        .limit(limit)
        .all(db)
        .await
}

/// Claims the slot at `slot` by moving the schedule on to `next`: true for exactly one of
/// any number of replicas that try.
pub async fn claim_slot<C: ConnectionTrait>(
    db: &C,
    server_id: i64,
    slot: i64,
    next: i64,
    now_ms: i64,
) -> Result<bool, DbErr> {
    let result = schedule::Entity::update_many()
        .col_expr(schedule::Column::NextRunAt, Expr::value(next))
        .col_expr(schedule::Column::LastRunAt, Expr::value(now_ms))
        .filter(schedule::Column::ServerId.eq(server_id))
        .filter(schedule::Column::NextRunAt.eq(slot))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}
