//! The sender: pending mails go to the SMTP server, on the one replica holding the
//! `notify:mail` lease. A failure is tried again after a growing wait; after the last
//! attempt, or at once when the server refuses the mail for good (a 5xx), the mail is kept
//! as failed, for an administrator to see and send again.
//!
//! A mail is marked sent after the SMTP server accepted it. Should this replica die in
//! between, the next holder sends it again; its `Message-ID` is the same both times, so the
//! receiving side can tell.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use lettre::AsyncTransport as _;
use lettre::Message;
use lettre::message::MultiPart;

use super::{App, now_ms};
use crate::domain;
use crate::store::{self, Outcome, entity::mail};

const LEASE: &str = "notify:mail";
/// Mails taken per round, and sent at once. lettre 0.11.23 leaves Nagle's algorithm on, so
/// each message waits out the server's delayed ACK (about 40 ms) before its final dot goes
/// out (fixed upstream, lettre#1159, not yet released); sending over this many pooled
/// connections at once keeps that wait from setting the pace.
const BATCH: u64 = 128;
pub const CONCURRENCY: usize = 32;

impl App {
    /// Sends due mail every `send_interval_ms`, and at once when this replica made a mail,
    /// while it holds the lease; drains on shutdown (the round under way finishes).
    pub async fn send_loop(self: Arc<Self>) {
        let every = Duration::from_millis(self.config.mail.send_interval_ms.max(10));
        let app = Arc::clone(&self);
        self.leases
            .run_singleton_woken(
                LEASE,
                every,
                &self.mail_made,
                self.shutdown.clone(),
                move || {
                    let app = Arc::clone(&app);
                    async move { app.send_due().await }
                },
            )
            .await;
    }

    /// Sends what is due, round after round, while this replica holds the lease.
    pub async fn send_due(&self) {
        if self.mailer.is_none() {
            return;
        }
        loop {
            let due = match store::due_mails(&self.db, now_ms(), BATCH).await {
                Ok(due) => due,
                Err(error) => {
                    tracing::warn!(error = %error, "reading due mail failed");
                    return;
                }
            };
            let full = due.len() as u64 == BATCH;
            futures_util::stream::iter(due)
                .for_each_concurrent(CONCURRENCY, |mail| self.attempt(mail))
                .await;
            if !full
                || self.shutdown.is_triggered()
                || !matches!(self.leases.acquire(LEASE).await, Ok(true))
            {
                return;
            }
        }
    }

    async fn attempt(&self, mail: mail::Model) {
        let Some(mailer) = &self.mailer else {
            return;
        };
        let attempts = mail.attempts.saturating_add(1);
        let outcome = match self.message(&mail) {
            Err(error) => Err((true, error)),
            Ok(message) => match mailer.send(message).await {
                Ok(_) => Ok(()),
                Err(error) => Err((error.is_permanent(), error.to_string())),
            },
        };
        let error_text;
        let outcome = match outcome {
            Ok(()) => Outcome::Sent { at_ms: now_ms() },
            Err((permanent, error)) => {
                error_text = error;
                let last =
                    u32::try_from(attempts).unwrap_or(u32::MAX) >= self.config.mail.max_attempts;
                if permanent || last {
                    tracing::warn!(mail = mail.id, attempts, error = %error_text, "a mail failed for good");
                    Outcome::Failed { error: &error_text }
                } else {
                    let wait = domain::backoff(
                        u32::try_from(attempts).unwrap_or(u32::MAX),
                        Duration::from_millis(self.config.mail.retry_base_ms),
                        Duration::from_secs(self.config.mail.retry_max_secs),
                    );
                    tracing::info!(mail = mail.id, attempts, error = %error_text, "a mail waits to be tried again");
                    Outcome::Retry {
                        next_at_ms: now_ms() + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX),
                        error: &error_text,
                    }
                }
            }
        };
        if let Err(error) = store::record_attempt(&self.db, mail.id, attempts, outcome).await {
            tracing::warn!(mail = mail.id, error = %error, "recording a mail's attempt failed");
        }
    }

    fn message(&self, mail: &mail::Model) -> Result<Message, String> {
        let to = mail
            .recipient
            .parse()
            .map_err(|e| format!("the recipient's address is not valid: {e}"))?;
        let domain = self.from.email.domain().to_owned();
        Message::builder()
            .message_id(Some(format!("<{}@{domain}>", mail.uuid)))
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .multipart(MultiPart::alternative_plain_html(
                mail.text_body.clone(),
                mail.html_body.clone(),
            ))
            .map_err(|e| format!("the mail could not be built: {e}"))
    }
}
