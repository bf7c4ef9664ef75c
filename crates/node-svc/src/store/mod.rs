//! Persistence for node-svc: sea-orm entities and migrations. The rules live in `app`.

mod convert;
pub mod entity;
pub mod migration;
