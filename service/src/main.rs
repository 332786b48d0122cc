//! `xiaoer`: the one binary — server, terminal chat client, training,
//! knowledge-base tools, evals and data-protection commands.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use xiaoer_service::config::{LogFormat, ServeArgs};
use xiaoer_service::server::{self, App};
use xiaoer_service::store::{sqlite_url, Store};
use xiaoer_service::{cli, telemetry};

#[derive(Parser)]
#[command(
    name = "xiaoer",
    version,
    about = "店小二 xiaoer: bilingual auto-reply service for online shops"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gRPC server.
    Serve(ServeArgs),
    /// Exit 0 when a server's gRPC health check answers SERVING (for container health checks).
    Health {
        #[arg(
            long,
            default_value = "http://127.0.0.1:50051",
            env = "XIAOER_ENDPOINT"
        )]
        endpoint: String,
        /// CA for an https:// endpoint (health itself needs no token).
        #[command(flatten)]
        auth: xiaoer_evals::ClientAuthArgs,
    },
    /// Talk to a running server from the terminal, as a shopper would.
    Chat(cli::ChatArgs),
    /// Access tokens for `serve`'s bearer-token access control.
    Token {
        #[command(subcommand)]
        command: cli::TokenCommand,
    },
    /// Train the intent and sentiment heads on the shipped data.
    Train(cli::TrainArgs),
    /// Knowledge-base tools.
    Kb {
        #[command(subcommand)]
        command: cli::KbCommand,
    },
    /// Offline evaluation: case suites, public benchmarks, load tests.
    Eval {
        #[command(subcommand)]
        command: xiaoer_evals::EvalCommand,
    },
    /// Agents' feedback on drafts.
    Feedback {
        #[command(subcommand)]
        command: FeedbackCommand,
    },
    /// Erase one conversation on the shopper's request (right to be forgotten).
    Forget {
        /// Conversation id to erase.
        #[arg(long)]
        conversation: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Subcommand)]
enum FeedbackCommand {
    /// Write all feedback as JSONL (for training and knowledge-base tooling).
    Export {
        /// Output file; `-` for standard output.
        #[arg(long, default_value = "-")]
        out: PathBuf,
        #[command(flatten)]
        db: DbArgs,
    },
}

/// Which database an offline command reads.
#[derive(clap::Args)]
struct DbArgs {
    /// Database URL [default: the SQLite file in --data-dir].
    #[arg(long, env = "XIAOER_DATABASE_URL")]
    database_url: Option<String>,
    /// Data directory of the embedded database.
    #[arg(long, env = "XIAOER_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
}

impl DbArgs {
    async fn connect(&self) -> anyhow::Result<Store> {
        let url = self
            .database_url
            .clone()
            .unwrap_or_else(|| sqlite_url(&self.data_dir));
        if url.starts_with("sqlite:")
            && self.database_url.is_none()
            && !self.data_dir.join("xiaoer.db").exists()
        {
            bail!(
                "no database at {} — pass --data-dir or --database-url",
                self.data_dir.display()
            );
        }
        Ok(Store::connect(&url).await?)
    }
}

fn main() -> anyhow::Result<()> {
    // Before any thread exists: one inference worker per core with
    // single-threaded kernels beats candle's intra-op threads (see PoolConfig).
    xiaoer_models::prefer_single_threaded_kernels();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let config = args.resolve()?;
            // Refuse an exposed listener before the slow model loading.
            xiaoer_service::auth::check_exposure(config.addr, &config.tokens)?;
            telemetry::init_logging(config.log_format);
            telemetry::init_metrics(config.metrics_addr)?;
            let listener = tokio::net::TcpListener::bind(config.addr)
                .await
                .with_context(|| format!("binding {}", config.addr))?;
            let app = App::load(config).await?;
            server::serve(app, listener, server::shutdown_signal()).await
        }
        Command::Health { endpoint, auth } => cli::health(&endpoint, &auth).await,
        Command::Token { command } => cli::token(command),
        Command::Chat(args) => cli::chat(args, std::io::stdin().lock(), std::io::stdout()).await,
        Command::Train(args) => {
            // Progress (data sizes, adapter epochs) on stderr; RUST_LOG overrides.
            telemetry::init_logging(LogFormat::Pretty);
            cli::train(args).await
        }
        Command::Kb { command } => cli::kb(command).await,
        Command::Eval { command } => cli::eval(command).await,
        Command::Feedback {
            command: FeedbackCommand::Export { out, db },
        } => {
            let store = db.connect().await?;
            let records = store.all_feedback().await?;
            let mut sink: Box<dyn Write> = if out.as_os_str() == "-" {
                Box::new(std::io::stdout().lock())
            } else {
                Box::new(
                    std::fs::File::create(&out)
                        .with_context(|| format!("creating {}", out.display()))?,
                )
            };
            for record in &records {
                writeln!(sink, "{}", serde_json::to_string(record)?)?;
            }
            eprintln!("exported {} feedback records", records.len());
            Ok(())
        }
        Command::Forget { conversation, db } => {
            let store = db.connect().await?;
            let existed = store.forget_conversation(&conversation).await?;
            store
                .audit(
                    "cli",
                    "forget",
                    &conversation,
                    if existed { "erased" } else { "not_found" },
                )
                .await?;
            println!(
                "{}",
                if existed {
                    format!("conversation {conversation} erased")
                } else {
                    format!("no conversation {conversation}; nothing to erase")
                }
            );
            Ok(())
        }
    }
}
