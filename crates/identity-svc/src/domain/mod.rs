//! identity-svc's domain, free of transport and storage: validating newtypes (usernames,
//! emails, passwords, labels), the formats of credentials and their digests, and the kinds
//! of credential and roles.

pub mod account;
pub mod credential;
pub mod validate;
