//! Persistence for node-svc: sea-orm entities and migrations, every query the rules make (one
//! module per table family), and the mapping of rows onto the domain's types.

mod convert;
pub mod entity;
pub mod migration;
pub mod nodes;
pub mod pools;
pub mod reservations;
pub mod tickets;
