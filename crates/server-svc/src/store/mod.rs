//! Persistence for server-svc: sea-orm entities and migrations, every query the rules make
//! (servers, tasks, the catalog, quotas, idempotency keys), and the mapping of rows onto the
//! domain's types.

pub mod catalog;
mod convert;
pub mod entity;
pub mod idempotency;
pub mod migration;
pub mod quotas;
pub mod servers;
pub mod tasks;
pub mod versions;
