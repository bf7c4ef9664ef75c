//! Read versions: a counter per owner that moves on in the same transaction as any change to
//! the owner's servers, and one for the catalog (plans and images). Triggers keep them (see the
//! `ReadVersions` migration), so no write path can forget to; a reader holding a listing asks
//! for these numbers instead of the listing again.

use sea_orm::sea_query::{Expr, ExprTrait as _, Query};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};
use sea_orm_migration::prelude::DeriveIden;

/// The scope of the catalog's version (owners are users, whose ids start at 1).
pub const CATALOG: i64 = 0;

#[derive(DeriveIden, Clone, Copy)]
pub(crate) enum ReadVersions {
    Table,
    Scope,
    Version,
}

#[derive(FromQueryResult)]
struct Row {
    scope: i64,
    version: i64,
}

/// What an owner's listing shows, named: their servers' version and the catalog's, as
/// committed now. An owner who never had a server is at 0.
pub async fn of_owner<C: ConnectionTrait>(db: &C, owner: i64) -> Result<String, DbErr> {
    let select = Query::select()
        .columns([ReadVersions::Scope, ReadVersions::Version])
        .from(ReadVersions::Table)
        .and_where(Expr::col(ReadVersions::Scope).is_in([owner, CATALOG]))
        .to_owned();
    let (mut servers, mut catalog) = (0, 0);
    for row in Row::find_by_statement(db.get_database_backend().build(&select))
        .all(db)
        .await?
    {
        if row.scope == CATALOG {
            catalog = row.version;
        } else {
            servers = row.version;
        }
    }
    Ok(format!("{owner}.{servers}.{catalog}"))
}

#[derive(FromQueryResult)]
struct Total {
    total: i64,
}

/// What a listing of every owner's servers shows, named: the counters only grow, so their
/// sum moves on with any change to any of them (one statement, so one snapshot).
pub async fn of_all<C: ConnectionTrait>(db: &C) -> Result<String, DbErr> {
    let select = Query::select()
        .expr_as(
            Expr::cust("CAST(COALESCE(SUM(version), 0) AS BIGINT)"),
            sea_orm::sea_query::Alias::new("total"),
        )
        .from(ReadVersions::Table)
        .to_owned();
    let total = Total::find_by_statement(db.get_database_backend().build(&select))
        .one(db)
        .await?
        .map_or(0, |row| row.total);
    Ok(format!("all.{total}"))
}
