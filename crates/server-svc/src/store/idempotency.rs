//! Idempotency keys: one row per (user, key), claimed by the first request, holding its
//! sealed reply once it has one.
//!
//! A claim is a lease: its request renews `claimed_until` while it runs, and every write of
//! the claimer names its `claim_token`, so once another request has taken the key over, the
//! first one's writes (its change, its reply) match nothing.

use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};

use super::entity::idempotency::{self, Column};

/// A claim of a key: the row's scope and the token this request holds it by.
#[derive(Clone, Debug)]
pub struct Claim {
    pub scope: String,
    pub token: String,
}

/// Claims a key for a request until `until_ms`: true when this call inserted it (it runs
/// the request).
pub async fn claim<C: ConnectionTrait>(
    db: &C,
    claim: &Claim,
    request_hash: &str,
    at_ms: i64,
    until_ms: i64,
) -> Result<bool, DbErr> {
    let inserted = idempotency::Entity::insert(idempotency::ActiveModel {
        scope: Set(claim.scope.clone()),
        request_hash: Set(request_hash.to_owned()),
        reply: Set(None),
        created_at: Set(at_ms),
        claim_token: Set(claim.token.clone()),
        claimed_until: Set(until_ms),
        task_id: Set(None),
    })
    .on_conflict(OnConflict::column(Column::Scope).do_nothing().to_owned())
    .exec_without_returning(db)
    .await?;
    Ok(inserted == 1)
}

pub async fn find<C: ConnectionTrait>(
    db: &C,
    scope: &str,
) -> Result<Option<idempotency::Model>, DbErr> {
    idempotency::Entity::find_by_id(scope.to_owned())
        .one(db)
        .await
}

/// Takes over a key whose claim ran out without a reply, as `row` was read: false when
/// another request took it first or its claimer renewed it meanwhile.
pub async fn take_over<C: ConnectionTrait>(
    db: &C,
    row: &idempotency::Model,
    claim: &Claim,
    until_ms: i64,
) -> Result<bool, DbErr> {
    let taken = idempotency::Entity::update_many()
        .col_expr(Column::ClaimToken, Expr::value(claim.token.clone()))
        .col_expr(Column::ClaimedUntil, Expr::value(until_ms))
        .filter(Column::Scope.eq(&row.scope))
        .filter(Column::Reply.is_null())
        .filter(Column::ClaimToken.eq(&row.claim_token))
        .filter(Column::ClaimedUntil.eq(row.claimed_until))
        .exec(db)
        .await?;
    Ok(taken.rows_affected == 1)
}

/// Holds the claim until `until_ms`; false when it is no longer this request's.
pub async fn renew<C: ConnectionTrait>(
    db: &C,
    claim: &Claim,
    until_ms: i64,
) -> Result<bool, DbErr> {
    let renewed = idempotency::Entity::update_many()
        .col_expr(Column::ClaimedUntil, Expr::value(until_ms))
        .filter(Column::Scope.eq(&claim.scope))
        .filter(Column::ClaimToken.eq(&claim.token))
        .filter(Column::Reply.is_null())
        .exec(db)
        .await?;
    Ok(renewed.rows_affected == 1)
}

/// Notes the task the claimer's change made, in that change's transaction: false when the
/// key is no longer this request's (the change must then be rolled back).
pub async fn record_task<C: ConnectionTrait>(
    db: &C,
    claim: &Claim,
    task_id: &str,
) -> Result<bool, DbErr> {
    let recorded = idempotency::Entity::update_many()
        .col_expr(Column::TaskId, Expr::value(task_id.to_owned()))
        .filter(Column::Scope.eq(&claim.scope))
        .filter(Column::ClaimToken.eq(&claim.token))
        .filter(Column::TaskId.is_null())
        .exec(db)
        .await?;
    Ok(recorded.rows_affected == 1)
}

/// Forgets the task a dead claimer's change made, once that change is known to be undone.
pub async fn forget_task<C: ConnectionTrait>(db: &C, claim: &Claim) -> Result<(), DbErr> {
    idempotency::Entity::update_many()
        .col_expr(Column::TaskId, Expr::value(Option::<String>::None))
        .filter(Column::Scope.eq(&claim.scope))
        .filter(Column::ClaimToken.eq(&claim.token))
        .exec(db)
        .await?;
    Ok(())
}

/// Keeps the (sealed) reply of the request that holds the key.
pub async fn keep_reply<C: ConnectionTrait>(
    db: &C,
    claim: &Claim,
    sealed: String,
) -> Result<(), DbErr> {
    idempotency::Entity::update_many()
        .col_expr(Column::Reply, Expr::value(sealed))
        .filter(Column::Scope.eq(&claim.scope))
        .filter(Column::ClaimToken.eq(&claim.token))
        .exec(db)
        .await?;
    Ok(())
}

/// Gives a key back (its request failed: a repeat may try again).
pub async fn release<C: ConnectionTrait>(db: &C, claim: &Claim) -> Result<(), DbErr> {
    idempotency::Entity::delete_many()
        .filter(Column::Scope.eq(&claim.scope))
        .filter(Column::ClaimToken.eq(&claim.token))
        .exec(db)
        .await?;
    Ok(())
}

/// Forgets keys answered (or whose change committed) before `replied_before`, and claims
/// that changed nothing and lapsed before `abandoned_before`; how many.
pub async fn expire<C: ConnectionTrait>(
    db: &C,
    replied_before: i64,
    abandoned_before: i64,
) -> Result<u64, DbErr> {
    let done = idempotency::Entity::delete_many()
        .filter(Column::CreatedAt.lt(replied_before))
        .filter(
            Condition::any()
                .add(Column::Reply.is_not_null())
                .add(Column::TaskId.is_not_null()),
        )
        .exec(db)
        .await?;
    let abandoned = idempotency::Entity::delete_many()
        .filter(Column::CreatedAt.lt(abandoned_before))
        .filter(Column::ClaimedUntil.lt(abandoned_before))
        .filter(Column::Reply.is_null())
        .filter(Column::TaskId.is_null())
        .exec(db)
        .await?;
    Ok(done.rows_affected + abandoned.rows_affected)
}
