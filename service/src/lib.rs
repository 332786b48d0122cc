//! The xiaoer server library: gRPC handlers, the reply pipeline, the dialogue
//! policy and the store, wired together. Model and knowledge-base logic live
//! in their own crates and the `xiaoer` command line in `xiaoer-cli`; this
//! crate decides, renders and records.

pub mod auth;
pub mod clock;
pub mod config;
pub mod console;
pub mod conversions;
pub mod cues;
pub mod duration;
pub mod embedded;
pub mod error;
pub mod events;
pub mod grpc;
pub mod handoff;
pub mod kb_sync;
pub mod outage;
pub mod periodic;
pub mod phrasing;
pub mod policy;
pub mod queue_gauges;
pub mod ratelimit;
pub mod reply;
pub mod request_id;
pub mod retention;
pub mod server;
pub mod sla;
pub mod store;
pub mod telemetry;
pub mod tls;
