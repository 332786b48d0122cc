//! The xiaoer service: gRPC handlers, the reply pipeline, the dialogue policy
//! and the store, wired together. Model and knowledge-base logic live in their
//! own crates; this crate decides, renders and records.

pub mod auth;
pub mod bench;
pub mod cli;
pub mod config;
pub mod cues;
pub mod error;
pub mod grpc;
pub mod handoff;
pub mod outage;
pub mod phrasing;
pub mod policy;
pub mod privacy;
pub mod ratelimit;
pub mod responder;
pub mod retention;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod tls;
