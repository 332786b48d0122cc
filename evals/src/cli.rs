//! Command-line arguments of `xiaoer eval …`, defined here so the service's
//! binary can embed them with `#[command(subcommand)]` and the evaluation
//! crate stays the single owner of its options and their defaults.

use std::path::PathBuf;

use crate::baseline::DEFAULT_TOLERANCE_PP;

/// Default server address of `xiaoer eval load`: the server's default listen address.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:50051";

/// `xiaoer eval` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum EvalCommand {
    /// Run the conversation case suite over gRPC and write a report with plots.
    Cases(CasesArgs),
    /// Replay a realistic mix of conversations with C concurrent workers and report latency.
    Load(LoadArgs),
    /// Score the intent model on a public benchmark dataset and write a report with plots.
    Bench(BenchArgs),
}

/// Options of `xiaoer eval cases`.
#[derive(Debug, Clone, clap::Args)]
pub struct CasesArgs {
    /// Case files (JSONL) or folders of them [default: every *.jsonl in evals/cases].
    #[arg(value_name = "FILES")]
    pub files: Vec<PathBuf>,
    /// Server to evaluate, e.g. http://127.0.0.1:50051. Without it the
    /// `xiaoer` binary starts an in-process server on an ephemeral port.
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// Report folder [default: reports/<YYYYMMDD-HHMMSS>-<git rev> under the current directory].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// An earlier report.json to compare headline figures with; a regression
    /// beyond --tolerance makes the command fail.
    #[arg(long, value_name = "REPORT_JSON")]
    pub baseline: Option<PathBuf>,
    /// Allowed worsening per headline figure before it counts as a regression, in percentage points.
    #[arg(long, value_name = "PP", default_value_t = DEFAULT_TOLERANCE_PP, value_parser = parse_tolerance)]
    pub tolerance: f64,
    /// Cases run at once (each case's turns stay in order). 1 gives the cleanest latency figures.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// Model version to record in report.json (the in-process server fills it in).
    #[arg(long, value_name = "VERSION")]
    pub model_version: Option<String>,
    /// Token and CA for a secured --endpoint.
    #[command(flatten)]
    pub auth: ClientAuthArgs,
}

/// Options of `xiaoer eval load`.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// Server(s) to load, comma-separated (replicas: workers spread over them); loopback addresses unless --allow-remote is given.
    #[arg(long, value_name = "URL,...", default_value = DEFAULT_ENDPOINT, value_delimiter = ',')]
    pub endpoint: Vec<String>,
    /// On UNAVAILABLE (or UNKNOWN: a connection cut mid-call), send the same request (same
    /// client turn id) to the next endpoint, as a client of several replicas would; for kill tests.
    #[arg(long)]
    pub failover: bool,
    /// Concurrent workers, each replaying one conversation at a time.
    #[arg(long, value_name = "C", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Stop after this many seconds (calls still in flight then are cut off, not waited for).
    #[arg(long, value_name = "S", default_value_t = 10.0, value_parser = parse_duration)]
    pub duration: f64,
    /// Stop after this many requests have been sent, if that comes first.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_requests: Option<u64>,
    /// Report folder [default: reports/<YYYYMMDD-HHMMSS>-<git rev> under the current directory].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Seed of the conversation mix, so two runs send the same traffic.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Permit a non-loopback endpoint (your own test host only; never a shared or production server).
    #[arg(long)]
    pub allow_remote: bool,
    /// Write every write the server acknowledged to FILE, one per line ("handoff ID", and
    /// "feedback CONVERSATION TURN" for the Feedback calls this option adds on every 4th
    /// answer), so a soak or kill run can check afterwards that each one is in the database.
    #[arg(long, value_name = "FILE")]
    pub ack_log: Option<PathBuf>,
    /// Make every Nth request a malformed or oversized one (empty text, 100 kB text, bad ids,
    /// a 5 MB message) and check that the server refuses it as it should.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(2..))]
    pub malformed_every: Option<u64>,
    /// Token and CA for a secured server.
    #[command(flatten)]
    pub auth: ClientAuthArgs,
}

/// How a client gets past a secured server's access control and TLS; every
/// command that calls a server (`chat`, `health`, `eval cases`, `eval load`)
/// takes these, and [`crate::client::connect_channel`] applies them.
#[derive(Clone, Default, clap::Args)]
pub struct ClientAuthArgs {
    /// Bearer token for a server with access control (from `xiaoer token new`).
    #[arg(long, env = "XIAOER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// PEM certificate of the CA that signed the server's TLS certificate; needed for https:// endpoints.
    #[arg(long, env = "XIAOER_TLS_CA", value_name = "PEM")]
    pub tls_ca: Option<PathBuf>,
}

/// Never prints the token: arguments end up in debug logs.
impl std::fmt::Debug for ClientAuthArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientAuthArgs")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("tls_ca", &self.tls_ca)
            .finish()
    }
}

/// Options of `xiaoer eval bench`, run by [`crate::bench::run`].
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Benchmark: banking77, clinc150, goemotions, chinese_online_shopping_10_cats, stackfaq or retrieval.
    #[arg(value_name = "DATASET")]
    pub dataset: String,
    /// Score at most this many examples (a quick look rather than the full set).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
    /// Report folder [default: reports/bench-<DATASET> under the current directory].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Public data sets [default: datasets/ when fetched, else ../shared/datasets];
    /// `scripts/fetch-datasets.sh` fetches them.
    #[arg(long, value_name = "DIR", env = "XIAOER_DATASETS_DIR")]
    pub datasets_dir: Option<PathBuf>,
}

/// Runs one `xiaoer eval` command. Case suites without `--endpoint` go
/// through the real server started in this process on a loopback port with
/// a throwaway database, so cases always travel over gRPC.
pub async fn run(command: EvalCommand) -> anyhow::Result<()> {
    match command {
        EvalCommand::Cases(args) => {
            let outcome = match args.endpoint.clone() {
                Some(endpoint) => crate::run_cases(&args, &endpoint).await?,
                None => {
                    let server = tokio::task::spawn_blocking(|| {
                        xiaoer_service::embedded::EmbeddedServer::start(Default::default())
                    })
                    .await??;
                    let outcome = crate::run_cases(&args, &server.url()).await;
                    let data_dir = tokio::task::spawn_blocking(move || server.stop()).await?;
                    let _ = std::fs::remove_dir_all(data_dir);
                    outcome?
                }
            };
            if outcome.regressed {
                anyhow::bail!("regression against the baseline");
            }
            Ok(())
        }
        EvalCommand::Load(args) => {
            crate::run_load(&args).await?;
            Ok(())
        }
        EvalCommand::Bench(args) => crate::bench::run(&args).await,
    }
}

/// Longest load run accepted, so a typo cannot start an hour-long run.
pub const MAX_LOAD_SECONDS: f64 = 3600.0;

fn parse_duration(text: &str) -> Result<f64, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(seconds > 0.0 && seconds <= MAX_LOAD_SECONDS) {
        return Err(format!(
            "duration must be above 0 and at most {MAX_LOAD_SECONDS} seconds"
        ));
    }
    Ok(seconds)
}

fn parse_tolerance(text: &str) -> Result<f64, String> {
    let points: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of percentage points"))?;
    if !(0.0..=100.0).contains(&points) {
        return Err("tolerance must be between 0 and 100 percentage points".to_string());
    }
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: EvalCommand,
    }

    fn parse(args: &[&str]) -> Result<EvalCommand, clap::Error> {
        Cli::try_parse_from(std::iter::once("eval").chain(args.iter().copied()))
            .map(|cli| cli.command)
    }

    #[test]
    fn command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn cases_arguments() {
        let Ok(EvalCommand::Cases(args)) = parse(&[
            "cases",
            "a.jsonl",
            "b.jsonl",
            "--baseline",
            "r.json",
            "--out",
            "o",
        ]) else {
            panic!("cases parses");
        };
        assert_eq!(
            args.files,
            vec![PathBuf::from("a.jsonl"), PathBuf::from("b.jsonl")]
        );
        assert_eq!(args.baseline, Some(PathBuf::from("r.json")));
        assert_eq!(args.tolerance, DEFAULT_TOLERANCE_PP);
        assert_eq!(args.endpoint, None);
        assert!(parse(&["cases", "--concurrency", "0"]).is_err());
        assert!(parse(&["cases", "--tolerance", "-1"]).is_err());
    }

    #[test]
    fn load_and_bench_arguments() {
        let Ok(EvalCommand::Load(args)) = parse(&[
            "load",
            "--concurrency",
            "8",
            "--duration",
            "2.5",
            "--max-requests",
            "100",
        ]) else {
            panic!("load parses");
        };
        assert_eq!(
            (args.concurrency, args.duration, args.max_requests),
            (8, 2.5, Some(100))
        );
        assert_eq!(args.endpoint, [DEFAULT_ENDPOINT]);
        let Ok(EvalCommand::Load(replicas)) = parse(&[
            "load",
            "--endpoint",
            "http://127.0.0.1:1,http://127.0.0.1:2",
            "--failover",
        ]) else {
            panic!("several endpoints parse");
        };
        assert_eq!(replicas.endpoint.len(), 2);
        assert!(replicas.failover);
        assert!(parse(&["load", "--duration", "0"]).is_err());
        assert!(parse(&["load", "--duration", "99999"]).is_err());
        assert!(parse(&["load", "--max-requests", "0"]).is_err());
        let Ok(EvalCommand::Bench(bench)) = parse(&["bench", "massive-zh", "--limit", "50"]) else {
            panic!("bench parses");
        };
        assert_eq!(bench.dataset, "massive-zh");
        assert_eq!(bench.limit, Some(50));
    }
}
