//! Balances and the ledger.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

use super::entity::{balance, ledger};

/// A user's balance; `None` when there is no such user.
pub async fn balance_of<C: ConnectionTrait>(db: &C, user_id: i64) -> Result<Option<i64>, DbErr> {
    Ok(balance::Entity::find_by_id(user_id)
        .one(db)
        .await?
        .map(|b| b.balance))
}

/// Adds `amount` to a balance in one conditional update, only while the balance is at
/// least `floor`; false when it is not (so concurrent charges never pass the floor).
pub async fn add<C: ConnectionTrait>(
    db: &C,
    user_id: i64,
    amount: i64,
    floor: i64,
    at: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let updated = balance::Entity::update_many()
        .col_expr(
            balance::Column::Balance,
            Expr::col(balance::Column::Balance).add(amount),
        )
        .col_expr(balance::Column::UpdatedAt, Expr::value(at))
        .filter(balance::Column::UserId.eq(user_id))
        .filter(balance::Column::Balance.gte(floor))
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// A new ledger entry's row.
pub struct NewEntry {
    pub user_id: i64,
    pub amount: i64,
    pub balance_after: i64,
    pub reason: String,
    pub reference: Option<String>,
}

/// Records an entry; a reference used before for this user is a unique violation.
pub async fn record<C: ConnectionTrait>(
    db: &C,
    entry: NewEntry,
    at: DateTime<Utc>,
) -> Result<ledger::Model, DbErr> {
    ledger::ActiveModel {
        user_id: Set(entry.user_id),
        amount: Set(entry.amount),
        balance_after: Set(entry.balance_after),
        reason: Set(entry.reason),
        reference: Set(entry.reference),
        created_at: Set(at),
        ..Default::default()
    }
    .insert(db)
    .await
}

pub async fn by_reference<C: ConnectionTrait>(
    db: &C,
    user_id: i64,
    reference: &str,
) -> Result<Option<ledger::Model>, DbErr> {
    ledger::Entity::find()
        .filter(ledger::Column::UserId.eq(user_id))
        .filter(ledger::Column::Reference.eq(reference))
        .one(db)
        .await
}

/// A user's newest `limit` entries, newest first.
pub async fn newest<C: ConnectionTrait>(
    db: &C,
    user_id: i64,
    limit: u64,
) -> Result<Vec<ledger::Model>, DbErr> {
    ledger::Entity::find()
        .filter(ledger::Column::UserId.eq(user_id))
        .order_by_desc(ledger::Column::Id)
        .limit(limit)
        .all(db)
        .await
}
