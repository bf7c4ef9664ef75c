//! Plumbing every service shares: configuration, telemetry, shutdown, database and gRPC glue.
//! Only plumbing lives here; domain types belong to the service that owns them.

pub mod auth;
pub mod channel;
pub mod config;
pub mod crypto;
pub mod db;
pub mod grpc;
pub mod host;
pub mod lease;
pub mod metrics;
pub mod outbox;
pub mod page;
pub mod peers;
pub mod saga;
pub mod shutdown;
pub mod telemetry;

pub use shutdown::Shutdown;
