//! `xiaoer`: the one binary — server, terminal chat client, training,
//! knowledge-base tools, evals and data-protection commands. The commands
//! live in the `xiaoer_cli` library; this file only starts the runtime.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    // Before any thread exists: one inference worker per core with
    // single-threaded kernels beats candle's intra-op threads (see PoolConfig).
    xiaoer_models::prefer_single_threaded_kernels();
    let cli = xiaoer_cli::Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(xiaoer_cli::run(cli))
}
