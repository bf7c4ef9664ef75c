//! server-svc's domain, free of transport and storage: the server state machine, the
//! catalog of plans, images and locations, and validating newtypes.

pub mod catalog;
pub mod server;
pub mod state;
pub mod task;
pub mod validate;
