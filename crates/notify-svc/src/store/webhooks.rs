//! Webhook endpoints and their deliveries.

use platform::page::Page;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait as _, ColumnTrait as _, Condition, ConnectionTrait, DbErr, EntityTrait,
    PaginatorTrait as _, QueryFilter as _, QueryOrder as _, QuerySelect as _,
};

use super::entity::{delivery, webhook};

pub const PENDING: &str = "pending";
pub const DELIVERED: &str = "delivered";
pub const FAILED: &str = "failed";

pub async fn insert<C: ConnectionTrait>(
    db: &C,
    row: webhook::ActiveModel,
) -> Result<webhook::Model, DbErr> {
    row.insert(db).await
}

pub async fn get<C: ConnectionTrait>(db: &C, id: i64) -> Result<Option<webhook::Model>, DbErr> {
    webhook::Entity::find_by_id(id).one(db).await
}

pub async fn update<C: ConnectionTrait>(
    db: &C,
    row: webhook::ActiveModel,
) -> Result<webhook::Model, DbErr> {
    row.update(db).await
}

pub async fn count_for<C: ConnectionTrait>(db: &C, owner_id: i64) -> Result<u64, DbErr> {
    webhook::Entity::find()
        .filter(webhook::Column::OwnerId.eq(owner_id))
        .count(db)
        .await
}

/// `owner_id`'s endpoints in id order.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    owner_id: i64,
    page: Page,
) -> Result<Vec<webhook::Model>, DbErr> {
    webhook::Entity::find()
        .filter(webhook::Column::OwnerId.eq(owner_id))
        .filter(webhook::Column::Id.gt(page.after))
        .order_by_asc(webhook::Column::Id)
        .limit(page.fetch())
        .all(db)
        .await
}

/// Deletes an endpoint and its deliveries.
pub async fn delete<C: ConnectionTrait>(db: &C, id: i64) -> Result<(), DbErr> {
    delivery::Entity::delete_many()
        .filter(delivery::Column::WebhookId.eq(id))
        .exec(db)
        .await?;
    webhook::Entity::delete_by_id(id).exec(db).await?;
    Ok(())
}

/// The enabled endpoints that hear of `owner_id`'s events: theirs, and every
/// administrator's endpoint for all events.
pub async fn listening<C: ConnectionTrait>(
    db: &C,
    owner_id: i64,
) -> Result<Vec<webhook::Model>, DbErr> {
    webhook::Entity::find()
        .filter(webhook::Column::Enabled.eq(true))
        .filter(
            Condition::any()
                .add(webhook::Column::OwnerId.eq(owner_id))
                .add(webhook::Column::AllEvents.eq(true)),
        )
        .all(db)
        .await
}

/// Stops deliveries to an endpoint, saying why.
pub async fn disable<C: ConnectionTrait>(
    db: &C,
    id: i64,
    reason: &str,
    at_ms: i64,
) -> Result<(), DbErr> {
    webhook::Entity::update_many()
        .col_expr(webhook::Column::Enabled, Expr::value(false))
        .col_expr(webhook::Column::DisabledReason, Expr::value(reason))
        .col_expr(webhook::Column::UpdatedAt, Expr::value(at_ms))
        .filter(webhook::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Keeps a delivery, unless the endpoint has this event already: whether it is new.
pub async fn insert_delivery<C: ConnectionTrait>(
    db: &C,
    row: delivery::ActiveModel,
) -> Result<bool, DbErr> {
    let inserted = delivery::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([delivery::Column::WebhookId, delivery::Column::EventId])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(inserted > 0)
}

pub async fn get_delivery<C: ConnectionTrait>(
    db: &C,
    id: i64,
) -> Result<Option<delivery::Model>, DbErr> {
    delivery::Entity::find_by_id(id).one(db).await
}

/// Pending deliveries whose attempt is due, oldest first.
pub async fn due<C: ConnectionTrait>(
    db: &C,
    now_ms: i64,
    limit: u64,
) -> Result<Vec<delivery::Model>, DbErr> {
    delivery::Entity::find()
        .filter(delivery::Column::State.eq(PENDING))
        .filter(delivery::Column::NextAttemptAt.lte(now_ms))
        .order_by_asc(delivery::Column::NextAttemptAt)
        .order_by_asc(delivery::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// How a delivery's attempt ended.
pub enum Attempt<'a> {
    Delivered {
        status: i32,
        at_ms: i64,
    },
    Retry {
        status: i32,
        error: &'a str,
        next_at_ms: i64,
    },
    Failed {
        status: i32,
        error: &'a str,
    },
}

pub async fn record<C: ConnectionTrait>(
    db: &C,
    id: i64,
    attempts: i32,
    attempt: Attempt<'_>,
) -> Result<(), DbErr> {
    let update = delivery::Entity::update_many()
        .col_expr(delivery::Column::Attempts, Expr::value(attempts))
        .filter(delivery::Column::Id.eq(id))
        .filter(delivery::Column::State.eq(PENDING));
    let update = match attempt {
        Attempt::Delivered { status, at_ms } => update
            .col_expr(delivery::Column::State, Expr::value(DELIVERED))
            .col_expr(delivery::Column::LastStatus, Expr::value(status))
            .col_expr(delivery::Column::LastError, Expr::value(""))
            .col_expr(delivery::Column::DeliveredAt, Expr::value(at_ms)),
        Attempt::Retry {
            status,
            error,
            next_at_ms,
        } => update
            .col_expr(delivery::Column::LastStatus, Expr::value(status))
            .col_expr(delivery::Column::LastError, Expr::value(error))
            .col_expr(delivery::Column::NextAttemptAt, Expr::value(next_at_ms)),
        Attempt::Failed { status, error } => update
            .col_expr(delivery::Column::State, Expr::value(FAILED))
            .col_expr(delivery::Column::LastStatus, Expr::value(status))
            .col_expr(delivery::Column::LastError, Expr::value(error)),
    };
    update.exec(db).await?;
    Ok(())
}

/// An endpoint's deliveries, newest first: `page.after` (when not 0) is the id the
/// previous page ended at.
pub async fn deliveries<C: ConnectionTrait>(
    db: &C,
    webhook_id: i64,
    page: Page,
) -> Result<Vec<delivery::Model>, DbErr> {
    let mut query = delivery::Entity::find().filter(delivery::Column::WebhookId.eq(webhook_id));
    if page.after > 0 {
        query = query.filter(delivery::Column::Id.lt(page.after));
    }
    query
        .order_by_desc(delivery::Column::Id)
        .limit(page.fetch())
        .all(db)
        .await
}

/// Sends a delivery again from its first attempt.
pub async fn replay<C: ConnectionTrait>(db: &C, id: i64, now_ms: i64) -> Result<(), DbErr> {
    delivery::Entity::update_many()
        .col_expr(delivery::Column::State, Expr::value(PENDING))
        .col_expr(delivery::Column::Attempts, Expr::value(0))
        .col_expr(delivery::Column::NextAttemptAt, Expr::value(now_ms))
        .col_expr(
            delivery::Column::DeliveredAt,
            Expr::value(Option::<i64>::None),
        )
        .filter(delivery::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}
