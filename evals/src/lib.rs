//! xiaoer-evals: measures the bot the way shoppers meet it — over gRPC.
//!
//! * [`run_cases`] replays the conversation case suite (`evals/cases/*.jsonl`),
//!   judges each case, computes the headline figures with their goals,
//!   writes a report folder with plots and gates on a baseline.
//! * [`run_load`] drives a bounded, loopback-only load test and reports
//!   throughput, latency percentiles and errors by gRPC status.
//! * [`bench::run`] reruns a public benchmark (intent, sentiment, retrieval)
//!   with the model and knowledge-base crates and writes its figures.
//!
//! The `xiaoer` binary embeds [`EvalCommand`] as its `eval` subcommand and
//! hands it to [`run`].
#![warn(missing_docs)]

pub mod baseline;
pub mod bench;
pub mod cases;
pub mod classification;
pub mod cli;
pub mod client;
pub mod gaps;
pub mod insights;
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

pub use classification::Predictions;
pub use cli::{run, BenchArgs, CasesArgs, ClientAuthArgs, EvalCommand, LoadArgs};
pub use client::{CALL_TIMEOUT, CONNECT_TIMEOUT};
pub use load::{run_load, LoadOutcome};
pub use progress::spinner as progress_spinner;
pub use runner::{run_cases, CasesOutcome};
