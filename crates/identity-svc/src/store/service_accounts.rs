//! Service accounts, found by their key's digest.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, Set,
};

use super::entity::service_account;

/// A new account's row.
pub struct NewRow {
    pub user_id: i64,
    pub name: String,
    /// Space-separated.
    pub scopes: String,
    pub key_digest: String,
    pub hint: String,
}

pub async fn insert<C: ConnectionTrait>(
    db: &C,
    row: NewRow,
    at: DateTime<Utc>,
) -> Result<service_account::Model, DbErr> {
    service_account::ActiveModel {
        user_id: Set(row.user_id),
        name: Set(row.name),
        scopes: Set(row.scopes),
        key_digest: Set(row.key_digest),
        hint: Set(row.hint),
        created_at: Set(at),
        last_used_at: Set(None),
        revoked_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await
}

pub async fn count_active<C: ConnectionTrait>(db: &C) -> Result<u64, DbErr> {
    service_account::Entity::find()
        .filter(service_account::Column::RevokedAt.is_null())
        .count(db)
        .await
}

/// Every active account, oldest first.
pub async fn active<C: ConnectionTrait>(db: &C) -> Result<Vec<service_account::Model>, DbErr> {
    service_account::Entity::find()
        .filter(service_account::Column::RevokedAt.is_null())
        .order_by_asc(service_account::Column::Id)
        .all(db)
        .await
}

/// The active account whose key has this digest.
pub async fn by_key<C: ConnectionTrait>(
    db: &C,
    digest: String,
) -> Result<Option<service_account::Model>, DbErr> {
    service_account::Entity::find()
        .filter(service_account::Column::KeyDigest.eq(digest))
        .filter(service_account::Column::RevokedAt.is_null())
        .one(db)
        .await
}

/// Revokes an active account; false when there was none with this id.
pub async fn revoke<C: ConnectionTrait>(db: &C, id: i64, at: DateTime<Utc>) -> Result<bool, DbErr> {
    let done = service_account::Entity::update_many()
        .col_expr(service_account::Column::RevokedAt, Expr::value(at))
        .filter(service_account::Column::Id.eq(id))
        .filter(service_account::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(done.rows_affected > 0)
}

pub async fn touch<C: ConnectionTrait>(db: &C, id: i64, at: DateTime<Utc>) -> Result<(), DbErr> {
    service_account::Entity::update_many()
        .col_expr(service_account::Column::LastUsedAt, Expr::value(at))
        .filter(service_account::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}
