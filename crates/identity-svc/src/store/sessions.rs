//! Sessions and their refresh tokens (stored as digests only).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
};

use super::entity::{refresh_token, session};

/// A new session for `user_id`, until `expires_at`, with its first refresh token.
pub async fn open<C: ConnectionTrait>(
    db: &C,
    id: &str,
    user_id: i64,
    at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    refresh_digest: String,
) -> Result<(), DbErr> {
    session::ActiveModel {
        id: Set(id.to_owned()),
        user_id: Set(user_id),
        created_at: Set(at),
        expires_at: Set(expires_at),
        revoked_at: Set(None),
    }
    .insert(db)
    .await?;
    add_refresh(db, id, refresh_digest, at).await
}

/// Adds a refresh token to a session.
pub async fn add_refresh<C: ConnectionTrait>(
    db: &C,
    session_id: &str,
    digest: String,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    refresh_token::ActiveModel {
        session_id: Set(session_id.to_owned()),
        token_digest: Set(digest),
        created_at: Set(at),
        used_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

/// The refresh token with this digest, used or not.
pub async fn refresh_by_digest<C: ConnectionTrait>(
    db: &C,
    digest: String,
) -> Result<Option<refresh_token::Model>, DbErr> {
    refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenDigest.eq(digest))
        .one(db)
        .await
}

/// Marks a refresh token used, if nobody did before: false when it already was.
pub async fn use_refresh<C: ConnectionTrait>(
    db: &C,
    id: i64,
    at: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let marked = refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::UsedAt, Expr::value(at))
        .filter(refresh_token::Column::Id.eq(id))
        .filter(refresh_token::Column::UsedAt.is_null())
        .exec(db)
        .await?;
    Ok(marked.rows_affected == 1)
}

pub async fn find<C: ConnectionTrait>(db: &C, id: &str) -> Result<Option<session::Model>, DbErr> {
    session::Entity::find_by_id(id.to_owned()).one(db).await
}

/// Revokes every live session of a user.
pub async fn revoke_user<C: ConnectionTrait>(
    db: &C,
    user_id: i64,
    at: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let done = session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(at))
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(done.rows_affected)
}

/// Revokes a session (once).
pub async fn revoke<C: ConnectionTrait>(db: &C, id: &str, at: DateTime<Utc>) -> Result<(), DbErr> {
    session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(at))
        .filter(session::Column::Id.eq(id))
        .filter(session::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}
