//! Generated messages, clients and servers for the `xiaoer.v1` gRPC contract.
//!
//! Every other crate talks to the outside world through these types, so the
//! `.proto` file stays the one place where the contract is written down.

#![allow(clippy::all, missing_docs)]

/// The `xiaoer.v1` package: messages, `*_client` and `*_server` modules.
pub mod v1 {
    tonic::include_proto!("xiaoer.v1");
}

/// Encoded `FileDescriptorSet` of the contract, served by gRPC reflection so
/// tools like grpcurl can call the server without the `.proto` file.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/xiaoer_descriptor.bin"));
