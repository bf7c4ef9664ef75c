//! Webhooks (Standard Webhooks): a user registers HTTPS endpoints for events of their own
//! servers, an administrator (with `all`) for every user's. The signing secret is shown
//! once, when the endpoint is made. Another user's endpoint or delivery is a 404.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use proto::notify::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Panel, PanelError, Result, StatusReply, timestamp};
use crate::extract::{Auth, Body, PathId};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_webhooks, create_webhook))
        .routes(routes!(get_webhook, update_webhook, delete_webhook))
        .routes(routes!(list_deliveries))
        .routes(routes!(replay_delivery))
}

/// A webhook event type: one of the values listed (anything else is a 400).
pub struct WebhookEventType;

impl utoipa::PartialSchema for WebhookEventType {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .enum_values(Some(proto::events::v1::WEBHOOK_EVENT_TYPES.iter().copied()))
            .into()
    }
}

impl ToSchema for WebhookEventType {}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    id: i64,
    url: String,
    /// The event types delivered; empty: every type.
    #[schema(value_type = Vec<WebhookEventType>)]
    event_types: Vec<String>,
    /// Every user's events (administrators' endpoints).
    all: bool,
    enabled: bool,
    /// Why it was disabled (its receiver answered 410 Gone), if it was.
    disabled_reason: Option<String>,
    /// The secret's first characters, to tell secrets apart.
    secret_hint: String,
    created_at: Option<String>,
    updated_at: Option<String>,
}

impl From<pb::Webhook> for Webhook {
    fn from(w: pb::Webhook) -> Self {
        Self {
            id: w.id,
            url: w.url,
            event_types: w.event_types,
            all: w.all,
            enabled: w.enabled,
            disabled_reason: (!w.disabled_reason.is_empty()).then_some(w.disabled_reason),
            secret_hint: w.secret_hint,
            created_at: timestamp(w.created_at_ms),
            updated_at: timestamp(w.updated_at_ms),
        }
    }
}

/// A new endpoint, with its signing secret (shown only here).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedWebhook {
    #[serde(flatten)]
    webhook: Webhook,
    /// `whsec_...`: verify each delivery's `webhook-signature` with it (Standard Webhooks).
    secret: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"url": "https://hooks.example.com/vps", "eventTypes": ["server.created", "alert.fired"]}))]
pub struct CreateWebhookBody {
    /// An https URL whose host is public (internal addresses are refused unless the
    /// deployment allows them).
    #[schema(max_length = 2000)]
    url: String,
    /// The event types to deliver; absent or empty: every type.
    #[serde(default)]
    #[schema(value_type = Vec<WebhookEventType>)]
    event_types: Vec<String>,
    /// Administrators: every user's events.
    #[serde(default)]
    all: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"enabled": true}))]
pub struct UpdateWebhookBody {
    #[schema(max_length = 2000)]
    url: Option<String>,
    /// Replaces the types; an empty list means every type.
    #[schema(value_type = Option<Vec<WebhookEventType>>)]
    event_types: Option<Vec<String>>,
    /// Turn deliveries on again (after a 410) or off.
    enabled: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    id: i64,
    /// The `webhook-id` header: the same on every attempt and replay.
    message_id: String,
    #[schema(value_type = WebhookEventType)]
    event_type: String,
    event_id: String,
    /// `pending`, `delivered` or `failed`.
    state: String,
    attempts: u32,
    /// The receiver's last HTTP status; none when it could not be reached.
    last_status: Option<u32>,
    last_error: String,
    created_at: Option<String>,
    /// For a pending delivery: when it is tried next.
    next_attempt_at: Option<String>,
    delivered_at: Option<String>,
}

impl From<pb::Delivery> for Delivery {
    fn from(d: pb::Delivery) -> Self {
        let pending = d.state == "pending";
        Self {
            id: d.id,
            message_id: d.message_id,
            event_type: d.event_type,
            event_id: d.event_id,
            state: d.state,
            attempts: d.attempts,
            last_status: (d.last_status > 0).then_some(d.last_status),
            last_error: d.last_error,
            created_at: timestamp(d.created_at_ms),
            next_attempt_at: if pending {
                timestamp(d.next_attempt_at_ms)
            } else {
                None
            },
            delivered_at: timestamp(d.delivered_at_ms),
        }
    }
}

/// The caller's webhook endpoints.
#[utoipa::path(get, path = "/api/webhooks", tag = "webhooks",
    security(("bearerJwt" = [])),
    responses(
        (status = 200, description = "The endpoints, oldest first", body = [Webhook]),
        (status = 401, description = "Missing or invalid token", body = PanelError),
    ))]
async fn list_webhooks(
    State(state): State<AppState>,
    auth: Auth<Panel>,
) -> Result<Json<Vec<Webhook>>> {
    let caller = auth.principal.caller();
    let mut out = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = state
            .webhooks()
            .list_webhooks(caller.request(pb::ListWebhooksRequest {
                limit: 1000,
                page_token,
            }))
            .await?
            .into_inner();
        out.extend(page.webhooks.into_iter().map(Webhook::from));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    Ok(Json(out))
}

/// Register an endpoint. The reply carries its signing secret, shown only here.
#[utoipa::path(post, path = "/api/webhooks", tag = "webhooks",
    security(("bearerJwt" = [])),
    request_body = CreateWebhookBody,
    responses(
        (status = 201, description = "The endpoint and its secret", body = CreatedWebhook),
        (status = 400, description = "A URL that is not https, carries credentials or points at an internal address; an unknown event type; `all` from a user; a malformed body", body = PanelError),
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 409, description = "The caller has as many endpoints as allowed, or webhooks are not set up", body = PanelError),
    ))]
async fn create_webhook(
    State(state): State<AppState>,
    auth: Auth<Panel>,
    Body(body, _): Body<Panel, CreateWebhookBody>,
) -> Result<(StatusCode, Json<CreatedWebhook>)> {
    let reply = state
        .webhooks()
        .create_webhook(auth.principal.caller().request(pb::CreateWebhookRequest {
            url: body.url,
            event_types: body.event_types,
            all: body.all,
        }))
        .await?
        .into_inner();
    Ok((
        StatusCode::CREATED,
        Json(CreatedWebhook {
            webhook: Webhook::from(reply.webhook.unwrap_or_default()),
            secret: reply.secret,
        }),
    ))
}

/// One of the caller's endpoints.
#[utoipa::path(get, path = "/api/webhooks/{id}", tag = "webhooks",
    security(("bearerJwt" = [])),
    params(("id" = i64, Path, description = "Webhook id")),
    responses(
        (status = 200, description = "The endpoint", body = Webhook),
        (status = 400, description = "A malformed id", body = PanelError),
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 404, description = "No such endpoint of the caller's", body = PanelError),
    ))]
async fn get_webhook(
    State(state): State<AppState>,
    auth: Auth<Panel>,
    PathId(id, _): PathId<Panel>,
) -> Result<Json<Webhook>> {
    let reply = state
        .webhooks()
        .get_webhook(auth.principal.caller().request(pb::WebhookRef { id }))
        .await?
        .into_inner();
    Ok(Json(Webhook::from(reply)))
}

/// Change an endpoint's URL or event types, or turn it on or off.
#[utoipa::path(patch, path = "/api/webhooks/{id}", tag = "webhooks",
    security(("bearerJwt" = [])),
    params(("id" = i64, Path, description = "Webhook id")),
    request_body = UpdateWebhookBody,
    responses(
        (status = 200, description = "The endpoint now", body = Webhook),
        (status = 400, description = "A refused URL, an unknown event type, a malformed body or id", body = PanelError),
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 404, description = "No such endpoint of the caller's", body = PanelError),
    ))]
async fn update_webhook(
    State(state): State<AppState>,
    auth: Auth<Panel>,
    PathId(id, _): PathId<Panel>,
    Body(body, _): Body<Panel, UpdateWebhookBody>,
) -> Result<Json<Webhook>> {
    let reply = state
        .webhooks()
        .update_webhook(auth.principal.caller().request(pb::UpdateWebhookRequest {
            id,
            url: body.url,
            set_event_types: body.event_types.is_some(),
            event_types: body.event_types.unwrap_or_default(),
            enabled: body.enabled,
        }))
        .await?
        .into_inner();
    Ok(Json(Webhook::from(reply)))
}

/// Delete an endpoint and its deliveries.
#[utoipa::path(delete, path = "/api/webhooks/{id}", tag = "webhooks",
    security(("bearerJwt" = [])),
    params(("id" = i64, Path, description = "Webhook id")),
    responses(
        (status = 200, description = "Deleted", body = StatusReply),
        (status = 400, description = "A malformed id", body = PanelError),
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 404, description = "No such endpoint of the caller's", body = PanelError),
    ))]
async fn delete_webhook(
    State(state): State<AppState>,
    auth: Auth<Panel>,
    PathId(id, _): PathId<Panel>,
) -> Result<Json<StatusReply>> {
    state
        .webhooks()
        .delete_webhook(auth.principal.caller().request(pb::WebhookRef { id }))
        .await?;
    Ok(Json(StatusReply { status: "deleted" }))
}

/// An endpoint's latest deliveries (100), newest first, with their last status.
#[utoipa::path(get, path = "/api/webhooks/{id}/deliveries", tag = "webhooks",
    security(("bearerJwt" = [])),
    params(("id" = i64, Path, description = "Webhook id")),
    responses(
        (status = 200, description = "The deliveries", body = [Delivery]),
        (status = 400, description = "A malformed id", body = PanelError),
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 404, description = "No such endpoint of the caller's", body = PanelError),
    ))]
async fn list_deliveries(
    State(state): State<AppState>,
    auth: Auth<Panel>,
    PathId(id, _): PathId<Panel>,
) -> Result<Json<Vec<Delivery>>> {
    let reply = state
        .webhooks()
        .list_deliveries(auth.principal.caller().request(pb::ListDeliveriesRequest {
            webhook_id: id,
            limit: 100,
            page_token: String::new(),
        }))
        .await?
        .into_inner();
    Ok(Json(
        reply.deliveries.into_iter().map(Delivery::from).collect(),
    ))
}

/// Send a delivered or failed delivery again, as it was (same `webhook-id`).
#[utoipa::path(post, path = "/api/webhooks/deliveries/{id}/replay", tag = "webhooks",
    security(("bearerJwt" = [])),
    params(("id" = i64, Path, description = "Delivery id")),
    responses(
        (status = 200, description = "The delivery, pending again", body = Delivery),
        (status = 400, description = "A malformed id", body = PanelError),
        (status = 401, description = "Missing or invalid token", body = PanelError),
        (status = 404, description = "No such delivery of the caller's", body = PanelError),
        (status = 409, description = "The delivery is still being attempted", body = PanelError),
    ))]
async fn replay_delivery(
    State(state): State<AppState>,
    auth: Auth<Panel>,
    PathId(id, _): PathId<Panel>,
) -> Result<Json<Delivery>> {
    let reply = state
        .webhooks()
        .replay_delivery(auth.principal.caller().request(pb::DeliveryRef { id }))
        .await?
        .into_inner();
    Ok(Json(Delivery::from(reply)))
}
