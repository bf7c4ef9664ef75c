//! The business events server-svc emits, written to the outbox in the transaction that
//! makes the change. Each carries an `id` consumers drop duplicates by.

use sea_orm::{ConnectionTrait, DbErr};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::store::entity::server;

pub const CREATED: &str = "vps.events.server.created";
pub const STATE: &str = "vps.events.server.state";
pub const DELETED: &str = "vps.events.server.deleted";
pub const SUSPENDED: &str = "vps.events.server.suspended";
pub const PAYMENT_REMINDER: &str = "vps.events.billing.payment_reminder";

/// Enqueues `subject` about `server`, with a fresh event id.
pub async fn server_event<C: ConnectionTrait>(
    db: &C,
    subject: &str,
    server: &server::Model,
    extra: serde_json::Value,
) -> Result<(), DbErr> {
    let id = uuid::Uuid::now_v7();
    let mut payload = json!({
        "id": id.to_string(),
        "type": subject.rsplit('.').next().unwrap_or(subject),
        "serverId": server.id,
        "serverUuid": server.uuid,
        "ownerId": server.owner_id,
        "name": server.name,
        "hostname": server.hostname,
        "status": server.status,
        "at": chrono::Utc::now().to_rfc3339(),
    });
    if let (Some(target), serde_json::Value::Object(more)) = (payload.as_object_mut(), extra) {
        target.extend(more);
    }
    platform::outbox::enqueue(db, subject, id, &payload).await
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
    let digest = Sha256::digest(format!("payment-reminder:{owner_id}:{overdue_since}"));
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    let id = uuid::Builder::from_custom_bytes(bytes).into_uuid();
    let payload = json!({
        "id": id.to_string(),
        "type": "payment_reminder",
        "ownerId": owner_id,
        "balance": balance,
        "needed": needed,
        "at": chrono::Utc::now().to_rfc3339(),
    });
    let exists = platform::outbox::contains(db, id).await?;
    if exists {
        return Ok(());
    }
    platform::outbox::enqueue(db, PAYMENT_REMINDER, id, &payload).await
}
