//! Generated gRPC types and clients/servers, one module per service package `vps.<svc>.v1`.

#![allow(clippy::all, clippy::pedantic, missing_docs)]

pub mod identity {
    pub mod v1 {
        tonic::include_proto!("vps.identity.v1");
    }
}

pub mod node {
    pub mod v1 {
        tonic::include_proto!("vps.node.v1");
    }
}

pub mod server {
    pub mod v1 {
        tonic::include_proto!("vps.server.v1");
    }
}

/// Every service's file descriptors, encoded (`FileDescriptorSet`): served by gRPC server
/// reflection and walked by the tests that call every RPC.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptors.bin"));
