//! Persistence for server-svc: sea-orm entities and migrations. The rules live in `app`.

pub mod catalog;
mod convert;
pub mod entity;
pub mod idempotency;
pub mod migration;
pub mod quotas;
