//! notify-svc's queries.

pub mod entity;
pub mod migration;
pub mod webhooks;

use platform::page::Page;
use sea_orm::sea_query::{Expr, ExprTrait as _, OnConflict};
use sea_orm::{
    ActiveModelTrait as _, ColumnTrait as _, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter as _, QueryOrder as _, QuerySelect as _, Set,
};

use entity::{mail, preference, ticket, ticket_message};

pub const PENDING: &str = "pending";
pub const SENT: &str = "sent";
pub const FAILED: &str = "failed";

/// Keeps a mail, unless one with its key exists (the event came twice): whether it is new.
pub async fn insert_mail<C: ConnectionTrait>(
    db: &C,
    row: mail::ActiveModel,
) -> Result<bool, DbErr> {
    let inserted = mail::Entity::insert(row)
        .on_conflict(
            OnConflict::column(mail::Column::Key)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(inserted > 0)
}

/// The mails of `kind` made for `user_id` since `since_ms`.
pub async fn mails_since<C: ConnectionTrait>(
    db: &C,
    user_id: i64,
    kind: &str,
    since_ms: i64,
) -> Result<u64, DbErr> {
    mail::Entity::find()
        .filter(mail::Column::UserId.eq(user_id))
        .filter(mail::Column::Kind.eq(kind))
        .filter(mail::Column::CreatedAt.gte(since_ms))
        .count(db)
        .await
}

/// Pending mails whose attempt is due, oldest first.
pub async fn due_mails<C: ConnectionTrait>(
    db: &C,
    now_ms: i64,
    limit: u64,
) -> Result<Vec<mail::Model>, DbErr> {
    mail::Entity::find()
        .filter(mail::Column::State.eq(PENDING))
        .filter(mail::Column::NextAttemptAt.lte(now_ms))
        .order_by_asc(mail::Column::NextAttemptAt)
        .order_by_asc(mail::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// How an attempt ended.
pub enum Outcome<'a> {
    Sent { at_ms: i64 },
    Retry { next_at_ms: i64, error: &'a str },
    Failed { error: &'a str },
}

/// Records an attempt on a pending mail.
pub async fn record_attempt<C: ConnectionTrait>(
    db: &C,
    id: i64,
    attempts: i32,
    outcome: Outcome<'_>,
) -> Result<(), DbErr> {
    let mut update = mail::Entity::update_many()
        .col_expr(mail::Column::Attempts, Expr::value(attempts))
        .filter(mail::Column::Id.eq(id))
        .filter(mail::Column::State.eq(PENDING));
    update = match outcome {
        Outcome::Sent { at_ms } => update
            .col_expr(mail::Column::State, Expr::value(SENT))
            .col_expr(mail::Column::SentAt, Expr::value(at_ms))
            .col_expr(mail::Column::LastError, Expr::value("")),
        Outcome::Retry { next_at_ms, error } => update
            .col_expr(mail::Column::NextAttemptAt, Expr::value(next_at_ms))
            .col_expr(mail::Column::LastError, Expr::value(error)),
        Outcome::Failed { error } => update
            .col_expr(mail::Column::State, Expr::value(FAILED))
            .col_expr(mail::Column::LastError, Expr::value(error)),
    };
    update.exec(db).await?;
    Ok(())
}

/// Mails in id order, optionally in one state.
/// Mails in id order, or the newest first (`page.after`, when not 0, is then the id the
/// page starts below).
pub async fn list_mails<C: ConnectionTrait>(
    db: &C,
    state: Option<&str>,
    page: Page,
    newest_first: bool,
) -> Result<Vec<mail::Model>, DbErr> {
    let mut query = keyset(mail::Entity::find(), mail::Column::Id, page, newest_first);
    if let Some(state) = state {
        query = query.filter(mail::Column::State.eq(state));
    }
    query.limit(page.fetch()).all(db).await
}

/// A page of `query` by its `id` column: ascending after the cursor, or descending below it.
fn keyset<E: EntityTrait, C: sea_orm::ColumnTrait>(
    query: sea_orm::Select<E>,
    id: C,
    page: Page,
    newest_first: bool,
) -> sea_orm::Select<E> {
    if !newest_first {
        query.filter(id.gt(page.after)).order_by_asc(id)
    } else if page.after > 0 {
        query.filter(id.lt(page.after)).order_by_desc(id)
    } else {
        query.order_by_desc(id)
    }
}

pub async fn get_mail<C: ConnectionTrait>(db: &C, id: i64) -> Result<Option<mail::Model>, DbErr> {
    mail::Entity::find_by_id(id).one(db).await
}

/// Sends a failed mail again, from its first attempt: whether it was failed.
pub async fn resend<C: ConnectionTrait>(db: &C, id: i64, now_ms: i64) -> Result<bool, DbErr> {
    let updated = mail::Entity::update_many()
        .col_expr(mail::Column::State, Expr::value(PENDING))
        .col_expr(mail::Column::Attempts, Expr::value(0))
        .col_expr(mail::Column::NextAttemptAt, Expr::value(now_ms))
        .filter(mail::Column::Id.eq(id))
        .filter(mail::Column::State.eq(FAILED))
        .exec(db)
        .await?;
    Ok(updated.rows_affected > 0)
}

/// The kinds `user_id` turned off.
pub async fn disabled_kinds<C: ConnectionTrait>(
    db: &C,
    user_id: i64,
) -> Result<Vec<String>, DbErr> {
    Ok(preference::Entity::find()
        .filter(preference::Column::UserId.eq(user_id))
        .filter(preference::Column::Enabled.eq(false))
        .all(db)
        .await?
        .into_iter()
        .map(|p| p.kind)
        .collect())
}

pub async fn set_preference<C: ConnectionTrait>(
    db: &C,
    user_id: i64,
    kind: &str,
    enabled: bool,
) -> Result<(), DbErr> {
    preference::Entity::insert(preference::ActiveModel {
        user_id: Set(user_id),
        kind: Set(kind.to_owned()),
        enabled: Set(enabled),
    })
    .on_conflict(
        OnConflict::columns([preference::Column::UserId, preference::Column::Kind])
            .update_column(preference::Column::Enabled)
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

pub async fn insert_ticket<C: ConnectionTrait>(
    db: &C,
    row: ticket::ActiveModel,
) -> Result<ticket::Model, DbErr> {
    row.insert(db).await
}

pub async fn get_ticket<C: ConnectionTrait>(
    db: &C,
    id: i64,
) -> Result<Option<ticket::Model>, DbErr> {
    ticket::Entity::find_by_id(id).one(db).await
}

/// Tickets in id order: `owner`'s, or everyone's.
pub async fn list_tickets<C: ConnectionTrait>(
    db: &C,
    owner: Option<i64>,
    status: Option<&str>,
    page: Page,
    newest_first: bool,
) -> Result<Vec<ticket::Model>, DbErr> {
    let mut query = keyset(
        ticket::Entity::find(),
        ticket::Column::Id,
        page,
        newest_first,
    );
    if let Some(owner) = owner {
        query = query.filter(ticket::Column::OwnerId.eq(owner));
    }
    if let Some(status) = status {
        query = query.filter(ticket::Column::Status.eq(status));
    }
    query.limit(page.fetch()).all(db).await
}

/// Adds a message to a ticket and moves the ticket's clock and count on.
pub async fn add_message<C: ConnectionTrait>(
    db: &C,
    ticket_id: i64,
    author_id: i64,
    staff: bool,
    body: &str,
    at_ms: i64,
) -> Result<ticket_message::Model, DbErr> {
    let message = ticket_message::ActiveModel {
        ticket_id: Set(ticket_id),
        author_id: Set(author_id),
        staff: Set(staff),
        body: Set(body.to_owned()),
        created_at: Set(at_ms),
        ..Default::default()
    }
    .insert(db)
    .await?;
    ticket::Entity::update_many()
        .col_expr(
            ticket::Column::MessageCount,
            Expr::col(ticket::Column::MessageCount).add(1),
        )
        .col_expr(ticket::Column::UpdatedAt, Expr::value(at_ms))
        .filter(ticket::Column::Id.eq(ticket_id))
        .exec(db)
        .await?;
    Ok(message)
}

pub async fn set_ticket_status<C: ConnectionTrait>(
    db: &C,
    id: i64,
    status: &str,
    at_ms: i64,
) -> Result<(), DbErr> {
    ticket::Entity::update_many()
        .col_expr(ticket::Column::Status, Expr::value(status))
        .col_expr(ticket::Column::UpdatedAt, Expr::value(at_ms))
        .filter(ticket::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

pub async fn messages<C: ConnectionTrait>(
    db: &C,
    ticket_id: i64,
) -> Result<Vec<ticket_message::Model>, DbErr> {
    ticket_message::Entity::find()
        .filter(ticket_message::Column::TicketId.eq(ticket_id))
        .order_by_asc(ticket_message::Column::Id)
        .all(db)
        .await
}
