//! Long-lived credentials, found by their lookup value and kept as digests only.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, Set,
};

use super::entity::credential;

/// A new credential's row.
pub struct NewRow {
    pub user_id: i64,
    pub kind: &'static str,
    pub name: String,
    /// What finds it: the digest of a single secret, or a CVM pair's public half.
    pub lookup: String,
    pub secret_digest: String,
    pub hint: String,
    pub public_token: Option<String>,
    pub client_api: bool,
}

pub async fn insert<C: ConnectionTrait>(
    db: &C,
    row: NewRow,
    at: DateTime<Utc>,
) -> Result<credential::Model, DbErr> {
    credential::ActiveModel {
        user_id: Set(row.user_id),
        kind: Set(row.kind.to_owned()),
        name: Set(row.name),
        lookup: Set(row.lookup),
        secret_digest: Set(row.secret_digest),
        hint: Set(row.hint),
        public_token: Set(row.public_token),
        client_api: Set(row.client_api),
        created_at: Set(at),
        last_used_at: Set(None),
        revoked_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await
}

/// Any credential, revoked or not, with this lookup value.
pub async fn by_lookup<C: ConnectionTrait>(
    db: &C,
    lookup: &str,
) -> Result<Option<credential::Model>, DbErr> {
    credential::Entity::find()
        .filter(credential::Column::Lookup.eq(lookup))
        .one(db)
        .await
}

/// The active credential of `kind` with this lookup value.
pub async fn active<C: ConnectionTrait>(
    db: &C,
    kind: &str,
    lookup: &str,
) -> Result<Option<credential::Model>, DbErr> {
    credential::Entity::find()
        .filter(credential::Column::Lookup.eq(lookup))
        .filter(credential::Column::Kind.eq(kind))
        .filter(credential::Column::RevokedAt.is_null())
        .one(db)
        .await
}

/// A user's active credentials, oldest first.
pub async fn active_of<C: ConnectionTrait>(
    db: &C,
    user_id: i64,
) -> Result<Vec<credential::Model>, DbErr> {
    credential::Entity::find()
        .filter(credential::Column::UserId.eq(user_id))
        .filter(credential::Column::RevokedAt.is_null())
        .order_by_asc(credential::Column::Id)
        .all(db)
        .await
}

pub async fn count_active_of<C: ConnectionTrait>(db: &C, user_id: i64) -> Result<u64, DbErr> {
    credential::Entity::find()
        .filter(credential::Column::UserId.eq(user_id))
        .filter(credential::Column::RevokedAt.is_null())
        .count(db)
        .await
}

pub async fn find<C: ConnectionTrait>(db: &C, id: i64) -> Result<Option<credential::Model>, DbErr> {
    credential::Entity::find_by_id(id).one(db).await
}

/// Revokes a credential (once).
pub async fn revoke<C: ConnectionTrait>(db: &C, id: i64, at: DateTime<Utc>) -> Result<(), DbErr> {
    credential::Entity::update_many()
        .col_expr(credential::Column::RevokedAt, Expr::value(at))
        .filter(credential::Column::Id.eq(id))
        .filter(credential::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

pub async fn touch<C: ConnectionTrait>(db: &C, id: i64, at: DateTime<Utc>) -> Result<(), DbErr> {
    credential::Entity::update_many()
        .col_expr(credential::Column::LastUsedAt, Expr::value(at))
        .filter(credential::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}
