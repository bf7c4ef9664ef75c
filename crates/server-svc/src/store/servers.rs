//! Servers: finding them as a caller may see them, and every conditional update the rules
//! rely on (a status swapped only from what was read, a delete claimed only once, a billing
//! clock moved only from where it stood).

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

use super::entity::server;
use crate::domain::state::ServerState;

/// How a caller names a server.
#[derive(Debug, Clone, Copy)]
pub enum Key<'a> {
    Id(i64),
    Uuid(&'a str),
}

/// The servers a caller may see: `owner`'s own (or anyone's, for `None`), not deleted and
/// not being deleted.
fn visible(owner: Option<i64>) -> sea_orm::Select<server::Entity> {
    let query = server::Entity::find()
        .filter(server::Column::DeletedAt.is_null())
        .filter(server::Column::Status.ne(ServerState::Deleting.as_str()));
    match owner {
        Some(owner) => query.filter(server::Column::OwnerId.eq(owner)),
        None => query,
    }
}

/// One server the caller may see.
pub async fn find_visible<C: ConnectionTrait>(
    db: &C,
    owner: Option<i64>,
    key: Key<'_>,
) -> Result<Option<server::Model>, DbErr> {
    let query = visible(owner);
    let query = match key {
        Key::Id(id) => query.filter(server::Column::Id.eq(id)),
        Key::Uuid(uuid) => query.filter(server::Column::Uuid.eq(uuid)),
    };
    query.one(db).await
}

/// What a listing asks for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Listing<'a> {
    /// Whose servers the caller sees (`None`: anyone's).
    pub visible_to: Option<i64>,
    /// Only this owner's (administrators).
    pub owner: Option<i64>,
    pub status: Option<ServerState>,
    pub location: Option<&'a str>,
    /// Only these servers.
    pub ids: Option<&'a [i64]>,
}

/// Up to `fetch` visible servers with ids above `after`, in id order.
pub async fn page<C: ConnectionTrait>(
    db: &C,
    listing: Listing<'_>,
    after: i64,
    fetch: u64,
) -> Result<Vec<server::Model>, DbErr> {
    let mut query = visible(listing.visible_to)
        .filter(server::Column::Id.gt(after))
        .order_by_asc(server::Column::Id)
        .limit(fetch);
    if let Some(owner) = listing.owner {
        query = query.filter(server::Column::OwnerId.eq(owner));
    }
    if let Some(status) = listing.status {
        query = query.filter(server::Column::Status.eq(status.as_str()));
    }
    if let Some(location) = listing.location {
        query = query.filter(server::Column::Location.eq(location));
    }
    if let Some(ids) = listing.ids {
        query = query.filter(server::Column::Id.is_in(ids.iter().copied()));
    }
    query.all(db).await
}

pub async fn find<C: ConnectionTrait>(db: &C, id: i64) -> Result<Option<server::Model>, DbErr> {
    server::Entity::find_by_id(id).one(db).await
}

/// A server, locked until the transaction ends on PostgreSQL (SQLite's write transactions
/// run one at a time anyway).
pub async fn find_locked<C: ConnectionTrait>(
    db: &C,
    id: i64,
) -> Result<Option<server::Model>, DbErr> {
    let mut find = server::Entity::find_by_id(id);
    if db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        find = find.lock_exclusive();
    }
    find.one(db).await
}

pub async fn insert<C: ConnectionTrait>(
    db: &C,
    row: server::ActiveModel,
) -> Result<server::Model, DbErr> {
    row.insert(db).await
}

/// Saves a changed server.
pub async fn update<C: ConnectionTrait>(
    db: &C,
    row: server::ActiveModel,
) -> Result<server::Model, DbErr> {
    row.update(db).await
}

/// Changes some of a server's columns (and its `updated_at`).
pub async fn set<C: ConnectionTrait>(
    db: &C,
    id: i64,
    at_ms: i64,
    change: impl FnOnce(&mut server::ActiveModel),
) -> Result<(), DbErr> {
    let mut am = server::ActiveModel {
        id: sea_orm::ActiveValue::Unchanged(id),
        updated_at: Set(at_ms),
        ..Default::default()
    };
    change(&mut am);
    am.update(db).await?;
    Ok(())
}

pub async fn delete<C: ConnectionTrait>(db: &C, id: i64) -> Result<(), DbErr> {
    server::Entity::delete_by_id(id).exec(db).await?;
    Ok(())
}

/// Marks a server's status `to` (and its task), only while it is still `from` under
/// `from_task`: of two actions that both saw that state, one wins.
pub async fn swap_status<C: ConnectionTrait>(
    db: &C,
    id: i64,
    from: &str,
    from_task: Option<&str>,
    to: &str,
    task_id: &str,
    at_ms: i64,
) -> Result<bool, DbErr> {
    let mut update = server::Entity::update_many()
        .col_expr(server::Column::Status, Expr::value(to))
        .col_expr(server::Column::TaskId, Expr::value(task_id))
        .col_expr(server::Column::UpdatedAt, Expr::value(at_ms))
        .filter(server::Column::Id.eq(id))
        .filter(server::Column::Status.eq(from))
        .filter(server::Column::DeletedAt.is_null());
    update = match from_task {
        Some(task) => update.filter(server::Column::TaskId.eq(task)),
        None => update.filter(server::Column::TaskId.is_null()),
    };
    Ok(update.exec(db).await?.rows_affected == 1)
}

pub async fn set_status_reason<C: ConnectionTrait>(
    db: &C,
    id: i64,
    reason: String,
) -> Result<(), DbErr> {
    server::Entity::update_many()
        .col_expr(server::Column::StatusReason, Expr::value(reason))
        .filter(server::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Queues a delete behind the running task: only if no delete is queued and the server is
/// still in `status` under `task`.
pub async fn queue_delete<C: ConnectionTrait>(
    db: &C,
    id: i64,
    delete_task: &str,
    status: &str,
    task: Option<&str>,
) -> Result<bool, DbErr> {
    let mut claim = server::Entity::update_many()
        .col_expr(server::Column::DeleteTaskId, Expr::value(delete_task))
        .filter(server::Column::Id.eq(id))
        .filter(server::Column::DeleteTaskId.is_null())
        .filter(server::Column::Status.eq(status));
    claim = match task {
        Some(running) => claim.filter(server::Column::TaskId.eq(running)),
        None => claim.filter(server::Column::TaskId.is_null()),
    };
    Ok(claim.exec(db).await?.rows_affected == 1)
}

/// Starts the queued delete of a server whose task (`task`) has ended: only if that delete
/// is still queued, and nobody started it first.
pub async fn start_queued_delete<C: ConnectionTrait>(
    db: &C,
    id: i64,
    queued: &str,
    task: Option<&str>,
) -> Result<bool, DbErr> {
    let mut claim = server::Entity::update_many()
        .col_expr(
            server::Column::Status,
            Expr::value(ServerState::Deleting.as_str()),
        )
        .col_expr(server::Column::TaskId, Expr::value(queued))
        .col_expr(
            server::Column::DeleteTaskId,
            Expr::value(Option::<String>::None),
        )
        .filter(server::Column::Id.eq(id))
        .filter(server::Column::DeleteTaskId.eq(queued));
    claim = match task {
        Some(t) => claim.filter(server::Column::TaskId.eq(t)),
        None => claim.filter(server::Column::TaskId.is_null()),
    };
    Ok(claim.exec(db).await?.rows_affected == 1)
}

/// Records the traffic a node reported.
pub async fn set_traffic<C: ConnectionTrait>(
    db: &C,
    id: i64,
    rx: i64,
    tx: i64,
) -> Result<(), DbErr> {
    server::Entity::update_many()
        .col_expr(server::Column::TrafficIn, Expr::value(rx))
        .col_expr(server::Column::TrafficOut, Expr::value(tx))
        .filter(server::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Marks the month whose traffic passed the server's limit (empty: none). True when this
/// call changed it (so of two reports, one acts).
pub async fn set_traffic_exceeded<C: ConnectionTrait>(
    db: &C,
    id: i64,
    month: &str,
) -> Result<bool, DbErr> {
    let done = server::Entity::update_many()
        .col_expr(server::Column::TrafficExceeded, Expr::value(month))
        .filter(server::Column::Id.eq(id))
        .filter(server::Column::TrafficExceeded.ne(month))
        .exec(db)
        .await?;
    Ok(done.rows_affected == 1)
}

/// A guest seen in `to` while its server said `from`: the status changes only if it is
/// still `from` under the same last task.
pub async fn observe_power<C: ConnectionTrait>(
    db: &C,
    id: i64,
    from: ServerState,
    to: ServerState,
    task_id: Option<&str>,
    at_ms: i64,
) -> Result<bool, DbErr> {
    let mut update = server::Entity::update_many()
        .col_expr(server::Column::Status, Expr::value(to.as_str()))
        .col_expr(server::Column::StatusReason, Expr::value(""))
        .col_expr(server::Column::UpdatedAt, Expr::value(at_ms))
        .filter(server::Column::Id.eq(id))
        .filter(server::Column::Status.eq(from.as_str()))
        .filter(server::Column::DeletedAt.is_null());
    update = match task_id {
        Some(task) => update.filter(server::Column::TaskId.eq(task)),
        None => update.filter(server::Column::TaskId.is_null()),
    };
    Ok(update.exec(db).await?.rows_affected == 1)
}

// ----- billing ---------------------------------------------------------------------------

/// Live servers whose paid period has ended by `now`.
pub async fn due<C: ConnectionTrait>(db: &C, now_ms: i64) -> Result<Vec<server::Model>, DbErr> {
    server::Entity::find()
        .filter(server::Column::DeletedAt.is_null())
        .filter(server::Column::PaidUntil.gt(0_i64))
        .filter(server::Column::PaidUntil.lte(now_ms))
        .all(db)
        .await
}

/// Starts the billing clock once: only while it has not started.
pub async fn start_clock<C: ConnectionTrait>(db: &C, id: i64, until: i64) -> Result<(), DbErr> {
    server::Entity::update_many()
        .col_expr(server::Column::PaidUntil, Expr::value(until))
        .filter(server::Column::Id.eq(id))
        .filter(server::Column::PaidUntil.eq(0_i64))
        .exec(db)
        .await?;
    Ok(())
}

/// Moves the billing clock from `from` to `to` (only from there), noting whether the server
/// ran; `settled` also ends an overdue episode.
pub async fn advance_clock<C: ConnectionTrait>(
    db: &C,
    id: i64,
    from: i64,
    to: i64,
    running: bool,
    settled: bool,
) -> Result<(), DbErr> {
    let mut update = server::Entity::update_many()
        .col_expr(server::Column::PaidUntil, Expr::value(to))
        .col_expr(server::Column::RanInPeriod, Expr::value(running));
    if settled {
        update = update.col_expr(
            server::Column::OverdueSince,
            Expr::value(Option::<i64>::None),
        );
    }
    update
        .filter(server::Column::Id.eq(id))
        .filter(server::Column::PaidUntil.eq(from))
        .exec(db)
        .await?;
    Ok(())
}

/// Stops the billing clock (0), only where it stood.
pub async fn stop_clock<C: ConnectionTrait>(db: &C, id: i64, from: i64) -> Result<(), DbErr> {
    server::Entity::update_many()
        .col_expr(server::Column::PaidUntil, Expr::value(0_i64))
        .filter(server::Column::Id.eq(id))
        .filter(server::Column::PaidUntil.eq(from))
        .exec(db)
        .await?;
    Ok(())
}

pub async fn set_overdue_since<C: ConnectionTrait>(
    db: &C,
    id: i64,
    since: i64,
) -> Result<(), DbErr> {
    server::Entity::update_many()
        .col_expr(server::Column::OverdueSince, Expr::value(since))
        .filter(server::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// When an owner's current overdue episode began: the earliest of their live servers'.
pub async fn overdue_since<C: ConnectionTrait>(
    db: &C,
    owner_id: i64,
) -> Result<Option<i64>, DbErr> {
    Ok(server::Entity::find()
        .filter(server::Column::OwnerId.eq(owner_id))
        .filter(server::Column::DeletedAt.is_null())
        .filter(server::Column::OverdueSince.is_not_null())
        .all(db)
        .await?
        .into_iter()
        .filter_map(|s| s.overdue_since)
        .min())
}

/// Live servers whose node did not answer.
pub async fn unknown<C: ConnectionTrait>(db: &C) -> Result<Vec<server::Model>, DbErr> {
    server::Entity::find()
        .filter(server::Column::DeletedAt.is_null())
        .filter(server::Column::Status.eq(ServerState::Unknown.as_str()))
        .all(db)
        .await
}

/// Settles an `unknown` server at what its node now says: only while it is still unknown.
pub async fn settle_unknown<C: ConnectionTrait>(
    db: &C,
    id: i64,
    state: ServerState,
    at_ms: i64,
) -> Result<bool, DbErr> {
    let done = server::Entity::update_many()
        .col_expr(server::Column::Status, Expr::value(state.as_str()))
        .col_expr(server::Column::StatusReason, Expr::value(""))
        .col_expr(server::Column::UpdatedAt, Expr::value(at_ms))
        .filter(server::Column::Id.eq(id))
        .filter(server::Column::Status.eq(ServerState::Unknown.as_str()))
        .exec(db)
        .await?;
    Ok(done.rows_affected == 1)
}

/// What each owner's running, paying servers cost per billing period together (owners in an
/// overdue episode left out: they are reminded as overdue).
pub async fn running_prices<C: ConnectionTrait>(db: &C) -> Result<Vec<(i64, i64)>, DbErr> {
    let running = [
        ServerState::Running,
        ServerState::Starting,
        ServerState::Stopping,
        ServerState::Rebooting,
        ServerState::Restoring,
    ]
    .map(ServerState::as_str);
    let rows = server::Entity::find()
        .filter(server::Column::DeletedAt.is_null())
        .filter(server::Column::Status.is_in(running))
        .filter(server::Column::HourlyPrice.gt(0_i64))
        .all(db)
        .await?;
    let overdue: std::collections::HashSet<i64> = server::Entity::find()
        .filter(server::Column::DeletedAt.is_null())
        .filter(server::Column::OverdueSince.is_not_null())
        .all(db)
        .await?
        .into_iter()
        .map(|s| s.owner_id)
        .collect();
    let mut sums = std::collections::BTreeMap::<i64, i64>::new();
    for s in rows.into_iter().filter(|s| !overdue.contains(&s.owner_id)) {
        *sums.entry(s.owner_id).or_default() += s.hourly_price;
    }
    Ok(sums.into_iter().collect())
}

/// When `owner_id`'s low-balance episode began, starting one now if none is open.
pub async fn low_balance_since<C: ConnectionTrait>(
    db: &C,
    owner_id: i64,
    now_ms: i64,
) -> Result<i64, DbErr> {
    use super::entity::balance_warning;
    balance_warning::Entity::insert(balance_warning::ActiveModel {
        owner_id: sea_orm::Set(owner_id),
        since: sea_orm::Set(now_ms),
    })
    .on_conflict(
        sea_orm::sea_query::OnConflict::column(balance_warning::Column::OwnerId)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(balance_warning::Entity::find_by_id(owner_id)
        .one(db)
        .await?
        .map_or(now_ms, |w| w.since))
}

/// Ends `owner_id`'s low-balance episode, if one is open.
pub async fn end_low_balance<C: ConnectionTrait>(db: &C, owner_id: i64) -> Result<(), DbErr> {
    super::entity::balance_warning::Entity::delete_by_id(owner_id)
        .exec(db)
        .await?;
    Ok(())
}
