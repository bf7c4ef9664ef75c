//! Tasks: one action on one server, and the persisted progress of its saga.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect,
    Set,
};

use super::entity::{server, task};
use crate::domain::task::{TaskKind, TaskState};

/// The steps a task has done, as stored (comma-separated, in order).
pub fn steps_done(stored: &str) -> Vec<String> {
    stored
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A new task on `server`, in `state`, with its saga's parameters (JSON).
pub async fn insert<C: ConnectionTrait>(
    db: &C,
    id: &str,
    server: &server::Model,
    kind: TaskKind,
    state: TaskState,
    params: String,
    at_ms: i64,
) -> Result<(), DbErr> {
    task::ActiveModel {
        id: Set(id.to_owned()),
        server_id: Set(server.id),
        owner_id: Set(server.owner_id),
        kind: Set(kind.as_str().to_owned()),
        state: Set(state.as_str().to_owned()),
        step: Set(String::new()),
        steps_done: Set(String::new()),
        error: Set(String::new()),
        error_reason: Set(String::new()),
        params: Set(params),
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

pub async fn set_state<C: ConnectionTrait>(
    db: &C,
    id: &str,
    state: TaskState,
) -> Result<(), DbErr> {
    task::Entity::update_many()
        .col_expr(task::Column::State, Expr::value(state.as_str()))
        .filter(task::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Starts a queued task: running, with its parameters.
pub async fn start<C: ConnectionTrait>(
    db: &C,
    id: &str,
    params: String,
    at_ms: i64,
) -> Result<(), DbErr> {
    task::Entity::update_many()
        .col_expr(
            task::Column::State,
            Expr::value(TaskState::Running.as_str()),
        )
        .col_expr(task::Column::Params, Expr::value(params))
        .col_expr(task::Column::UpdatedAt, Expr::value(at_ms))
        .filter(task::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

pub async fn delete<C: ConnectionTrait>(db: &C, id: &str) -> Result<(), DbErr> {
    task::Entity::delete_by_id(id.to_owned()).exec(db).await?;
    Ok(())
}

/// The tasks whose sagas are at work (running or unwinding); holds are snapshot-svc's.
pub async fn open_ids<C: ConnectionTrait>(db: &C) -> Result<Vec<String>, DbErr> {
    task::Entity::find()
        .select_only()
        .column(task::Column::Id)
        .filter(
            task::Column::State.is_in([TaskState::Running.as_str(), TaskState::Unwinding.as_str()]),
        )
        .filter(task::Column::Kind.is_not_in(TaskKind::HELD.map(TaskKind::as_str)))
        .into_tuple::<String>()
        .all(db)
        .await
}
