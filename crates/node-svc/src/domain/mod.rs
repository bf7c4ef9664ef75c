//! node-svc's domain, free of transport and storage: a node as the registry hands it out.

pub mod node;
