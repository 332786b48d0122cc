//! `xiaoer`: the one binary — server, terminal chat client, training,
//! knowledge-base tools, evals and data-protection commands. The commands
//! live in the `xiaoer_cli` library; this file only starts the runtime.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Before any thread exists: one inference worker per core with
    // single-threaded kernels beats candle's intra-op threads (see PoolConfig).
    xiaoer_models::prefer_single_threaded_kernels();
    let cli = xiaoer_cli::Cli::parse();
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(xiaoer_cli::run(cli)));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // The cause chain on one line, never a backtrace: these errors
            // are for the person at the terminal (RUST_BACKTRACE set in the
            // shell must not turn "run scripts/fetch-datasets.sh" into a
            // stack dump).
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
