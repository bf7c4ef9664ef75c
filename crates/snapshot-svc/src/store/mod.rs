//! snapshot-svc's queries. Every rule that needs the database's help (a limit counted under
//! the server's lock row, a slot claimed by moving it on) is here, once.

pub mod backups;
pub mod entity;
pub mod migration;
pub mod schedules;
pub mod snapshots;
pub mod tasks;

use sea_orm::sea_query::OnConflict;
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, QuerySelect as _, Set};

use entity::server_lock;

/// Within a write transaction: makes sure the server has a lock row and locks it until
/// commit on PostgreSQL (SQLite's write transactions already run one at a time), so one
/// server's creates are counted one after another.
pub async fn lock_server<C: ConnectionTrait>(
    db: &C,
    server_id: i64,
    at_ms: i64,
) -> Result<(), DbErr> {
    server_lock::Entity::insert(server_lock::ActiveModel {
        server_id: Set(server_id),
        updated_at: Set(at_ms),
    })
    .on_conflict(
        OnConflict::column(server_lock::Column::ServerId)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    let mut lock = server_lock::Entity::find_by_id(server_id);
    if db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        lock = lock.lock_exclusive();
    }
    lock.one(db).await?;
    Ok(())
}

/// Forgets a server's lock row (the server is gone).
pub async fn forget_server<C: ConnectionTrait>(db: &C, server_id: i64) -> Result<(), DbErr> {
    server_lock::Entity::delete_by_id(server_id)
        .exec(db)
        .await?;
    Ok(())
}
