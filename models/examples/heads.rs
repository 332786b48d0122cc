//! Trains the shipped heads or runs the public head benchmarks with the real
//! E5 encoder, from the repository layout. The `xiaoer` CLI calls the same
//! library functions; this runner exists so the models crate can be
//! exercised on its own.
//!
//! ```text
//! cargo run -p xiaoer-models --release --example heads -- train [SEED]
//! cargo run -p xiaoer-models --release --example heads -- bench banking77|clinc150 [SEED]
//! ```
//! Weights come from `$XIAOER_MODELS_DIR` or `models/weights`. Logs go to
//! stderr (`RUST_LOG=info` by default), results to stdout as JSON.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use xiaoer_models::bench::{run_banking77, run_clinc150, BenchConfig};
use xiaoer_models::{train_shipped, E5Encoder, TrainConfig};

fn usage() -> ExitCode {
    eprintln!("usage: heads train [SEED] | heads bench banking77|clinc150 [SEED]");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let models_dir = std::env::var_os("XIAOER_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("models").join("weights"));
    let seed_arg = |i: usize| -> Result<Option<u64>, String> {
        args.get(i)
            .map(|s| s.parse::<u64>().map_err(|e| format!("bad seed {s}: {e}")))
            .transpose()
    };
    let encoder = match E5Encoder::load(&models_dir) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("cannot load encoder: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result: Result<String, String> = match args.first().map(String::as_str) {
        Some("train") => seed_arg(1).and_then(|seed| {
            let mut config = TrainConfig::for_workspace(&workspace);
            config.models_dir = models_dir.clone();
            if let Some(seed) = seed {
                config.seed = seed;
            }
            train_shipped(config, &encoder)
                .map(|report| report.to_string())
                .map_err(|e| e.to_string())
        }),
        Some("bench") => seed_arg(2).and_then(|seed| {
            let mut config = BenchConfig::for_workspace(&workspace);
            if let Some(seed) = seed {
                config.seed = seed;
            }
            let json = match args.get(1).map(String::as_str) {
                Some("banking77") => run_banking77(&config, &encoder)
                    .map_err(|e| e.to_string())
                    .and_then(|r| serde_json::to_string_pretty(&r).map_err(|e| e.to_string())),
                Some("clinc150") => run_clinc150(&config, &encoder)
                    .map_err(|e| e.to_string())
                    .and_then(|r| serde_json::to_string_pretty(&r).map_err(|e| e.to_string())),
                _ => Err("unknown benchmark".to_string()),
            };
            json
        }),
        _ => return usage(),
    };
    match result {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
