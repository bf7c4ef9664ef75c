//! The durable consumers: every event and alert becomes at most one mail per recipient,
//! and one delivery per webhook endpoint that listens for it.
//!
//! Exactly once: a mail is keyed by its event's id and recipient, so an event delivered
//! twice (a redelivery after a crash before the ack, a second replica) finds its mail kept
//! and makes none. The ack follows the commit; an event whose mail cannot be made now
//! (identity-svc away) is handed back to JetStream to come again later.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::pull};
use futures_util::StreamExt as _;
use sea_orm::Set;
use tracing::Instrument as _;

use super::{App, now_ms};
use crate::domain::{self, Kind};
use crate::error::{NotifyError, Result};
use crate::store::{self, entity::mail};

/// The durable consumers' names: shared by every replica, so each event goes to one.
pub const EVENTS_CONSUMER: &str = "notify-svc";
pub const ALERTS_CONSUMER: &str = "notify-svc-alerts";

/// How long an event that could not be taken waits before it comes again.
const RETRY_AFTER: Duration = Duration::from_secs(2);
/// How long JetStream waits for an ack before it gives the event to another replica (or
/// this one, restarted): an event takes milliseconds, so a replica that stopped or died
/// holds its events this long at most.
const ACK_WAIT: Duration = Duration::from_secs(10);
/// Events fetched ahead: few, so a replica that stops holds few.
const BATCH: usize = 32;
const HAND_BACK_DELAY: Duration = Duration::from_secs(1);

impl App {
    /// Consumes both streams until shutdown; a broken subscription is opened again. On
    /// shutdown the connection is drained, so JetStream stops handing this replica events
    /// at once.
    pub async fn consume_loop(self: Arc<Self>, client: async_nats::Client) {
        let js = jetstream::new(client.clone());
        let streams = [
            (platform::outbox::STREAM, EVENTS_CONSUMER),
            (platform::outbox::ALERTS_STREAM, ALERTS_CONSUMER),
        ];
        let loops = streams.map(|(stream, durable)| {
            let app = Arc::clone(&self);
            let js = js.clone();
            async move {
                while !app.shutdown.is_triggered() {
                    if let Err(error) = app.consume(&js, stream, durable).await {
                        tracing::warn!(stream, error = %format!("{error:#}"), "consuming events failed; trying again");
                        tokio::select! {
                            () = tokio::time::sleep(Duration::from_secs(1)) => {}
                            () = app.shutdown.wait() => {}
                        }
                    }
                }
            }
        });
        futures_util::future::join_all(loops).await;
        if let Err(error) = client.drain().await {
            tracing::debug!(error = %error, "draining the NATS connection failed");
        }
    }

    async fn consume(
        &self,
        js: &jetstream::Context,
        stream: &str,
        durable: &str,
    ) -> anyhow::Result<()> {
        let consumer = js
            .get_stream(stream)
            .await?
            .get_or_create_consumer(
                durable,
                pull::Config {
                    durable_name: Some(durable.to_owned()),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ack_wait: ACK_WAIT,
                    ..Default::default()
                },
            )
            .await?;
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(BATCH)
            .messages()
            .await?;
        loop {
            let next = tokio::select! {
                next = messages.next() => next,
                () = self.shutdown.wait() => {
                    hand_back(&mut messages).await;
                    return Ok(());
                }
            };
            let Some(message) = next else {
                return Ok(());
            };
            let message = message.map_err(|e| anyhow::anyhow!("{e}"))?;
            if let Ok(info) = message.info() {
                metrics::gauge!("vps_jetstream_consumer_pending", "consumer" => durable.to_owned())
                    .set(info.pending as f64);
            }
            // The event's trace goes on here: the producer's context rode in its headers.
            let span =
                tracing::info_span!("consume", subject = %message.subject, consumer = durable);
            if let Some(headers) = &message.headers {
                platform::telemetry::adopt_nats_parent(&span, headers);
            }
            let taken = self
                .take(&message.subject, &message.payload)
                .instrument(span)
                .await;
            let ack = match taken {
                Ok(()) => AckKind::Ack,
                Err(NotifyError::Invalid { message: why, .. }) => {
                    // Not an event this version can read: kept out of the way, and said.
                    tracing::error!(subject = %message.subject, why, "an unreadable event was dropped");
                    AckKind::Term
                }
                Err(error) => {
                    tracing::warn!(subject = %message.subject, error = %platform::grpc::chain(&error), "an event waits to be taken again");
                    AckKind::Nak(Some(RETRY_AFTER))
                }
            };
            message
                .ack_with(ack)
                .await
                .map_err(|e| anyhow::anyhow!("acknowledging: {e}"))?;
        }
    }

    /// Makes the mail an event calls for, if any (and if it is not made already).
    pub async fn take(&self, subject: &str, payload: &[u8]) -> Result<()> {
        self.plan_deliveries(subject, payload).await?;
        let intent = domain::mail_for(subject, payload)
            .map_err(|e| NotifyError::invalid("event", e.to_string()))?;
        let Some(intent) = intent else {
            return Ok(());
        };
        let key = format!("{}:{}", intent.event_id, intent.user_id);
        if intent.kind.optional() {
            let off = store::disabled_kinds(&self.db, intent.user_id).await?;
            if off.iter().any(|k| k == intent.kind.as_str()) {
                return Ok(());
            }
        }
        if intent.kind == Kind::Alert {
            let day_ago = now_ms() - 24 * 3600 * 1000;
            let sent =
                store::mails_since(&self.db, intent.user_id, Kind::Alert.as_str(), day_ago).await?;
            if sent >= u64::from(self.config.mail.alert_daily_cap) {
                tracing::info!(
                    user = intent.user_id,
                    "alert mail over the daily cap; not sent"
                );
                return Ok(());
            }
        }
        let Some(user) = self.user(intent.user_id).await? else {
            // The user is gone: nobody to write to.
            return Ok(());
        };
        let mut facts = intent.facts.clone();
        if let Some(object) = facts.as_object_mut() {
            object.insert(
                "user".to_owned(),
                serde_json::json!({"id": user.id, "username": user.username}),
            );
            object.insert(
                "panel_url".to_owned(),
                self.config.mail.panel_url.trim_end_matches('/').into(),
            );
        }
        let rendered = self
            .templates
            .render(intent.kind, &facts)
            .map_err(NotifyError::Internal)?;
        let now = now_ms();
        let new = store::insert_mail(
            &self.db,
            mail::ActiveModel {
                uuid: Set(uuid::Uuid::now_v7().to_string()),
                key: Set(key),
                event_id: Set(intent.event_id),
                user_id: Set(intent.user_id),
                kind: Set(intent.kind.as_str().to_owned()),
                recipient: Set(user.email),
                subject: Set(rendered.subject),
                text_body: Set(rendered.text),
                html_body: Set(rendered.html),
                state: Set(store::PENDING.to_owned()),
                attempts: Set(0),
                next_attempt_at: Set(now),
                last_error: Set(String::new()),
                created_at: Set(now),
                sent_at: Set(None),
                ..Default::default()
            },
        )
        .await?;
        if new {
            self.mail_made.notify_one();
        } else {
            tracing::debug!(subject, "an event came again; its mail is already made");
        }
        Ok(())
    }
}

/// On shutdown: the events fetched ahead and not taken go back to JetStream, for another
/// replica (or this one, restarted) a second later, rather than after the ack wait.
async fn hand_back(messages: &mut pull::Stream) {
    for _ in 0..BATCH {
        match tokio::time::timeout(Duration::from_millis(50), messages.next()).await {
            Ok(Some(Ok(message))) => {
                // Not at once: JetStream would hand it straight back here. A second is
                // time enough for this connection to be drained.
                let _ = message.ack_with(AckKind::Nak(Some(HAND_BACK_DELAY))).await;
            }
            _ => break,
        }
    }
}
