//! Tasks: the persisted progress of each saga.

use sea_orm::{
    ActiveModelTrait as _, ColumnTrait as _, ConnectionTrait, DbErr, EntityTrait as _,
    QueryFilter as _, QuerySelect as _, Set,
};

use super::entity::task;

pub const RUNNING: &str = "running";
pub const UNWINDING: &str = "unwinding";
pub const SUCCEEDED: &str = "succeeded";
pub const FAILED: &str = "failed";

/// The steps a task has done, as stored (comma-separated, in order).
pub fn steps_done(stored: &str) -> Vec<String> {
    stored
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

pub async fn insert<C: ConnectionTrait>(
    db: &C,
    id: &str,
    server_id: i64,
    owner_id: i64,
    kind: &str,
    params: String,
    at_ms: i64,
) -> Result<(), DbErr> {
    task::ActiveModel {
        id: Set(id.to_owned()),
        server_id: Set(server_id),
        owner_id: Set(owner_id),
        kind: Set(kind.to_owned()),
        state: Set(RUNNING.to_owned()),
        step: Set(String::new()),
        steps_done: Set(String::new()),
        params: Set(params),
        error: Set(String::new()),
        created_at: Set(at_ms),
        updated_at: Set(at_ms),
    }
    .insert(db)
    .await?;
    Ok(())
}

pub async fn find<C: ConnectionTrait>(db: &C, id: &str) -> Result<Option<task::Model>, DbErr> {
    task::Entity::find_by_id(id.to_owned()).one(db).await
}

/// Changes some of a task's columns (and its `updated_at`).
pub async fn set<C: ConnectionTrait>(
    db: &C,
    id: &str,
    at_ms: i64,
    change: impl FnOnce(&mut task::ActiveModel),
) -> Result<(), DbErr> {
    let mut am = task::ActiveModel {
        id: sea_orm::ActiveValue::Unchanged(id.to_owned()),
        updated_at: Set(at_ms),
        ..Default::default()
    };
    change(&mut am);
    am.update(db).await?;
    Ok(())
}

pub async fn delete<C: ConnectionTrait>(db: &C, id: &str) -> Result<(), DbErr> {
    task::Entity::delete_by_id(id.to_owned()).exec(db).await?;
    Ok(())
}

/// The tasks whose sagas are at work (running or unwinding).
pub async fn open_ids<C: ConnectionTrait>(db: &C) -> Result<Vec<String>, DbErr> {
    task::Entity::find()
        .select_only()
        .column(task::Column::Id)
        .filter(task::Column::State.is_in([RUNNING, UNWINDING]))
        .into_tuple::<String>()
        .all(db)
        .await
}
