//! Webhook endpoints: registration (the secret shown once), their deliveries, replays, and
//! the deliverer that signs and sends them (Standard Webhooks), on the one replica holding
//! the `notify:webhooks` lease.
//!
//! Destinations are checked when registered and again at every attempt: the URL's address
//! if it is one, and every address its name resolves to (the client's resolver refuses
//! internal ones, so a name that later points inside is refused too). Redirects are not
//! followed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use platform::auth::Caller;
use proto::notify::v1 as pb;
use sea_orm::{IntoActiveModel as _, Set};

use super::{App, now_ms};
use crate::domain::webhooks::{self as rules, EVENT_TYPES};
use crate::error::{NotifyError, Result};
use crate::store::entity::{delivery, webhook};
use crate::store::webhooks as store;

const LEASE: &str = "notify:webhooks";
const BATCH: u64 = 64;
const CONCURRENCY: usize = 8;

impl App {
    pub async fn create_webhook(
        &self,
        caller: Caller,
        url: &str,
        types: &[String],
        all: bool,
    ) -> Result<pb::CreatedWebhook> {
        let sealer = self.sealer()?;
        let url = self.check_url(url)?;
        let types = check_types(types)?;
        if all && !caller.admin {
            return Err(NotifyError::invalid(
                "all",
                "only administrators receive every user's events",
            ));
        }
        let max = self.config.webhooks.max_per_user;
        if store::count_for(&self.db, caller.user_id).await? >= u64::from(max) {
            return Err(NotifyError::WrongState(format!(
                "a user may register at most {max} webhooks"
            )));
        }
        let secret = rules::new_secret();
        let now = now_ms();
        let row = store::insert(
            &self.db,
            webhook::ActiveModel {
                uuid: Set(uuid::Uuid::now_v7().to_string()),
                owner_id: Set(caller.user_id),
                url: Set(url),
                event_types: Set(serde_json::to_string(&types).unwrap_or_default()),
                all_events: Set(all),
                secret: Set(sealer
                    .seal(secret.as_bytes())
                    .map_err(NotifyError::Internal)?),
                secret_hint: Set(secret.chars().take(10).collect()),
                enabled: Set(true),
                disabled_reason: Set(String::new()),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            },
        )
        .await?;
        Ok(pb::CreatedWebhook {
            webhook: Some(webhook_pb(row)),
            secret,
        })
    }

    pub async fn list_webhooks(
        &self,
        caller: Caller,
        limit: u32,
        page_token: &str,
    ) -> Result<(Vec<pb::Webhook>, String)> {
        let page = platform::page::Page::parse(limit, page_token)
            .map_err(|(field, message)| NotifyError::invalid(field, message))?;
        let rows = store::list(&self.db, caller.user_id, page).await?;
        let (rows, next) = page.finish(rows, |w| w.id);
        Ok((rows.into_iter().map(webhook_pb).collect(), next))
    }

    /// The endpoint, if it is the caller's; to anyone else it does not exist.
    async fn own_webhook(&self, caller: Caller, id: i64) -> Result<webhook::Model> {
        store::get(&self.db, id)
            .await?
            .filter(|w| w.owner_id == caller.user_id)
            .ok_or(NotifyError::NotFound("webhook"))
    }

    pub async fn get_webhook(&self, caller: Caller, id: i64) -> Result<pb::Webhook> {
        Ok(webhook_pb(self.own_webhook(caller, id).await?))
    }

    pub async fn update_webhook(
        &self,
        caller: Caller,
        r: pb::UpdateWebhookRequest,
    ) -> Result<pb::Webhook> {
        let row = self.own_webhook(caller, r.id).await?;
        let mut active = row.into_active_model();
        if let Some(url) = &r.url {
            active.url = Set(self.check_url(url)?);
        }
        if r.set_event_types {
            let types = check_types(&r.event_types)?;
            active.event_types = Set(serde_json::to_string(&types).unwrap_or_default());
        }
        if let Some(enabled) = r.enabled {
            active.enabled = Set(enabled);
            if enabled {
                active.disabled_reason = Set(String::new());
            }
        }
        active.updated_at = Set(now_ms());
        Ok(webhook_pb(store::update(&self.db, active).await?))
    }

    pub async fn delete_webhook(&self, caller: Caller, id: i64) -> Result<()> {
        let row = self.own_webhook(caller, id).await?;
        Ok(store::delete(&self.db, row.id).await?)
    }

    pub async fn list_deliveries(
        &self,
        caller: Caller,
        webhook_id: i64,
        limit: u32,
        page_token: &str,
    ) -> Result<(Vec<pb::Delivery>, String)> {
        let page = platform::page::Page::parse(limit, page_token)
            .map_err(|(field, message)| NotifyError::invalid(field, message))?;
        let row = self.own_webhook(caller, webhook_id).await?;
        let rows = store::deliveries(&self.db, row.id, page).await?;
        let (rows, next) = page.finish(rows, |d| d.id);
        Ok((rows.into_iter().map(delivery_pb).collect(), next))
    }

    pub async fn replay_delivery(&self, caller: Caller, id: i64) -> Result<pb::Delivery> {
        let found = store::get_delivery(&self.db, id)
            .await?
            .ok_or(NotifyError::NotFound("delivery"))?;
        // Someone else's delivery does not exist either.
        self.own_webhook(caller, found.webhook_id)
            .await
            .map_err(|_| NotifyError::NotFound("delivery"))?;
        if found.state == store::PENDING {
            return Err(NotifyError::WrongState(
                "the delivery is still being attempted".to_owned(),
            ));
        }
        store::replay(&self.db, id, now_ms()).await?;
        let replayed = store::get_delivery(&self.db, id)
            .await?
            .ok_or(NotifyError::NotFound("delivery"))?;
        Ok(delivery_pb(replayed))
    }

    fn sealer(&self) -> Result<&platform::crypto::Sealer> {
        self.sealer.as_ref().ok_or_else(|| {
            NotifyError::WrongState(
                "webhooks are not available: notify-svc has no secrets_key".to_owned(),
            )
        })
    }

    fn check_url(&self, url: &str) -> Result<String> {
        rules::check_url(url, self.config.webhooks.allow_internal_destinations)
            .map(|u| u.to_string())
            .map_err(|e| NotifyError::invalid("url", e.to_string()))
    }

    /// Records a delivery of the event for every endpoint that listens for it.
    pub(super) async fn plan_deliveries(&self, subject: &str, payload: &[u8]) -> Result<()> {
        let Ok(event) = serde_json::from_slice::<serde_json::Value>(payload) else {
            return Ok(());
        };
        let Some(event_type) = rules::event_type(subject, &event) else {
            return Ok(());
        };
        let (Some(owner), Some(event_id)) = (event["ownerId"].as_i64(), event["id"].as_str())
        else {
            return Ok(());
        };
        let body = rules::payload(&event_type, &event).to_string();
        let now = now_ms();
        let mut planned = false;
        for hook in store::listening(&self.db, owner).await? {
            let types: Vec<String> = serde_json::from_str(&hook.event_types).unwrap_or_default();
            if !types.is_empty() && !types.contains(&event_type) {
                continue;
            }
            planned |= store::insert_delivery(
                &self.db,
                delivery::ActiveModel {
                    message_id: Set(format!("msg_{}", uuid::Uuid::now_v7().simple())),
                    webhook_id: Set(hook.id),
                    event_id: Set(event_id.to_owned()),
                    event_type: Set(event_type.clone()),
                    payload: Set(body.clone()),
                    state: Set(store::PENDING.to_owned()),
                    attempts: Set(0),
                    next_attempt_at: Set(now),
                    last_status: Set(0),
                    last_error: Set(String::new()),
                    created_at: Set(now),
                    delivered_at: Set(None),
                    ..Default::default()
                },
            )
            .await?;
        }
        if planned {
            self.delivery_planned.notify_one();
        }
        Ok(())
    }

    /// Delivers what is due every `deliver_interval_ms`, and at once when this replica
    /// planned a delivery, while it holds the lease; drains on shutdown.
    pub async fn deliver_loop(self: Arc<Self>) {
        let every = Duration::from_millis(self.config.webhooks.deliver_interval_ms.max(10));
        let app = Arc::clone(&self);
        self.leases
            .run_singleton_woken(
                LEASE,
                every,
                &self.delivery_planned,
                self.shutdown.clone(),
                move || {
                    let app = Arc::clone(&app);
                    async move { app.deliver_due().await }
                },
            )
            .await;
    }

    async fn deliver_due(&self) {
        loop {
            let due = match store::due(&self.db, now_ms(), BATCH).await {
                Ok(due) => due,
                Err(error) => {
                    tracing::warn!(error = %error, "reading due deliveries failed");
                    return;
                }
            };
            let full = due.len() as u64 == BATCH;
            futures_util::stream::iter(due)
                .for_each_concurrent(CONCURRENCY, |d| self.deliver(d))
                .await;
            if !full
                || self.shutdown.is_triggered()
                || !matches!(self.leases.acquire(LEASE).await, Ok(true))
            {
                return;
            }
        }
    }

    async fn deliver(&self, d: delivery::Model) {
        let attempts = d.attempts.saturating_add(1);
        let outcome = self.post(&d).await;
        let now = now_ms();
        let (status, error) = match outcome {
            Ok(status) => {
                let attempt = store::Attempt::Delivered { status, at_ms: now };
                if let Err(e) = store::record(&self.db, d.id, attempts, attempt).await {
                    tracing::warn!(delivery = d.id, error = %e, "recording a delivery failed");
                }
                return;
            }
            Err(failure) => failure,
        };
        let gone = status == 410;
        if gone
            && let Err(e) = store::disable(
                &self.db,
                d.webhook_id,
                "the receiver answered 410 Gone",
                now,
            )
            .await
        {
            tracing::warn!(webhook = d.webhook_id, error = %e, "disabling a webhook failed");
        }
        let wait = rules::next_wait(
            &self.config.webhooks.retry_schedule_secs,
            u32::try_from(attempts).unwrap_or(u32::MAX),
        );
        let attempt = match wait {
            Some(wait) if !gone => store::Attempt::Retry {
                status,
                error: &error,
                next_at_ms: now + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX),
            },
            _ => store::Attempt::Failed {
                status,
                error: &error,
            },
        };
        if let Err(e) = store::record(&self.db, d.id, attempts, attempt).await {
            tracing::warn!(delivery = d.id, error = %e, "recording a delivery failed");
        }
    }

    /// One attempt: the receiver's status when it took the delivery (2xx), or the status
    /// (0 if none) and why not.
    async fn post(&self, d: &delivery::Model) -> std::result::Result<i32, (i32, String)> {
        let hook = match store::get(&self.db, d.webhook_id).await {
            Ok(Some(hook)) => hook,
            Ok(None) => return Err((0, "the webhook was deleted".to_owned())),
            Err(e) => return Err((0, format!("reading the webhook failed: {e}"))),
        };
        if !hook.enabled {
            return Err((0, "the webhook is disabled".to_owned()));
        }
        let url = self.check_url(&hook.url).map_err(|e| (0, e.to_string()))?;
        let secret = self
            .sealer()
            .and_then(|s| s.open(&hook.secret).map_err(NotifyError::Internal))
            .map_err(|_| (0, "the webhook's secret cannot be read".to_owned()))?;
        let key = rules::secret_key(&String::from_utf8_lossy(&secret))
            .ok_or_else(|| (0, "the webhook's secret is malformed".to_owned()))?;
        let timestamp = chrono::Utc::now().timestamp();
        let signature = rules::signature(&key, &d.message_id, timestamp, d.payload.as_bytes());
        let sent = self
            .http
            .post(url)
            .header("webhook-id", &d.message_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(d.payload.clone())
            .send()
            .await;
        match sent {
            Ok(reply) if reply.status().is_success() => Ok(i32::from(reply.status().as_u16())),
            Ok(reply) => Err((
                i32::from(reply.status().as_u16()),
                format!("the receiver answered {}", reply.status()),
            )),
            Err(error) => Err((0, platform::grpc::chain(&error))),
        }
    }
}

/// The client deliveries go out through: no redirects, a time limit, and a resolver that
/// refuses names pointing at internal addresses (unless the deployment allows them).
pub fn http_client(allow_internal: bool, timeout: Duration) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .user_agent(concat!("vps-webhooks/", env!("CARGO_PKG_VERSION")))
        .dns_resolver(Arc::new(CheckedResolver { allow_internal }))
        .build()?)
}

struct CheckedResolver {
    allow_internal: bool,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow_internal;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            if let Some(refused) = addrs
                .iter()
                .find(|a| rules::allowed(a.ip(), allow).is_err())
            {
                return Err(Box::new(rules::Refused::Internal(refused.ip()))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

fn check_types(types: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for t in types {
        if !EVENT_TYPES.contains(&t.as_str()) {
            return Err(NotifyError::invalid(
                "eventTypes",
                format!("there is no event type {t:?}"),
            ));
        }
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    Ok(out)
}

fn webhook_pb(w: webhook::Model) -> pb::Webhook {
    pb::Webhook {
        id: w.id,
        uuid: w.uuid,
        owner_id: w.owner_id,
        url: w.url,
        event_types: serde_json::from_str(&w.event_types).unwrap_or_default(),
        all: w.all_events,
        enabled: w.enabled,
        disabled_reason: w.disabled_reason,
        created_at_ms: w.created_at,
        updated_at_ms: w.updated_at,
        secret_hint: w.secret_hint,
    }
}

fn delivery_pb(d: delivery::Model) -> pb::Delivery {
    pb::Delivery {
        id: d.id,
        message_id: d.message_id,
        webhook_id: d.webhook_id,
        event_type: d.event_type,
        event_id: d.event_id,
        state: d.state,
        attempts: u32::try_from(d.attempts).unwrap_or(0),
        last_status: u32::try_from(d.last_status).unwrap_or(0),
        last_error: d.last_error,
        created_at_ms: d.created_at,
        next_attempt_at_ms: d.next_attempt_at,
        delivered_at_ms: d.delivered_at.unwrap_or(0),
    }
}
