//! Support tickets: a user opens one (optionally about a server of theirs), the user and
//! staff (administrators) reply, either closes or reopens it. Each change is an event
//! (`vps.events.ticket.*`, through the outbox); a staff reply's event is what mails the
//! owner, through the same consumer as every other mail.

use platform::auth::Caller;
use proto::events::v1::{self as ev, subject};
use proto::notify::v1 as pb;
use sea_orm::{Set, TransactionTrait as _};

use super::{App, now_ms};
use crate::error::{NotifyError, Result};
use crate::store::{self, entity::ticket};

pub const SUBJECT_MAX: usize = 200;
pub const BODY_MAX: usize = 10_000;

const OPEN: &str = "open";
const CLOSED: &str = "closed";

impl App {
    pub async fn create_ticket(
        &self,
        caller: Caller,
        subject_text: &str,
        body: &str,
        server_id: i64,
    ) -> Result<pb::Ticket> {
        let subject_text = text("subject", subject_text, SUBJECT_MAX)?;
        let body = text("body", body, BODY_MAX)?;
        if server_id < 0 {
            return Err(NotifyError::invalid(
                "serverId",
                "serverId must be positive",
            ));
        }
        if server_id > 0 {
            self.check_server(caller, server_id).await?;
        }
        let now = now_ms();
        let txn = self.db.begin().await?;
        let row = store::insert_ticket(
            &txn,
            ticket::ActiveModel {
                uuid: Set(uuid::Uuid::now_v7().to_string()),
                owner_id: Set(caller.user_id),
                server_id: Set((server_id > 0).then_some(server_id)),
                subject: Set(subject_text.to_owned()),
                status: Set(OPEN.to_owned()),
                message_count: Set(0),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            },
        )
        .await?;
        let message =
            store::add_message(&txn, row.id, caller.user_id, caller.admin, body, now).await?;
        event(&txn, subject::TICKET_OPENED, &row, caller, Some(&message)).await?;
        txn.commit().await?;
        self.ticket_view(row.id).await
    }

    pub async fn list_tickets(
        &self,
        caller: Caller,
        all: bool,
        status: pb::TicketStatus,
        limit: u32,
        page_token: &str,
        newest_first: bool,
    ) -> Result<(Vec<pb::Ticket>, String)> {
        let page = platform::page::Page::parse(limit, page_token)
            .map_err(|(field, message)| NotifyError::invalid(field, message))?;
        if all && !caller.admin {
            return Err(NotifyError::invalid(
                "all",
                "only administrators see every user's tickets",
            ));
        }
        let owner = (!all).then_some(caller.user_id);
        let rows =
            store::list_tickets(&self.db, owner, status_name(status), page, newest_first).await?;
        let (rows, next) = page.finish(rows, |t| t.id);
        Ok((
            rows.into_iter().map(|t| ticket_pb(t, Vec::new())).collect(),
            next,
        ))
    }

    pub async fn get_ticket(&self, caller: Caller, id: i64) -> Result<pb::Ticket> {
        self.visible(caller, id).await?;
        self.ticket_view(id).await
    }

    /// A reply; a reply to a closed ticket opens it again.
    pub async fn reply_ticket(&self, caller: Caller, id: i64, body: &str) -> Result<pb::Ticket> {
        let body = text("body", body, BODY_MAX)?;
        let row = self.visible(caller, id).await?;
        let now = now_ms();
        let txn = self.db.begin().await?;
        let message = store::add_message(&txn, id, caller.user_id, caller.admin, body, now).await?;
        if row.status != OPEN {
            store::set_ticket_status(&txn, id, OPEN, now).await?;
        }
        event(&txn, subject::TICKET_REPLIED, &row, caller, Some(&message)).await?;
        txn.commit().await?;
        self.ticket_view(id).await
    }

    pub async fn set_ticket_status(
        &self,
        caller: Caller,
        id: i64,
        status: pb::TicketStatus,
    ) -> Result<pb::Ticket> {
        let Some(wanted) = status_name(status) else {
            return Err(NotifyError::invalid(
                "status",
                "status must be open or closed",
            ));
        };
        let row = self.visible(caller, id).await?;
        if row.status != wanted {
            let txn = self.db.begin().await?;
            store::set_ticket_status(&txn, id, wanted, now_ms()).await?;
            let what = if wanted == CLOSED {
                subject::TICKET_CLOSED
            } else {
                subject::TICKET_REOPENED
            };
            event(&txn, what, &row, caller, None).await?;
            txn.commit().await?;
        }
        self.ticket_view(id).await
    }

    /// The ticket, if the caller may see it: its owner and staff may; to anyone else it
    /// does not exist.
    async fn visible(&self, caller: Caller, id: i64) -> Result<ticket::Model> {
        store::get_ticket(&self.db, id)
            .await?
            .filter(|t| caller.admin || t.owner_id == caller.user_id)
            .ok_or(NotifyError::NotFound("ticket"))
    }

    async fn ticket_view(&self, id: i64) -> Result<pb::Ticket> {
        let row = store::get_ticket(&self.db, id)
            .await?
            .ok_or(NotifyError::NotFound("ticket"))?;
        let messages = store::messages(&self.db, id).await?;
        Ok(ticket_pb(row, messages))
    }

    /// The server must be the caller's (for an administrator: exist).
    async fn check_server(&self, caller: Caller, server_id: i64) -> Result<()> {
        let request = Caller::SYSTEM.request(proto::server::v1::ServerRef {
            id: server_id,
            uuid: String::new(),
        });
        match self.servers.clone().get_server(request).await {
            Ok(server) if caller.admin || server.get_ref().owner_id == caller.user_id => Ok(()),
            Ok(_) => Err(NotifyError::NotFound("server")),
            Err(status) if status.code() == tonic::Code::NotFound => {
                Err(NotifyError::NotFound("server"))
            }
            Err(status) => Err(NotifyError::Unavailable(status)),
        }
    }
}

/// Trimmed, not empty, at most `max` characters.
fn text<'a>(field: &'static str, value: &'a str, max: usize) -> Result<&'a str> {
    let value = value.trim();
    if value.is_empty() {
        return Err(NotifyError::invalid(
            field,
            format!("{field} must not be empty"),
        ));
    }
    if value.chars().count() > max {
        return Err(NotifyError::invalid(
            field,
            format!("{field} must be at most {max} characters"),
        ));
    }
    Ok(value)
}

fn status_name(status: pb::TicketStatus) -> Option<&'static str> {
    match status {
        pb::TicketStatus::Unspecified => None,
        pb::TicketStatus::Open => Some(OPEN),
        pb::TicketStatus::Closed => Some(CLOSED),
    }
}

async fn event<C: sea_orm::ConnectionTrait>(
    db: &C,
    what: &str,
    row: &ticket::Model,
    caller: Caller,
    message: Option<&store::entity::ticket_message::Model>,
) -> Result<()> {
    let id = uuid::Uuid::now_v7();
    let event = ev::TicketEvent {
        id: id.to_string(),
        version: ev::VERSION,
        r#type: what.rsplit('.').next().unwrap_or(what).to_owned(),
        at: chrono::Utc::now().to_rfc3339(),
        ticket_id: row.id,
        owner_id: row.owner_id,
        server_id: row.server_id.unwrap_or(0),
        subject: row.subject.clone(),
        author_id: caller.user_id,
        staff: caller.admin,
        message_id: message.map_or(0, |m| m.id),
        body: message.map(|m| m.body.clone()).unwrap_or_default(),
    };
    platform::outbox::enqueue(db, what, id, &event).await?;
    Ok(())
}

fn ticket_pb(t: ticket::Model, messages: Vec<store::entity::ticket_message::Model>) -> pb::Ticket {
    pb::Ticket {
        id: t.id,
        uuid: t.uuid,
        owner_id: t.owner_id,
        server_id: t.server_id.unwrap_or(0),
        subject: t.subject,
        status: if t.status == CLOSED {
            pb::TicketStatus::Closed
        } else {
            pb::TicketStatus::Open
        } as i32,
        created_at_ms: t.created_at,
        updated_at_ms: t.updated_at,
        message_count: u32::try_from(t.message_count).unwrap_or(0),
        messages: messages
            .into_iter()
            .map(|m| pb::TicketMessage {
                id: m.id,
                author_id: m.author_id,
                staff: m.staff,
                body: m.body,
                created_at_ms: m.created_at,
            })
            .collect(),
    }
}
