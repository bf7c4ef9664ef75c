//! Accounts and their balances.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};

use super::entity::{balance, user};

/// How an account is looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum By<'a> {
    Id(i64),
    SkyportId(&'a str),
    /// Compared lower-cased.
    Email(&'a str),
    Username(&'a str),
}

pub async fn find<C: ConnectionTrait>(db: &C, by: By<'_>) -> Result<Option<user::Model>, DbErr> {
    let filter = match by {
        By::Id(id) => user::Column::Id.eq(id),
        By::SkyportId(id) => user::Column::SkyportId.eq(id),
        By::Email(email) => user::Column::Email.eq(email.trim().to_ascii_lowercase()),
        By::Username(name) => user::Column::Username.eq(name),
    };
    user::Entity::find().filter(filter).one(db).await
}

pub async fn by_id<C: ConnectionTrait>(db: &C, id: i64) -> Result<Option<user::Model>, DbErr> {
    find(db, By::Id(id)).await
}

/// The first administrator, if there is one.
pub async fn first_admin<C: ConnectionTrait>(db: &C) -> Result<Option<user::Model>, DbErr> {
    user::Entity::find()
        .filter(user::Column::Role.eq(crate::domain::account::ROLE_ADMIN))
        .order_by_asc(user::Column::Id)
        .one(db)
        .await
}

/// An account that already has this username, email or Skyport id.
pub async fn taken<C: ConnectionTrait>(
    db: &C,
    username: &str,
    email: &str,
    skyport_id: &str,
) -> Result<Option<user::Model>, DbErr> {
    user::Entity::find()
        .filter(
            Condition::any()
                .add(user::Column::Username.eq(username))
                .add(user::Column::Email.eq(email))
                .add(user::Column::SkyportId.eq(skyport_id)),
        )
        .one(db)
        .await
}

/// A new account's row.
pub struct NewRow {
    pub uuid: String,
    pub skyport_id: String,
    pub username: String,
    pub email: String,
    pub role: &'static str,
    pub password_hash: String,
}

/// Inserts an account and its zero balance (call inside a transaction).
pub async fn insert<C: ConnectionTrait>(
    db: &C,
    row: NewRow,
    at: DateTime<Utc>,
) -> Result<user::Model, DbErr> {
    let created = user::ActiveModel {
        uuid: Set(row.uuid),
        skyport_id: Set(row.skyport_id),
        username: Set(row.username),
        email: Set(row.email),
        role: Set(row.role.to_owned()),
        password_hash: Set(row.password_hash),
        created_at: Set(at),
        updated_at: Set(at),
        ..Default::default()
    }
    .insert(db)
    .await?;
    balance::ActiveModel {
        user_id: Set(created.id),
        balance: Set(0),
        updated_at: Set(at),
    }
    .insert(db)
    .await?;
    Ok(created)
}

/// Up to `fetch` accounts with ids above `after`, in id order; only `ids` when given.
pub async fn page<C: ConnectionTrait>(
    db: &C,
    after: i64,
    fetch: u64,
    ids: &[i64],
) -> Result<Vec<user::Model>, DbErr> {
    let mut query = user::Entity::find()
        .filter(user::Column::Id.gt(after))
        .order_by_asc(user::Column::Id)
        .limit(fetch);
    if !ids.is_empty() {
        query = query.filter(user::Column::Id.is_in(ids.iter().copied()));
    }
    query.all(db).await
}
