//! What notify-svc decides, free of I/O: which event makes which mail, for whom, and when
//! a failed mail is tried again; and the webhooks' rules (`webhooks`).

pub mod webhooks;

use std::time::Duration;

use proto::events::v1 as ev;

/// The kinds of mail. Security and billing notices cannot be turned off.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::EnumIter,
)]
#[strum(serialize_all = "snake_case")]
pub enum Kind {
    /// A server finished being created.
    ServerCreated,
    /// A resource alert fired (seed 000: usage above 90 %).
    Alert,
    /// Staff answered a support ticket.
    TicketReply,
    /// The balance runs low, or is overdue (billing: always sent).
    PaymentReminder,
    /// A server was suspended (billing or abuse: always sent).
    ServerSuspended,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Whether a user may turn this kind off.
    pub fn optional(self) -> bool {
        matches!(self, Self::ServerCreated | Self::Alert | Self::TicketReply)
    }

    /// The kinds a user may turn off.
    pub fn optional_kinds() -> impl Iterator<Item = Self> {
        <Self as strum::IntoEnumIterator>::iter().filter(|k| k.optional())
    }
}

/// An event that makes a mail: its kind, its recipient, and the facts the template shows.
#[derive(Debug, Clone, PartialEq)]
pub struct MailIntent {
    pub kind: Kind,
    pub event_id: String,
    pub user_id: i64,
    /// The template's facts (besides the user and the panel's address).
    pub facts: serde_json::Value,
}

/// The mail an event on `subject` makes, if any. An event this version cannot read is an
/// error (the consumer keeps it for a later version rather than drop it silently).
pub fn mail_for(subject: &str, payload: &[u8]) -> Result<Option<MailIntent>, serde_json::Error> {
    use proto::events::v1::subject as s;
    let intent = if subject.starts_with(s::ALERTS_PREFIX) {
        let alert: ev::AlertEvent = serde_json::from_slice(payload)?;
        (alert.r#type == "fired").then(|| MailIntent {
            kind: Kind::Alert,
            event_id: alert.id.clone(),
            user_id: alert.owner_id,
            facts: serde_json::json!({
                "server": {"id": alert.server_id, "name": alert.server_name},
                "metric": alert.metric,
                "level": alert.level,
                // Whole percents, as people read them.
                "value": format!("{:.0}", alert.value),
                "threshold": format!("{:.0}", alert.threshold),
                "message": alert.message,
            }),
        })
    } else {
        match subject {
            s::SERVER_STATE => {
                let server: ev::ServerEvent = serde_json::from_slice(payload)?;
                // The creation finished: the server is there to use.
                (server.task == "create" && !server.failed).then(|| MailIntent {
                    kind: Kind::ServerCreated,
                    event_id: server.id.clone(),
                    user_id: server.owner_id,
                    facts: serde_json::json!({"server": server_facts(&server)}),
                })
            }
            s::SERVER_SUSPENDED => {
                let server: ev::ServerEvent = serde_json::from_slice(payload)?;
                Some(MailIntent {
                    kind: Kind::ServerSuspended,
                    event_id: server.id.clone(),
                    user_id: server.owner_id,
                    facts: serde_json::json!({
                        "server": server_facts(&server),
                        "reason": server.reason,
                    }),
                })
            }
            s::PAYMENT_REMINDER => {
                let reminder: ev::PaymentReminder = serde_json::from_slice(payload)?;
                Some(MailIntent {
                    kind: Kind::PaymentReminder,
                    event_id: reminder.id.clone(),
                    user_id: reminder.owner_id,
                    facts: serde_json::json!({
                        "balance": reminder.balance,
                        "needed": reminder.needed,
                        "stage": if reminder.stage.is_empty() { "overdue" } else { reminder.stage.as_str() },
                        "days_left": reminder.days_left,
                    }),
                })
            }
            s::TICKET_REPLIED => {
                let ticket: ev::TicketEvent = serde_json::from_slice(payload)?;
                // Staff answered: the owner hears of it. The owner's own words are not mailed.
                (ticket.staff && ticket.author_id != ticket.owner_id).then(|| MailIntent {
                    kind: Kind::TicketReply,
                    event_id: ticket.id.clone(),
                    user_id: ticket.owner_id,
                    facts: serde_json::json!({
                        "ticket": {"id": ticket.ticket_id, "subject": ticket.subject},
                        "body": ticket.body,
                    }),
                })
            }
            _ => None,
        }
    };
    Ok(intent.filter(|i| i.user_id > 0))
}

fn server_facts(server: &ev::ServerEvent) -> serde_json::Value {
    serde_json::json!({
        "id": server.server_id,
        "name": server.name,
        "hostname": server.hostname,
        "status": server.status,
    })
}

/// How long to wait before attempt `attempt + 1`, after `attempt` failed ones: `base`,
/// doubling, at most `max`.
pub fn backoff(attempt: u32, base: Duration, max: Duration) -> Duration {
    let factor = 1u32
        .checked_shl(attempt.saturating_sub(1))
        .unwrap_or(u32::MAX);
    base.saturating_mul(factor).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::events::v1::subject as s;

    fn server_event(task: &str, failed: bool) -> Vec<u8> {
        serde_json::to_vec(&ev::ServerEvent {
            id: "e1".into(),
            r#type: "state".into(),
            owner_id: 7,
            server_id: 3,
            name: "web".into(),
            task: task.into(),
            failed,
            status: "running".into(),
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn a_finished_creation_mails_its_owner_once_it_succeeded() {
        let intent = mail_for(s::SERVER_STATE, &server_event("create", false))
            .unwrap()
            .expect("a mail");
        assert_eq!(intent.kind, Kind::ServerCreated);
        assert_eq!(intent.user_id, 7);
        assert_eq!(intent.facts["server"]["name"], "web");
        assert!(
            mail_for(s::SERVER_STATE, &server_event("create", true))
                .unwrap()
                .is_none()
        );
        assert!(
            mail_for(s::SERVER_STATE, &server_event("start", false))
                .unwrap()
                .is_none()
        );
        assert!(
            mail_for(s::SERVER_CREATED, &server_event("create", false))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn alerts_mail_when_they_fire_not_when_they_resolve() {
        let alert = |kind: &str| {
            serde_json::to_vec(&ev::AlertEvent {
                id: "a".into(),
                r#type: kind.into(),
                owner_id: 7,
                metric: "cpu".into(),
                value: 95.4,
                ..Default::default()
            })
            .unwrap()
        };
        let fired = mail_for("vps.alerts.3", &alert("fired"))
            .unwrap()
            .expect("mail");
        assert_eq!(fired.kind, Kind::Alert);
        assert_eq!(fired.facts["value"], "95");
        assert!(
            mail_for("vps.alerts.3", &alert("resolved"))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn only_staff_replies_mail_the_owner() {
        let reply = |staff: bool, author: i64| {
            serde_json::to_vec(&ev::TicketEvent {
                id: "t".into(),
                r#type: "replied".into(),
                owner_id: 7,
                author_id: author,
                staff,
                ..Default::default()
            })
            .unwrap()
        };
        assert!(
            mail_for(s::TICKET_REPLIED, &reply(true, 1))
                .unwrap()
                .is_some()
        );
        assert!(
            mail_for(s::TICKET_REPLIED, &reply(false, 7))
                .unwrap()
                .is_none()
        );
        // An administrator answering their own ticket is not mailed to themselves.
        assert!(
            mail_for(s::TICKET_REPLIED, &reply(true, 7))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn an_unreadable_event_is_an_error() {
        assert!(mail_for(s::SERVER_STATE, b"not json").is_err());
        assert!(
            mail_for("vps.events.snapshot.created", b"{}")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn security_and_billing_cannot_be_turned_off() {
        assert!(!Kind::PaymentReminder.optional());
        assert!(!Kind::ServerSuspended.optional());
        let optional: Vec<_> = Kind::optional_kinds().map(Kind::as_str).collect();
        assert_eq!(optional, ["server_created", "alert", "ticket_reply"]);
        assert_eq!("alert".parse::<Kind>().unwrap(), Kind::Alert);
    }

    #[test]
    fn backoff_doubles_up_to_its_ceiling() {
        let base = Duration::from_secs(30);
        let max = Duration::from_secs(3600);
        assert_eq!(backoff(1, base, max), Duration::from_secs(30));
        assert_eq!(backoff(2, base, max), Duration::from_secs(60));
        assert_eq!(backoff(4, base, max), Duration::from_secs(240));
        assert_eq!(backoff(20, base, max), max);
        assert_eq!(backoff(u32::MAX, base, max), max);
    }
}
