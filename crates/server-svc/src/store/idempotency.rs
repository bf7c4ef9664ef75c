//! Idempotency keys: one row per (user, key), claimed by the first request, holding its
//! sealed reply once it has one.
//!
//! A claim is a lease: its request renews `claimed_until` while it runs, and every write of
//! the claimer names its `claim_token`, so once another request has taken the key over, the
//! first one's writes (its change, its reply) match nothing.

use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};

use super::entity::idempotency::{self, Column};

/// `claimed_until` of a claim its request ended (it failed after its change): lapsed at once,
/// never renewed.
const ENDED: i64 = 1;

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

/// Holds the claim until `until_ms`; false when it is no longer this request's, or was ended
/// (a renewal still in flight when its request failed must not hold the key again).
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
        .filter(Column::ClaimedUntil.gt(ENDED))
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

/// Forgets the task the claim's change made, once that change is known to be undone.
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

/// Gives a key back after its request failed. Before its change committed, a repeat may
/// make it again: the key goes. After it, the claim ends at once, so a repeat answers from
/// the task the change made.
pub async fn release<C: ConnectionTrait>(db: &C, claim: &Claim) -> Result<(), DbErr> {
    idempotency::Entity::delete_many()
        .filter(Column::Scope.eq(&claim.scope))
        .filter(Column::ClaimToken.eq(&claim.token))
        .filter(Column::TaskId.is_null())
        .exec(db)
        .await?;
    idempotency::Entity::update_many()
        .col_expr(Column::ClaimedUntil, Expr::value(ENDED))
        .filter(Column::Scope.eq(&claim.scope))
        .filter(Column::ClaimToken.eq(&claim.token))
        .filter(Column::Reply.is_null())
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn db() -> sea_orm::DatabaseConnection {
        platform::db::connect_and_migrate::<crate::store::migration::Migrator>("sqlite::memory:", 1)
            .await
            .expect("database")
    }

    fn held_by(token: &str) -> Claim {
        Claim {
            scope: "7:key".into(),
            token: token.into(),
        }
    }

    async fn row(db: &sea_orm::DatabaseConnection) -> idempotency::Model {
        find(db, "7:key")
            .await
            .expect("find")
            .expect("the key's row")
    }

    #[tokio::test]
    async fn a_key_taken_over_fences_off_its_first_holder() {
        let db = db().await;
        let (first, second) = (held_by("first"), held_by("second"));
        assert!(claim(&db, &first, "hash", 100, 200).await.expect("claim"));
        assert!(!claim(&db, &second, "hash", 150, 250).await.expect("claim"));

        // Renewed after the repeat read it: the take-over, as read, fails.
        let read = row(&db).await;
        assert!(renew(&db, &first, 300).await.expect("renew"));
        assert!(!take_over(&db, &read, &second, 400).await.expect("take"));
        assert!(
            take_over(&db, &row(&db).await, &second, 400)
                .await
                .expect("take")
        );

        // The first holder's writes now match nothing.
        assert!(!renew(&db, &first, 500).await.expect("renew"));
        assert!(!record_task(&db, &first, "task_a").await.expect("record"));
        keep_reply(&db, &first, "stale".into())
            .await
            .expect("reply");
        release(&db, &first).await.expect("release");
        let now = row(&db).await;
        assert_eq!(
            (
                now.claim_token.as_str(),
                now.claimed_until,
                now.reply,
                now.task_id
            ),
            ("second", 400, None, None)
        );

        // The new holder's change is noted once; a failure after it keeps the task on the
        // key and ends the claim at once, for a repeat to answer from.
        assert!(record_task(&db, &second, "task_b").await.expect("record"));
        assert!(!record_task(&db, &second, "task_c").await.expect("record"));
        release(&db, &second).await.expect("release");
        let now = row(&db).await;
        assert_eq!(
            (now.task_id.as_deref(), now.claimed_until),
            (Some("task_b"), ENDED)
        );
        // A renewal already on its way lands after the failure: the claim stays ended.
        assert!(!renew(&db, &second, 900).await.expect("renew"));
        assert_eq!(row(&db).await.claimed_until, ENDED);

        // Undone (forgotten), a failure gives the key back whole.
        forget_task(&db, &second).await.expect("forget");
        release(&db, &second).await.expect("release");
        assert!(find(&db, "7:key").await.expect("find").is_none());
    }

    #[tokio::test]
    async fn expiry_keeps_live_claims_and_changes_within_their_time() {
        let db = db().await;
        let key = |scope: &str| Claim {
            scope: scope.into(),
            token: "t".into(),
        };
        // Answered long ago; changed long ago; lapsed long ago having changed nothing.
        for (scope, until) in [("1:replied", 10), ("1:changed", 10), ("1:lapsed", 10)] {
            assert!(claim(&db, &key(scope), "h", 5, until).await.expect("claim"));
        }
        keep_reply(&db, &key("1:replied"), "r".into())
            .await
            .expect("reply");
        record_task(&db, &key("1:changed"), "task")
            .await
            .expect("record");
        // Claimed long ago, still renewed; and one answered recently.
        assert!(
            claim(&db, &key("1:live"), "h", 5, 10_000)
                .await
                .expect("claim")
        );
        assert!(
            claim(&db, &key("1:recent"), "h", 900, 910)
                .await
                .expect("claim")
        );
        keep_reply(&db, &key("1:recent"), "r".into())
            .await
            .expect("reply");

        let gone = expire(&db, 500, 1_000).await.expect("expire");
        assert_eq!(gone, 3);
        for (scope, kept) in [
            ("1:replied", false),
            ("1:changed", false),
            ("1:lapsed", false),
            ("1:live", true),
            ("1:recent", true),
        ] {
            assert_eq!(
                find(&db, scope).await.expect("find").is_some(),
                kept,
                "{scope}"
            );
        }
        // A change is kept as long as a reply: it is not abandoned when its claim lapses.
        assert!(
            claim(&db, &key("2:changed"), "h", 900, 910)
                .await
                .expect("claim")
        );
        record_task(&db, &key("2:changed"), "task")
            .await
            .expect("record");
        assert_eq!(expire(&db, 500, 1_000).await.expect("expire"), 0);
    }
}
