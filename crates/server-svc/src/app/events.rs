//! The business events server-svc emits (their schemas are the contract's, `vps.events.v1`),
//! written to the outbox in the transaction that makes the change. Each carries an `id`
//! consumers drop duplicates by.

use proto::events::v1::{self as ev, subject};
use sea_orm::{ConnectionTrait, DbErr};
use sha2::{Digest as _, Sha256};

use crate::domain::task::TaskKind;
use crate::store::entity::server;

pub use subject::{
    SERVER_CREATED as CREATED, SERVER_DELETED as DELETED, SERVER_STATE as STATE,
    SERVER_SUSPENDED as SUSPENDED,
};

/// The task behind a server event, and how it ended.
#[derive(Debug, Clone, Copy, Default)]
pub struct TaskFacts<'a> {
    pub id: &'a str,
    pub kind: Option<TaskKind>,
    pub failed: bool,
}

/// Enqueues `subject` about `server` as it is now, with a fresh event id.
pub async fn server_event<C: ConnectionTrait>(
    db: &C,
    subject: &str,
    server: &server::Model,
    task: TaskFacts<'_>,
) -> Result<(), DbErr> {
    let id = uuid::Uuid::now_v7();
    let event = ev::ServerEvent {
        id: id.to_string(),
        version: ev::VERSION,
        r#type: subject.rsplit('.').next().unwrap_or(subject).to_owned(),
        at: chrono::Utc::now().to_rfc3339(),
        server_id: server.id,
        server_uuid: server.uuid.clone(),
        owner_id: server.owner_id,
        name: server.name.clone(),
        hostname: server.hostname.clone(),
        status: server.status.clone(),
        task_id: task.id.to_owned(),
        task: task.kind.map(|k| k.as_str().to_owned()).unwrap_or_default(),
        failed: task.failed,
        reason: server.status_reason.clone(),
    };
    platform::outbox::enqueue(db, subject, id, &event).await
}

/// Enqueues a payment reminder for a user, once per overdue episode: the event id is derived
/// from the user and the moment the episode began, so a repeat is the same event.
pub async fn payment_reminder<C: ConnectionTrait>(
    db: &C,
    owner_id: i64,
    overdue_since: i64,
    balance: i64,
    needed: i64,
) -> Result<(), DbErr> {
    let id = derived_id(&format!("payment-reminder:{owner_id}:{overdue_since}"));
    let event = ev::PaymentReminder {
        id: id.to_string(),
        version: ev::VERSION,
        r#type: "payment_reminder".to_owned(),
        at: chrono::Utc::now().to_rfc3339(),
        owner_id,
        balance,
        needed,
        stage: "overdue".to_owned(),
        days_left: 0,
    };
    reminder_once(db, id, &event).await
}

/// Enqueues a low-balance reminder for a user, once per episode (the id is derived from
/// the user and when the balance first fell short).
pub async fn low_balance<C: ConnectionTrait>(
    db: &C,
    owner_id: i64,
    since: i64,
    balance: i64,
    per_period: i64,
    days_left: u32,
) -> Result<(), DbErr> {
    let id = derived_id(&format!("low-balance:{owner_id}:{since}"));
    let event = ev::PaymentReminder {
        id: id.to_string(),
        version: ev::VERSION,
        r#type: "payment_reminder".to_owned(),
        at: chrono::Utc::now().to_rfc3339(),
        owner_id,
        balance,
        needed: per_period,
        stage: "low_balance".to_owned(),
        days_left,
    };
    reminder_once(db, id, &event).await
}

/// Enqueues a reminder unless its (derived) id is in the outbox already.
async fn reminder_once<C: ConnectionTrait>(
    db: &C,
    id: uuid::Uuid,
    event: &ev::PaymentReminder,
) -> Result<(), DbErr> {
    if platform::outbox::contains(db, id).await? {
        return Ok(());
    }
    platform::outbox::enqueue(db, subject::PAYMENT_REMINDER, id, event).await
}

/// An event id derived from what makes the event unique, so a repeat is the same event.
pub fn derived_id(key: &str) -> uuid::Uuid {
    let digest = Sha256::digest(key);
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// A server's month's traffic passed its limit: once per server and month.
pub async fn traffic_exceeded<C: ConnectionTrait>(
    db: &C,
    event: ev::TrafficExceeded,
) -> Result<(), DbErr> {
    let id = derived_id(&format!(
        "traffic-exceeded:{}:{}",
        event.server_id, event.month
    ));
    if platform::outbox::contains(db, id).await? {
        return Ok(());
    }
    let event = ev::TrafficExceeded {
        id: id.to_string(),
        version: ev::VERSION,
        r#type: "traffic_exceeded".to_owned(),
        at: chrono::Utc::now().to_rfc3339(),
        ..event
    };
    platform::outbox::enqueue(db, subject::TRAFFIC_EXCEEDED, id, &event).await
}
