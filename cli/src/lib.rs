//! The `xiaoer` command line: one module per command group, each a thin
//! layer over the server, evaluation, model and knowledge-base libraries.

pub mod chat;
pub mod health;
pub mod insights;
pub mod kb;
pub mod records;
pub mod token;
pub mod train;

use anyhow::Context;
use clap::{Parser, Subcommand};
use xiaoer_service::config::ServeArgs;
use xiaoer_service::server::{self, App};
use xiaoer_service::telemetry::{self, LogFormat};

use crate::records::{DbArgs, FeedbackCommand};

/// The parsed command line.
#[derive(Parser)]
#[command(
    name = "xiaoer",
    version,
    about = "店小二 xiaoer: bilingual auto-reply service for online shops"
)]
pub struct Cli {
    #[command(subcommand)]
    /// What to do.
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand)]
pub enum Command {
    /// Run the gRPC server (and, with --console-addr, the agents' web console).
    Serve(Box<ServeArgs>),
    /// Exit 0 when a server's gRPC health check answers SERVING, or with --ready-url when its readiness probe answers 200 (for container health checks).
    Health {
        #[arg(
            long,
            default_value = "http://127.0.0.1:50051",
            env = "XIAOER_ENDPOINT"
        )]
        endpoint: String,
        /// Probe this plain-HTTP readiness URL instead (e.g. http://127.0.0.1:9464/readyz): works the same with and without gRPC TLS.
        #[arg(long, value_name = "URL")]
        ready_url: Option<String>,
        /// CA for an https:// endpoint (health itself needs no token).
        #[command(flatten)]
        auth: xiaoer_evals::ClientAuthArgs,
    },
    /// Talk to a running server from the terminal, as a shopper would.
    Chat(chat::ChatArgs),
    /// Access tokens for `serve`'s bearer-token access control.
    Token {
        #[command(subcommand)]
        command: token::TokenCommand,
    },
    /// Train the intent and sentiment heads on the shipped data.
    Train(train::TrainArgs),
    /// Knowledge-base tools.
    Kb {
        #[command(subcommand)]
        command: kb::KbCommand,
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
    /// The daily report: containment and verified resolution, handoffs and
    /// their timing, draft verdicts and ratings, as report.md, report.json and charts.
    Insights(insights::InsightsArgs),
    /// Erase one conversation on the shopper's request (right to be forgotten).
    Forget {
        /// Conversation id to erase.
        #[arg(long)]
        conversation: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

/// Runs one parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let config = args.resolve()?;
            // Refuse an exposed listener before the slow model loading.
            xiaoer_service::auth::check_exposure(config.addr, &config.tokens)?;
            if let Some(console) = config.console_addr {
                xiaoer_service::auth::check_exposure(console, &config.tokens)?;
            }
            telemetry::init_logging(config.log_format);
            // Probes answer (503) while the model loads.
            let readiness = telemetry::Readiness::default();
            telemetry::serve_metrics(config.metrics_addr, readiness.clone()).await?;
            let listener = tokio::net::TcpListener::bind(config.addr)
                .await
                .with_context(|| format!("binding {}", config.addr))?;
            let app = App::load(config).await?.with_readiness(readiness);
            server::serve(app, listener, server::shutdown_signal()).await
        }
        Command::Health {
            ready_url: Some(url),
            ..
        } => health::ready(&url).await,
        Command::Health {
            endpoint,
            auth,
            ready_url: None,
        } => health::health(&endpoint, &auth).await,
        Command::Token { command } => token::token(command),
        Command::Chat(args) => chat::chat(args, std::io::stdin().lock(), std::io::stdout()).await,
        Command::Train(args) => {
            // Progress (data sizes, adapter epochs) on stderr; RUST_LOG overrides.
            telemetry::init_logging(LogFormat::Pretty);
            train::train(args).await
        }
        Command::Kb { command } => kb::kb(command).await,
        Command::Eval { command } => xiaoer_evals::run(command).await,
        Command::Feedback {
            command: FeedbackCommand::Export { out, db },
        } => records::export_feedback(&out, &db).await,
        Command::Forget { conversation, db } => records::forget(&conversation, &db).await,
        Command::Insights(args) => insights::insights(args).await,
    }
}
