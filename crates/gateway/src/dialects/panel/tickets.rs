//! Support tickets (seed 000's "support ticket responses"), email preferences, and the
//! administrators' view of the mail notify-svc sends. A ticket of someone else's is a 404;
//! administrators are staff and see, answer, close and reopen every ticket.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use proto::notify::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Panel, PanelError, Result, timestamp};
use crate::error::ApiError;
use crate::extract::{Admin, Auth, Body, PathId};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tickets, create_ticket))
        .routes(routes!(get_ticket))
        .routes(routes!(reply_ticket))
        .routes(routes!(close_ticket))
        .routes(routes!(reopen_ticket))
        .routes(routes!(all_tickets))
        .routes(routes!(get_preferences, set_preferences))
        .routes(routes!(list_mails))
        .routes(routes!(resend_mail))
}

/// How many tickets or mails a list shows at most (the newest are last).
const LIST_CAP: usize = 1000;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketMessage {
    id: i64,
    author_id: i64,
    /// Written by staff (an administrator).
    staff: bool,
    body: String,
    created_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Ticket {
    id: i64,
    /// The user who opened it.
    user_id: i64,
    /// The server it is about, if any.
    server_id: Option<i64>,
    subject: String,
    /// `open` or `closed`.
    status: &'static str,
    message_count: u32,
    created_at: Option<String>,
    updated_at: Option<String>,
    /// Oldest first; only when one ticket is read.
    #[serde(skip_serializing_if = "Option::is_none")]
    messages: Option<Vec<TicketMessage>>,
}

impl Ticket {
    fn from_pb(t: pb::Ticket, with_messages: bool) -> Self {
        let status = t.status();
        Self {
            id: t.id,
            user_id: t.owner_id,
            server_id: (t.server_id > 0).then_some(t.server_id),
            subject: t.subject,
            status: match status {
                pb::TicketStatus::Closed => "closed",
                pb::TicketStatus::Open | pb::TicketStatus::Unspecified => "open",
            },
            message_count: t.message_count,
            created_at: timestamp(t.created_at_ms),
            updated_at: timestamp(t.updated_at_ms),
            messages: with_messages.then(|| {
                t.messages
                    .into_iter()
                    .map(|m| TicketMessage {
                        id: m.id,
                        author_id: m.author_id,
                        staff: m.staff,
                        body: m.body,
                        created_at: timestamp(m.created_at_ms),
                    })
                    .collect()
            }),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"subject": "Cannot reach my server", "body": "Since this morning SSH times out.", "serverId": null}))]
pub struct CreateTicketBody {
    #[schema(min_length = 1, max_length = 200)]
    subject: String,
    #[schema(min_length = 1, max_length = 10000)]
    body: String,
    /// One of the caller's servers the ticket is about.
    #[schema(minimum = 1)]
    server_id: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"body": "Thanks, it works again."}))]
pub struct ReplyBody {
    #[schema(min_length = 1, max_length = 10000)]
    body: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TicketQuery {
    /// Only `open` or only `closed` tickets.
    #[param(pattern = "^(open|closed)$")]
    status: Option<String>,
    /// `newest` (the default) or `oldest` first; the 1000 listed are the first in this order,
    /// so a queue read `oldest` first never loses the longest-waiting tickets.
    #[param(pattern = "^(newest|oldest)$")]
    order: Option<String>,
}

/// A listing's status filter and whether it runs newest first.
fn ticket_filter(
    query: std::result::Result<
        axum::extract::Query<TicketQuery>,
        axum::extract::rejection::QueryRejection,
    >,
) -> std::result::Result<(pb::TicketStatus, bool), ApiError> {
    let axum::extract::Query(query) =
        query.map_err(|_| ApiError::bad_request("status and order must be text"))?;
    let status = match query.status.as_deref() {
        None => pb::TicketStatus::Unspecified,
        Some("open") => pb::TicketStatus::Open,
        Some("closed") => pb::TicketStatus::Closed,
        Some(_) => return Err(ApiError::invalid("status", "status must be open or closed")),
    };
    let newest_first = match query.order.as_deref() {
        None | Some("newest") => true,
        Some("oldest") => false,
        Some(_) => return Err(ApiError::invalid("order", "order must be newest or oldest")),
    };
    Ok((status, newest_first))
}

async fn walk_tickets(
    state: &AppState,
    caller: platform::grpc::Caller,
    all: bool,
    (status, newest_first): (pb::TicketStatus, bool),
) -> Result<Vec<Ticket>> {
    let mut out = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = state
            .tickets()
            .list_tickets(caller.request(pb::ListTicketsRequest {
                all,
                status: status.into(),
                limit: 1000,
                page_token,
                newest_first,
            }))
            .await?
            .into_inner();
        out.extend(page.tickets.into_iter().map(|t| Ticket::from_pb(t, false)));
        if page.next_page_token.is_empty() || out.len() >= LIST_CAP {
            break;
        }
        page_token = page.next_page_token;
    }
    out.truncate(LIST_CAP);
    Ok(out)
}

/// The caller's tickets, the newest first unless `order=oldest` (at most 1000).
#[utoipa::path(get, path = "/api/tickets", tag = "support",
    security(("bearerJwt" = [])),
    params(TicketQuery),
    responses(
        (status = 200, description = "The caller's tickets, without their messages", body = [Ticket]),
        (status = 400, description = "A malformed status or order", body = PanelError),
        (status = 401, description = "Missing or invalid token", body = PanelError),
    ))]
async fn list_tickets(
    State(state): State<AppState>,
    auth: Auth<Panel>,
    query: std::result::Result<
        axum::extract::Query<TicketQuery>,
        axum::extract::rejection::QueryRejection,
    >,
) -> Result<Json<Vec<Ticket>>> {
    let filter = ticket_filter(query)?;
    Ok(Json(
        walk_tickets(&state, auth.principal.caller(), false, filter).await?,
    ))
}

/// Every user's tickets, the newest first unless `order=oldest` (administrators; at most 1000).
#[utoipa::path(get, path = "/api/admin/tickets", tag = "support",
    security(("bearerJwt" = [])),
    params(TicketQuery),
    responses(
        (status = 200, description = "Every ticket, without their messages", body = [Ticket]),
        (status = 400, description = "A malformed status or order", body = PanelError),
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 403, description = "Administrators only", body = PanelError),
    ))]
async fn all_tickets(
    State(state): State<AppState>,
    admin: Admin<Panel>,
    query: std::result::Result<
        axum::extract::Query<TicketQuery>,
        axum::extract::rejection::QueryRejection,
    >,
) -> Result<Json<Vec<Ticket>>> {
    let filter = ticket_filter(query)?;
    Ok(Json(
        walk_tickets(&state, admin.principal.caller(), true, filter).await?,
    ))
}

/// Open a ticket, optionally about one of the caller's servers.
#[utoipa::path(post, path = "/api/tickets", tag = "support",
    security(("bearerJwt" = [])),
    request_body = CreateTicketBody,
    responses(
        (status = 201, description = "The ticket, with its first message", body = Ticket),
        (status = 400, description = "An empty or too long subject or body, or a malformed body", body = PanelError),
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 404, description = "No such server of the caller's", body = PanelError),
    ))]
async fn create_ticket(
    State(state): State<AppState>,
    auth: Auth<Panel>,
    Body(body, _): Body<Panel, CreateTicketBody>,
) -> Result<(StatusCode, Json<Ticket>)> {
    let server_id = match body.server_id {
        None => 0,
        Some(id) if id >= 1 => id,
        Some(_) => return Err(ApiError::invalid("serverId", "serverId must be at least 1").into()),
    };
    let ticket = state
        .tickets()
        .create_ticket(auth.principal.caller().request(pb::CreateTicketRequest {
            subject: body.subject,
            body: body.body,
            server_id,
        }))
        .await?
        .into_inner();
    Ok((StatusCode::CREATED, Json(Ticket::from_pb(ticket, true))))
}

/// One ticket with its messages.
#[utoipa::path(get, path = "/api/tickets/{id}", tag = "support",
    security(("bearerJwt" = [])),
    params(("id" = i64, Path, description = "Ticket id")),
    responses(
        (status = 200, description = "The ticket and its messages, oldest first", body = Ticket),
        (status = 400, description = "A malformed id", body = PanelError),
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 404, description = "No such ticket of the caller's", body = PanelError),
    ))]
async fn get_ticket(
    State(state): State<AppState>,
    auth: Auth<Panel>,
    PathId(id, _): PathId<Panel>,
) -> Result<Json<Ticket>> {
    let ticket = state
        .tickets()
        .get_ticket(auth.principal.caller().request(pb::TicketRef { id }))
        .await?
        .into_inner();
    Ok(Json(Ticket::from_pb(ticket, true)))
}

/// Reply to a ticket (its owner, or staff). A reply reopens a closed ticket; a staff reply
/// emails the owner.
#[utoipa::path(post, path = "/api/tickets/{id}/replies", tag = "support",
    security(("bearerJwt" = [])),
    params(("id" = i64, Path, description = "Ticket id")),
    request_body = ReplyBody,
    responses(
        (status = 201, description = "The ticket with the reply", body = Ticket),
        (status = 400, description = "An empty or too long body, a malformed body or id", body = PanelError),
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 404, description = "No such ticket of the caller's", body = PanelError),
    ))]
async fn reply_ticket(
    State(state): State<AppState>,
    auth: Auth<Panel>,
    PathId(id, _): PathId<Panel>,
    Body(body, _): Body<Panel, ReplyBody>,
) -> Result<(StatusCode, Json<Ticket>)> {
    let ticket = state
        .tickets()
        .reply_ticket(auth.principal.caller().request(pb::ReplyTicketRequest {
            id,
            body: body.body,
        }))
        .await?
        .into_inner();
    Ok((StatusCode::CREATED, Json(Ticket::from_pb(ticket, true))))
}

async fn set_status(
    state: &AppState,
    auth: &Auth<Panel>,
    id: i64,
    status: pb::TicketStatus,
) -> Result<Json<Ticket>> {
    let ticket = state
        .tickets()
        .set_ticket_status(auth.principal.caller().request(pb::SetTicketStatusRequest {
            id,
            status: status.into(),
        }))
        .await?
        .into_inner();
    Ok(Json(Ticket::from_pb(ticket, true)))
}

/// Close a ticket (its owner, or staff). Closing a closed ticket changes nothing.
#[utoipa::path(post, path = "/api/tickets/{id}/close", tag = "support",
    security(("bearerJwt" = [])),
    params(("id" = i64, Path, description = "Ticket id")),
    responses(
        (status = 200, description = "The closed ticket", body = Ticket),
        (status = 400, description = "A malformed id", body = PanelError),
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 404, description = "No such ticket of the caller's", body = PanelError),
    ))]
async fn close_ticket(
    State(state): State<AppState>,
    auth: Auth<Panel>,
    PathId(id, _): PathId<Panel>,
) -> Result<Json<Ticket>> {
    set_status(&state, &auth, id, pb::TicketStatus::Closed).await
}

/// Reopen a closed ticket (its owner, or staff).
#[utoipa::path(post, path = "/api/tickets/{id}/reopen", tag = "support",
    security(("bearerJwt" = [])),
    params(("id" = i64, Path, description = "Ticket id")),
    responses(
        (status = 200, description = "The open ticket", body = Ticket),
        (status = 400, description = "A malformed id", body = PanelError),
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 404, description = "No such ticket of the caller's", body = PanelError),
    ))]
async fn reopen_ticket(
    State(state): State<AppState>,
    auth: Auth<Panel>,
    PathId(id, _): PathId<Panel>,
) -> Result<Json<Ticket>> {
    set_status(&state, &auth, id, pb::TicketStatus::Open).await
}

/// Which kinds of email the caller receives. Billing and security notices are always sent.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"serverCreated": true, "alert": false, "ticketReply": true}))]
pub struct Preferences {
    /// A server finished being created.
    server_created: Option<bool>,
    /// A resource alert fired (CPU, memory or disk above the threshold).
    alert: Option<bool>,
    /// Staff answered a ticket.
    ticket_reply: Option<bool>,
}

impl Preferences {
    fn from_pb(list: Vec<pb::Preference>) -> Self {
        let on = |kind: &str| list.iter().find(|p| p.kind == kind).map(|p| p.enabled);
        Self {
            server_created: on("server_created"),
            alert: on("alert"),
            ticket_reply: on("ticket_reply"),
        }
    }

    fn to_pb(&self) -> Vec<pb::Preference> {
        [
            ("server_created", self.server_created),
            ("alert", self.alert),
            ("ticket_reply", self.ticket_reply),
        ]
        .into_iter()
        .filter_map(|(kind, enabled)| {
            enabled.map(|enabled| pb::Preference {
                kind: kind.to_owned(),
                enabled,
            })
        })
        .collect()
    }
}

/// The caller's email preferences.
#[utoipa::path(get, path = "/api/account/notifications", tag = "support",
    security(("bearerJwt" = [])),
    responses(
        (status = 200, description = "Each kind the caller may turn off, and whether it is on", body = Preferences),
        (status = 401, description = "Missing or invalid token", body = PanelError),
    ))]
async fn get_preferences(
    State(state): State<AppState>,
    auth: Auth<Panel>,
) -> Result<Json<Preferences>> {
    let reply = state
        .notify()
        .get_preferences(
            auth.principal
                .caller()
                .request(pb::GetPreferencesRequest {}),
        )
        .await?
        .into_inner();
    Ok(Json(Preferences::from_pb(reply.preferences)))
}

/// Turn kinds of email off or on; kinds left out stay as they are.
#[utoipa::path(put, path = "/api/account/notifications", tag = "support",
    security(("bearerJwt" = [])),
    request_body = Preferences,
    responses(
        (status = 200, description = "The preferences now", body = Preferences),
        (status = 400, description = "A malformed body or an unknown kind", body = PanelError),
        (status = 401, description = "Missing or invalid token", body = PanelError),
    ))]
async fn set_preferences(
    State(state): State<AppState>,
    auth: Auth<Panel>,
    Body(body, _): Body<Panel, Preferences>,
) -> Result<Json<Preferences>> {
    let reply = state
        .notify()
        .set_preferences(auth.principal.caller().request(pb::SetPreferencesRequest {
            preferences: body.to_pb(),
        }))
        .await?
        .into_inner();
    Ok(Json(Preferences::from_pb(reply.preferences)))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Mail {
    id: i64,
    user_id: i64,
    /// server_created, alert, ticket_reply, payment_reminder or server_suspended.
    kind: String,
    recipient: String,
    subject: String,
    /// `pending`, `sent` or `failed`.
    state: String,
    attempts: u32,
    /// Why the last attempt failed.
    last_error: String,
    created_at: Option<String>,
    sent_at: Option<String>,
    /// The event the mail was made from.
    event_id: String,
}

impl From<pb::Mail> for Mail {
    fn from(m: pb::Mail) -> Self {
        Self {
            id: m.id,
            user_id: m.user_id,
            kind: m.kind,
            recipient: m.recipient,
            subject: m.subject,
            state: m.state,
            attempts: m.attempts,
            last_error: m.last_error,
            created_at: timestamp(m.created_at_ms),
            sent_at: timestamp(m.sent_at_ms),
            event_id: m.event_id,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MailQuery {
    /// Only mails in this state.
    #[param(pattern = "^(pending|sent|failed)$")]
    state: Option<String>,
}

/// The mails notify-svc made, the newest first (administrators; at most 1000).
#[utoipa::path(get, path = "/api/admin/mails", tag = "support",
    security(("bearerJwt" = [])),
    params(MailQuery),
    responses(
        (status = 200, description = "The mails, without their bodies", body = [Mail]),
        (status = 400, description = "A malformed state", body = PanelError),
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 403, description = "Administrators only", body = PanelError),
    ))]
async fn list_mails(
    State(state): State<AppState>,
    admin: Admin<Panel>,
    query: std::result::Result<
        axum::extract::Query<MailQuery>,
        axum::extract::rejection::QueryRejection,
    >,
) -> Result<Json<Vec<Mail>>> {
    let axum::extract::Query(query) =
        query.map_err(|_| ApiError::bad_request("state must be text"))?;
    let wanted = query.state.unwrap_or_default();
    if !matches!(wanted.as_str(), "" | "pending" | "sent" | "failed") {
        return Err(ApiError::invalid("state", "state must be pending, sent or failed").into());
    }
    let caller = admin.principal.caller();
    let mut out = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = state
            .notify()
            .list_mails(caller.request(pb::ListMailsRequest {
                state: wanted.clone(),
                limit: 1000,
                page_token,
                newest_first: true,
            }))
            .await?
            .into_inner();
        out.extend(page.mails.into_iter().map(Mail::from));
        if page.next_page_token.is_empty() || out.len() >= LIST_CAP {
            break;
        }
        page_token = page.next_page_token;
    }
    out.truncate(LIST_CAP);
    Ok(Json(out))
}

/// Send a failed mail again, from its first attempt (administrators).
#[utoipa::path(post, path = "/api/admin/mails/{id}/resend", tag = "support",
    security(("bearerJwt" = [])),
    params(("id" = i64, Path, description = "Mail id")),
    responses(
        (status = 200, description = "The mail, pending again", body = Mail),
        (status = 400, description = "A malformed id", body = PanelError),
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 403, description = "Administrators only", body = PanelError),
        (status = 404, description = "No such mail", body = PanelError),
        (status = 409, description = "The mail has not failed", body = PanelError),
    ))]
async fn resend_mail(
    State(state): State<AppState>,
    admin: Admin<Panel>,
    PathId(id, _): PathId<Panel>,
) -> Result<Json<Mail>> {
    let mail = state
        .notify()
        .resend_mail(
            admin
                .principal
                .caller()
                .request(pb::ResendMailRequest { id }),
        )
        .await?
        .into_inner();
    Ok(Json(Mail::from(mail)))
}
