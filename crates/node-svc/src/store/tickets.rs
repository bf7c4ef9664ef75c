//! Console tickets, stored as digests and used up once.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
};

use super::entity::console_ticket;

/// Forgets tickets that expired before `now`.
pub async fn sweep<C: ConnectionTrait>(db: &C, now: DateTime<Utc>) -> Result<(), DbErr> {
    console_ticket::Entity::delete_many()
        .filter(console_ticket::Column::ExpiresAt.lt(now))
        .exec(db)
        .await?;
    Ok(())
}

pub async fn insert<C: ConnectionTrait>(
    db: &C,
    digest: String,
    node_id: i64,
    guest: &str,
    user_id: i64,
    expires_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    console_ticket::ActiveModel {
        digest: Set(digest),
        node_id: Set(node_id),
        guest: Set(guest.to_owned()),
        user_id: Set(user_id),
        expires_at: Set(expires_at),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Takes the ticket with this digest if it has not expired: the one caller that deletes it
/// gets it; anyone else (a repeat, a race) gets `None`.
pub async fn take<C: ConnectionTrait>(
    db: &C,
    digest: &str,
    now: DateTime<Utc>,
) -> Result<Option<console_ticket::Model>, DbErr> {
    let Some(row) = console_ticket::Entity::find_by_id(digest.to_owned())
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let taken = console_ticket::Entity::delete_many()
        .filter(console_ticket::Column::Digest.eq(digest))
        .filter(console_ticket::Column::ExpiresAt.gt(now))
        .exec(db)
        .await?;
    Ok((taken.rows_affected == 1).then_some(row))
}
