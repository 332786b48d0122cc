//! xiaoer-evals: measures the bot the way shoppers meet it — over gRPC.
//!
//! * [`run_cases`] replays the conversation case suite (`evals/cases/*.jsonl`),
//!   judges each case, computes the headline figures with their goals,
//!   writes a report folder with plots and gates on a baseline.
//! * [`run_load`] drives a bounded, loopback-only load test and reports
//!   throughput, latency percentiles and errors by gRPC status.
//! * [`bench::write_bench_report`] writes the report of a public benchmark
//!   run that the service performs with the model crates.
//!
//! The `xiaoer` binary embeds [`EvalCommand`] as its `eval` subcommand.
#![warn(missing_docs)]

pub mod baseline;
pub mod bench;
pub mod cases;
pub mod classification;
pub mod cli;
pub mod client;
pub mod judge;
pub mod latency;
pub mod load;
pub mod malformed;
pub mod metrics;
pub mod plots;
pub mod report;
pub mod runner;

mod progress;
#[cfg(test)]
mod test_server;

pub use bench::{write_bench_report, BenchOutcome, BenchRun};
pub use classification::Predictions;
pub use cli::{BenchArgs, CasesArgs, ClientAuthArgs, EvalCommand, LoadArgs};
pub use client::{CALL_TIMEOUT, CONNECT_TIMEOUT};
pub use load::{run_load, LoadOutcome};
pub use runner::{run_cases, CasesOutcome};
