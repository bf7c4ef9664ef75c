//! Persistence for identity-svc: sea-orm entities and migrations, every query the rules make
//! (one module per table family), and the mapping of rows onto the domain's types.

mod convert;
pub mod credentials;
pub mod credits;
pub mod entity;
pub mod migration;
pub mod service_accounts;
pub mod sessions;
pub mod throttle;
pub mod users;
