//! Per-user quota rows, and what a user's live servers hold.

use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect, Set};

use super::entity::{quota, server};
use crate::domain::state::ServerState;

/// A quota row's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub servers: i64,
    pub cores: i64,
    pub memory_mb: i64,
    pub addresses: i64,
}

/// Sets a user's limits (`custom`: their own, not the defaults).
pub async fn put<C: ConnectionTrait>(
    db: &C,
    user_id: i64,
    limits: Limits,
    custom: bool,
    at_ms: i64,
) -> Result<(), DbErr> {
    quota::Entity::insert(quota::ActiveModel {
        user_id: Set(user_id),
        custom: Set(custom),
        servers: Set(limits.servers),
        cores: Set(limits.cores),
        memory_mb: Set(limits.memory_mb),
        addresses: Set(limits.addresses),
        updated_at: Set(at_ms),
    })
    .on_conflict(
        OnConflict::column(quota::Column::UserId)
            .update_columns([
                quota::Column::Custom,
                quota::Column::Servers,
                quota::Column::Cores,
                quota::Column::MemoryMb,
                quota::Column::Addresses,
                quota::Column::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Within a transaction: makes sure the user has a quota row (a lock row when the defaults
/// apply) and locks it until commit on PostgreSQL (SQLite's write transaction already runs
/// alone), so a user's creates and resizes are checked one at a time.
pub async fn lock<C: ConnectionTrait>(db: &C, user_id: i64, at_ms: i64) -> Result<(), DbErr> {
    quota::Entity::insert(quota::ActiveModel {
        user_id: Set(user_id),
        custom: Set(false),
        servers: Set(0),
        cores: Set(0),
        memory_mb: Set(0),
        addresses: Set(0),
        updated_at: Set(at_ms),
    })
    .on_conflict(
        OnConflict::column(quota::Column::UserId)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    let mut lock = quota::Entity::find_by_id(user_id);
    if db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        lock = lock.lock_exclusive();
    }
    lock.one(db).await?;
    Ok(())
}

/// A user's own limits, if an administrator set some.
pub async fn custom<C: ConnectionTrait>(db: &C, user_id: i64) -> Result<Option<Limits>, DbErr> {
    Ok(quota::Entity::find_by_id(user_id)
        .one(db)
        .await?
        .filter(|row| row.custom)
        .map(|row| Limits {
            servers: row.servers,
            cores: row.cores,
            memory_mb: row.memory_mb,
            addresses: row.addresses,
        }))
}

/// The cores and memory of each of a user's live servers.
pub async fn sizes_of<C: ConnectionTrait>(db: &C, user_id: i64) -> Result<Vec<(i64, i64)>, DbErr> {
    server::Entity::find()
        .select_only()
        .column(server::Column::Cores)
        .column(server::Column::MemoryMb)
        .filter(server::Column::OwnerId.eq(user_id))
        .filter(server::Column::DeletedAt.is_null())
        .filter(server::Column::Status.ne(ServerState::Terminated.as_str()))
        .into_tuple()
        .all(db)
        .await
}
